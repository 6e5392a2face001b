/** The Redis decoder as registered in the protocol registry. */
import type { ProtocolDecoder, Side } from '../types.js';
import { RedisDecoder } from './decoder.js';

export { commandLine, hidePasswords, PASSWORD_OMITTED, RedisDecoder, redisKind } from './decoder.js';
export { encodeResp, parseResp, respText } from './resp.js';

/**
 * A client's first bytes: a RESP array of bulk strings (`*<n>\r\n$<len>\r\n<letters>`), the way
 * every client library and redis-cli send commands. Inline commands are not detected (they look
 * like HTTP request lines); they are decoded once a connection is known to be Redis.
 */
export function detectRedis(first: Uint8Array, side: Side): 'match' | 'no' | 'more' {
  if (side !== 'client') return 'no';
  if (first.length === 0) return 'more';
  if (first[0] !== 0x2a) return 'no';
  let i = 1;
  while (i < first.length && first[i]! >= 48 && first[i]! <= 57 && i < 8) i++;
  if (i === 1 && i < first.length) return 'no';
  const want = [13, 10, 0x24];
  for (const w of want) {
    if (i >= first.length) return 'more';
    if (first[i] !== w) return 'no';
    i++;
  }
  let digits = 0;
  while (i < first.length && first[i]! >= 48 && first[i]! <= 57 && digits < 10) {
    i++;
    digits++;
  }
  if (i >= first.length) return 'more';
  if (digits === 0 || first[i] !== 13) return 'no';
  if (i + 2 >= first.length) return 'more';
  if (first[i + 1] !== 10) return 'no';
  const c = first[i + 2]! | 0x20;
  return c >= 0x61 && c <= 0x7a ? 'match' : 'no';
}

export const redis: ProtocolDecoder = {
  name: 'redis',
  detect: detectRedis,
  create: (sink, options) => new RedisDecoder(sink, options),
};
