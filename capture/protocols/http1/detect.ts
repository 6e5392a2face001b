/** Recognises the first bytes of an HTTP/1.x side: a request line (client) or `HTTP/1.` (server). */
import type { Side } from '../types.js';

const STATUS = 'HTTP/1.';
const MAX_METHOD = 20;

export function detectHttp1(first: Uint8Array, side: Side): 'match' | 'no' | 'more' {
  if (side === 'server') {
    const n = Math.min(first.length, STATUS.length);
    for (let i = 0; i < n; i++) if (first[i] !== STATUS.charCodeAt(i)) return 'no';
    if (first.length < STATUS.length + 1) return 'more';
    const d = first[STATUS.length]!;
    return d >= 0x30 && d <= 0x39 ? 'match' : 'no';
  }
  // Method: upper-case letters, '-' or '_' (extension methods), then one space and a target.
  let i = 0;
  for (; i < first.length && i <= MAX_METHOD; i++) {
    const c = first[i]!;
    if (c === 0x20) break;
    if (!((c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x5f)) return 'no';
  }
  if (i >= first.length) return i > MAX_METHOD ? 'no' : 'more';
  if (i === 0 || i > MAX_METHOD) return 'no';
  // `PRI * HTTP/2.0` is the HTTP/2 preface, not an HTTP/1 request.
  if (i === 3 && first[0] === 0x50 && first[1] === 0x52 && first[2] === 0x49) return 'no';
  if (i + 1 >= first.length) return 'more';
  const t = first[i + 1]!;
  // origin-form `/`, asterisk-form `*`, absolute-form `http:`, authority-form `host:port`.
  if (
    t === 0x2f ||
    t === 0x2a ||
    (t >= 0x61 && t <= 0x7a) ||
    (t >= 0x41 && t <= 0x5a) ||
    (t >= 0x30 && t <= 0x39) ||
    t === 0x5b
  ) {
    return 'match';
  }
  return 'no';
}
