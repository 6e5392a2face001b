/**
 * Protocol Buffers wire format without a schema: field numbers, wire types and values, with a
 * guess for length-delimited fields (printable UTF-8 → string, a clean parse → nested message,
 * else bytes as base64). 64-bit values are decimal strings so JSON keeps them exact.
 */

export type RawField =
  | { field: number; wire: 'varint'; value: string | number }
  | { field: number; wire: 'i64'; value: string }
  | { field: number; wire: 'i32'; value: number }
  | { field: number; wire: 'len'; string: string }
  | { field: number; wire: 'len'; message: RawField[] }
  | { field: number; wire: 'len'; bytes: string }
  | { field: number; wire: 'group'; message: RawField[] };

const MAX_DEPTH = 16;

/** Parses a message; undefined when the bytes are not a well-formed message. */
export function decodeRaw(buf: Uint8Array, depth = 0): RawField[] | undefined {
  const r = parseFields(buf, 0, buf.length, depth, -1);
  return r && r.pos === buf.length ? r.fields : undefined;
}

function readVarint(buf: Uint8Array, pos: number, end: number): [bigint, number] | undefined {
  let v = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return undefined;
    const b = buf[pos++]!;
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [v, pos];
    shift += 7n;
  }
  return undefined;
}

function num(v: bigint): string | number {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

function parseFields(
  buf: Uint8Array,
  pos: number,
  end: number,
  depth: number,
  group: number,
): { fields: RawField[]; pos: number } | undefined {
  const fields: RawField[] = [];
  while (pos < end) {
    const key = readVarint(buf, pos, end);
    if (!key) return undefined;
    pos = key[1];
    const field = Number(key[0] >> 3n);
    const wire = Number(key[0] & 7n);
    if (field < 1 || field > 536870911) return undefined;
    switch (wire) {
      case 0: {
        const v = readVarint(buf, pos, end);
        if (!v) return undefined;
        pos = v[1];
        fields.push({ field, wire: 'varint', value: num(v[0]) });
        break;
      }
      case 1: {
        if (pos + 8 > end) return undefined;
        const v = Buffer.from(buf.buffer, buf.byteOffset + pos, 8).readBigUInt64LE(0);
        pos += 8;
        fields.push({ field, wire: 'i64', value: v.toString() });
        break;
      }
      case 5: {
        if (pos + 4 > end) return undefined;
        const v = Buffer.from(buf.buffer, buf.byteOffset + pos, 4).readUInt32LE(0);
        pos += 4;
        fields.push({ field, wire: 'i32', value: v });
        break;
      }
      case 2: {
        const l = readVarint(buf, pos, end);
        if (!l) return undefined;
        pos = l[1];
        const n = Number(l[0]);
        if (pos + n > end) return undefined;
        fields.push(guessLen(field, buf.subarray(pos, pos + n), depth));
        pos += n;
        break;
      }
      case 3: {
        if (depth >= MAX_DEPTH) return undefined;
        const inner = parseFields(buf, pos, end, depth + 1, field);
        if (!inner) return undefined;
        pos = inner.pos;
        fields.push({ field, wire: 'group', message: inner.fields });
        break;
      }
      case 4:
        return field === group ? { fields, pos } : undefined;
      default:
        return undefined;
    }
  }
  return group === -1 ? { fields, pos } : undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function printable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c === 0x7f) return false;
  }
  return true;
}

function guessLen(field: number, bytes: Uint8Array, depth: number): RawField {
  let text: string | undefined;
  try {
    text = utf8.decode(bytes);
  } catch {
    text = undefined;
  }
  if (text !== undefined && printable(text)) return { field, wire: 'len', string: text };
  if (depth < MAX_DEPTH && bytes.length > 0) {
    const nested = decodeRaw(bytes, depth + 1);
    if (nested) return { field, wire: 'len', message: nested };
  }
  return { field, wire: 'len', bytes: Buffer.from(bytes).toString('base64') };
}
