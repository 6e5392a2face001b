/**
 * Where to put the OpenSSL probes of one file (a libssl, or an executable such as `node` that links
 * OpenSSL statically), and what the BPF side must know about them (the attach cookie).
 *
 * A uprobe on an instruction the kernel cannot emulate is single-stepped out of line: two traps
 * instead of one, measured at 10–30 µs per hit on the development VMs against about 1 µs for an
 * emulated one (push, call, jmp, jcc, nop). Debian's libssl starts SSL_read/SSL_write with
 * `sub rsp`, which is not emulated, so the probes go where the code allows:
 *   - the exported function itself when it starts with an emulated instruction (node's OpenSSL
 *     starts with `push rbp`);
 *   - else the internal function both functions of a pair call straight away with their own
 *     arguments (OpenSSL 3: SSL_read and SSL_read_ex both call ssl_read_internal(s, buf, num,
 *     &readbytes)), when that one starts with an emulated instruction;
 *   - for a write, which is recorded at its entry, also the first emulated instruction before
 *     anything changes the arguments (SSL_write's sign check `js`, SSL_write_ex's `call`);
 *   - else the exported entry, single-stepped, as before.
 * A return probe must sit where the stack pointer is still the caller's (the kernel swaps the
 * return address it finds at rsp), so reads take the first two kinds only.
 *
 * The walk understands a short list of instruction encodings (what compilers put in these
 * prologues) and stops at anything else; stopping only costs speed, never correctness.
 */
import type { ElfFile } from './elf.js';

export type SslSiteKind = 'enter' | 'return' | 'write';

export interface SslSite {
  /** File offset of the probed instruction. */
  offset: number;
  kind: SslSiteKind;
  /** RETAP_SSL_* bits (bpf/retap.h). */
  cookie: number;
}

export interface OpensslPlan {
  sites: SslSite[];
  /** How each function is probed, for logs and `retap doctor`. */
  how: Record<string, string>;
  /** Every probe sits on an emulated instruction. */
  fast: boolean;
  /** SSL.rwstate offset (from SSL_want), or undefined: writes then need a return probe too. */
  rwstate?: number;
}

/** Cookie bits, as in bpf/retap.h. */
export const SSL_RWSTATE_MASK = 0xffff;
export const SSL_EX = 1 << 16;
export const SSL_OUT = 1 << 17;
export const SSL_INT_LEN = 1 << 18;

export const OPENSSL_FUNCTIONS = ['SSL_read', 'SSL_read_ex', 'SSL_write', 'SSL_write_ex'] as const;
type Fn = (typeof OPENSSL_FUNCTIONS)[number];

const RDI = 1;
const RSI = 2;
const RDX = 4;
const RCX = 8;

interface Insn {
  len: number;
  /** The kernel emulates it (no out-of-line single step). */
  emulated: boolean;
  /** Argument registers it writes (RDI…). */
  writes: number;
  /** It moves the stack pointer. */
  movesRsp: boolean;
  /** A conditional branch: the walk goes on along the fall-through path. */
  cond?: boolean;
  /** `call rel32`: the called address. */
  call?: number;
  /** writes rdx with the sign extension of edx (SSL_read/SSL_write passing int num on as size_t) */
  widensRdx?: boolean;
}

