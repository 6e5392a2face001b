/**
 * An x86-64 instruction-length decoder: enough of the encoding (legacy prefixes, REX, the one-,
 * two- and three-byte opcode maps, VEX and EVEX, ModRM/SIB/displacement, immediates) to walk
 * compiled code from a function's entry to its end and find every return instruction. It knows
 * lengths, not meanings. Checked against objdump over every function of real Go binaries
 * (capture/go/x86.test.ts). amd64 only: Go's arm64 code would need a decoder of its own (fixed
 * 4-byte instructions make that one easy, but it is not written).
 */

export class DecodeError extends Error {
  override name = 'DecodeError';
}

/** ModRM presence and immediate size per one-byte opcode: bit 0x80 = ModRM, low bits = immediate kind. */
const M = 0x80;
const I8 = 1; // imm8
const IZ = 2; // imm16/32 (operand size)
const I16 = 3; // imm16
const I16_8 = 4; // imm16 + imm8 (enter)
const MOFFS = 5; // 8-byte address (4 with 0x67)
const IV = 6; // imm16/32/64 (mov r, imm)
const GRP3 = 7; // F6/F7: an immediate only for /0 and /1
const BAD = 0x40;

const ONE = new Uint8Array(256);
(() => {
  const set = (ops: number[], v: number): void => {
    for (const o of ops) ONE[o] = v;
  };
  const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);
  for (let base = 0; base < 0x40; base += 8) {
    set(range(base, base + 3), M);
    ONE[base + 4] = I8;
    ONE[base + 5] = IZ;
  }
  set([0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f], BAD);
  set([0x60, 0x61, 0x82, 0x9a, 0xce, 0xd4, 0xd5, 0xd6, 0xea], BAD);
  ONE[0x63] = M;
  ONE[0x68] = IZ;
  ONE[0x69] = M | IZ;
  ONE[0x6a] = I8;
  ONE[0x6b] = M | I8;
  set(range(0x70, 0x7f), I8);
  ONE[0x80] = M | I8;
  ONE[0x81] = M | IZ;
  ONE[0x83] = M | I8;
  set(range(0x84, 0x8f), M);
  set(range(0xa0, 0xa3), MOFFS);
  ONE[0xa8] = I8;
  ONE[0xa9] = IZ;
  set(range(0xb0, 0xb7), I8);
  set(range(0xb8, 0xbf), IV);
  ONE[0xc0] = M | I8;
  ONE[0xc1] = M | I8;
  ONE[0xc2] = I16;
  ONE[0xc6] = M | I8;
  ONE[0xc7] = M | IZ;
  ONE[0xc8] = I16_8;
  ONE[0xca] = I16;
  ONE[0xcd] = I8;
  set(range(0xd0, 0xd3), M);
  set(range(0xd8, 0xdf), M);
  set(range(0xe0, 0xe7), I8);
  ONE[0xe8] = 8; // rel32
  ONE[0xe9] = 8;
  ONE[0xeb] = I8;
  ONE[0xf6] = M | GRP3;
  ONE[0xf7] = M | GRP3;
  ONE[0xfe] = M;
  ONE[0xff] = M;
})();
const REL32 = 8;

/** Two-byte map (0F xx): which opcodes have no ModRM, which carry an imm8, which are undefined. */
const TWO_NO_MODRM = new Set([
  0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77, 0xa0, 0xa1, 0xa2,
  0xa8, 0xa9, 0xaa, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
]);
const TWO_IMM8 = new Set([0x0f, 0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6]);
const TWO_BAD = new Set([
  0x04, 0x0a, 0x0c, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0xa6, 0xa7,
]);
/** VEX/EVEX map 1 opcodes with an imm8 (map 3 always has one, map 2 never). */
const VEX1_IMM8 = new Set([0x70, 0x71, 0x72, 0x73, 0xc2, 0xc4, 0xc5, 0xc6]);

const PREFIXES = new Set([0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x66, 0x67]);

/** Bytes taken by ModRM, SIB and displacement starting at `at`. */
function modrmLength(code: Uint8Array, at: number): number {
  const modrm = code[at];
  if (modrm === undefined) throw new DecodeError('truncated ModRM');
  const mod = modrm >> 6;
  const rm = modrm & 7;
  if (mod === 3) return 1;
  let n = 1;
  if (rm === 4) {
    const sib = code[at + 1];
    if (sib === undefined) throw new DecodeError('truncated SIB');
    n++;
    if (mod === 0 && (sib & 7) === 5) n += 4;
  } else if (mod === 0 && rm === 5) {
    n += 4; // RIP-relative
  }
  if (mod === 1) n += 1;
  else if (mod === 2) n += 4;
  return n;
}

