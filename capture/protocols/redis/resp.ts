/**
 * RESP2/RESP3 values: an incremental parser over a byte range (a value that is not complete yet
 * says how many bytes it needs at least, so a large bulk string is not re-parsed on every push)
 * and the encoder the Redis mock answers with.
 */
import type { DbResp } from '../../../core/db.js';
import { latin1, textValue } from '../db-rows.js';

export const NEED = -1;
export const BAD = -2;

export interface Parsed {
  value: DbResp;
  /** Offset just past the value. */
  next: number;
}

const MAX_DEPTH = 64;
const MAX_LINE = 64 * 1024;

/** Position of `\r\n` from `i`, or -1. */
function crlf(b: Buffer, i: number, end: number): number {
  const at = b.indexOf(13, i);
  if (at === -1 || at + 1 >= end) return -1;
  return b[at + 1] === 10 ? at : -2;
}

function parseIntAt(b: Buffer, i: number, e: number): number | undefined {
  let neg = false;
  if (i < e && b[i] === 0x2d) {
    neg = true;
    i++;
  }
  if (i >= e) return undefined;
  let n = 0;
  for (; i < e; i++) {
    const c = b[i]! - 48;
    if (c < 0 || c > 9) return undefined;
    n = n * 10 + c;
  }
  return neg ? -n : n;
}

export interface ParseState {
  /** Set when the value is incomplete: the least number of bytes (from the value's start) needed. */
  need: number;
  /** Set when a value parsed: the offset just past it. */
  next?: number;
}

/** parseValue's answers for "incomplete" and "not RESP" (symbols: a value may be any number). */
export const MORE: unique symbol = Symbol('resp-more');
export const INVALID: unique symbol = Symbol('resp-invalid');

/**
 * Parses one value at [i, end). Returns the value, NEED (incomplete; `st.need` is a lower bound of
 * the bytes needed from `i`) or BAD (not RESP).
 */
export function parseResp(
  b: Buffer,
  i: number,
  end: number,
  st: ParseState,
): Parsed | typeof NEED | typeof BAD {
  const v = parseValue(b, i, end, st, 0);
  if (v === MORE) return NEED;
  if (v === INVALID) return BAD;
  return { value: v, next: st.next! };
}

/**
 * parseResp without a wrapper object per value: returns the value and sets `st.next`, or MORE /
 * INVALID.
 */
export function parseValue(
  b: Buffer,
  i: number,
  end: number,
  st: ParseState,
  depth: number,
): DbResp | typeof MORE | typeof INVALID {
  if (i >= end) {
    st.need = 1;
    return MORE;
  }
  if (depth > MAX_DEPTH) return INVALID;
  const t = b[i]!;
  const lineEnd = crlf(b, i + 1, Math.min(end, i + MAX_LINE));
  if (lineEnd === -2) return INVALID;
  if (lineEnd === -1) {
    if (end - i >= MAX_LINE) return INVALID;
    st.need = end - i + 1;
    return MORE;
  }
  const next = lineEnd + 2;
  st.next = next;
  switch (t) {
    case 0x2b: // + simple string
      return { simple: latin1(b, i + 1, lineEnd) };
    case 0x2d: // - error
      return { error: b.toString('utf8', i + 1, lineEnd) };
    case 0x3a: {
      // : integer
      const n = parseIntAt(b, i + 1, lineEnd);
      if (n === undefined) return INVALID;
      return Number.isSafeInteger(n) ? n : { int: b.toString('latin1', i + 1, lineEnd) };
    }
    case 0x5f: // _ null (RESP3)
      return lineEnd === i + 1 ? null : INVALID;
    case 0x2c: // , double
      return { double: b.toString('latin1', i + 1, lineEnd) };
    case 0x23: // # boolean
      if (lineEnd !== i + 2) return INVALID;
      return { bool: b[i + 1] === 0x74 };
    case 0x28: // ( big number
      return { big: b.toString('latin1', i + 1, lineEnd) };
    case 0x24: // $ bulk string
    case 0x21: // ! blob error
    case 0x3d: {
      // = verbatim string
      const n = parseIntAt(b, i + 1, lineEnd);
      if (n === undefined || n < -1) return INVALID;
      if (n === -1) return t === 0x24 ? null : INVALID;
      if (next + n + 2 > end) {
        st.need = next - i + n + 2;
        return MORE;
      }
      if (b[next + n] !== 13 || b[next + n + 1] !== 10) return INVALID;
      st.next = next + n + 2;
      if (t === 0x24) return textValue(b, next, next + n) as DbResp;
      if (t === 0x21) return { blobError: b.toString('utf8', next, next + n) };
      if (n < 4 || b[next + 3] !== 0x3a) return INVALID;
      return {
        verbatim: b.toString('utf8', next + 4, next + n),
        format: b.toString('latin1', next, next + 3),
      };
    }
    case 0x2a: // * array
    case 0x7e: // ~ set
    case 0x3e: // > push
    case 0x25: // % map
    case 0x7c: {
      // | attribute
      const n = parseIntAt(b, i + 1, lineEnd);
      if (n === undefined || n < -1) return INVALID;
      if (n === -1) return t === 0x2a ? { nullArray: true } : INVALID;
      const pairs = t === 0x25 || t === 0x7c;
      const count = pairs ? n * 2 : n;
      const items: DbResp[] = [];
      let at = next;
      for (let k = 0; k < count; k++) {
        const r = parseValue(b, at, end, st, depth + 1);
        if (r === INVALID) return INVALID;
        if (r === MORE) {
          st.need += at - i;
          return MORE;
        }
        items.push(r);
        at = st.next!;
      }
      st.next = at;
      if (t === 0x2a) return items;
      if (t === 0x7e) return { set: items };
      if (t === 0x3e) return { push: items };
      const kv: Array<[DbResp, DbResp]> = [];
      for (let k = 0; k < items.length; k += 2) kv.push([items[k]!, items[k + 1]!]);
      if (t === 0x25) return { map: kv };
      // an attribute precedes the value it describes
      const r = parseValue(b, at, end, st, depth + 1);
      if (r === INVALID) return INVALID;
      if (r === MORE) {
        st.need += at - i;
        return MORE;
      }
      return { attribute: kv, value: r };
    }
    default:
      return INVALID;
  }
}

