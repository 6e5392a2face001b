/**
 * Request signatures. A call is matched against recorded outbound exchanges of the same endpoint
 * (host and port) by these keys, strictest first:
 *   exact:  METHOD path ?sorted-query body(volatile-looking values masked)
 *   route:  METHOD route-template ?sorted-query body(volatile values and id/time-named fields masked)
 *   loose:  METHOD route-template  (only for recordings whose request body was truncated)
 * Headers are not part of a signature. docs/mocks.md describes the rules in full.
 */
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { splitMessages } from '../../capture/protocols/grpc/exchange.js';
import type { RawField } from '../../core/protobuf.js';
import { type HeaderList, headerValue, targetPath } from '../../core/exchange.js';
import { routeTemplate } from '../../snapshots/replay.js';
import { canonicalJson, canonicalQuery, MASK, type MaskMode } from './canon.js';
import { isVolatileValue, type VolatileFields } from './volatile.js';

/** What a signature is computed from: a recorded request or a live one. */
export interface RequestView {
  method: string;
  target: string;
  headers: HeaderList;
  body: Uint8Array;
  /** The recorded body is incomplete (capture cap or loss). */
  truncated?: boolean;
}

export type Tier = 'exact' | 'route' | 'loose';

export interface Signature {
  method: string;
  path: string;
  route: string;
  query: string;
  /** Canonical body text per tier ('' when empty). */
  exact: string;
  route_: string;
  keys: Partial<Record<Tier, string>>;
}

const MAX_DECODED = 16 * 1024 * 1024;

function decodeContent(body: Uint8Array, encoding: string | undefined): Uint8Array {
  const enc = encoding?.trim().toLowerCase();
  if (!enc || enc === 'identity' || body.length === 0) return body;
  try {
    const opts = { maxOutputLength: MAX_DECODED };
    if (enc === 'gzip' || enc === 'x-gzip') return gunzipSync(body, opts);
    if (enc === 'deflate') return inflateSync(body, opts);
    if (enc === 'br') return brotliDecompressSync(body, opts);
  } catch {
    // undecodable: compare the bytes as sent
  }
  return body;
}

function rawCanon(fields: RawField[], mode: MaskMode): unknown[] {
  return fields.map((f) => {
    if ('message' in f) return [f.field, rawCanon(f.message, mode)];
    if ('string' in f) return [f.field, mode.values && isVolatileValue(f.string) ? MASK : f.string];
    if ('bytes' in f) return [f.field, f.bytes];
    return [f.field, mode.values && isVolatileValue(f.value) ? MASK : f.value];
  });
}

/** Canonical text of a body for one masking mode. */
export function canonicalBody(req: RequestView, mode: MaskMode): string {
  if (req.body.length === 0) return '';
  const type = (headerValue(req.headers, 'content-type') ?? '').toLowerCase();
  if (type.startsWith('application/grpc')) {
    const msgs = splitMessages(req.body, headerValue(req.headers, 'grpc-encoding'), MAX_DECODED, () => ({}));
    return JSON.stringify(
      msgs.map((m) => (m.fields ? rawCanon(m.fields, mode) : (m.error ?? 'undecodable'))),
    );
  }
  const body = decodeContent(req.body, headerValue(req.headers, 'content-encoding'));
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (type.includes('json') || /^\s*[[{]/.test(text)) {
    try {
      return `json:${JSON.stringify(canonicalJson(JSON.parse(text), mode))}`;
    } catch {
      // not JSON after all: fall through to text
    }
  }
  if (type.startsWith('application/x-www-form-urlencoded'))
    return `form:${canonicalQuery(text.trim(), mode)}`;
  return `raw:${text}`;
}

export function signatureOf(req: RequestView, known?: VolatileFields): Signature {
  const method = req.method.toUpperCase();
  const path = targetPath(req.target);
  const q = req.target.indexOf('?');
  const rawQuery = q === -1 ? '' : req.target.slice(q + 1);
  const route = path.startsWith('/') ? routeTemplate(path) : path;
  const exactMode: MaskMode = { values: true, names: false, ...(known ? { known } : {}) };
  const routeMode: MaskMode = { values: true, names: true, ...(known ? { known } : {}) };
  const query = canonicalQuery(rawQuery, exactMode);
  const exact = canonicalBody(req, exactMode);
  const route_ = canonicalBody(req, routeMode);
  const keys: Partial<Record<Tier, string>> = {};
  if (!req.truncated) {
    keys.exact = `${method} ${path}?${query} ${exact}`;
    keys.route = `${method} ${route}?${canonicalQuery(rawQuery, routeMode)} ${route_}`;
  }
  keys.loose = `${method} ${route}`;
  return { method, path, route, query, exact, route_, keys };
}

/** Short human form for reports: `POST /pay?x=1 {"amount":5,…}`. */
export function describeSignature(s: Signature, max = 160): string {
  const body = s.exact === '' ? '' : ` ${s.exact.replace(/^(json|form|raw):/, '')}`;
  const text = `${s.method} ${s.path}${s.query ? `?${s.query}` : ''}${body}`;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
