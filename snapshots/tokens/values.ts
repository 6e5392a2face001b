/**
 * The values a message holds, each with its place: JSON leaves, headers (Set-Cookie and Location
 * split into their parts), cookies, path segments, query and form parameters, and token-like
 * fragments of text bodies. Array indices in JSON paths are written `[*]` so one place names the
 * same field in every answer.
 */
import type { Body, HeaderList } from '../../core/exchange.js';
import { decodeRaw, grpcFrames, type RawField } from '../../core/protobuf.js';
import { formatJsonPath } from '../transforms/jsonpath.js';

export interface Found {
  value: string;
  /** `where` string (see transforms/where.ts). */
  where: string;
  /** Name the value sat under, for classification. */
  key?: string;
  idPlace?: boolean;
  /** For values inside a larger header/text: how to cut them out again. */
  pattern?: string;
  /** Text around the value at the place: injector templates use it (`Bearer ${x}`). */
  prefix?: string;
  suffix?: string;
}

const MAX_BODY = 1 << 20;
const MAX_LEAVES = 5000;
const MAX_FRAGMENTS = 200;
/** Headers that never carry tokens (or are rewritten by HTTP itself). */
const SKIP_HEADERS = new Set([
  'host', ':authority', ':method', ':path', ':scheme', ':status', 'content-length', 'content-type', 'content-encoding',
  'transfer-encoding', 'connection', 'keep-alive', 'accept', 'accept-encoding', 'accept-language', 'user-agent',
  'server', 'vary', 'cache-control', 'pragma', 'expires', 'age', 'last-modified', 'date', 'upgrade', 'te',
  'access-control-allow-origin', 'access-control-allow-headers', 'access-control-allow-methods', 'referer', 'origin',
]);
/** Times an answer carries in headers (volatile; Last-Modified flows into If-Modified-Since). */
const TIME_HEADERS = new Set(['date', 'last-modified', 'expires']);
const TEXT_TOKEN = /[A-Za-z0-9][A-Za-z0-9_\-.~+/=]{15,}/g;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function bodyText(body: Body): string | undefined {
  const bytes = body.decoded ?? body.data;
  if (bytes.length === 0 || bytes.length > MAX_BODY) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

function decode(s: string, plus = false): string {
  const t = plus ? s.replace(/\+/g, ' ') : s;
  try {
    return decodeURIComponent(t);
  } catch {
    return t;
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function jsonLeaves(root: unknown, out: Found[]): void {
  const walk = (v: unknown, path: Array<string | number>, key: string | undefined): void => {
    if (out.length >= MAX_LEAVES) return;
    if (typeof v === 'string' || typeof v === 'number') {
      const f: Found = { value: String(v), where: `jsonpath:${formatJsonPath(path)}` };
      if (key !== undefined) f.key = key;
      out.push(f);
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, [...path, '*'], key);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k], k);
    }
  };
  walk(root, [], undefined);
  for (const f of out) f.where = f.where.replace(/\['\*'\]/g, '[*]');
}

