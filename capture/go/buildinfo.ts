/**
 * Go build information (`.go.buildinfo`): the Go version a binary was built with and its module
 * lines. Its presence is what makes a file a Go program. Layouts read:
 *   - Go 1.18+: a 32-byte header (magic, pointer size, flags with bit 1 set), then the version and
 *     the module information as two varint-prefixed strings;
 *   - older: the header is followed by two pointers to Go string headers elsewhere in the image.
 */
import { type ElfFile, PF_W, PT_LOAD } from '../elf.js';

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const FLAG_BIG_ENDIAN = 1;
const FLAG_INLINE_STRINGS = 2;

export interface GoBuildInfo {
  /** As the toolchain writes it, e.g. `go1.26.8` or `devel go1.27-abcdef`. */
  version: string;
  /** `[major, minor, patch]` when the version is a release (`go1.22.12` → [1, 22, 12]). */
  release?: [number, number, number];
  /** The `path`, `mod`, `dep` and `build` lines (empty for binaries built without modules). */
  modinfo: string;
}

function uvarint(b: Buffer, at: number): [number, number] {
  let v = 0;
  let shift = 0;
  for (let i = at; i < b.length && i < at + 10; i++) {
    const c = b[i]!;
    v += (c & 0x7f) * 2 ** shift;
    if (c < 0x80) return [v, i + 1];
    shift += 7;
  }
  return [-1, at];
}

/** Parses a version string into numbers: `go1.22.12` → [1,22,12], `go1.21rc2` → [1,21,0]. */
export function parseGoVersion(version: string): [number, number, number] | undefined {
  const m = /^go(\d+)\.(\d+)(?:\.(\d+))?/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/**
 * Where the build information starts: its section, else (a file stripped of its section headers)
 * a search of the writable segments, where the linker puts it.
 */
function locate(elf: ElfFile): Buffer | undefined {
  const s = elf.section('.go.buildinfo');
  if (s) return elf.sectionData(s);
  if (elf.sections.length > 0) return undefined;
  for (const p of elf.segments) {
    if (p.type !== PT_LOAD || !(p.flags & PF_W)) continue;
    const chunk = elf.read(p.offset, Math.min(p.filesz, 1 << 20));
    for (let at = chunk.indexOf(MAGIC); at !== -1; at = chunk.indexOf(MAGIC, at + 1)) {
      if (at % 16 === 0) return chunk.subarray(at);
    }
  }
  return undefined;
}

/** The binary's Go build information, or undefined when it is not a Go program. */
export function readBuildInfo(elf: ElfFile): GoBuildInfo | undefined {
  const b = locate(elf);
  if (!b || b.length < 32 || !b.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const ptrSize = b[14]!;
  const flags = b[15]!;
  let version: string;
  let modinfo: string;
  if (flags & FLAG_INLINE_STRINGS) {
    const [vlen, vat] = uvarint(b, 32);
    if (vlen < 0 || vat + vlen > b.length) return undefined;
    version = b.toString('utf8', vat, vat + vlen);
    const [mlen, mat] = uvarint(b, vat + vlen);
    modinfo = mlen > 0 && mat + mlen <= b.length ? b.toString('utf8', mat, mat + mlen) : '';
  } else {
    if (ptrSize !== 4 && ptrSize !== 8) return undefined;
    const big = (flags & FLAG_BIG_ENDIAN) !== 0;
    const ptr = (buf: Buffer, o: number): number =>
      ptrSize === 8
        ? Number(big ? buf.readBigUInt64BE(o) : buf.readBigUInt64LE(o))
        : big
          ? buf.readUInt32BE(o)
          : buf.readUInt32LE(o);
    const str = (at: number): string => {
      if (at === 0) return '';
      const hdr = elf.readAt(at, 2 * ptrSize);
      const data = ptr(hdr, 0);
      const len = ptr(hdr, ptrSize);
      if (len === 0 || len > 1 << 20) return '';
      return elf.readAt(data, len).toString('utf8');
    };
    try {
      version = str(ptr(b, 16));
      modinfo = str(ptr(b, 16 + ptrSize));
    } catch {
      return undefined;
    }
  }
  // module information is framed by 16 marker bytes on each side
  if (modinfo.length >= 33 && modinfo.charCodeAt(modinfo.length - 17) === 0x0a)
    modinfo = modinfo.slice(16, -16);
  const release = parseGoVersion(version);
  return { version, ...(release ? { release } : {}), modinfo };
}
