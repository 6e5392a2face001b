/**
 * Struct member offsets from DWARF (versions 2–5, as Go writes them: zlib-compressed sections,
 * DWARF 4 up to Go 1.24, DWARF 5 from Go 1.25). Only what the Go TLS probes need: the offset of
 * named members of named `DW_TAG_structure_type`s. Compile units are walked one at a time and a
 * unit is skipped as soon as it is known to hold none of the wanted types.
 */
import type { ElfFile } from '../elf.js';

const TAG_COMPILE_UNIT = 0x11;
const TAG_STRUCTURE = 0x13;
const TAG_MEMBER = 0x0d;
const AT_NAME = 0x03;
const AT_DATA_MEMBER_LOCATION = 0x38;
const AT_STR_OFFSETS_BASE = 0x72;

export class DwarfError extends Error {
  override name = 'DwarfError';
}

interface Abbrev {
  tag: number;
  children: boolean;
  attrs: Array<[attr: number, form: number, implicit: number]>;
}

class Reader {
  constructor(
    readonly b: Buffer,
    public at = 0,
  ) {}
  u8(): number {
    return this.b[this.at++]!;
  }
  /** Moves past `n` bytes (a length read first: `at += read()` would lose the read's own advance). */
  skip(n: number): void {
    this.at += n;
  }
  u16(): number {
    const v = this.b.readUInt16LE(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    const v = this.b.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  u64(): number {
    const v = Number(this.b.readBigUInt64LE(this.at));
    this.at += 8;
    return v;
  }
  uleb(): number {
    let v = 0;
    let shift = 0;
    for (;;) {
      const c = this.b[this.at++];
      if (c === undefined) throw new DwarfError('truncated LEB128');
      v += (c & 0x7f) * 2 ** shift;
      shift += 7;
      if (c < 0x80) return v;
    }
  }
  sleb(): number {
    let v = 0;
    let shift = 0;
    let c: number;
    do {
      c = this.b[this.at++] ?? 0;
      v += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c >= 0x80);
    return c & 0x40 ? v - 2 ** shift : v;
  }
  cstr(): string {
    const end = this.b.indexOf(0, this.at);
    const s = this.b.toString('utf8', this.at, end);
    this.at = end + 1;
    return s;
  }
}

function parseAbbrevs(b: Buffer, offset: number): Map<number, Abbrev> {
  const r = new Reader(b, offset);
  const out = new Map<number, Abbrev>();
  for (;;) {
    const code = r.uleb();
    if (code === 0) return out;
    const tag = r.uleb();
    const children = r.u8() === 1;
    const attrs: Abbrev['attrs'] = [];
    for (;;) {
      const attr = r.uleb();
      const form = r.uleb();
      if (attr === 0 && form === 0) break;
      attrs.push([attr, form, form === 0x21 ? r.sleb() : 0]);
    }
    out.set(code, { tag, children, attrs });
  }
}

interface Strings {
  str?: Buffer;
  lineStr?: Buffer;
  strOffsets?: Buffer;
}

function strAt(buf: Buffer | undefined, off: number): string | undefined {
  if (!buf) return undefined;
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end === -1 ? buf.length : end);
}

function strx(strings: Strings, base: number, index: number): string | undefined {
  if (!strings.strOffsets) return undefined;
  return strAt(strings.str, strings.strOffsets.readUInt32LE(base + index * 4));
}

/** Reads (or skips) one attribute value; returns numbers for constants, strings for names. */
function readForm(
  r: Reader,
  form: number,
  implicit: number,
  addrSize: number,
  strings: Strings,
  strBase: number,
): number | string | undefined {
  switch (form) {
    case 0x01: // addr
      r.at += addrSize;
      return undefined;
    case 0x03: // block2
      r.skip(r.u16());
      return undefined;
    case 0x04: // block4
      r.skip(r.u32());
      return undefined;
    case 0x05:
      return r.u16();
    case 0x06:
      return r.u32();
    case 0x07:
      return r.u64();
    case 0x08:
      return r.cstr();
    case 0x09: // block
    case 0x18: // exprloc
      r.skip(r.uleb());
      return undefined;
    case 0x0a: // block1
      r.skip(r.u8());
      return undefined;
    case 0x0b:
      return r.u8();
    case 0x0c: // flag
      r.at += 1;
      return undefined;
    case 0x0d:
      return r.sleb();
    case 0x0e: // strp
      return strAt(strings.str, r.u32());
    case 0x0f:
      return r.uleb();
    case 0x10: // ref_addr
    case 0x17: // sec_offset
    case 0x1c: // ref_sup4
    case 0x1d: // strp_sup
      r.at += 4;
      return undefined;
    case 0x11:
      r.at += 1;
      return undefined;
    case 0x12:
      r.at += 2;
      return undefined;
    case 0x13:
      r.at += 4;
      return undefined;
    case 0x14:
    case 0x20: // ref_sig8
    case 0x24: // ref_sup8
      r.at += 8;
      return undefined;
    case 0x15: // ref_udata
    case 0x1b: // addrx
    case 0x22: // loclistx
    case 0x23: // rnglistx
      r.uleb();
      return undefined;
    case 0x16: // indirect
      return readForm(r, r.uleb(), implicit, addrSize, strings, strBase);
    case 0x19: // flag_present
      return undefined;
    case 0x1a: // strx
      return strx(strings, strBase, r.uleb());
    case 0x1e: // data16
      r.at += 16;
      return undefined;
    case 0x1f: // line_strp
      return strAt(strings.lineStr, r.u32());
    case 0x21: // implicit_const
      return implicit;
    case 0x25:
      return strx(strings, strBase, r.u8());
    case 0x26:
      return strx(strings, strBase, r.u16());
    case 0x27: {
      const v = r.b.readUIntLE(r.at, 3);
      r.at += 3;
      return strx(strings, strBase, v);
    }
    case 0x28:
      return strx(strings, strBase, r.u32());
    case 0x29:
      r.at += 1;
      return undefined;
    case 0x2a:
      r.at += 2;
      return undefined;
    case 0x2b:
      r.at += 3;
      return undefined;
    case 0x2c:
      r.at += 4;
      return undefined;
    default:
      throw new DwarfError(`unknown attribute form 0x${form.toString(16)}`);
  }
}

export type StructOffsets = Map<string, Map<string, number>>;

/**
 * For each wanted struct (by DWARF name, e.g. `crypto/tls.Conn`) the offsets of its wanted members.
 * Structs or members DWARF does not have are absent from the result. Throws DwarfError when the
 * binary has no DWARF or it cannot be read.
 */
export function structOffsets(
  elf: ElfFile,
  wanted: Record<string, readonly string[]>,
  /** Compile units worth walking, by name (Go's linker puts every type in a `runtime` unit). */
  unitFilter?: (name: string) => boolean,
): StructOffsets {
  const infoSect = elf.debugSection('.debug_info');
  const abbrevSect = elf.debugSection('.debug_abbrev');
  if (!infoSect || !abbrevSect) throw new DwarfError('no DWARF (.debug_info)');
  const info = elf.sectionData(infoSect);
  const abbrevData = elf.sectionData(abbrevSect);
  const opt = (name: string): Buffer | undefined => {
    const s = elf.debugSection(name);
    return s ? elf.sectionData(s) : undefined;
  };
  const strings: Strings = {};
  const str = opt('.debug_str');
  const lineStr = opt('.debug_line_str');
  const strOffsets = opt('.debug_str_offsets');
  if (str) strings.str = str;
  if (lineStr) strings.lineStr = lineStr;
  if (strOffsets) strings.strOffsets = strOffsets;
  const out: StructOffsets = new Map();
  let remaining = Object.values(wanted).reduce((n, m) => n + m.length, 0);
  const abbrevCache = new Map<number, Map<number, Abbrev>>();

  const r = new Reader(info);
  while (r.at + 11 <= info.length && remaining > 0) {
    const unitStart = r.at;
    let unitLength = r.u32();
    let offsetSize = 4;
    if (unitLength === 0xffffffff) {
      unitLength = r.u64();
      offsetSize = 8;
    }
    const unitEnd = r.at + unitLength;
    const version = r.u16();
    let addrSize: number;
    let abbrevOffset: number;
    if (version >= 5) {
      const unitType = r.u8();
      addrSize = r.u8();
      abbrevOffset = offsetSize === 8 ? r.u64() : r.u32();
      if (unitType === 2 || unitType === 6)
        r.at += 8 + offsetSize; // type units: signature + offset
      else if (unitType === 4 || unitType === 5) r.at += 8; // skeleton / split: dwo id
    } else {
      abbrevOffset = offsetSize === 8 ? r.u64() : r.u32();
      addrSize = r.u8();
    }
    if (offsetSize === 8) throw new DwarfError('64-bit DWARF is not supported');
    if (version < 2 || version > 5) throw new DwarfError(`DWARF version ${version} is not supported`);
    let abbrevs = abbrevCache.get(abbrevOffset);
    if (!abbrevs) {
      abbrevs = parseAbbrevs(abbrevData, abbrevOffset);
      abbrevCache.set(abbrevOffset, abbrevs);
    }
    let strBase = 8;
    // walk the DIEs: track the struct we are inside (depth 1 below it = its members)
    let depth = 0;
    let inStruct: { name: string; depth: number; members: readonly string[] } | undefined;
    while (r.at < unitEnd && remaining > 0) {
      const code = r.uleb();
      if (code === 0) {
        depth--;
        if (inStruct && depth < inStruct.depth) inStruct = undefined;
        if (depth <= 0) break;
        continue;
      }
      const ab = abbrevs.get(code);
      if (!ab) throw new DwarfError(`unit at 0x${unitStart.toString(16)}: unknown abbreviation ${code}`);
      let name: string | undefined;
      let location: number | undefined;
      for (const [attr, form, implicit] of ab.attrs) {
        const v = readForm(r, form, implicit, addrSize, strings, strBase);
        if (attr === AT_NAME && typeof v === 'string') name = v;
        else if (attr === AT_DATA_MEMBER_LOCATION && typeof v === 'number') location = v;
        else if (attr === AT_STR_OFFSETS_BASE && typeof v === 'number') strBase = v;
      }
      if (ab.tag === TAG_COMPILE_UNIT && unitFilter && !unitFilter(name ?? '')) break;
      if (ab.tag === TAG_STRUCTURE && name !== undefined && wanted[name] && !out.has(name) && ab.children) {
        inStruct = { name, depth: depth + 1, members: wanted[name]! };
        out.set(name, new Map());
      } else if (
        ab.tag === TAG_MEMBER &&
        inStruct &&
        depth === inStruct.depth &&
        name !== undefined &&
        location !== undefined &&
        inStruct.members.includes(name)
      ) {
        out.get(inStruct.name)!.set(name, location);
        remaining--;
      }
      if (ab.children) depth++;
    }
    r.at = unitEnd;
  }
  return out;
}
