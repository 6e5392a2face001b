/**
 * The one ELF reader of the project: headers, sections (compressed ones inflated), program headers,
 * symbol tables, and reads by virtual address. It reads only what it is asked for, so looking at a
 * 100 MB `node` executable costs a few small reads. Used by the TLS probes (which functions a file
 * defines, Go binaries) and by `retap doctor`.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const SHT_NOBITS = 8;
const SHF_COMPRESSED = 0x800;
/** Program header type of a loadable segment, and its execute and write flags. */
export const PT_LOAD = 1;
export const PF_X = 1;
export const PF_W = 2;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
/** Nothing one section read may exceed (a corrupt size must not allocate gigabytes). */
const MAX_READ = 512 * 1024 * 1024;

export class ElfError extends Error {
  override name = 'ElfError';
}

export interface ElfSection {
  name: string;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export interface ElfSegment {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  /** STT_* (2 function, 10 indirect function, 1 object…). */
  type: number;
  /** Defined in this file (section index not UNDEF). */
  defined: boolean;
}

export class ElfFile {
  readonly is64: boolean;
  readonly littleEndian: boolean;
  /** e_machine: 62 x86-64, 183 AArch64. */
  readonly machine: number;
  /** e_type: 2 executable, 3 shared object / PIE. */
  readonly type: number;
  readonly sections: ElfSection[] = [];
  readonly segments: ElfSegment[] = [];
  private fd: number;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
    const eh = this.read(0, 64);
    if (eh.length < 52 || eh.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(`${path} is not an ELF file`);
    this.is64 = eh[4] === 2;
    this.littleEndian = eh[5] === 1;
    this.type = this.u16(eh, 0x10);
    this.machine = this.u16(eh, 0x12);
    const phoff = this.addr(eh, this.is64 ? 0x20 : 0x1c);
    const shoff = this.addr(eh, this.is64 ? 0x28 : 0x20);
    const phentsize = this.u16(eh, this.is64 ? 0x36 : 0x2a);
    const phnum = this.u16(eh, this.is64 ? 0x38 : 0x2c);
    const shentsize = this.u16(eh, this.is64 ? 0x3a : 0x2e);
    const shnum = this.u16(eh, this.is64 ? 0x3c : 0x30);
    const shstrndx = this.u16(eh, this.is64 ? 0x3e : 0x32);
    if (phoff && phnum && phentsize >= (this.is64 ? 56 : 32)) {
      const ph = this.readExact(phoff, phentsize * phnum, 'program headers');
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        this.segments.push(
          this.is64
            ? {
                type: this.u32(ph, o),
                flags: this.u32(ph, o + 4),
                offset: this.addr(ph, o + 8),
                vaddr: this.addr(ph, o + 16),
                filesz: this.addr(ph, o + 32),
                memsz: this.addr(ph, o + 40),
              }
            : {
                type: this.u32(ph, o),
                offset: this.u32(ph, o + 4),
                vaddr: this.u32(ph, o + 8),
                filesz: this.u32(ph, o + 16),
                memsz: this.u32(ph, o + 20),
                flags: this.u32(ph, o + 24),
              },
        );
      }
    }
    if (shoff && shnum && shentsize >= (this.is64 ? 64 : 40)) {
      if (shnum > 65280) throw new ElfError(`${path}: ${shnum} section headers is not plausible`);
      const sh = this.readExact(shoff, shentsize * shnum, 'section headers');
      const raw: Array<ElfSection & { nameOff: number }> = [];
      for (let i = 0; i < shnum; i++) {
        const o = i * shentsize;
        const w = this.is64 ? 8 : 4;
        raw.push({
          nameOff: this.u32(sh, o),
          name: '',
          type: this.u32(sh, o + 4),
          flags: this.addr(sh, o + 8),
          addr: this.addr(sh, o + 8 + w),
          offset: this.addr(sh, o + 8 + 2 * w),
          size: this.addr(sh, o + 8 + 3 * w),
          link: this.u32(sh, o + 8 + 4 * w),
          entsize: this.addr(sh, o + 16 + 5 * w),
        });
      }
      const names = raw[shstrndx];
      const strs = names ? this.readExact(names.offset, names.size, 'section names') : Buffer.alloc(0);
      for (const s of raw) {
        const { nameOff, ...section } = s;
        section.name = cstring(strs, nameOff);
        this.sections.push(section);
      }
    }
  }