/** Decodes one instruction of the known prologue vocabulary at `at` (vaddr `pc`), or undefined. */
export function decodePrologue(code: Uint8Array, at: number, pc: number): Insn | undefined {
  const b = (i: number): number => code[at + i] ?? -1;
  const plain = (len: number, extra: Partial<Insn> = {}): Insn => ({
    len,
    emulated: false,
    writes: 0,
    movesRsp: false,
    ...extra,
  });
  // endbr64
  if (b(0) === 0xf3 && b(1) === 0x0f && b(2) === 0x1e && b(3) === 0xfa) return plain(4);
  // nop, xchg ax,ax, nopl/nopw with ModRM (0f 1f /0), optional 66 / cs prefixes
  if (b(0) === 0x90) return plain(1, { emulated: true });
  {
    let p = 0;
    while (b(p) === 0x66 || b(p) === 0x2e) p++;
    if (p > 0 && b(p) === 0x90) return plain(p + 1, { emulated: true });
    if (b(p) === 0x0f && b(p + 1) === 0x1f && ((b(p + 2) >> 3) & 7) === 0) {
      const modrm = b(p + 2);
      const mod = modrm >> 6;
      const rm = modrm & 7;
      let n = p + 3;
      if (mod !== 3 && rm === 4) n += 1; // SIB
      if (mod === 1) n += 1;
      else if (mod === 2 || (mod === 0 && rm === 5)) n += 4;
      return plain(n, { emulated: true });
    }
  }
  // push r64 (50+r, 41 50+r)
  if (b(0) >= 0x50 && b(0) <= 0x57) return plain(1, { emulated: true, movesRsp: true });
  if (b(0) === 0x41 && b(1) >= 0x50 && b(1) <= 0x57) return plain(2, { emulated: true, movesRsp: true });
  // mov rbp, rsp
  if (b(0) === 0x48 && b(1) === 0x89 && b(2) === 0xe5) return plain(3);
  // sub rsp, imm8 / imm32
  if (b(0) === 0x48 && b(1) === 0x83 && b(2) === 0xec) return plain(4, { movesRsp: true });
  if (b(0) === 0x48 && b(1) === 0x81 && b(2) === 0xec) return plain(7, { movesRsp: true });
  // mov rax, fs:0x28 (the stack protector's canary)
  if (
    b(0) === 0x64 &&
    b(1) === 0x48 &&
    b(2) === 0x8b &&
    b(3) === 0x04 &&
    b(4) === 0x25 &&
    b(5) === 0x28 &&
    b(6) === 0 &&
    b(7) === 0 &&
    b(8) === 0
  )
    return plain(9);
  // mov [rsp+disp8], rax
  if (b(0) === 0x48 && b(1) === 0x89 && b(2) === 0x44 && b(3) === 0x24) return plain(5);
  // xor eax, eax
  if (b(0) === 0x31 && b(1) === 0xc0) return plain(2);
  // test edx, edx / test rdx, rdx
  if (b(0) === 0x85 && b(1) === 0xd2) return plain(2);
  if (b(0) === 0x48 && b(1) === 0x85 && b(2) === 0xd2) return plain(3);
  // cmp qword [rdi+disp8], imm8
  if (b(0) === 0x48 && b(1) === 0x83 && b(2) === 0x7f) return plain(5);
  // mov rcx, rsp (the address of a local for the out-parameter)
  if (b(0) === 0x48 && b(1) === 0x89 && b(2) === 0xe1) return plain(3, { writes: RCX });
  // lea rcx, [rsp+disp8]
  if (b(0) === 0x48 && b(1) === 0x8d && b(2) === 0x4c && b(3) === 0x24) return plain(5, { writes: RCX });
  // movsxd rdx, edx
  if (b(0) === 0x48 && b(1) === 0x63 && b(2) === 0xd2) return plain(3, { writes: RDX, widensRdx: true });
  // jcc rel8 / rel32
  if (b(0) >= 0x70 && b(0) <= 0x7f) return plain(2, { emulated: true, cond: true });
  if (b(0) === 0x0f && b(1) >= 0x80 && b(1) <= 0x8f) return plain(6, { emulated: true, cond: true });
  // call rel32
  if (b(0) === 0xe8 && at + 5 <= code.length) {
    const rel = Buffer.from(code.buffer, code.byteOffset + at + 1, 4).readInt32LE(0);
    return plain(5, { emulated: true, call: pc + 5 + rel, writes: RDI | RSI | RDX | RCX });
  }
  return undefined;
}

