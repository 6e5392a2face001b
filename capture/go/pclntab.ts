/**
 * Functions of a Go binary from its `.gopclntab` (the runtime's own function table, which stays
 * when `-ldflags=-s -w` strips the symbol table and DWARF). Layouts of Go 1.18 and later:
 *
 *   header: magic u32 (0xfffffff0 Go 1.18–1.19, 0xfffffff1 Go 1.20+), 2 zero bytes, instruction
 *           quantum u8, pointer size u8, then pointer-sized: nfunc, nfiles, textStart,
 *           funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset
 *   functab at pclnOffset: nfunc+1 pairs {entryOff u32 (from textStart), funcOff u32 (from functab)};
 *           the last entry is the end of the text
 *   _func at functab+funcOff: entryOff u32, nameOff i32 (into the name table at funcnameOffset)
 *
 * textStart is taken from the `.text` section when there is one: in position-independent binaries
 * the header's copy is filled in by a relocation at load time.
 */
import type { ElfFile } from '../elf.js';

export const PCLNTAB_MAGIC_118 = 0xfffffff0;
export const PCLNTAB_MAGIC_120 = 0xfffffff1;
const PCLNTAB_MAGIC_116 = 0xfffffffa;

export interface GoFunc {
  name: string;
  /** Virtual address of the first instruction. */
  entry: number;
  /** Virtual address just past the function (the next function's entry; padding included). */
  end: number;
}

export class PclntabError extends Error {
  override name = 'PclntabError';
}

/** Locates the table: its section (`.gopclntab`, or the relro copy of PIE builds). */
export function pclntabSection(elf: ElfFile) {
  return elf.section('.gopclntab') ?? elf.section('.data.rel.ro.gopclntab');
}

/**
 * The functions named in `names`, found by walking the function table once. Throws PclntabError
 * when the table is missing or of a layout this reader does not know.
 */
export function findFunctions(elf: ElfFile, names: readonly string[]): Map<string, GoFunc> {
  const sect = pclntabSection(elf);
  if (!sect) throw new PclntabError('no .gopclntab section');
  const t = elf.sectionData(sect);
  if (t.length < 72) throw new PclntabError('.gopclntab is truncated');
  const magic = t.readUInt32LE(0);
  if (magic === PCLNTAB_MAGIC_116)
    throw new PclntabError('the function table of Go 1.16/1.17 is not supported (Go 1.18 or newer)');
  if (magic !== PCLNTAB_MAGIC_118 && magic !== PCLNTAB_MAGIC_120)
    throw new PclntabError(`unknown .gopclntab magic 0x${magic.toString(16)}`);
  const ptrSize = t[7]!;
  if (ptrSize !== 8) throw new PclntabError(`pointer size ${ptrSize}: only 64-bit binaries are supported`);
  const word = (i: number): number => Number(t.readBigUInt64LE(8 + i * 8));
  const nfunc = word(0);
  const headerText = word(2);
  const funcnameOffset = word(3);
  const pclnOffset = word(7);
  const textStart = elf.section('.text')?.addr ?? headerText;
  if (pclnOffset + (nfunc + 1) * 8 > t.length || nfunc <= 0)
    throw new PclntabError(`.gopclntab: ${nfunc} functions do not fit the table`);

  const wanted = new Map<string, Buffer>(names.map((n) => [n, Buffer.from(n, 'utf8')]));
  const found = new Map<string, GoFunc>();
  for (let i = 0; i < nfunc && found.size < wanted.size; i++) {
    const at = pclnOffset + i * 8;
    const funcOff = t.readUInt32LE(at + 4);
    const fn = pclnOffset + funcOff;
    if (fn + 8 > t.length) continue;
    const nameAt = funcnameOffset + t.readInt32LE(fn + 4);
    for (const [name, bytes] of wanted) {
      if (found.has(name)) continue;
      if (
        t[nameAt + bytes.length] !== 0 ||
        t.compare(bytes, 0, bytes.length, nameAt, nameAt + bytes.length) !== 0
      )
        continue;
      found.set(name, {
        name,
        entry: textStart + t.readUInt32LE(at),
        end: textStart + t.readUInt32LE(at + 8),
      });
    }
  }
  return found;
}

/** Every function of the table (tests compare it with the symbol table). */
export function allFunctions(elf: ElfFile): GoFunc[] {
  const sect = pclntabSection(elf);
  if (!sect) throw new PclntabError('no .gopclntab section');
  const t = elf.sectionData(sect);
  const word = (i: number): number => Number(t.readBigUInt64LE(8 + i * 8));
  const nfunc = word(0);
  const funcnameOffset = word(3);
  const pclnOffset = word(7);
  const textStart = elf.section('.text')?.addr ?? word(2);
  const out: GoFunc[] = [];
  for (let i = 0; i < nfunc; i++) {
    const at = pclnOffset + i * 8;
    const fn = pclnOffset + t.readUInt32LE(at + 4);
    const nameAt = funcnameOffset + t.readInt32LE(fn + 4);
    const end = t.indexOf(0, nameAt);
    out.push({
      name: t.toString('utf8', nameAt, end),
      entry: textStart + t.readUInt32LE(at),
      end: textStart + t.readUInt32LE(at + 8),
    });
  }
  return out;
}
