/**
 * JWT (JWS compact form) decoding and signing with node:crypto: HS256/384/512, RS256/384/512,
 * PS256/384/512, ES256/384/512 and EdDSA. Re-signing keeps the header and claims and moves the
 * time claims (`iat`, `nbf`, `exp`) by a delta.
 */
import { createHmac, createPrivateKey, type KeyObject, sign as cryptoSign, constants } from 'node:crypto';

export interface DecodedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  signature: string;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*$/;

function json(part: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The header and claims of a JWT, or undefined when `text` is not one (no verification). */
export function decodeJwt(text: string): DecodedJwt | undefined {
  if (text.length > 16_384 || !JWT_SHAPE.test(text)) return undefined;
  const [h, c, s] = text.split('.') as [string, string, string];
  const header = json(h);
  if (!header || typeof header.alg !== 'string') return undefined;
  const claims = json(c);
  if (!claims) return undefined;
  return { header, claims, signature: s };
}

export class JwtSignError extends Error {}

function hashOf(alg: string): string {
  const bits = alg.slice(2);
  if (bits !== '256' && bits !== '384' && bits !== '512') throw new JwtSignError(`unsupported JWT alg '${alg}'`);
  return `sha${bits}`;
}

/** Signs `header.claims` with `key` (a secret for HS*, a PEM private key otherwise). */
export function signJwt(header: Record<string, unknown>, claims: Record<string, unknown>, key: string | Buffer): string {
  const alg = String(header.alg);
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  let sig: Buffer;
  if (alg.startsWith('HS')) {
    sig = createHmac(hashOf(alg), key).update(input).digest();
  } else {
    let k: KeyObject;
    try {
      k = createPrivateKey(key);
    } catch (e) {
      throw new JwtSignError(`the key for ${alg} is not a PEM private key (${(e as Error).message})`);
    }
    if (alg === 'EdDSA') sig = cryptoSign(null, Buffer.from(input), k);
    else if (alg.startsWith('RS')) sig = cryptoSign(hashOf(alg), Buffer.from(input), k);
    else if (alg.startsWith('PS')) {
      sig = cryptoSign(hashOf(alg), Buffer.from(input), { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
    } else if (alg.startsWith('ES')) sig = cryptoSign(hashOf(alg), Buffer.from(input), { key: k, dsaEncoding: 'ieee-p1363' });
    else throw new JwtSignError(`unsupported JWT alg '${alg}'`);
  }
  return `${input}.${sig.toString('base64url')}`;
}

const TIME_CLAIMS = ['iat', 'nbf', 'exp'] as const;

/** Same header and claims, time claims moved by `deltaMs` (whole seconds), signed with `key`. */
export function resignJwt(token: string, key: string | Buffer, deltaMs: number, alg?: string): string {
  const d = decodeJwt(token);
  if (!d) throw new JwtSignError('the value is not a JWT');
  const claims = { ...d.claims };
  const delta = Math.round(deltaMs / 1000);
  for (const c of TIME_CLAIMS) if (typeof claims[c] === 'number') claims[c] = (claims[c] as number) + delta;
  const header = alg ? { ...d.header, alg } : d.header;
  return signJwt(header, claims, key);
}
