/**
 * Redaction (DLP) that keeps flows: secrets are classified by VALUE, then every occurrence of a
 * secret value gets the same placeholder, wherever it is — so a session token handed out in a
 * login answer and presented by later requests stays one chain after redaction.
 *
 * Two steps, because a credential may appear in an answer long before any request shows it is
 * one:
 *   learn(ex)  — finds credential positions (Authorization/Proxy-Authorization with any scheme,
 *                cookies and Set-Cookie, api-key-like headers, secret query/form/JSON fields) and
 *                remembers their values; values long and random enough are hunted everywhere.
 *   apply(ex)  — rewrites the positions, then replaces every known secret value (as is,
 *                JSON-escaped, percent-encoded) in targets, headers, bodies (content-decoded and
 *                re-encoded), trailers, extras and notes; card numbers and user patterns too.
 * The snapshot writer learns every exchange before it applies anything (docs/snapshot-format.md).
 * `redact(ex)` does both for one exchange.
 *
 * A secret becomes `REDACTED-<16 hex>`: an HMAC-SHA256 of the value, so the same secret gets the
 * same placeholder everywhere and across snapshots. The key comes from the config or
 * RETAP_REDACTION_KEY; without one a fixed public key is used (deterministic, but guessable for
 * weak secrets: the manifest says `keyed: false`). Inside binary bodies (which cannot change
 * length) a secret is overwritten by a mask of its own length.
 */
import { createHmac } from 'node:crypto';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { type DbCall, dbCallOf, isDbProtocol } from '../core/db.js';
import type { Body, Exchange, HeaderList } from '../core/exchange.js';
import { headerValue } from '../core/exchange.js';
import type { RedactionRules, RedactionSummary } from './format.js';
import { redactDbCall } from './redaction/db.js';
import { createMatcher, type Hit } from './redaction/matcher.js';
import {
  API_KEY_HEADER,
  AUTH_HEADERS,
  CARD,
  luhnValid,
  PLACEHOLDER,
  QUERY_PARAM,
  secretCookie,
  secretField,
  unguessable,
  variantsOf,
} from './redaction/rules.js';

export { luhnValid, PLACEHOLDER } from './redaction/rules.js';

export interface RedactionConfig extends RedactionRules {
  enabled?: boolean;
  /** HMAC key; when absent, read from the environment variable named by keyEnv. */
  key?: string;
  keyEnv?: string;
}

const RULE_KEYS = [
  'defaults',
  'headers',
  'allowHeaders',
  'jsonFields',
  'queryParams',
  'cards',
  'patterns',
] as const;

/** The rules of a configuration, without its key; undefined when it only has the built-in ones. */
export function rulesOf(cfg: RedactionConfig | undefined): RedactionRules | undefined {
  if (!cfg) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of RULE_KEYS) {
    const v = cfg[k];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? { ...x } : x)) : v;
  }
  return Object.keys(out).length > 0 ? (out as RedactionRules) : undefined;
}

/** Several snapshots' rules as one (merge, filter): the union, built-ins on when any had them. */
function mergeRules(list: Array<RedactionRules | undefined>): RedactionRules | undefined {
  const given = list.filter((r): r is RedactionRules => r !== undefined);
  if (given.length === 0) return undefined;
  const union = <T>(pick: (r: RedactionRules) => T[] | undefined, keyOf: (x: T) => string = String): T[] => {
    const seen = new Map<string, T>();
    for (const r of list) for (const x of (r && pick(r)) ?? []) seen.set(keyOf(x), x);
    return [...seen.values()];
  };
  // a source without rules of its own used the built-ins
  const builtIn = (r: RedactionRules | undefined, k: 'defaults' | 'cards'): boolean => r?.[k] !== false;
  return rulesOf({
    defaults: list.some((r) => builtIn(r, 'defaults')) ? undefined : false,
    cards: list.some((r) => builtIn(r, 'cards')) ? undefined : false,
    headers: union((r) => r.headers),
    allowHeaders: list.every((r) => r?.allowHeaders?.length)
      ? given[0]!.allowHeaders!.filter((h) => given.every((r) => r.allowHeaders!.includes(h)))
      : [],
    jsonFields: union((r) => r.jsonFields),
    queryParams: union((r) => r.queryParams),
    patterns: union(
      (r) => r.patterns,
      (p) => `${p.id}\u0000${p.regex}`,
    ),
  });
}

