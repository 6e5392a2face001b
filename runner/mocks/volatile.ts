/**
 * Values that differ from run to run and so must not decide which recorded answer a call gets:
 * uuids, timestamps (ISO 8601, RFC 1123, epoch seconds/ms), JWTs, long hex digests, and values of
 * fields whose name says they are an id, a time or a nonce. The tokens module's discoveries
 * (tokens.yaml `where` entries) add exact fields on top (see `volatileFromTokens`).
 */
import { type TokensFile, type TransformsFile, volatileKind } from '../../snapshots/replay.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;
const RFC1123 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const JWT = /^eyJ[\w-]+\.[\w-]+\.[\w-]*$/;
const LONG_HEX = /^[0-9a-f]{16,}$/i;
/** 2001-09-09 … 2286-11-20 in seconds, or the same span in milliseconds / microseconds. */
const EPOCH = /^(1\d{9}|1\d{12}|1\d{15})$/;

/** Field names whose values are run-specific: `id`, `orderId`, `request_id`, `createdAt`, `nonce`… */
const VOLATILE_NAME =
  /^(id|uuid|guid|nonce|ts|timestamp|time|date|now|trace|span|etag)$|(^|[_-]|[a-z])(Id|ID|Uuid|UUID|Guid|Nonce|Timestamp|At|Time|Date)$|[_-](id|uuid|guid|nonce|ts|timestamp|at|time|date)$/;

/** By shape (built-in patterns), then by the tokens module's classification (with the field name). */
export function isVolatileValue(value: unknown, key?: string): boolean {
  if (typeof value === 'number') return Number.isInteger(value) && EPOCH.test(String(value));
  if (typeof value !== 'string' || value.length < 8) return false;
  if (
    UUID.test(value) ||
    ISO_TIME.test(value) ||
    RFC1123.test(value) ||
    JWT.test(value) ||
    LONG_HEX.test(value) ||
    EPOCH.test(value)
  )
    return true;
  return volatileKind(value, key === undefined ? {} : { key }) !== undefined;
}

export function isVolatileName(name: string): boolean {
  return VOLATILE_NAME.test(name);
}

/** Fields known from tokens.yaml: JSON paths (`$.a.b`, array indexes as `[*]`) and query names. */
export interface VolatileFields {
  jsonPaths: Set<string>;
  queryNames: Set<string>;
}

export function emptyVolatileFields(): VolatileFields {
  return { jsonPaths: new Set(), queryNames: new Set() };
}

/** Request-side token locations from tokens.yaml (`jsonpath:$.a.b`, `query:NAME`). */
export function volatileFromTokens(tokens: TokensFile | undefined): VolatileFields {
  const out = emptyVolatileFields();
  for (const t of tokens?.tokens ?? []) {
    const locs = [t.origin, ...((t.uses as unknown[] | undefined) ?? [])] as Array<
      { in?: string; where?: string } | undefined
    >;
    for (const loc of locs) {
      if (!loc?.where || loc.in === 'response') continue;
      if (loc.where.startsWith('jsonpath:')) out.jsonPaths.add(normalisePath(loc.where.slice(9)));
      else if (loc.where.startsWith('query:')) out.queryNames.add(loc.where.slice(6));
    }
  }
  return out;
}

/** `$.items[3].id` and `$['items'][0]['id']` → `$.items[*].id`. */
export function normalisePath(path: string): string {
  return path.replace(/\[['"]([^'"]+)['"]\]/g, '.$1').replace(/\[\d+\]/g, '[*]');
}

/**
 * Request fields the transform rules read from the live call (`extract` with `in: request`, or no
 * `in`): rules exist because those values change between runs, so they must not decide a match.
 */
export function volatileFromTransforms(transforms: TransformsFile | undefined): VolatileFields {
  const out = emptyVolatileFields();
  for (const rule of transforms?.rules ?? []) {
    if (rule.enabled === false) continue;
    for (const x of (rule.extract as
      | Array<{ from?: string; in?: string; path?: string; name?: string }>
      | undefined) ?? []) {
      if (x.in === 'response') continue;
      if (x.from === 'jsonpath' && x.path) out.jsonPaths.add(normalisePath(x.path));
      else if (x.from === 'query' && x.name) out.queryNames.add(x.name);
    }
  }
  return out;
}

const PLACEHOLDER_IN = /REDACTED-[0-9a-f]{16}/;

/**
 * Request fields of recorded calls that hold redaction placeholders: the build sends its own
 * credential there (a configured API key, a client secret), so the value must not decide a match.
 * Query and form parameter names, and JSON paths.
 */
export function volatileFromPlaceholders(outbound: Iterable<{ request: { target: string; headers: Array<[string, string]>; body: { data: Uint8Array; decoded?: Uint8Array } } }>): VolatileFields {
  const out = emptyVolatileFields();
  const pairs = (text: string): void => {
    for (const part of text.split('&')) {
      const eq = part.indexOf('=');
      if (eq > 0 && PLACEHOLDER_IN.test(part.slice(eq + 1))) {
        try {
          out.queryNames.add(decodeURIComponent(part.slice(0, eq).replace(/\+/g, ' ')));
        } catch {
          out.queryNames.add(part.slice(0, eq));
        }
      }
    }
  };
  const walk = (v: unknown, path: string): void => {
    if (typeof v === 'string') {
      if (PLACEHOLDER_IN.test(v)) out.jsonPaths.add(path);
    } else if (Array.isArray(v)) for (const x of v) walk(x, `${path}[*]`);
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  for (const ex of outbound) {
    const q = ex.request.target.indexOf('?');
    if (q !== -1 && PLACEHOLDER_IN.test(ex.request.target)) pairs(ex.request.target.slice(q + 1));
    const bytes = ex.request.body.decoded ?? ex.request.body.data;
    if (bytes.length === 0 || bytes.length > 1 << 20) continue;
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    if (!PLACEHOLDER_IN.test(text)) continue;
    const type = (ex.request.headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? '').toLowerCase();
    if (type.includes('x-www-form-urlencoded')) pairs(text.trim());
    else if (/^\s*[[{]/.test(text)) {
      try {
        walk(JSON.parse(text), '$');
      } catch {
        // not JSON: compared as text
      }
    }
  }
  return out;
}

export function mergeVolatile(...all: Array<VolatileFields | undefined>): VolatileFields {
  const out = emptyVolatileFields();
  for (const v of all) {
    for (const p of v?.jsonPaths ?? []) out.jsonPaths.add(p);
    for (const q of v?.queryNames ?? []) out.queryNames.add(q);
  }
  return out;
}