  /** Opens `path`; throws ElfError when it is not ELF, or the OS error when it cannot be read. */
  static open(path: string): ElfFile {
    const fd = openSync(path, 'r');
    try {
      return new ElfFile(path, fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Up to `length` bytes at `offset` (fewer at the end of the file). */
  read(offset: number, length: number): Buffer {
    if (length > MAX_READ) throw new ElfError(`${this.path}: a read of ${length} bytes is not plausible`);
    const buf = Buffer.alloc(length);
    const n = readSync(this.fd, buf, 0, length, offset);
    return n === length ? buf : buf.subarray(0, n);
  }

  private readExact(offset: number, length: number, what: string): Buffer {
    const b = this.read(offset, length);
    if (b.length !== length) throw new ElfError(`${this.path}: truncated ELF file (${what})`);
    return b;
  }

  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** A DWARF section by its `.debug_*` name, or its `.zdebug_*` form (sectionData inflates both). */
  debugSection(name: string): ElfSection | undefined {
    return this.section(name) ?? this.section(`.z${name.slice(1)}`);
  }

  /**
   * A section's bytes, inflated when compressed: SHF_COMPRESSED (zlib; Go 1.20+ and GCC write DWARF
   * so) or the older `.zdebug_*` form ("ZLIB", big-endian size, zlib stream; Go up to 1.19).
   */
  sectionData(s: ElfSection): Buffer {
    if (s.type === SHT_NOBITS) return Buffer.alloc(0);
    const raw = this.readExact(s.offset, s.size, s.name);
    if (s.name.startsWith('.zdebug') && raw.length >= 12 && raw.toString('latin1', 0, 4) === 'ZLIB')
      return inflateSync(raw.subarray(12));
    if (!(s.flags & SHF_COMPRESSED)) return raw;
    const chdr = this.is64 ? 24 : 12;
    if (raw.length < chdr) throw new ElfError(`${this.path}: ${s.name}: bad compression header`);
    const kind = this.u32(raw, 0);
    if (kind !== 1)
      throw new ElfError(
        `${this.path}: ${s.name} is compressed with ${kind === 2 ? 'zstd' : `type ${kind}`}, not zlib`,
      );
    return inflateSync(raw.subarray(chdr));
  }

  /** The loadable segment holding `vaddr`, preferring an executable one. */
  segmentOf(vaddr: number): ElfSegment | undefined {
    let found: ElfSegment | undefined;
    for (const p of this.segments) {
      if (p.type !== PT_LOAD || vaddr < p.vaddr || vaddr >= p.vaddr + p.filesz) continue;
      if (!found || p.flags & PF_X) found = p;
    }
    return found;
  }

  /** File offset of a virtual address (what a uprobe is attached at), or undefined. */
  fileOffset(vaddr: number): number | undefined {
    const p = this.segmentOf(vaddr);
    return p ? vaddr - p.vaddr + p.offset : undefined;
  }

  /** Bytes at a virtual address (from the file image of its segment). */
  readAt(vaddr: number, length: number): Buffer {
    const off = this.fileOffset(vaddr);
    if (off === undefined)
      throw new ElfError(`${this.path}: address 0x${vaddr.toString(16)} is in no segment`);
    return this.readExact(off, length, `0x${vaddr.toString(16)}`);
  }

  /**
   * Symbols of `.symtab` or `.dynsym` (an empty list when the table is absent, e.g. stripped).
   * `want` filters by name before a symbol object is made, so large tables stay cheap.
   */
  symbols(table: 'symtab' | 'dynsym', want?: (name: string) => boolean): ElfSymbol[] {
    const type = table === 'symtab' ? SHT_SYMTAB : SHT_DYNSYM;
    const tab = this.sections.find((s) => s.type === type);
    if (!tab) return [];
    const strtab = this.sections[tab.link];
    if (!strtab) throw new ElfError(`${this.path}: ${tab.name} names no string table`);
    const syms = this.readExact(tab.offset, tab.size, tab.name);
    const strs = this.readExact(strtab.offset, strtab.size, strtab.name);
    const out: ElfSymbol[] = [];
    const entsize = this.is64 ? 24 : 16;
    for (let o = 0; o + entsize <= syms.length; o += entsize) {
      const name = cstring(strs, this.u32(syms, o));
      if (want && !want(name)) continue;
      const info = syms[o + (this.is64 ? 4 : 12)]!;
      const shndx = this.u16(syms, o + (this.is64 ? 6 : 14));
      out.push({
        name,
        value: this.is64 ? this.addr(syms, o + 8) : this.u32(syms, o + 4),
        size: this.is64 ? this.addr(syms, o + 16) : this.u32(syms, o + 8),
        type: info & 0xf,
        defined: shndx !== 0,
      });
    }
    return out;
  }

  u16(b: Buffer, o: number): number {
    return this.littleEndian ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }

  u32(b: Buffer, o: number): number {
    return this.littleEndian ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }

  /** A pointer-sized (or 64-bit) field; addresses above 2^53 do not occur in user space. */
  u64(b: Buffer, o: number): number {
    return Number(this.littleEndian ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  }

  private addr(b: Buffer, o: number): number {
    return this.is64 ? this.u64(b, o) : this.u32(b, o);
  }
}

function cstring(b: Buffer, at: number): string {
  if (at >= b.length) return '';
  const end = b.indexOf(0, at);
  return b.toString('latin1', at, end === -1 ? b.length : end);
}

/** Runs `fn` on an opened ELF file and closes it. */
export function withElf<T>(path: string, fn: (elf: ElfFile) => T): T {
  const elf = ElfFile.open(path);
  try {
    return fn(elf);
  } finally {
    elf.close();
  }
}

/**
 * Which of `wanted` the file defines as functions in its dynamic symbol table (what a uprobe can be
 * attached to by name). Throws when the file cannot be read or is not ELF.
 */
export function definedFunctions(path: string, wanted: readonly string[]): Set<string> {
  return withElf(path, (elf) => definedFunctionsOf(elf, wanted));
}

/** definedFunctions of a file already open. */
export function definedFunctionsOf(elf: ElfFile, wanted: readonly string[]): Set<string> {
  const want = new Set(wanted);
  const found = new Set<string>();
  for (const s of elf.symbols('dynsym', (n) => want.has(n)))
    if (s.defined && (s.type === STT_FUNC || s.type === STT_GNU_IFUNC)) found.add(s.name);
  return found;
}
