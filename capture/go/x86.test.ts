import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { goPeers, skipWithoutGoPeers } from '../../test/helpers/go-peers.js';
import { skipWithoutTool } from '../../test/helpers/privileged.js';
import { withElf } from '../elf.js';
import { allFunctions } from './pclntab.js';
import { DecodeError, instructionLength, instructionStarts, returnOffsets, stackCheckEnd } from './x86.js';

const hex = (s: string): Uint8Array => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('x86-64 instruction lengths', () => {
  it.each([
    ['c3', 1, 'ret'],
    ['c2 08 00', 3, 'ret imm16'],
    ['f3 c3', 2, 'rep ret'],
    ['48 b8 88 77 66 55 44 33 22 11', 10, 'mov rax, imm64 (REX.W)'],
    ['b8 01 00 00 00', 5, 'mov eax, imm32'],
    ['66 b8 01 00', 4, 'mov ax, imm16'],
    ['49 3b 66 10', 4, 'cmp rsp, [r14+0x10] (Go stack check)'],
    ['48 8d 05 00 00 00 00', 7, 'lea rax, [rip+0] (RIP-relative)'],
    ['48 8b 44 24 08', 5, 'mov rax, [rsp+8] (SIB, disp8)'],
    ['48 8b 84 24 00 01 00 00', 8, 'mov rax, [rsp+0x100] (SIB, disp32)'],
    ['8b 04 25 00 00 00 00', 7, 'mov eax, [abs32] (SIB without base)'],
    ['f7 c1 ff 00 00 00', 6, 'test ecx, imm32 (group 3 /0)'],
    ['f7 d8', 2, 'neg eax (group 3 /3: no immediate)'],
    ['f6 c1 01', 3, 'test cl, imm8'],
    ['0f 84 00 01 00 00', 6, 'je rel32'],
    ['0f 1f 44 00 00', 5, 'nopl (0f 1f)'],
    ['66 0f 1f 84 00 00 00 00 00', 9, 'nopw with disp32'],
    ['0f 05', 2, 'syscall'],
    ['0f ba e0 03', 4, 'bt eax, 3 (0f ba imm8)'],
    ['66 0f 3a 0f c1 08', 6, 'palignr (0f 3a: imm8)'],
    ['66 0f 38 00 c1', 5, 'pshufb (0f 38)'],
    ['c5 fd 6f 06', 4, 'vmovdqa ymm0, [rsi] (VEX2)'],
    ['c4 e3 7d 39 c1 01', 6, 'vextracti128 (VEX3 map 3: imm8)'],
    ['c5 f8 77', 3, 'vzeroupper'],
    ['62 f1 fe 48 6f 06', 6, 'vmovdqu64 zmm0, [rsi] (EVEX)'],
    ['e8 00 00 00 00', 5, 'call rel32'],
    ['a1 00 00 00 00 00 00 00 00', 9, 'mov eax, moffs64'],
    ['c8 10 00 01', 4, 'enter'],
  ])('%s → %i bytes (%s)', (code, len) => {
    expect(instructionLength(hex(code), 0)).toBe(len);
  });

  it('refuses encodings that are not valid in 64-bit mode, and code cut mid-instruction', () => {
    expect(() => instructionLength(hex('06'), 0)).toThrow(DecodeError);
    expect(() => returnOffsets(hex('c3 48 b8 01'))).toThrow(/runs past the end|truncated/);
  });

  it('finds the end of a Go stack check, and nothing where there is none', () => {
    // cmp rsp, 0x10(r14); jbe +0x20; push rbp …
    expect(stackCheckEnd(hex('49 3b 66 10 76 20 55 48 89 e5' + ' 90'.repeat(40)))).toBe(6);
    // lea r12, -0x48(rsp); cmp r12, 0x10(r14); jbe rel32 (large frames)
    expect(stackCheckEnd(hex('4c 8d 64 24 b8 4d 3b 66 10 0f 86 10 00 00 00 55' + ' 90'.repeat(40)))).toBe(15);
    // NOSPLIT: no check
    expect(stackCheckEnd(hex('55 48 89 e5 c3'))).toBe(0);
    // a jbe with no stack check before it is not one
    expect(stackCheckEnd(hex('48 39 c8 76 02 90 90 c3'))).toBe(0);
  });

  it('finds every return, prefixed ones at their first byte', () => {
    expect(returnOffsets(hex('55 c3 90 f3 c3 c2 04 00 cc'))).toEqual([1, 3, 5]);
  });
});

describe.skipIf(
  skipWithoutGoPeers() || skipWithoutTool('objdump', ['objdump', '--version'], 'apt-get install binutils'),
)('the decoder agrees with objdump on every function of real Go binaries', () => {
  // objdump prints a line per instruction ("  addr:\tbytes\tmnemonic") and continuation lines
  // (bytes only) for long ones: instruction starts are the lines with a mnemonic
  function objdumpStarts(path: string, from: number, to: number): number[] {
    const text = execFileSync(
      'objdump',
      [
        '-d',
        '--no-show-raw-insn',
        `--start-address=0x${from.toString(16)}`,
        `--stop-address=0x${to.toString(16)}`,
        path,
      ],
      { encoding: 'utf8', maxBuffer: 1 << 30 },
    );
    const out: number[] = [];
    for (const m of text.matchAll(/^\s*([0-9a-f]+):\t(\S.*)$/gm)) out.push(Number.parseInt(m[1]!, 16));
    return out;
  }

  for (const which of ['gotls', 'gotlsOld', 'gogrpc'] as const) {
    it(`${which}: instruction boundaries of all of .text`, () => {
      const path = goPeers()[which];
      withElf(path, (elf) => {
        // boring/sig.StandardCrypto is assembly that jumps over marker bytes: data inside code,
        // which no linear decoder (objdump's included) reads as the CPU does
        const funcs = allFunctions(elf)
          .filter((f) => !f.name.startsWith('crypto/internal/boring/sig.'))
          .sort((a, b) => a.entry - b.entry);
        const text = elf.section('.text')!;
        const ours: number[] = [];
        for (const f of funcs) {
          const code = elf.readAt(f.entry, f.end - f.entry);
          for (const at of instructionStarts(code)) ours.push(f.entry + at);
        }
        // addresses ascend in both lists: walk the functions alongside
        let fi = 0;
        const inFuncs = (a: number): boolean => {
          while (fi < funcs.length && funcs[fi]!.end <= a) fi++;
          return fi < funcs.length && funcs[fi]!.entry <= a;
        };
        const theirs = objdumpStarts(
          path,
          funcs[0]!.entry,
          Math.min(funcs.at(-1)!.end, text.addr + text.size),
        ).filter(inFuncs);
        expect(ours.length).toBeGreaterThan(100_000);
        // compare as sets of addresses: the first difference names the function
        const theirSet = new Set(theirs);
        const firstBad = ours.find((a) => !theirSet.has(a));
        const bad =
          firstBad === undefined ? undefined : funcs.find((f) => f.entry <= firstBad && firstBad < f.end);
        expect(firstBad === undefined ? 'none' : `0x${firstBad.toString(16)} in ${bad?.name}`).toBe('none');
        expect(ours.length).toBe(theirs.length);
      });
    }, 120_000);
  }
});