export interface Redactor {
  /**
   * Remembers the secret values of one exchange without changing it. Returns what the exchange
   * needs whatever else is learned: NEED_NONE; NEED_HEAD (a credential position, card or pattern
   * outside the bodies: applyLine can do it); NEED_FULL (in a body, or a body only its bytes show).
   */
  learn(ex: Exchange): Need;
  /** A value known to be secret, with the placeholder it must get (restored secrets, live tokens). */
  assign(value: string, placeholder: string): void;
  /** Redacts with everything learned so far; the same object when nothing changed. */
  apply(ex: Exchange): Exchange;
  /** learn(ex) then apply(ex). */
  redact(ex: Exchange): Exchange;
  /**
   * apply() on a stored line (format.ts) without decoding its bodies: targets, headers, trailers,
   * extras and notes are redacted in the parsed JSON. Returns undefined when a body needs it too
   * (then decode and apply()), the same string when nothing changed.
   */
  applyLine(line: string): string | undefined;
  /** True when the text holds a known secret value in any of its forms. */
  mentions(text: string): boolean;
  /**
   * Known secret values (and cards, patterns) in a free text → placeholders. With a location the
   * replacements are counted in the summary; without, they are not (text outside the exchanges).
   */
  redactText(text: string, location?: string): string;
  /** The placeholder a value gets (the same HMAC as at capture when the key is the same). */
  placeholderOf(value: string): string;
  /** Distinct secret values hunted everywhere. */
  readonly secrets: number;
  /** About how much memory the learned secrets take (for a shared budget). */
  readonly bytes: number;
  summary(): RedactionSummary;
}

export const NEED_NONE = 0;
export const NEED_HEAD = 1;
export const NEED_FULL = 2;
export type Need = typeof NEED_NONE | typeof NEED_HEAD | typeof NEED_FULL;

const PUBLIC_KEY = 'retap-public-redaction-key-v1';

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();
/** C0 controls other than tab, LF, FF, CR, plus DEL (format.ts stores such text as base64). */
const BINARY_CONTROL = /[\u0000-\u0008\u000b\u000e-\u001f\u007f]/;

function asText(data: Uint8Array): string | undefined {
  if (data.length === 0) return undefined;
  try {
    return textDecoder.decode(data);
  } catch {
    return undefined;
  }
}

/** Will format.ts store these bytes as readable text (so a secret shows in the stored line)? */
/**
 * A flat copy of a string that keeps nothing else alive: values cut out of a body or header are
 * slices of it in V8, and a remembered secret would otherwise hold its whole body in memory.
 */
function own(s: string): string {
  const copy = Buffer.from(s, 'utf8').toString('utf8');
  return copy === s ? copy : s;
}

function storedAsText(data: Uint8Array, text: string | undefined): boolean {
  if (data.length === 0) return true;
  return text !== undefined && !BINARY_CONTROL.test(text) && !text.includes('\ufeff');
}

function decodePair(s: string, plus: boolean): string {
  try {
    return decodeURIComponent(plus ? s.replace(/\+/g, ' ') : s);
  } catch {
    return s;
  }
}

function unescapeJson(raw: string): string {
  if (!raw.includes('\\')) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}

type Mode = 'learn' | 'apply';

/** One secret value's placeholder, shared by the matcher patterns of all its forms. */
interface Secret {
  ph: string;
}