interface Walk {
  /** First emulated instruction reached with the stack pointer unmoved (a return probe may go there). */
  atEntry?: number;
  /** First emulated instruction reached with the arguments intact (an entry-only probe may go there). */
  argsIntact?: number;
  /** The function called straight away with the arguments passed on, if any. */
  callee?: number;
}

/**
 * Walks a function's straight-line prologue. `args` are the argument registers that must reach
 * the callee untouched; `mayWrite` those the caller may set up (the out-parameter); a widened rdx
 * counts as intact when `intLen` (an int length passed on as size_t).
 */
export function walkPrologue(
  code: Uint8Array,
  vaddr: number,
  args: number,
  mayWrite: number,
  intLen: boolean,
): Walk {
  const out: Walk = {};
  let at = 0;
  let rspMoved = false;
  let clobbered = 0;
  for (let k = 0; k < 24 && at < code.length; k++) {
    const insn = decodePrologue(code, at, vaddr + at);
    if (!insn) break;
    const intact = (clobbered & args) === 0;
    if (insn.emulated && intact && !rspMoved && out.atEntry === undefined) out.atEntry = at;
    if (insn.emulated && intact && out.argsIntact === undefined) out.argsIntact = at;
    if (insn.call !== undefined) {
      if ((clobbered & args & ~mayWrite) === 0) out.callee = insn.call;
      break;
    }
    let w = insn.writes;
    if (insn.widensRdx && intLen) w &= ~RDX;
    clobbered |= w & ~mayWrite;
    if (insn.widensRdx && !intLen) clobbered |= RDX;
    if (insn.movesRsp) rspMoved = true;
    at += insn.len;
  }
  return out;
}

/** SSL.rwstate's offset, from `SSL_want` (`mov eax, [rdi+disp]` … `ret`), or undefined. */
export function rwstateOffset(code: Uint8Array): number | undefined {
  let off: number | undefined;
  let at: number;
  if (code[0] === 0x8b && code[1] === 0x47) {
    off = code[2]!;
    at = 3;
  } else if (code[0] === 0x8b && code[1] === 0x87 && code.length >= 6) {
    off = Buffer.from(code.buffer, code.byteOffset + 2, 4).readInt32LE(0);
    at = 6;
  } else {
    return undefined;
  }
  // zeroing of scratch registers (-fzero-call-used-regs) may sit between the load and the return
  for (let k = 0; k < 6 && code[at] === 0x31 && (code[at + 1]! & 0xc0) === 0xc0; k++) at += 2;
  if (code[at] !== 0xc3 || off < 0 || off >= SSL_RWSTATE_MASK) return undefined;
  return off;
}

interface FnInfo {
  name: Fn;
  vaddr: number;
  code: Uint8Array;
}

/**
 * The probes of a file that exports the OpenSSL functions, or undefined when it exports none.
 * `entryOnlyWrites` plans writes as one entry probe ('write' sites) where SSL.rwstate is known;
 * the programs for those are not written yet, so capture plans entry and return probes for both.
 */
