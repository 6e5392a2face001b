/**
 * Just enough ELF64 reading to answer "does this binary export SSL_write?" without loading a
 * 100 MB `node` executable: section headers, then .dynsym and .dynstr only.
 */
import { closeSync, openSync, readSync } from 'node:fs';

function read(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, offset);
  return n === length ? buf : buf.subarray(0, n);
}

/** Names from `wanted` that the file defines in its dynamic symbol table. */
export function exportedSymbols(path: string, wanted: readonly string[]): Set<string> {
  const found = new Set<string>();
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return found;
  }
  try {
    const ehdr = read(fd, 0, 64);
    if (ehdr.length < 64 || ehdr.readUInt32BE(0) !== 0x7f454c46 || ehdr[4] !== 2 || ehdr[5] !== 1)
      return found;
    const shoff = Number(ehdr.readBigUInt64LE(0x28));
    const shentsize = ehdr.readUInt16LE(0x3a);
    const shnum = ehdr.readUInt16LE(0x3c);
    if (shentsize < 64 || shnum === 0 || shnum > 4096) return found;
    const sh = read(fd, shoff, shentsize * shnum);
    const DYNSYM = 11;
    for (let i = 0; i < shnum; i++) {
      const base = i * shentsize;
      if (sh.readUInt32LE(base + 4) !== DYNSYM) continue;
      const symOff = Number(sh.readBigUInt64LE(base + 0x18));
      const symSize = Number(sh.readBigUInt64LE(base + 0x20));
      const link = sh.readUInt32LE(base + 0x28);
      const strBase = link * shentsize;
      const strOff = Number(sh.readBigUInt64LE(strBase + 0x18));
      const strSize = Number(sh.readBigUInt64LE(strBase + 0x20));
      if (symSize > 64 << 20 || strSize > 64 << 20) return found;
      const syms = read(fd, symOff, symSize);
      const strs = read(fd, strOff, strSize);
      const want = new Set(wanted);
      for (let s = 0; s + 24 <= syms.length; s += 24) {
        const shndx = syms.readUInt16LE(s + 6);
        if (shndx === 0) continue; // undefined: imported, not exported
        const nameOff = syms.readUInt32LE(s);
        const end = strs.indexOf(0, nameOff);
        const name = strs.toString('latin1', nameOff, end === -1 ? strs.length : end);
        if (want.has(name)) found.add(name);
      }
    }
    return found;
  } catch {
    return found;
  } finally {
    closeSync(fd);
  }
}
