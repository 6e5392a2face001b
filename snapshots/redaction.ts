/**
 * Redaction (DLP), applied to each exchange before it is written anywhere (spill files included).
 *
 * A secret becomes `REDACTED-<16 hex>`: an HMAC-SHA256 of the value, so the same secret gets the
 * same placeholder wherever it appears (headers, JSON, query) and tokens still line up on replay.
 * The key comes from the config or RETAP_REDACTION_KEY; without one a fixed public key is used
 * (deterministic, but guessable for weak secrets: the manifest says `keyed: false`).
 */
import { createHmac } from 'node:crypto';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import type { Body, Exchange, HeaderList } from '../core/exchange.js';
import { headerValue } from '../core/exchange.js';
import type { RedactionSummary } from './format.js';

export interface RedactionConfig {
  enabled?: boolean;
  /** Include the built-in rules (default true). */
  defaults?: boolean;
  /** HMAC key; when absent, read from the environment variable named by keyEnv. */
  key?: string;
  keyEnv?: string;
  headers?: string[];
  allowHeaders?: string[];
  /** Regular expressions (case-insensitive) for JSON field names. */
  jsonFields?: string[];
  queryParams?: string[];
  cards?: boolean;
  patterns?: Array<{ id: string; regex: string }>;
}

export interface Redactor {
  /** Returns a redacted copy (or the same object when nothing matched). */
  redact(ex: Exchange): Exchange;
  summary(): RedactionSummary;
}

const PUBLIC_KEY = 'retap-public-redaction-key-v1';
export const PLACEHOLDER = /^REDACTED-[0-9a-f]{16}$/;

const AUTH_HEADERS = ['authorization', 'proxy-authorization'];
const API_KEY_HEADER = /(^|[-_])(api[-_]?key|apikey|auth[-_]?token|access[-_]?token|token|secret|password|passwd|signature|session[-_]?id|csrf[-_]?token|xsrf[-_]?token)$/i;
const JSON_FIELD = 'pass(word|wd)?|secret|token|api[-_]?key|apikey|private[-_]?key|client[-_]?secret|session[-_]?id|credentials?';
const QUERY_PARAM =
  /^(access[-_]?token|id[-_]?token|refresh[-_]?token|token|api[-_]?key|apikey|key|secret|client[-_]?secret|password|passwd|pwd|sig|signature|session[-_]?id|auth)$/i;
/** Card-like digit runs with a known issuer prefix; separators (space, dash) allowed between digits. */
// Not inside a longer token: a digit run within a UUID or hex id (`c4532015-1128-4036-8b6f…`) is no card.
const CARD = /(?<![0-9A-Za-z_-])(?:4|5[1-5]|2[2-7]|3[47]|3[068]|6(?:011|5|4[4-9])|35)(?:[ -]?\d){10,17}(?![0-9A-Za-z_-])/g;