export function planOpenssl(elf: ElfFile, opts: { entryOnlyWrites?: boolean } = {}): OpensslPlan | undefined {
  const wanted = new Set<string>([...OPENSSL_FUNCTIONS, 'SSL_want']);
  const syms = new Map<string, { value: number; size: number }>();
  for (const s of elf.symbols('dynsym', (n) => wanted.has(n)))
    if (s.defined && s.value && (s.type === 2 || s.type === 10)) syms.set(s.name, s);
  const fns: FnInfo[] = [];
  for (const name of OPENSSL_FUNCTIONS) {
    const s = syms.get(name);
    if (!s) continue;
    try {
      fns.push({ name, vaddr: s.value, code: elf.readAt(s.value, Math.min(Math.max(s.size, 16), 160)) });
    } catch {
      /* outside the file image: not probed */
    }
  }
  if (fns.length === 0) return undefined;
  let rwstate: number | undefined;
  const want = syms.get('SSL_want');
  if (want) {
    try {
      rwstate = rwstateOffset(elf.readAt(want.value, 24));
    } catch {
      rwstate = undefined;
    }
  }
  const offsetOf = (vaddr: number): number | undefined => elf.fileOffset(vaddr);
  const firstEmulatedAtEntry = (vaddr: number): number | undefined => {
    try {
      const code = elf.readAt(vaddr, 32);
      const w = walkPrologue(code, vaddr, RDI | RSI | RDX | RCX, 0, false);
      return w.atEntry;
    } catch {
      return undefined;
    }
  };

  const plan: OpensslPlan = { sites: [], how: {}, fast: true, ...(rwstate !== undefined ? { rwstate } : {}) };
  const rw = rwstate === undefined ? 0 : rwstate + 1;
  for (const dir of ['read', 'write'] as const) {
    const pair = fns.filter((f) => f.name.startsWith(`SSL_${dir}`));
    if (pair.length === 0) continue;
    const entryOnly = dir === 'write' && rwstate !== undefined && opts.entryOnlyWrites === true;
    const base = (dir === 'write' ? SSL_OUT : 0) | rw;
    const cookieOf = (f: FnInfo): number => base | (f.name.endsWith('_ex') ? SSL_EX : SSL_INT_LEN);
    const walks = pair.map((f) => {
      const ex = f.name.endsWith('_ex');
      const args = RDI | RSI | RDX | (ex ? RCX : 0);
      return { f, w: walkPrologue(f.code, f.vaddr, args, ex ? 0 : RCX, !ex) };
    });
    // a function of the pair that calls the other straight away is covered by the other's probe
    const addrs = new Set(pair.map((f) => f.vaddr));
    const own = walks.filter(({ w }) => w.callee === undefined || !addrs.has(w.callee));
    const sites: Array<{ vaddr: number; cookie: number; how: string; name: string }> = [];
    const level = (w: Walk): number | undefined => (entryOnly ? w.argsIntact : w.atEntry);
    const callee = own[0]?.w.callee;
    const sharedCallee =
      callee !== undefined && own.every(({ w }) => w.callee === callee) ? callee : undefined;
    const calleeSite = sharedCallee !== undefined ? firstEmulatedAtEntry(sharedCallee) : undefined;
    if (own.every(({ w }) => level(w) !== undefined)) {
      for (const { f, w } of own)
        sites.push({ vaddr: f.vaddr + level(w)!, cookie: cookieOf(f), how: `${f.name}+${level(w)}`, name: f.name });
    } else if (sharedCallee !== undefined && calleeSite !== undefined) {
      const at = sharedCallee + calleeSite;
      const how = `internal function at 0x${sharedCallee.toString(16)}+${calleeSite} (called by ${own.map((o) => o.f.name).join(' and ')})`;
      sites.push({ vaddr: at, cookie: base | SSL_EX, how, name: own.map((o) => o.f.name).join(',') });
    } else {
      plan.fast = false;
      for (const { f } of own)
        sites.push({ vaddr: f.vaddr, cookie: cookieOf(f), how: `${f.name}+0 (single-stepped)`, name: f.name });
    }
    for (const s of sites) {
      const offset = offsetOf(s.vaddr);
      if (offset === undefined) continue;
      for (const name of s.name.split(',')) plan.how[name] = s.how;
      if (entryOnly) plan.sites.push({ offset, kind: 'write', cookie: s.cookie });
      else
        plan.sites.push({ offset, kind: 'enter', cookie: s.cookie }, { offset, kind: 'return', cookie: 0 });
    }
    for (const { f, w } of walks)
      if (!plan.how[f.name] && w.callee !== undefined && addrs.has(w.callee))
        plan.how[f.name] = 'through the other function of its pair';
  }
  return plan.sites.length ? plan : undefined;
}
