/** The MySQL/MariaDB decoder as registered in the protocol registry. */
import type { ProtocolDecoder, Side } from '../types.js';
import { MysqlDecoder } from './decoder.js';

export { MysqlDecoder } from './decoder.js';
export {
  binaryValue,
  CAP,
  COM,
  encodeBinary,
  lenenc,
  lenencBytes,
  TYPE_NAMES,
  writeLenenc,
} from './packets.js';

/**
 * The server's first packet: a handshake v10 (sequence 0, protocol byte 10, a printable version
 * string ending in NUL). MySQL clients never speak first, so only the server side is looked at;
 * a connection joined after its handshake is not recognised (counted as unknown).
 */
export function detectMysql(first: Uint8Array, side: Side): 'match' | 'no' | 'more' {
  if (side !== 'server') return 'no';
  if (first.length < 6) {
    if (first.length >= 4 && first[3] !== 0) return 'no';
    if (first.length >= 5 && first[4] !== 0x0a) return 'no';
    return 'more';
  }
  const len = first[0]! | (first[1]! << 8) | (first[2]! << 16);
  if (first[3] !== 0 || first[4] !== 0x0a || len < 30 || len > 1024) return 'no';
  for (let i = 5; i < first.length && i < 4 + len; i++) {
    const c = first[i]!;
    if (c === 0) return i > 5 ? 'match' : 'no';
    if (c < 0x20 || c > 0x7e) return 'no';
  }
  return 'more';
}

export const mysql: ProtocolDecoder = {
  name: 'mysql',
  detect: detectMysql,
  create: (sink, options) => new MysqlDecoder(sink, options),
};