export function createRedactor(config: RedactionConfig | false | undefined): Redactor {
  const cfg: RedactionConfig = config === false ? { enabled: false } : (config ?? {});
  const enabled = cfg.enabled !== false;
  const defaults = cfg.defaults !== false;
  const envKey = process.env[cfg.keyEnv ?? 'RETAP_REDACTION_KEY'];
  const key = cfg.key ?? (envKey && envKey.length > 0 ? envKey : undefined);
  const hmacKey = key ?? PUBLIC_KEY;
  const allow = new Set((cfg.allowHeaders ?? []).map((h) => h.toLowerCase()));
  const extraHeaders = new Set((cfg.headers ?? []).map((h) => h.toLowerCase()));
  const cards = defaults && cfg.cards !== false;
  const userFields = (cfg.jsonFields ?? []).map((f) => new RegExp(f, 'i'));
  const jsonFieldRule = defaults || userFields.length > 0;
  // "name": "string" | number, matched lexically so the rest of the body keeps its exact bytes.
  // Built-in names all hold one of these stems (a lookahead keeps other fields off the callback).
  const stems =
    defaults && userFields.length === 0
      ? '(?=(?:[^"\\\\]|\\\\.)*(?:pass|secret|tok|sess|sid|key|auth|jwt|csrf|xsrf|cred|cookie|otp|pin|pwd))'
      : '';
  const jsonField = new RegExp(
    `"${stems}((?:[^"\\\\]|\\\\.)*)"(\\s*:\\s*)("(?:[^"\\\\]|\\\\.)*"|-?\\d[\\d.eE+-]*)`,
    'gi',
  );
  const extraQuery = (cfg.queryParams ?? []).map((q) => q.toLowerCase());
  const patterns = (cfg.patterns ?? []).map((p) => ({ id: p.id, re: new RegExp(p.regex, 'g') }));
  const rules = [
    ...(defaults
      ? [
          'auth-header',
          'cookie',
          'set-cookie',
          'api-key-header',
          'query-param',
          'json-field',
          'db-password',
          'db-field',
          'db-key',
          'secret-value',
        ]
      : []),
    ...(cards ? ['card-number'] : []),
    ...(extraHeaders.size > 0 ? ['header'] : []),
    ...(!defaults && userFields.length > 0 ? ['json-field'] : []),
    ...(!defaults && extraQuery.length > 0 ? ['query-param'] : []),
    ...(!defaults && (extraHeaders.size > 0 || userFields.length > 0 || extraQuery.length > 0)
      ? ['secret-value']
      : []),
    ...patterns.map((p) => `pattern:${p.id}`),
  ];

  const hits = new Map<string, number>();
  /** Placeholders of hunted and assigned values (kept), and a bounded cache of the others. */
  const fixed = new Map<string, Secret>();
  const cache = new Map<string, string>();
  const matcher = createMatcher();
  /** Pattern index → placeholder of the secret it is a form of. */
  const owner: Secret[] = [];
  let mode: Mode = 'apply';
  /** learn(): what this exchange needs by itself; inBody: walking a body now. */
  let need: Need = NEED_NONE;
  let inBody = false;
  const flag = (): void => {
    if (inBody) need = NEED_FULL;
    else if (need === NEED_NONE) need = NEED_HEAD;
  };
  /** apply(): did anything change? */
  let changed = false;
  /** Count hits in the summary (off for texts outside the exchanges). */
  let counting = true;

  const hmac = (value: string): string =>
    own(`REDACTED-${createHmac('sha256', hmacKey).update(value).digest('hex').slice(0, 16)}`);

  const placeholderOf = (value: string): string => {
    if (PLACEHOLDER.test(value)) return value;
    let p = fixed.get(value)?.ph ?? cache.get(value);
    if (p === undefined) {
      p = hmac(value);
      if (cache.size >= 10_000) cache.clear();
      cache.set(value, p);
    }
    return p;
  };

  /** A value's forms (deduped here: the matcher does not) → its placeholder. */
  let patternChars = 0;
  const addForms = (forms: string[], secret: Secret): void => {
    for (const f of new Set(forms)) {
      if (f.length < 8) continue;
      owner[matcher.add(f)] = secret;
      patternChars += f.length;
    }
  };

  /** Hunt this value (and its encoded forms) everywhere from now on. */
  const hunt = (value: string, forms: string[] = []): void => {
    if (fixed.has(value) || !unguessable(value)) return;
    const s: Secret = { ph: cache.get(value) ?? hmac(value) };
    const v = own(value);
    fixed.set(v, s);
    addForms([v, ...variantsOf(v).filter((x) => x !== v), ...forms.map(own)], s);
  };

  const hit = (rule: string, location: string): void => {
    if (mode === 'learn') {
      flag();
      return;
    }
    changed = true;
    if (!counting) return;
    const k = `${rule}\u0000${location}`;
    hits.set(k, (hits.get(k) ?? 0) + 1);
  };

  /**
   * A credential position holds `value` (canonical: decoded). In learn mode remember it and
   * return it unchanged; in apply mode return its placeholder. `forms`: how it was written there.
   */
  const secret = (value: string, rule: string, location: string, forms: string[] = []): string => {
    if (value === '' || PLACEHOLDER.test(value)) return value;
    if (mode === 'learn') {
      flag();
      if (!fixed.has(value)) hunt(value, forms);
      return value;
    }
    hit(rule, location);
    return placeholderOf(value);
  };

  /** Every known secret value in a text → its placeholder (apply mode only). */
  const known = (text: string, location: string): string => {
    if (mode === 'learn' || matcher.size === 0 || text.length < 8) return text;
    return matcher.replace(text, (i) => {
      hit('secret-value', location);
      return owner[i]!.ph;
    });
  };

  const isQuerySecret = (name: string): boolean =>
    (defaults && QUERY_PARAM.test(name)) || extraQuery.includes(name.toLowerCase());

  /** `name=value` pairs of a query string or form body. */
  const pairs = (text: string, plus: boolean, where: string): string =>
    text.replace(/(^|&)([^=&]+)=([^&#]*)/g, (m, lead: string, name: string, value: string) => {
      const decoded = decodePair(name, plus);
      if (value === '' || !isQuerySecret(decoded) || PLACEHOLDER.test(value)) return m;
      const v = decodePair(value, plus);
      const out = secret(v, 'query-param', `${where}:${decoded}`, [value]);
      return out === v ? m : `${lead}${name}=${out}`;
    });

  const detectors = (text: string, where: string): string => {
    let out = text;
    if (cards) {
      out = out.replace(CARD, (m) => {
        const digits = m.replace(/[ -]/g, '');
        if (!luhnValid(digits)) return m;
        hit('card-number', where);
        return mode === 'learn' ? m : placeholderOf(digits);
      });
    }
    for (const p of patterns) {
      p.re.lastIndex = 0;
      out = out.replace(p.re, (m, g1: unknown) => {
        const s = typeof g1 === 'string' ? g1 : m;
        if (PLACEHOLDER.test(s)) return m;
        hit(`pattern:${p.id}`, where);
        if (mode === 'learn') return m;
        return typeof g1 === 'string' ? m.replace(g1, placeholderOf(g1)) : placeholderOf(m);
      });
    }
    return out;
  };

  /** Free text: known values, then detectors. */
  const text = (t: string, where: string): string => detectors(known(t, where), where);

  const target = (t: string, where: string): string => {
    let out = t;
    const q = out.indexOf('?');
    if (q !== -1)
      out = out.slice(0, q + 1) + pairs(out.slice(q + 1), false, `${where.replace(/\.target$/, '')}.query`);
    return text(out, where);
  };

  const headerList = (headers: HeaderList, side: string): HeaderList => {
    let out: HeaderList | undefined;
    for (let i = 0; i < headers.length; i++) {
      const [name, value] = headers[i]!;
      const lower = name.toLowerCase();
      if (allow.has(lower)) continue;
      let next = value;
      const where = `${side}.header:${lower}`;
      if (defaults && AUTH_HEADERS.has(lower)) {
        const m = /^(\S+)(\s+)(.+)$/.exec(value);
        if (m) {
          if (mode === 'learn' && /^basic$/i.test(m[1]!)) learnBasic(m[3]!);
          next = `${m[1]}${m[2]}${secret(m[3]!, 'auth-header', where)}`;
        } else next = secret(value, 'auth-header', where);
      } else if (defaults && lower === 'cookie') {
        next = value.replace(/(^|;\s*)([^=;]+)=([^;]*)/g, (all, lead: string, n: string, v: string) => {
          const raw = v.trim();
          if (!secretCookie(n.trim(), raw)) return all;
          return `${lead}${n}=${secret(raw, 'cookie', where)}`;
        });
      } else if (defaults && lower === 'set-cookie') {
        next = value.replace(/^([^=;]+)=([^;]*)/, (all, n: string, v: string) => {
          const raw = v.trim();
          if (!secretCookie(n.trim(), raw)) return all;
          return `${n}=${secret(raw, 'set-cookie', where)}`;
        });
      } else if ((defaults && API_KEY_HEADER.test(lower)) || extraHeaders.has(lower)) {
        next = secret(value, extraHeaders.has(lower) ? 'header' : 'api-key-header', where);
      }
      next = text(next, where);
      if (next !== value && mode === 'apply') {
        out ??= headers.map(([n, v]) => [n, v]);
        out[i] = [name, next];
      }
    }
    return out ?? headers;
  };

  /** Basic credentials: the base64 is the secret where it stands; the password inside is one too. */
  const learnBasic = (b64: string): void => {
    const plain = Buffer.from(b64, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon > 0) {
      const password = plain.slice(colon + 1);
      if (password !== '' && !PLACEHOLDER.test(password)) hunt(password);
    }
  };

  const isSecretField = (name: string): boolean =>
    (defaults && secretField(name)) || userFields.some((re) => re.test(name));

  const bodyText = (t: string, contentType: string, where: string): string => {
    let out = t;
    const head = out.trimStart()[0];
    if (jsonFieldRule && (contentType.includes('json') || head === '{' || head === '[')) {
      jsonField.lastIndex = 0;
      out = out.replace(jsonField, (m, rawName: string, sep: string, value: string) => {
        const isString = value.startsWith('"');
        const name = unescapeJson(rawName);
        if (!isSecretField(name)) return m;
        const raw = isString ? value.slice(1, -1) : value;
        const v = isString ? unescapeJson(raw) : raw;
        const next = secret(v, 'json-field', `${where}:${name}`, [raw]);
        return next === v ? m : `"${rawName}"${sep}"${next}"`;
      });
    } else if (contentType.includes('application/x-www-form-urlencoded')) {
      out = pairs(out, true, `${where}.form`);
    }
    return text(out, where);
  };

  const recompress = (data: Uint8Array, encoding: string): Uint8Array | undefined => {
    const e = encoding.trim().toLowerCase();
    if (e === 'gzip' || e === 'x-gzip') return gzipSync(data);
    if (e === 'deflate') return deflateSync(data);
    if (e === 'br') return brotliCompressSync(data);
    return undefined;
  };

  /** Known values inside bytes that are not text: overwritten in place by a mask of equal length. */
  const maskBytes = (data: Uint8Array, where: string): Uint8Array => {
    if (mode === 'learn') {
      flag();
      return data;
    }
    if (matcher.size === 0 || data.length < 8) return data;
    const latin = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
    const found = matcher.find(latin);
    if (found.length === 0) return data;
    const out = new Uint8Array(data);
    for (const h of found) {
      hit('secret-value', where);
      out.set(maskOf(owner[h.pattern]!.ph, h), h.start);
    }
    return out;
  };

  const bodyOf = (body: Body, headers: HeaderList, side: string): { body: Body; headers: HeaderList } => {
    if (body.data.length === 0 && !body.decoded?.length) return { body, headers };
    const contentType = (headerValue(headers, 'content-type') ?? '').toLowerCase();
    const where = `${side}.body`;
    if (body.decoded !== undefined) {
      const plain = asText(body.decoded);
      if (mode === 'learn' && !storedAsText(body.decoded, plain)) flag();
      if (plain === undefined) {
        const masked = maskBytes(body.decoded, where);
        return masked === body.decoded ? { body, headers } : reencode(body, masked, headers);
      }
      const next = bodyText(plain, contentType, where);
      if (next === plain || mode === 'learn') return { body, headers };
      return reencode(body, textEncoder.encode(next), headers);
    }
    const plain = asText(body.data);
    if (mode === 'learn' && !storedAsText(body.data, plain)) flag();
    if (plain === undefined) {
      const data = maskBytes(body.data, where);
      return data === body.data ? { body, headers } : { body: { ...body, data }, headers };
    }
    const next = bodyText(plain, contentType, where);
    if (next === plain || mode === 'learn') return { body, headers };
    const data = textEncoder.encode(next);
    if (body.truncated) return { body: { ...body, data }, headers };
    return { body: { ...body, data, size: data.length }, headers: setLength(headers, data.length) };
  };

  const reencode = (
    body: Body,
    decoded: Uint8Array,
    headers: HeaderList,
  ): { body: Body; headers: HeaderList } => {
    const encoding = headerValue(headers, 'content-encoding') ?? '';
    const packed = body.truncated ? undefined : recompress(decoded, encoding);
    if (packed) {
      return {
        body: { ...body, data: packed, decoded, size: packed.length },
        headers: setLength(headers, packed.length),
      };
    }
    // Cannot re-encode (unknown encoding or partial body): keep only the redacted plain form.
    const plain = headers.filter(([n]) => n.toLowerCase() !== 'content-encoding');
    const out: Body = {
      data: decoded,
      size: body.truncated ? body.size : decoded.length,
      truncated: body.truncated,
    };
    return { body: out, headers: body.truncated ? plain : setLength(plain, decoded.length) };
  };

  /** Strings anywhere in decoder extras (HTTP/2 pseudo headers, gRPC messages). */
  const deep = (v: unknown, where: string, depth: number): unknown => {
    if (typeof v === 'string') return text(v, where);
    if (depth > 32 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) {
      let out: unknown[] | undefined;
      v.forEach((x, i) => {
        const y = deep(x, where, depth + 1);
        if (y !== x) (out ??= [...v])[i] = y;
      });
      return out ?? v;
    }
    let out: Record<string, unknown> | undefined;
    for (const [k, x] of Object.entries(v)) {
      const y =
        k === ':path' && typeof x === 'string'
          ? target(x, 'request.target')
          : deep(x, depth === 0 ? `extras.${k}` : where, depth + 1);
      if (y !== x) (out ??= { ...(v as Record<string, unknown>) })[k] = y;
    }
    return out ?? v;
  };

  /** Database calls: credential positions in SQL and Redis commands (redaction/db.ts), target to match. */
  const dbPositions = (call: DbCall, tgt: string): { call: DbCall; target: string } =>
    defaults
      ? redactDbCall(call, tgt, (v, rule, location) => secret(v, rule, location))
      : { call, target: tgt };

  const walk = (ex: Exchange): Exchange => {
    const req = ex.request;
    let exExtras = ex.extras;
    let reqTarget = req.target;
    const db = dbCallOf(ex);
    if (db) {
      const r = dbPositions(db, reqTarget);
      if (r.call !== db) exExtras = { ...exExtras, db: r.call };
      reqTarget = r.target;
    }
    const tgt = target(reqTarget, 'request.target');
    let reqHeaders = headerList(req.headers, 'request');
    inBody = true;
    const reqBody = bodyOf(req.body, reqHeaders, 'request');
    inBody = false;
    reqHeaders = reqBody.headers;
    const reqTrailers = req.trailers ? headerList(req.trailers, 'request.trailer') : undefined;
    let response = ex.response;
    if (response) {
      const resHeaders = headerList(response.headers, 'response');
      inBody = true;
      const resBody = bodyOf(response.body, resHeaders, 'response');
      inBody = false;
      const trailers = response.trailers ? headerList(response.trailers, 'response.trailer') : undefined;
      let interim = response.interim;
      if (interim) {
        const next = interim.map((i) => {
          const h = headerList(i.headers, 'response.interim');
          return h === i.headers ? i : { ...i, headers: h };
        });
        if (next.some((x, i) => x !== interim![i])) interim = next;
      }
      if (
        resBody.headers !== response.headers ||
        resBody.body !== response.body ||
        trailers !== response.trailers ||
        interim !== response.interim
      ) {
        response = { ...response, headers: resBody.headers, body: resBody.body };
        if (trailers) response.trailers = trailers;
        if (interim) response.interim = interim;
      }
    }
    const extras =
      exExtras === undefined ? undefined : (deep(exExtras, 'extras', 0) as Record<string, unknown>);
    const notes = ex.notes?.map((n) => text(n, 'notes'));
    if (mode === 'learn' || !changed) return ex;
    const request = { ...req, target: tgt, headers: reqHeaders, body: reqBody.body };
    if (reqTrailers) request.trailers = reqTrailers;
    const out: Exchange = { ...ex, request };
    if (response) out.response = response;
    if (extras !== undefined) out.extras = extras;
    if (notes !== undefined) out.notes = notes;
    return out;
  };

  const learn = (ex: Exchange): Need => {
    if (!enabled) return NEED_NONE;
    mode = 'learn';
    need = NEED_NONE;
    try {
      walk(ex);
    } finally {
      mode = 'apply';
      inBody = false;
    }
    return need;
  };

  /** Stored body text holding a known value (base64 bodies were NEED_FULL at learn). */
  const bodyMentions = (
    b: { data: string; encoding: string; decoded?: { data: string; encoding: string } } | undefined,
  ): boolean =>
    b !== undefined &&
    matcher.size > 0 &&
    (matcher.test(b.data) || (b.decoded !== undefined && matcher.test(b.decoded.data)));

  const applyLine = (line: string): string | undefined => {
    if (!enabled) return line;
    // biome-ignore lint/suspicious/noExplicitAny: a stored exchange line, checked by the schema when it was appended
    const s = JSON.parse(line) as any;
    if (bodyMentions(s.request.body) || bodyMentions(s.response?.body)) return undefined;
    mode = 'apply';
    changed = false;
    if (isDbProtocol(s.protocol) && s.extras?.db) {
      const r = dbPositions(s.extras.db as DbCall, s.request.target);
      s.extras.db = r.call;
      s.request.target = r.target;
    }
    s.request.target = target(s.request.target, 'request.target');
    s.request.headers = headerList(s.request.headers, 'request');
    if (s.request.trailers) s.request.trailers = headerList(s.request.trailers, 'request.trailer');
    if (s.response) {
      s.response.headers = headerList(s.response.headers, 'response');
      if (s.response.trailers) s.response.trailers = headerList(s.response.trailers, 'response.trailer');
      if (s.response.interim)
        for (const i of s.response.interim) i.headers = headerList(i.headers, 'response.interim');
    }
    if (s.extras !== undefined) s.extras = deep(s.extras, 'extras', 0);
    if (s.notes !== undefined) s.notes = s.notes.map((n: string) => text(n, 'notes'));
    return changed ? JSON.stringify(s) : line;
  };

  const apply = (ex: Exchange): Exchange => {
    if (!enabled) return ex;
    mode = 'apply';
    changed = false;
    return walk(ex);
  };

  return {
    learn,
    apply,
    applyLine,
    redact(ex) {
      learn(ex);
      return apply(ex);
    },
    assign(value, placeholder) {
      if (!enabled || value === '' || PLACEHOLDER.test(value)) return;
      if (!PLACEHOLDER.test(placeholder)) throw new RangeError(`not a placeholder: ${placeholder}`);
      const known = fixed.get(value);
      // already hunted: every form follows (they share the record)
      if (known) known.ph = placeholder;
      else {
        const s: Secret = { ph: own(placeholder) };
        const v = own(value);
        fixed.set(v, s);
        addForms([v, ...variantsOf(v).filter((x) => x !== v)], s);
      }
    },
    mentions: (t) => enabled && matcher.size > 0 && matcher.test(t),
    redactText(t, location) {
      if (!enabled) return t;
      mode = 'apply';
      counting = location !== undefined;
      try {
        return text(t, location ?? 'text');
      } finally {
        counting = true;
      }
    },
    placeholderOf,
    get secrets() {
      return fixed.size;
    },
    get bytes() {
      return fixed.size * 120 + matcher.size * 90 + patternChars;
    },
    summary: (): RedactionSummary => ({
      enabled,
      keyed: key !== undefined,
      rules: enabled ? rules : [],
      ...(enabled && rulesOf(cfg) ? { config: rulesOf(cfg)! } : {}),
      redacted: [...hits.entries()]
        .map(([k, count]) => {
          const [rule, location] = k.split('\u0000') as [string, string];
          return { rule, location, count };
        })
        .sort((a, b) =>
          a.rule + a.location < b.rule + b.location ? -1 : a.rule + a.location > b.rule + b.location ? 1 : 0,
        ),
    }),
  };
}

/** Same-length stand-in for a secret inside bytes: the placeholder's letters, cut or repeated. */
function maskOf(placeholder: string, h: Hit): Uint8Array {
  const n = h.end - h.start;
  const hex = placeholder.slice('REDACTED-'.length);
  const base = n >= placeholder.length ? placeholder : hex;
  let s = base;
  while (s.length < n) s += hex;
  return textEncoder.encode(s.slice(0, n));
}

function setLength(headers: HeaderList, length: number): HeaderList {
  if (!headers.some(([n]) => n.toLowerCase() === 'content-length')) return headers;
  return headers.map(([n, v]) => (n.toLowerCase() === 'content-length' ? [n, String(length)] : [n, v]));
}

/** Merge redaction summaries of several sources (merge/filter keep what their inputs had removed). */
export function mergeSummaries(list: RedactionSummary[]): RedactionSummary {
  const hits = new Map<string, number>();
  for (const s of list)
    for (const r of s.redacted)
      hits.set(`${r.rule}\u0000${r.location}`, (hits.get(`${r.rule}\u0000${r.location}`) ?? 0) + r.count);
  const config = mergeRules(list.filter((s) => s.enabled).map((s) => s.config));
  return {
    enabled: list.some((s) => s.enabled),
    keyed: list.length > 0 && list.every((s) => s.keyed),
    rules: [...new Set(list.flatMap((s) => s.rules))].sort(),
    ...(config ? { config } : {}),
    redacted: [...hits.entries()]
      .map(([k, count]) => {
        const [rule, location] = k.split('\u0000') as [string, string];
        return { rule, location, count };
      })
      .sort((a, b) => (a.rule + a.location < b.rule + b.location ? -1 : 1)),
  };
}
