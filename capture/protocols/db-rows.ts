/**
 * Result rows as the wire sent them. While a result streams in, its decoder copies each row
 * message into one growing store per connection (a length and the bytes: one copy, no value made).
 * When the result ends it gets its `rows`: a small result at once, a large one as a property that
 * turns the bytes into JSON values the first time something reads it — the snapshot writer, a
 * mock, a comparison — and is a plain data property from then on. So decoding a large result
 * costs a copy of its bytes, and a reader never sees the difference (JSON.stringify, spread,
 * Object.keys and structured clone all read the property).
 */
import type { DbResult, DbValue } from '../../core/db.js';

/** Results whose row bytes are below this are decoded at once (a lazy property costs ~0.5 µs). */
export const LAZY_ROWS_MIN_BYTES = 2048;
const SLAB = 64 * 1024;

/**
 * The rows of the result being read on one connection, as the wire framed them (PostgreSQL
 * DataRow messages, MySQL row packets with their headers). Rows that follow each other in the
 * stream are copied together: a row is noted as a range of the decoder's buffer and the range is
 * copied when the next row is not adjacent, or when the push ends (`flush`: the caller's memory
 * may be reused after it). Rows of earlier results stay valid: a result's rows are a view of the
 * store's memory, and later rows go after them (or into a new slab).
 */
export class RowStore {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private pos = 0;
  /** Rows noted but not copied yet: src[from, to). */
  private src: Buffer | undefined;
  private from = 0;
  private to = 0;
  /** Rows added since the last take(). */
  count = 0;

  /** Bytes held for the current result. */
  get bytes(): number {
    return this.pos - this.start + (this.to - this.from);
  }

  /** Adds one row: the wire bytes src[s, e), header included. */
  add(src: Buffer, s: number, e: number): void {
    this.count++;
    if (src === this.src && s === this.to) {
      this.to = e;
      return;
    }
    this.flush();
    this.src = src;
    this.from = s;
    this.to = e;
  }

  /** Copies the rows noted so far (call before the noted memory may change). */
  flush(): void {
    const src = this.src;
    if (!src) return;
    this.src = undefined;
    const n = this.to - this.from;
    if (this.pos + n > this.buf.length) this.grow(n);
    if (n > 96) this.pos += src.copy(this.buf, this.pos, this.from, this.to);
    else {
      // a short copy costs less here than through Buffer#copy
      const b = this.buf;
      let p = this.pos;
      for (let i = this.from; i < this.to; i++) b[p++] = src[i]!;
      this.pos = p;
    }
  }

  /** The rows added since the last take() (a view), and starts the next result. */
  take(): Buffer {
    this.flush();
    const v = this.buf.subarray(this.start, this.pos);
    this.start = this.pos;
    this.count = 0;
    return v;
  }

  private grow(n: number): void {
    const held = this.pos - this.start;
    const next = Buffer.allocUnsafe(Math.max(SLAB, (held + n) * 2));
    if (held > 0) this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = held;
  }
}

/** Turns one result's row bytes (as RowStore kept them) into rows. */
export type RowDecoder<C> = (bytes: Buffer, ctx: C) => DbValue[][];

interface Pending {
  bytes: Buffer;
  decode: RowDecoder<unknown>;
  ctx: unknown;
  count: number;
}

const pending = new WeakMap<object, Pending>();

function settle(r: object, rows: DbValue[][]): void {
  pending.delete(r);
  Object.defineProperty(r, 'rows', { value: rows, writable: true, enumerable: true, configurable: true });
}

const LAZY: PropertyDescriptor = {
  get(this: DbResult): DbValue[][] {
    const p = pending.get(this);
    const rows = p ? p.decode(p.bytes, p.ctx) : [];
    settle(this, rows);
    return rows;
  },
  set(this: DbResult, rows: DbValue[][]): void {
    settle(this, rows);
  },
  enumerable: true,
  configurable: true,
};

/** Gives `r` the rows held in `bytes` (RowStore.take): decoded now when small, on first read when large. */
export function setRows<C>(r: DbResult, bytes: Buffer, count: number, decode: RowDecoder<C>, ctx: C): void {
  if (bytes.length < LAZY_ROWS_MIN_BYTES) {
    r.rows = count === 0 ? [] : decode(bytes, ctx);
    return;
  }
  pending.set(r, { bytes, decode: decode as RowDecoder<unknown>, ctx, count });
  Object.defineProperty(r, 'rows', LAZY);
}

/** Rows a result holds, without decoding them (undefined: no row set). */
export function rowsHeld(r: DbResult): number | undefined {
  const p = pending.get(r);
  if (p) return p.count;
  return r.rows?.length;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const CONTROL = /[\u0000-\u0008\u000b\u000e-\u001f\u007f]/;

/**
 * Cell text: printable ASCII as a latin1 string (the usual case, no decoder), valid UTF-8 without
 * control characters as text, anything else base64 — the same rule as bytesValue (core/db.ts).
 */
export function textValue(buf: Buffer, s: number, e: number): DbValue {
  if (s >= e) return '';
  for (let i = s; i < e; i++) {
    const c = buf[i]!;
    if (c < 0x20 ? c !== 9 && c !== 10 && c !== 13 && c !== 12 : c >= 0x7f) return slowValue(buf, s, e);
  }
  return latin1(buf, s, e);
}

/** A latin1 string of buf[s, e): short ones built here, longer ones by the binding (its call costs more than a few characters). */
export function latin1(buf: Buffer, s: number, e: number): string {
  if (e - s <= 12) {
    let out = '';
    for (let i = s; i < e; i++) out += String.fromCharCode(buf[i]!);
    return out;
  }
  return latin1Slice ? latin1Slice.call(buf, s, e) : buf.toString('latin1', s, e);
}

/** Buffer#latin1Slice: what toString('latin1') calls after checking its arguments (undocumented, so guarded). */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (s: number, e: number) => string })
  .latin1Slice;

function slowValue(buf: Buffer, s: number, e: number): DbValue {
  try {
    const t = utf8.decode(buf.subarray(s, e));
    if (!CONTROL.test(t)) return t;
  } catch {
    /* binary */
  }
  return { b64: buf.toString('base64', s, e) };
}
