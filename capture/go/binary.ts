/**
 * Looks at a Go program and says where the crypto/tls probes go, or why they cannot:
 *   functions: `.symtab` when present, else `.gopclntab` (stripped builds keep it);
 *   return instructions: decoded from the functions' machine code (amd64);
 *   struct offsets: DWARF when present, else the table by the Go version in the build information.
 */

import type { NativeGoTlsSpec } from '../../native/retap_native.js';
import { type ElfFile, EM_AARCH64, EM_X86_64 } from '../elf.js';
import { type GoBuildInfo, readBuildInfo } from './buildinfo.js';
import { DwarfError, structOffsets } from './dwarf.js';
import { type GoLayout, LAYOUT_STRUCTS, layoutFromDwarf, layoutFromTable, tableRange } from './layout.js';
import { findFunctions, type GoFunc, PclntabError } from './pclntab.js';
import { DecodeError, returnOffsets, stackCheckEnd } from './x86.js';

export const GO_TLS_READ = 'crypto/tls.(*Conn).Read';
export const GO_TLS_WRITE = 'crypto/tls.(*Conn).Write';
const FUNCS = [GO_TLS_READ, GO_TLS_WRITE] as const;
/** A function larger than this is not plausible for Read/Write: the table or symbol is wrong. */
const MAX_FUNC_BYTES = 64 * 1024;

export interface GoTlsPlan {
  goVersion: string;
  symbolsFrom: 'symtab' | 'pclntab';
  offsetsFrom: 'dwarf' | 'table';
  layout: GoLayout;
  /** What the addon attaches (file offsets). */
  spec: NativeGoTlsSpec;
}

export type GoInspection =
  | { kind: 'not-go' }
  /** A Go program that does not use crypto/tls connections: nothing to attach. */
  | { kind: 'no-tls'; goVersion: string }
  | { kind: 'unsupported'; goVersion: string; reason: string }
  | { kind: 'ok'; plan: GoTlsPlan };

function locateFunctions(elf: ElfFile): { funcs: Map<string, GoFunc>; from: 'symtab' | 'pclntab' } {
  const want = new Set<string>(FUNCS);
  const syms = elf.symbols('symtab', (n) => want.has(n));
  const funcs = new Map<string, GoFunc>();
  for (const s of syms) {
    if (s.defined && s.size > 0) funcs.set(s.name, { name: s.name, entry: s.value, end: s.value + s.size });
  }
  if (funcs.size === FUNCS.length) return { funcs, from: 'symtab' };
  return { funcs: findFunctions(elf, FUNCS), from: 'pclntab' };
}

function chooseLayout(
  elf: ElfFile,
  info: GoBuildInfo,
): { layout: GoLayout; from: 'dwarf' | 'table' } | { reason: string } {
  let why = 'no DWARF';
  if (elf.debugSection('.debug_info')) {
    try {
      const l = layoutFromDwarf(structOffsets(elf, LAYOUT_STRUCTS, (n) => n === 'runtime'));
      if (!('missing' in l)) return { layout: l, from: 'dwarf' };
      why = `DWARF lacks ${l.missing.join(', ')}`;
    } catch (e) {
      if (
        !(e instanceof DwarfError) &&
        !(e instanceof RangeError) &&
        !(e as { code?: string }).code?.startsWith('Z_')
      )
        throw e;
      why = `DWARF unreadable (${(e as Error).message})`;
    }
  }
  const fromTable = info.release ? layoutFromTable(info.release) : undefined;
  if (fromTable) return { layout: fromTable, from: 'table' };
  const { oldest, newest } = tableRange();
  return {
    reason: `${why}, and the offset table (Go ${oldest} to ${newest}) has no row for ${info.version}; rebuild it with ci/go-layouts/generate.mjs`,
  };
}

/** What to attach to a Go program, or why not. Throws only for I/O errors of the file itself. */
export function inspectGoBinary(elf: ElfFile): GoInspection {
  const info = readBuildInfo(elf);
  if (!info) return { kind: 'not-go' };
  const goVersion = info.version;
  const unsupported = (reason: string): GoInspection => ({ kind: 'unsupported', goVersion, reason });
  if (elf.machine !== EM_X86_64) {
    const arch = elf.machine === EM_AARCH64 ? 'arm64' : `ELF machine ${elf.machine}`;
    return unsupported(`Go TLS capture supports amd64 only (this binary is ${arch})`);
  }
  if (info.release && (info.release[0] < 1 || (info.release[0] === 1 && info.release[1] < 17)))
    return unsupported(
      `${goVersion} passes arguments on the stack; Go 1.17 or newer is needed (register ABI)`,
    );

  let located: ReturnType<typeof locateFunctions>;
  try {
    located = locateFunctions(elf);
  } catch (e) {
    if (e instanceof PclntabError) return unsupported(`no symbol table, and ${e.message}`);
    throw e;
  }
  const { funcs, from } = located;
  if (funcs.size === 0) return { kind: 'no-tls', goVersion };
  const missing = FUNCS.filter((f) => !funcs.has(f));
  if (missing.length) return unsupported(`${missing.join(' and ')} not found (${from})`);

  const chosen = chooseLayout(elf, info);
  if ('reason' in chosen) return unsupported(chosen.reason);

  const entries: Record<string, number> = {};
  const readReturns: number[] = [];
  for (const f of funcs.values()) {
    const size = f.end - f.entry;
    if (size <= 0 || size > MAX_FUNC_BYTES)
      return unsupported(`${f.name} has an implausible size (${size} bytes)`);
    const entry = elf.fileOffset(f.entry);
    if (entry === undefined)
      return unsupported(`${f.name} at 0x${f.entry.toString(16)} is in no loadable segment`);
    let rets: number[];
    let body: number;
    try {
      const code = elf.readAt(f.entry, size);
      rets = returnOffsets(code);
      body = stackCheckEnd(code);
    } catch (e) {
      if (e instanceof DecodeError) return unsupported(`cannot decode ${f.name}: ${e.message}`);
      throw e;
    }
    if (rets.length === 0) return unsupported(`${f.name} has no return instruction`);
    // past the stack check: morestack restarts a function from its first instruction, so a probe
    // there would record a Write twice whenever the goroutine's stack grows
    entries[f.name] = entry + body;
    // Write's plaintext is recorded at its entry (bpf/retap.bpf.c says why); Read's at its returns
    if (f.name === GO_TLS_READ) for (const r of rets) readReturns.push(entry + r);
  }
  return {
    kind: 'ok',
    plan: {
      goVersion,
      symbolsFrom: from,
      offsetsFrom: chosen.from,
      layout: chosen.layout,
      spec: {
        layout: chosen.layout,
        readEntry: [entries[GO_TLS_READ]!],
        writeEntry: [entries[GO_TLS_WRITE]!],
        readReturns,
      },
    },
  };
}
