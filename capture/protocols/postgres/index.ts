/** The PostgreSQL decoder as registered in the protocol registry. */
import type { ProtocolDecoder, Side } from '../types.js';
import { CANCEL_REQUEST, GSSENC_REQUEST, PostgresDecoder, SSL_REQUEST } from './decoder.js';

export {
  CANCEL_REQUEST,
  GSSENC_REQUEST,
  PostgresDecoder,
  PROTOCOL_3,
  SSL_REQUEST,
  textValue,
} from './decoder.js';
export { binaryParam, PG_TYPES, pgTypeName } from './types.js';

const TYPED = new Set('QPBDESHCXF'.split('').map((c) => c.charCodeAt(0)));

/**
 * A client's first bytes: a StartupMessage (protocol 3.x), SSLRequest, GSSENCRequest or
 * CancelRequest; or, joined mid-connection, whole frontend messages back to back (a Query ending in
 * NUL, Parse/Bind/Execute/Sync…) — two in a row, or one that ends exactly where the bytes end.
 */
export function detectPostgres(first: Uint8Array, side: Side): 'match' | 'no' | 'more' {
  if (side !== 'client') return 'no';
  if (first.length < 8) return first.length > 0 && first[0] !== 0 && !TYPED.has(first[0]!) ? 'no' : 'more';
  const b = Buffer.from(first.buffer, first.byteOffset, first.byteLength);
  const len = b.readInt32BE(0);
  const code = b.readInt32BE(4);
  if (len >= 8 && len <= 10000) {
    if ((code === SSL_REQUEST || code === GSSENC_REQUEST) && len === 8) return 'match';
    if (code === CANCEL_REQUEST && len === 16) return 'match';
    if (code >>> 16 === 3 && (code & 0xffff) < 16) return len > b.length || b[len - 1] === 0 ? 'match' : 'no';
    return 'no';
  }
  // mid-stream
  let i = 0;
  let seen = 0;
  while (i + 5 <= b.length && seen < 2) {
    if (!TYPED.has(b[i]!)) return 'no';
    const l = b.readInt32BE(i + 1);
    if (l < 4 || l > 1 << 24) return 'no';
    const next = i + 1 + l;
    if (next > b.length) return seen > 0 ? 'match' : b.length < 512 ? 'more' : 'no';
    if (b[i] === 0x51 && b[next - 1] !== 0) return 'no';
    seen++;
    i = next;
    if (i === b.length) return 'match';
  }
  return seen >= 2 ? 'match' : 'more';
}

export const postgres: ProtocolDecoder = {
  name: 'postgres',
  detect: detectPostgres,
  create: (sink, options) => new PostgresDecoder(sink, options),
};
