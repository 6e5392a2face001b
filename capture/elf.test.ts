/**
 * The ELF reader on real files: the `node` running this test (a large PIE with OpenSSL linked in
 * and its SSL functions exported) and files that are not ELF or are cut short. Go binaries are
 * read in capture/go/binary.test.ts.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { definedFunctions, ElfError, ElfFile, EM_X86_64, PF_X, PT_LOAD, withElf } from './elf.js';

const dir = mkdtempSync(join(tmpdir(), 'retap-elf-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The first `n` bytes of a file, read without the ELF reader. */
function head(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(n);
    return b.subarray(0, readSync(fd, b, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

describe('ELF reader', () => {
  it("reads node's headers, sections and loadable segments", () => {
    withElf(process.execPath, (elf) => {
      expect(elf.is64).toBe(true);
      expect(elf.littleEndian).toBe(true);
      if (process.arch === 'x64') expect(elf.machine).toBe(EM_X86_64);
      expect(elf.section('.dynsym')).toBeDefined();
      expect(elf.section('.text')).toBeDefined();
      expect(elf.segments.some((p) => p.type === PT_LOAD && (p.flags & PF_X) !== 0)).toBe(true);
    });
  });

  it('finds the exported SSL functions, and only those asked for', () => {
    const found = definedFunctions(process.execPath, ['SSL_read', 'SSL_write', 'no_such_symbol_here']);
    expect([...found].sort()).toEqual(['SSL_read', 'SSL_write']);
  });

  it("a function's address leads to the same bytes as its file offset", () => {
    withElf(process.execPath, (elf) => {
      const [sym] = elf.symbols('dynsym', (n) => n === 'SSL_read');
      expect(sym?.defined).toBe(true);
      const off = elf.fileOffset(sym!.value);
      expect(off).toBeGreaterThan(0);
      expect(elf.readAt(sym!.value, 16)).toEqual(elf.read(off!, 16));
      expect(elf.segmentOf(sym!.value)!.flags & PF_X).toBe(PF_X);
      expect(() => elf.readAt(2 ** 50, 4)).toThrow(/is in no segment/);
    });
  });

  it('refuses a file that is not ELF', () => {
    const path = join(dir, 'not-elf');
    writeFileSync(path, Buffer.alloc(128, 0x41));
    expect(() => definedFunctions(path, ['SSL_read'])).toThrow(ElfError);
    expect(() => definedFunctions(path, ['SSL_read'])).toThrow(/is not an ELF file/);
  });

  it('refuses a file cut short inside its headers, and says which', () => {
    // node's ELF header with everything after it missing: the program headers it points at are gone
    const path = join(dir, 'truncated');
    writeFileSync(path, head(process.execPath, 64));
    expect(() => ElfFile.open(path)).toThrow(/truncated ELF file \(program headers\)/);
  });

  it('passes the error of a file it cannot open', () => {
    expect(() => definedFunctions(join(dir, 'missing'), ['SSL_read'])).toThrow(/ENOENT/);
  });
});