function parseJson(text: string): unknown {
  const c = text.trimStart()[0];
  if (c !== '{' && c !== '[') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function pairs(text: string, plus: boolean): Array<[string, string]> {
  if (text === '') return [];
  return text.split('&').flatMap((p) => {
    const eq = p.indexOf('=');
    return eq === -1 ? [] : [[decode(p.slice(0, eq), plus), decode(p.slice(eq + 1), plus)] as [string, string]];
  });
}

/** Path segments and query values of a target or URL; `where` prefix for each. */
function urlParts(target: string, out: Found[], whereOf: (kind: 'path' | 'query', arg: string) => Found | undefined): void {
  let t = target;
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(t);
  if (abs) t = t.slice(abs[0].length) || '/';
  const q = t.search(/[?#]/);
  const path = q === -1 ? t : t.slice(0, q);
  if (path.startsWith('/')) {
    path.slice(1).split('/').forEach((seg, i) => {
      const f = whereOf('path', String(i));
      if (f && seg !== '') out.push({ ...f, value: decode(seg), idPlace: true });
    });
  }
  if (q !== -1 && t[q] === '?') {
    const h = t.indexOf('#', q);
    for (const [k, v] of pairs(t.slice(q + 1, h === -1 ? undefined : h), false)) {
      const f = whereOf('query', k);
      if (f) out.push({ ...f, value: v, key: k });
    }
  }
}

function cookieList(header: string): Array<[string, string]> {
  return header.split(';').flatMap((p) => {
    const eq = p.indexOf('=');
    return eq === -1 ? [] : [[p.slice(0, eq).trim(), p.slice(eq + 1).trim()] as [string, string]];
  });
}

/** Text and integer fields of a gRPC body's messages, each at its field-number path (`protobuf:#2.1`). */
function protobufLeaves(body: Body, out: Found[]): void {
  const walk = (fields: RawField[], path: string): void => {
    for (const f of fields) {
      if (out.length >= MAX_LEAVES) return;
      const p = path ? `${path}.${f.field}` : `#${f.field}`;
      if (f.wire === 'varint') out.push({ value: String(f.value), where: `protobuf:${p}`, key: p, idPlace: true });
      else if (f.wire === 'len' && 'string' in f) out.push({ value: f.string, where: `protobuf:${p}`, key: p });
      else if ((f.wire === 'len' || f.wire === 'group') && 'message' in f) walk(f.message, p);
    }
  };
  for (const fr of grpcFrames(body.data, 1000).frames) {
    if (fr.compressed) continue;
    const fields = decodeRaw(fr.bytes);
    if (fields) walk(fields, '');
  }
}

function bodyValues(headers: HeaderList, body: Body, out: Found[], fragments: boolean): void {
  if (/^application\/grpc/i.test(headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? '')) {
    protobufLeaves(body, out);
    return;
  }
  const text = bodyText(body);
  if (text === undefined) return;
  const json = parseJson(text);
  if (json !== undefined) {
    jsonLeaves(json, out);
    return;
  }
  const ctype = headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? '';
  if (/application\/x-www-form-urlencoded/i.test(ctype)) {
    for (const [k, v] of pairs(text, true)) out.push({ value: v, where: `form:${k}`, key: k });
    return;
  }
  if (!fragments) return;
  let n = 0;
  for (const m of text.matchAll(TEXT_TOKEN)) {
    if (n++ >= MAX_FRAGMENTS) break;
    const before = text.slice(Math.max(0, m.index - 12), m.index);
    const pattern = `${escapeRe(before)}([A-Za-z0-9_\\-.~+/=]{${Math.min(m[0].length, 16)},})`;
    out.push({ value: m[0], where: 'body', pattern });
  }
}

/** Values an answer produces (origins). */
export function responseValues(headers: HeaderList, body: Body): Found[] {
  const out: Found[] = [];
  for (const [rawName, value] of headers) {
    const name = rawName.toLowerCase();
    if (name === 'set-cookie') {
      const first = value.split(';')[0] ?? '';
      const eq = first.indexOf('=');
      if (eq > 0) out.push({ value: first.slice(eq + 1).trim(), where: `cookie:${first.slice(0, eq).trim()}`, key: first.slice(0, eq).trim() });
    } else if (name === 'location' || name === 'content-location') {
      out.push({ value, where: `header:${name}`, key: name });
      urlParts(value, out, (kind, arg) => {
        const pattern =
          kind === 'path'
            ? `^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*)?${'/[^/?#]*'.repeat(Number(arg))}/([^/?#]+)`
            : `[?&]${escapeRe(encodeURIComponent(arg))}=([^&#]*)`;
        return { value: '', where: `header:${name}`, key: kind === 'query' ? arg : name, pattern };
      });
    } else if (!SKIP_HEADERS.has(name) || TIME_HEADERS.has(name)) {
      out.push({ value, where: `header:${name}`, key: name });
    }
  }
  bodyValues(headers, body, out, true);
  return out;
}

/** Values a request carries (sinks), and their place. */
export function requestValues(target: string, headers: HeaderList, body: Body): Found[] {
  const out: Found[] = [];
  for (const [rawName, value] of headers) {
    const name = rawName.toLowerCase();
    if (SKIP_HEADERS.has(name)) continue;
    if (name === 'cookie') {
      for (const [k, v] of cookieList(value)) out.push({ value: v, where: `cookie:${k}`, key: k });
      continue;
    }
    const scheme = /^([A-Za-z][\w-]*\s+)(\S+)$/.exec(value);
    if (scheme && (name === 'authorization' || name === 'proxy-authorization')) {
      out.push({ value: scheme[2]!, where: `header:${name}`, key: name, prefix: scheme[1]! });
      // Basic credentials hold user:password; the value inside is what flows, not the base64.
      continue;
    }
    out.push({ value, where: `header:${name}`, key: name });
  }
  urlParts(target, out, (kind, arg) => ({ value: '', where: `${kind}:${arg}` }));
  bodyValues(headers, body, out, false);
  return out;
}