/** Length in bytes of the instruction at `at`; throws DecodeError for encodings it does not know. */
export function instructionLength(code: Uint8Array, at: number): number {
  let i = at;
  let opsize16 = false;
  let addr32 = false;
  let rexW = false;
  for (let k = 0; k < 15 && PREFIXES.has(code[i] ?? -1); k++, i++) {
    if (code[i] === 0x66) opsize16 = true;
    if (code[i] === 0x67) addr32 = true;
  }
  let op = code[i];
  if (op === undefined) throw new DecodeError('truncated instruction');
  if (op >= 0x40 && op <= 0x4f) {
    rexW = (op & 8) !== 0;
    op = code[++i];
    if (op === undefined) throw new DecodeError('truncated instruction');
  }
  i++;
  const immz = (): number => (opsize16 ? 2 : 4);

  // VEX (C4/C5) and EVEX (62): always so in 64-bit mode
  if (op === 0xc4 || op === 0xc5 || op === 0x62) {
    let map: number;
    if (op === 0xc5) {
      map = 1;
      i += 1;
    } else if (op === 0xc4) {
      map = (code[i] ?? 0) & 0x1f;
      i += 2;
    } else {
      map = (code[i] ?? 0) & 0x07;
      i += 3;
    }
    const vop = code[i++];
    if (vop === undefined) throw new DecodeError('truncated VEX instruction');
    if (op !== 0x62 && map === 1 && vop === 0x77) return i - at; // vzeroupper / vzeroall
    let n = modrmLength(code, i);
    if (map === 3 || (map === 1 && VEX1_IMM8.has(vop))) n += 1;
    else if (map !== 1 && map !== 2 && !(op === 0x62 && (map === 5 || map === 6)))
      throw new DecodeError(`unknown VEX/EVEX map ${map}`);
    return i + n - at;
  }

  if (op === 0x0f) {
    const op2 = code[i++];
    if (op2 === undefined) throw new DecodeError('truncated instruction');
    if (op2 === 0x38) return i + 1 + modrmLength(code, i + 1) - at;
    if (op2 === 0x3a) return i + 1 + modrmLength(code, i + 1) + 1 - at;
    if (TWO_BAD.has(op2)) throw new DecodeError(`undefined opcode 0f ${op2.toString(16)}`);
    if (op2 >= 0x80 && op2 <= 0x8f) return i + 4 - at; // jcc rel32
    if (TWO_NO_MODRM.has(op2)) return i - at;
    return i + modrmLength(code, i) + (TWO_IMM8.has(op2) ? 1 : 0) - at;
  }

  const kind = ONE[op]!;
  if (kind === BAD) throw new DecodeError(`opcode ${op.toString(16)} is not valid in 64-bit mode`);
  let n = 0;
  if (kind & M) n += modrmLength(code, i);
  switch (kind & 0x0f) {
    case I8:
      n += 1;
      break;
    case IZ:
      n += immz();
      break;
    case I16:
      n += 2;
      break;
    case I16_8:
      n += 3;
      break;
    case MOFFS:
      n += addr32 ? 4 : 8;
      break;
    case IV:
      n += rexW ? 8 : immz();
      break;
    case GRP3: {
      const reg = ((code[i] ?? 0) >> 3) & 7;
      if (reg === 0 || reg === 1) n += op === 0xf6 ? 1 : immz();
      break;
    }
    case REL32:
      n += 4;
      break;
  }
  return i + n - at;
}

/**
 * Offsets (from the start of `code`) of every return instruction (`ret`, `ret imm16`, prefixed
 * forms included: the offset is where the instruction starts). The walk must land exactly on the
 * end of `code`, else the bytes were not decoded as the CPU would and DecodeError says where.
 */
export function returnOffsets(code: Uint8Array): number[] {
  const out: number[] = [];
  let at = 0;
  while (at < code.length) {
    let len: number;
    try {
      len = instructionLength(code, at);
    } catch (e) {
      throw new DecodeError(`at +0x${at.toString(16)}: ${(e as Error).message}`);
    }
    let op = at;
    while (PREFIXES.has(code[op]!) || (code[op]! >= 0x40 && code[op]! <= 0x4f)) op++;
    if (code[op] === 0xc3 || code[op] === 0xc2) out.push(at);
    at += len;
  }
  if (at !== code.length)
    throw new DecodeError(`the last instruction runs past the end by ${at - code.length} bytes`);
  return out;
}

/** Instruction start offsets (tests compare them with objdump's). */
export function instructionStarts(code: Uint8Array): number[] {
  const out: number[] = [];
  for (let at = 0; at < code.length; at += instructionLength(code, at)) out.push(at);
  return out;
}

/**
 * Where a Go function's body starts: just past its stack-bound check (`cmp rsp|r12, 0x10(r14)`,
 * then `jbe` to the morestack call at the end of the function), or 0 when it has none (NOSPLIT).
 * A probe there fires once per call; one on the first instruction fires again whenever the
 * stack has to grow, because morestack restarts the function from its entry.
 */
export function stackCheckEnd(code: Uint8Array): number {
  let at = 0;
  let sawCheck = false;
  for (let k = 0; k < 4 && at < code.length; k++) {
    const len = instructionLength(code, at);
    const rex = code[at]!;
    // cmp r64, [r14 + disp8]: REX.W+B (0x49/0x4d), 3b, ModRM mod=01 rm=110
    if ((rex === 0x49 || rex === 0x4d) && code[at + 1] === 0x3b && (code[at + 2]! & 0xc7) === 0x46)
      sawCheck = true;
    const jbe = code[at] === 0x76 || (code[at] === 0x0f && code[at + 1] === 0x86);
    if (jbe) {
      if (!sawCheck) return 0;
      const rel =
        code[at] === 0x76
          ? (code[at + 1]! << 24) >> 24
          : Buffer.from(code.subarray(at + 2, at + 6)).readInt32LE(0);
      const target = at + len + rel;
      // the slow path lies inside the function, after the check
      return target > at && target < code.length ? at + len : 0;
    }
    at += len;
  }
  return 0;
}