export function luhnValid(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();

function asText(data: Uint8Array): string | undefined {
  if (data.length === 0) return undefined;
  try {
    return textDecoder.decode(data);
  } catch {
    return undefined;
  }
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
  const fieldSource = [defaults ? JSON_FIELD : undefined, ...(cfg.jsonFields ?? [])].filter(Boolean).join('|');
  // "name": "string" | number, matched lexically so the rest of the body keeps its exact bytes.
  const jsonField = fieldSource
    ? new RegExp(
        `"(?<field>(?:[^"\\\\]|\\\\.)*(?:${fieldSource})(?:[^"\\\\]|\\\\.)*)"(?<sep>\\s*:\\s*)(?<value>"(?:[^"\\\\]|\\\\.)*"|-?\\d[\\d.eE+-]*)`,
        'gi',
      )
    : undefined;
  const extraQuery = (cfg.queryParams ?? []).map((q) => q.toLowerCase());
  const patterns = (cfg.patterns ?? []).map((p) => ({ id: p.id, re: new RegExp(p.regex, 'g') }));
  const rules = [
    ...(defaults ? ['auth-header', 'cookie', 'set-cookie', 'api-key-header', 'query-param', 'json-field'] : []),
    ...(cards ? ['card-number'] : []),
    ...(extraHeaders.size > 0 ? ['header'] : []),
    ...(!defaults && (cfg.jsonFields?.length ?? 0) > 0 ? ['json-field'] : []),
    ...(!defaults && extraQuery.length > 0 ? ['query-param'] : []),
    ...patterns.map((p) => `pattern:${p.id}`),
  ];

  const hits = new Map<string, number>();
  const cache = new Map<string, string>();
  let current: { changed: boolean } = { changed: false };

  const hit = (rule: string, location: string): void => {
    const k = `${rule}\u0000${location}`;
    hits.set(k, (hits.get(k) ?? 0) + 1);
    current.changed = true;
  };

  const placeholder = (value: string): string => {
    if (PLACEHOLDER.test(value)) return value;
    let p = cache.get(value);
    if (p === undefined) {
      p = `REDACTED-${createHmac('sha256', hmacKey).update(value).digest('hex').slice(0, 16)}`;
      if (cache.size > 10_000) cache.clear();
      cache.set(value, p);
    }
    return p;
  };

  const isQuerySecret = (name: string): boolean =>
    (defaults && QUERY_PARAM.test(name)) || extraQuery.includes(name.toLowerCase());

  /** Redacts `name=value` pairs of a query string or form body. */
  const redactPairs = (text: string, rule: string, where: string): string =>
    text.replace(/(^|&)([^=&]+)=([^&]*)/g, (m, lead: string, name: string, value: string) => {
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {}
      if (value === '' || !isQuerySecret(decoded) || PLACEHOLDER.test(value)) return m;
      hit(rule, `${where}:${decoded}`);
      return `${lead}${name}=${placeholder(value)}`;
    });

  const redactCards = (text: string, where: string): string => {
    if (!cards) return text;
    return text.replace(CARD, (m) => {
      const digits = m.replace(/[ -]/g, '');
      if (!luhnValid(digits)) return m;
      hit('card-number', where);
      return placeholder(digits);
    });
  };

  const redactPatterns = (text: string, where: string): string => {
    let out = text;
    for (const p of patterns) {
      p.re.lastIndex = 0;
      out = out.replace(p.re, (m, g1: unknown) => {
        const secret = typeof g1 === 'string' ? g1 : m;
        if (PLACEHOLDER.test(secret)) return m;
        hit(`pattern:${p.id}`, where);
        return typeof g1 === 'string' ? m.replace(g1, placeholder(g1)) : placeholder(m);
      });
    }
    return out;
  };

  const redactHeaders = (headers: HeaderList, side: string): HeaderList => {
    let out: HeaderList | undefined;
    for (let i = 0; i < headers.length; i++) {
      const [name, value] = headers[i]!;
      const lower = name.toLowerCase();
      if (allow.has(lower)) continue;
      let next = value;
      const where = `${side}.header:${lower}`;
      if (defaults && AUTH_HEADERS.includes(lower)) {
        const m = /^(\S+\s+)(.+)$/.exec(value);
        const secret = m ? m[2]! : value;
        if (!PLACEHOLDER.test(secret)) {
          next = (m ? m[1]! : '') + placeholder(secret);
          hit('auth-header', where);
        }
      } else if (defaults && lower === 'cookie') {
        next = value.replace(/(^|;\s*)([^=;]+)=([^;]*)/g, (all, lead: string, n: string, v: string) => {
          if (v === '' || PLACEHOLDER.test(v)) return all;
          hit('cookie', where);
          return `${lead}${n}=${placeholder(v)}`;
        });
      } else if (defaults && lower === 'set-cookie') {
        next = value.replace(/^([^=;]+)=([^;]*)/, (all, n: string, v: string) => {
          if (v === '' || PLACEHOLDER.test(v)) return all;
          hit('set-cookie', where);
          return `${n}=${placeholder(v)}`;
        });
      } else if ((defaults && API_KEY_HEADER.test(lower)) || extraHeaders.has(lower)) {
        if (!PLACEHOLDER.test(value) && value !== '') {
          next = placeholder(value);
          hit(extraHeaders.has(lower) ? 'header' : 'api-key-header', where);
        }
      } else {
        next = redactPatterns(redactCards(value, where), where);
      }
      if (next !== value) {
        out ??= headers.map(([n, v]) => [n, v]);
        out[i] = [name, next];
      }
    }
    return out ?? headers;
  };

  const redactText = (text: string, contentType: string, where: string): string => {
    let out = text;
    const trimmed = out.trimStart();
    if (jsonField && (contentType.includes('json') || trimmed.startsWith('{') || trimmed.startsWith('['))) {
      jsonField.lastIndex = 0;
      out = out.replace(jsonField, (...args: unknown[]) => {
        const m = args[0] as string;
        const { field, sep, value } = args[args.length - 1] as { field: string; sep: string; value: string };
        const isString = value.startsWith('"');
        const raw = isString ? value.slice(1, -1) : value;
        if (raw === '' || PLACEHOLDER.test(raw)) return m;
        hit('json-field', `${where}:${field}`);
        return `"${field}"${sep}"${placeholder(raw)}"`;
      });
    } else if (contentType.includes('application/x-www-form-urlencoded')) {
      out = redactPairs(out, 'query-param', `${where}.form`);
    }
    return redactPatterns(redactCards(out, where), where);
  };

  const recompress = (data: Uint8Array, encoding: string): Uint8Array | undefined => {
    const e = encoding.trim().toLowerCase();
    if (e === 'gzip' || e === 'x-gzip') return gzipSync(data);
    if (e === 'deflate') return deflateSync(data);
    if (e === 'br') return brotliCompressSync(data);
    return undefined;
  };

  /** Redacts a body; may return new headers when Content-Length or Content-Encoding must follow. */
  const redactBody = (body: Body, headers: HeaderList, side: string): { body: Body; headers: HeaderList } => {
    const contentType = (headerValue(headers, 'content-type') ?? '').toLowerCase();
    const where = `${side}.body`;
    if (body.decoded !== undefined) {
      const text = asText(body.decoded);
      if (text === undefined) return { body, headers };
      const next = redactText(text, contentType, where);
      if (next === text) return { body, headers };
      const decoded = textEncoder.encode(next);
      const encoding = headerValue(headers, 'content-encoding') ?? '';
      const packed = body.truncated ? undefined : recompress(decoded, encoding);
      if (packed) {
        return { body: { ...body, data: packed, decoded, size: packed.length }, headers: setLength(headers, packed.length) };
      }
      // Cannot re-encode (unknown encoding or partial body): keep only the redacted plain text.
      const plain = headers.filter(([n]) => n.toLowerCase() !== 'content-encoding');
      const out: Body = { data: decoded, size: body.truncated ? body.size : decoded.length, truncated: body.truncated };
      return { body: out, headers: body.truncated ? plain : setLength(plain, decoded.length) };
    }
    const text = asText(body.data);
    if (text === undefined) return { body, headers };
    const next = redactText(text, contentType, where);
    if (next === text) return { body, headers };
    const data = textEncoder.encode(next);
    if (body.truncated) return { body: { ...body, data }, headers };
    return { body: { ...body, data, size: data.length }, headers: setLength(headers, data.length) };
  };

  const redact = (ex: Exchange): Exchange => {
    if (!enabled) return ex;
    current = { changed: false };
    const req = ex.request;
    let target = req.target;
    const q = target.indexOf('?');
    if (q !== -1) target = target.slice(0, q + 1) + redactPairs(target.slice(q + 1), 'query-param', 'request.query');
    target = redactPatterns(redactCards(target, 'request.target'), 'request.target');
    let reqHeaders = redactHeaders(req.headers, 'request');
    const reqBody = redactBody(req.body, reqHeaders, 'request');
    reqHeaders = reqBody.headers;
    let response = ex.response;
    if (response) {
      const resHeaders = redactHeaders(response.headers, 'response');
      const resBody = redactBody(response.body, resHeaders, 'response');
      if (resBody.headers !== response.headers || resBody.body !== response.body) {
        response = { ...response, headers: resBody.headers, body: resBody.body };
      }
    }
    if (!current.changed) return ex;
    return { ...ex, request: { ...req, target, headers: reqHeaders, body: reqBody.body }, ...(response ? { response } : {}) };
  };

  const summary = (): RedactionSummary => ({
    enabled,
    keyed: key !== undefined,
    rules: enabled ? rules : [],
    redacted: [...hits.entries()]
      .map(([k, count]) => {
        const [rule, location] = k.split('\u0000') as [string, string];
        return { rule, location, count };
      })
      .sort((a, b) => (a.rule + a.location < b.rule + b.location ? -1 : a.rule + a.location > b.rule + b.location ? 1 : 0)),
  });

  return { redact, summary };
}

function setLength(headers: HeaderList, length: number): HeaderList {
  if (!headers.some(([n]) => n.toLowerCase() === 'content-length')) return headers;
  return headers.map(([n, v]) => (n.toLowerCase() === 'content-length' ? [n, String(length)] : [n, v]));
}

/** Merge redaction summaries of several sources (merge/filter keep what their inputs had removed). */
export function mergeSummaries(list: RedactionSummary[]): RedactionSummary {
  const hits = new Map<string, number>();
  for (const s of list) for (const r of s.redacted) hits.set(`${r.rule}\u0000${r.location}`, (hits.get(`${r.rule}\u0000${r.location}`) ?? 0) + r.count);
  return {
    enabled: list.some((s) => s.enabled),
    keyed: list.length > 0 && list.every((s) => s.keyed),
    rules: [...new Set(list.flatMap((s) => s.rules))].sort(),
    redacted: [...hits.entries()]
      .map(([k, count]) => {
        const [rule, location] = k.split('\u0000') as [string, string];
        return { rule, location, count };
      })
      .sort((a, b) => (a.rule + a.location < b.rule + b.location ? -1 : 1)),
  };
}