/** RESP encoding of a value (what a server sent), for the mock. */
export function encodeResp(v: DbResp, out: Buffer[] = []): Buffer[] {
  const line = (s: string): void => {
    out.push(Buffer.from(`${s}\r\n`, 'utf8'));
  };
  const bulk = (prefix: string, data: Buffer): void => {
    out.push(Buffer.from(`${prefix}${data.length}\r\n`, 'latin1'), data, Buffer.from('\r\n'));
  };
  if (v === null) line('$-1');
  else if (typeof v === 'string') bulk('$', Buffer.from(v, 'utf8'));
  else if (typeof v === 'number') line(`:${v}`);
  else if (Array.isArray(v)) {
    line(`*${v.length}`);
    for (const x of v) encodeResp(x, out);
  } else if ('b64' in v) bulk('$', Buffer.from(v.b64, 'base64'));
  else if ('simple' in v) line(`+${v.simple}`);
  else if ('error' in v) line(`-${v.error}`);
  else if ('int' in v) line(`:${v.int}`);
  else if ('nullArray' in v) line('*-1');
  else if ('double' in v) line(`,${v.double}`);
  else if ('bool' in v) line(`#${v.bool ? 't' : 'f'}`);
  else if ('big' in v) line(`(${v.big}`);
  else if ('verbatim' in v) bulk('=', Buffer.from(`${v.format}:${v.verbatim}`, 'utf8'));
  else if ('blobError' in v) bulk('!', Buffer.from(v.blobError, 'utf8'));
  else if ('set' in v) {
    line(`~${v.set.length}`);
    for (const x of v.set) encodeResp(x, out);
  } else if ('push' in v) {
    line(`>${v.push.length}`);
    for (const x of v.push) encodeResp(x, out);
  } else if ('map' in v) {
    line(`%${v.map.length}`);
    for (const [k, x] of v.map) {
      encodeResp(k, out);
      encodeResp(x, out);
    }
  } else if ('attribute' in v) {
    line(`|${v.attribute.length}`);
    for (const [k, x] of v.attribute) {
      encodeResp(k, out);
      encodeResp(x, out);
    }
    encodeResp(v.value, out);
  }
  return out;
}

/** Text of a bulk/simple value (command names, channel names), undefined for other types. */
export function respText(v: DbResp | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    if ('simple' in v) return v.simple;
    if ('b64' in v) return Buffer.from(v.b64, 'base64').toString('latin1');
  }
  return undefined;
}
