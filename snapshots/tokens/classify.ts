/**
 * What a value is: JWT (claims decoded), timestamp (format kept), uuid, id, session, csrf,
 * nonce, signature, request id, or opaque. And whether it can be a token at all: short or
 * low-entropy values ("1", "true", "orders") are never tokens.
 */
import { decodeJwt } from '../transforms/jwt.js';
import { parseTime } from '../transforms/timefmt.js';
import type { TokenEntry, TokenKind } from './types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]+$/i;
const WORDS = /^[a-z]+(?:[ _-][a-z]+)*$/i;
const ID_KEY = /(?:^|[_.-])(?:id|uuid|guid|ref|reference|key|number|no)$|Id$|ID$/;
const REQUEST_ID_HEADER = /^(?:x-request-id|x-correlation-id|x-trace-id|request-id|x-amzn-trace-id|traceparent|x-b3-traceid|x-cloud-trace-context)$/i;

/** Shannon entropy of the characters, in bits per character. */
export function entropy(value: string): number {
  const counts = new Map<string, number>();
  for (const c of value) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / value.length;
    h -= p * Math.log2(p);
  }
  return h;
}

export interface Hint {
  /** Field, header, cookie or parameter name the value sat under. */
  key?: string;
  /** True for path segments and id-like keys, where short numbers are ids. */
  idPlace?: boolean;
}

export function idLikeKey(key: string | undefined): boolean {
  return key !== undefined && ID_KEY.test(key);
}

/**
 * Can this value be a token? Needs at least 20 bits of character entropy in total, and more
 * than plain words; digits-only values need 4+ digits in an id place, 8+ elsewhere.
 */
export function isCandidate(value: string, hint: Hint = {}): boolean {
  const n = value.length;
  if (n < 4 || n > 8192) return false;
  if (/^\d+$/.test(value)) return n >= (hint.idPlace || idLikeKey(hint.key) ? 4 : 8) && !/^0+$/.test(value);
  if (n < 6) return false;
  if (WORDS.test(value) && n < 24) return false;
  if (/^(true|false|null|undefined)$/i.test(value)) return false;
  return entropy(value) * n >= 20;
}

export interface Classified {
  kind: TokenKind;
  volatile: boolean;
  format?: string;
  jwt?: NonNullable<TokenEntry['jwt']>;
}

/** Kind of a value, from its shape first and the name it sat under second. */
export function classify(value: string, hint: Hint = {}): Classified {
  const key = (hint.key ?? '').toLowerCase();
  const bare = /^(?:bearer|jwt)\s+(.+)$/i.exec(value)?.[1] ?? value;
  const jwt = decodeJwt(bare);
  if (jwt) {
    const info: NonNullable<TokenEntry['jwt']> = { alg: String(jwt.header.alg), claims: Object.keys(jwt.claims).sort() };
    for (const c of ['iat', 'exp', 'nbf'] as const) if (typeof jwt.claims[c] === 'number') info[c] = jwt.claims[c] as number;
    return { kind: 'jwt', volatile: true, format: 'jws', jwt: info };
  }
  const time = parseTime(value);
  if (time) return { kind: 'timestamp', volatile: true, format: time.format };
  if (UUID.test(value)) return { kind: 'uuid', volatile: true, format: 'uuid' };
  if (REQUEST_ID_HEADER.test(key)) return { kind: 'nonce', volatile: true, format: 'request-id' };
  if (/csrf|xsrf/.test(key)) return { kind: 'csrf', volatile: true };
  if (/nonce/.test(key)) return { kind: 'nonce', volatile: true };
  if (/sig(nature)?$|hmac/.test(key)) return { kind: 'signature', volatile: true };
  if (/sess|sid$|token|auth|cookie/.test(key) || value.startsWith('REDACTED-')) return { kind: 'session', volatile: false };
  if (/^\d+$/.test(value)) return { kind: 'id', volatile: false, format: 'number' };
  if (hint.idPlace || idLikeKey(hint.key)) return { kind: 'id', volatile: false };
  if (value.length >= 16 && HEX.test(value)) return { kind: 'nonce', volatile: false, format: 'hex' };
  return { kind: 'opaque', volatile: false };
}

/** Volatile by nature even when the value never flows anywhere (for noise and time rules). */
export function volatileKind(value: string, hint: Hint = {}): Classified | undefined {
  if (value.length < 8) return undefined;
  const c = classify(value, hint);
  if (c.kind === 'jwt' || c.kind === 'timestamp' || c.kind === 'uuid') return c;
  if (c.format === 'request-id' || ((c.kind === 'nonce' || c.kind === 'csrf') && isCandidate(value, hint))) return c;
  return undefined;
}
