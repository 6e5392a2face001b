/**
 * Protocol Buffers wire format without a schema: field numbers, wire types and values, with a
 * guess for length-delimited fields (printable UTF-8 → string, a clean parse → nested message,
 * else bytes as base64). 64-bit values are decimal strings so JSON keeps them exact.
 *
 * `encodeRaw` writes a decoded list back (canonical varints); the token engine edits fields that
 * way, and only where re-encoding the untouched message gives back its bytes (`roundTrips`).
 * gRPC's length-prefixed framing (`grpcFrames`, `grpcFrame`) sits here too: capture, the replay
 * driver, assertions and transforms all cut bodies into messages.
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

function varint(out: number[], v: bigint): void {
  let x = BigInt.asUintN(64, v);
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
}

function encodeInto(fields: RawField[], out: number[]): void {
  for (const f of fields) {
    const key = (n: number): void => varint(out, (BigInt(f.field) << 3n) | BigInt(n));
    switch (f.wire) {
      case 'varint':
        key(0);
        varint(out, BigInt(f.value));
        break;
      case 'i64': {
        key(1);
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(f.value)));
        out.push(...b);
        break;
      }
      case 'i32': {
        key(5);
        const b = Buffer.alloc(4);
        b.writeUInt32LE(f.value >>> 0);
        out.push(...b);
        break;
      }
      case 'group':
        key(3);
        encodeInto(f.message, out);
        key(4);
        break;
      default: {
        key(2);
        let bytes: Uint8Array;
        if ('string' in f) bytes = Buffer.from(f.string, 'utf8');
        else if ('message' in f) bytes = encodeRaw(f.message);
        else bytes = Buffer.from(f.bytes, 'base64');
        varint(out, BigInt(bytes.length));
        for (const b of bytes) out.push(b);
      }
    }
  }
}

/** Wire bytes of a decoded field list (canonical varints, fields in list order). */
export function encodeRaw(fields: RawField[]): Uint8Array {
  const out: number[] = [];
  encodeInto(fields, out);
  return Uint8Array.from(out);
}

/** Whether `bytes` decode to fields that encode back to the same bytes (safe to edit schema-less). */
export function roundTrips(bytes: Uint8Array): RawField[] | undefined {
  const fields = decodeRaw(bytes);
  if (!fields) return undefined;
  return Buffer.from(encodeRaw(fields)).equals(Buffer.from(bytes)) ? fields : undefined;
}

/** One gRPC length-prefixed message as framed on the wire (payload still compressed when flagged). */
export interface GrpcFrame {
  compressed: boolean;
  /** Payload (a view into the body). */
  bytes: Uint8Array;
  /** Offset of the frame's first byte (its 5-byte prefix) in the body. */
  offset: number;
}

/**
 * The messages of a gRPC body in order. `rest` is the count of bytes after the last whole message
 * (a cut prefix or payload; 0 for a clean body).
 */
export function grpcFrames(body: Uint8Array, max = 1_000_000): { frames: GrpcFrame[]; rest: number } {
  const frames: GrpcFrame[] = [];
  let pos = 0;
  while (pos + 5 <= body.length && frames.length < max) {
    const length =
      ((body[pos + 1]! << 24) >>> 0) + (body[pos + 2]! << 16) + (body[pos + 3]! << 8) + body[pos + 4]!;
    if (pos + 5 + length > body.length) break;
    frames.push({
      compressed: body[pos] === 1,
      bytes: body.subarray(pos + 5, pos + 5 + length),
      offset: pos,
    });
    pos += 5 + length;
  }
  return { frames, rest: body.length - pos };
}

/** A message framed for gRPC (uncompressed flag unless `compressed`). */
export function grpcFrame(payload: Uint8Array, compressed = false): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = compressed ? 1 : 0;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

/** Decodes gRPC messages with names; `core/protos.ts` builds one from `.proto` files. */
export interface GrpcSchema {
  /**
   * One message of method `path` (`/pkg.Service/Method`) as plain JSON-able data, or undefined
   * when the schema does not know the method. May throw on bytes that do not fit the type.
   */
  decode(path: string, direction: 'request' | 'response', message: Uint8Array): unknown;
  /** Field numbers the method's message type knows (top level). */
  fields?(path: string, direction: 'request' | 'response'): ReadonlySet<number> | undefined;
  /** A decoded value written back as bytes (the token engine's named protobuf fields). */
  encode?(path: string, direction: 'request' | 'response', value: unknown): Uint8Array | undefined;
}
