/**
 * Filters over stored exchanges, shared by `retap snapshot filter` and the traffic viewer
 * (`retap view`, whose query language parses into the same FilterSpec).
 *
 * All given conditions must hold (AND); values within one condition are alternatives (OR), except
 * headers, JSON fields and text terms, which must each hold. A filter compiles into two stages:
 * `quick` looks only at an exchange's summary (time, direction, method, host, target, status,
 * service, protocol, peer), which the viewer keeps in columns for a million exchanges without
 * reading them; `full` needs the whole stored exchange (headers, bodies, extras) and is absent
 * when no such condition is given. `text` terms also yield the lowercased needles that a text
 * index may use to skip exchanges that cannot match (see `searchableTexts`).
 */
import { usageError } from '../core/errors.js';
import type { StoredLine } from './reader.js';
import { routeOf } from './stats.js';

export interface FilterSpec {
  /** Start time bounds, microseconds since the epoch (inclusive from, exclusive to). */
  fromUs?: number;
  toUs?: number;
  direction?: 'inbound' | 'outbound';
  methods?: string[];
  hosts?: string[];
  /** Globs over the path (`/orders/*`), optionally prefixed by a method (`GET /orders/**`); `{id}` route templates work too. */
  routes?: string[];
  /** `200`, `5xx`, `400-499`, `none` (no response). */
  statuses?: string[];
  /** `name` (present), `name=value` (equal, case-insensitive name), `name~regex`. */
  headers?: string[];
  /** Globs over the observed service's name (`--service` at capture) or process name. */
  services?: string[];
  /** Protocol names: `http1`, `http2`, `grpc`, and whatever later decoders name. */
  protocols?: string[];
  /** Globs over the other side's address (`10.0.0.7`, `127.0.0.*`) or `addr:port`. */
  peers?: string[];
  /** JSON body fields, request or response: `path=value`, `path~regex` or `path` (present); path `user.id`, `items[0].sku`. */
  json?: string[];
  /** Case-insensitive text, each anywhere in the exchange (see `searchableTexts`); a string is one term. */
  text?: string | string[];
}

// biome-ignore lint/suspicious/noExplicitAny: schema-checked stored exchange
type Stored = any;
type Pred = (v: StoredLine['value']) => boolean;

/** The few fields of an exchange that cheap conditions read; the viewer serves them from columns. */
export interface ExchangeSummary {
  readonly startUs: number;
  readonly direction: string;
  readonly method: string;
  readonly target: string;
  /** Host the request went to: peer host, Host/:authority header, else the peer address. */
  readonly host: string;
  /** Response status; undefined when there was no response. */
  readonly status: number | undefined;
  readonly protocol: string;
  /** Service name, else process name, else `addr:port` of the observed side. */
  readonly service: string;
  /** The other side's address. */
  readonly peerAddr: string;
  readonly peerPort: number;
}

export function hostOfStored(v: Stored): string {
  if (v.peer.host) return String(v.peer.host);
  for (const [n, val] of v.request.headers as Array<[string, string]>) {
    const l = n.toLowerCase();
    if (l === 'host' || l === ':authority') return val;
  }
  return String(v.peer.addr);
}

export function serviceOfStored(v: Stored): string {
  const s = v.service;
  return String(s.name ?? s.comm ?? `${s.addr}:${s.port}`);
}

/** Summary of a stored exchange (what `quick` conditions read). */
export function summarize(v: Stored): ExchangeSummary {
  return {
    startUs: v.timing.startUs,
    direction: v.direction,
    method: String(v.request.method),
    target: String(v.request.target),
    host: hostOfStored(v),
    status: v.response?.status,
    protocol: String(v.protocol),
    service: serviceOfStored(v),
    peerAddr: String(v.peer.addr),
    peerPort: Number(v.peer.port),
  };
}

function globToRegExp(glob: string, flags = ''): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, flags);
}

function statusPred(spec: string): (s: number | undefined) => boolean {
  const t = spec.trim().toLowerCase();
  if (t === 'none') return (s) => s === undefined;
  let m = /^([1-5])xx$/.exec(t);
  if (m) {
    const lo = Number(m[1]) * 100;
    return (s) => s !== undefined && s >= lo && s < lo + 100;
  }
  m = /^(\d{3})-(\d{3})$/.exec(t);
  if (m) {
    const lo = Number(m[1]);
    const hi = Number(m[2]);
    return (s) => s !== undefined && s >= lo && s <= hi;
  }
  if (/^\d{3}$/.test(t)) return (s) => s === Number(t);
  throw usageError(`status: '${spec}' is not a status`, 'Use 200, 5xx, 400-499 or none.');
}

function regexOf(source: string, what: string): RegExp {
  try {
    return new RegExp(source, 'i');
  } catch (e) {
    throw usageError(`${what}: bad regular expression: ${(e as Error).message}`);
  }
}

function headerPred(spec: string): (h: Array<[string, string]>) => boolean {
  const tilde = spec.indexOf('~');
  const eq = spec.indexOf('=');
  if (tilde > 0 && (eq === -1 || tilde < eq)) {
    const name = spec.slice(0, tilde).toLowerCase();
    const re = regexOf(spec.slice(tilde + 1), `header '${spec}'`);
    return (h) => h.some(([n, v]) => n.toLowerCase() === name && re.test(v));
  }
  if (eq > 0) {
    const name = spec.slice(0, eq).toLowerCase();
    const value = spec.slice(eq + 1);
    return (h) => h.some(([n, v]) => n.toLowerCase() === name && v === value);
  }
  const name = spec.toLowerCase();
  return (h) => h.some(([n]) => n.toLowerCase() === name);
}

type StoredBodyLike = { data: string; encoding: string; decoded?: { data: string; encoding: string } } | undefined;

/** Text of a stored body: its content-decoded form when that is text, else its bytes when they are text. */
export function bodyText(b: StoredBodyLike): string {
  if (!b) return '';
  if (b.decoded?.encoding === 'utf8') return b.decoded.data;
  return b.encoding === 'utf8' ? b.data : '';
}

/** `user.id`, `items[0].sku`, `$.a.b` → path segments. */
export function parseJsonPath(path: string): Array<string | number> {
  const p = path.trim().replace(/^\$\.?/, '');
  if (p === '') return [];
  if (!/^(?:[^.[\]]+|\[(?:\d+|\*)\])(?:\.[^.[\]]+|\[(?:\d+|\*)\])*$/.test(p)) {
    throw usageError(`json: '${path}' is not a field path`, 'Use a.b.c, items[0].sku or items[*].sku.');
  }
  const out: Array<string | number> = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\[\*\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(p)) !== null) out.push(m[2] !== undefined ? Number(m[2]) : m[0] === '[*]' ? '*' : m[1]!);
  return out;
}

function valuesAt(root: unknown, path: Array<string | number>): unknown[] {
  let cur: unknown[] = [root];
  for (const seg of path) {
    const next: unknown[] = [];
    for (const v of cur) {
      if (seg === '*') {
        if (Array.isArray(v)) next.push(...v);
      } else if (typeof seg === 'number') {
        if (Array.isArray(v) && seg < v.length) next.push(v[seg]);
      } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, seg)) {
        next.push((v as Record<string, unknown>)[seg]);
      } else if (Array.isArray(v) && /^\d+$/.test(seg) && Number(seg) < v.length) {
        next.push(v[Number(seg)]);
      }
    }
    cur = next;
    if (cur.length === 0) break;
  }
  return cur;
}

function scalarText(v: unknown): string {
  return v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function jsonOfBody(b: StoredBodyLike): unknown {
  const t = bodyText(b).trim();
  if (t === '' || (t[0] !== '{' && t[0] !== '[')) return undefined;
  try {
    return JSON.parse(t);
  } catch {
    return undefined;
  }
}

function jsonPred(spec: string): (v: Stored) => boolean {
  const m = /^([^=~]+)(?:([=~])([\s\S]*))?$/.exec(spec);
  if (!m) throw usageError(`json: '${spec}' is not a condition`, "Use 'path=value', 'path~regex' or 'path'.");
  const path = parseJsonPath(m[1]!);
  const op = m[2];
  const want = m[3] ?? '';
  const re = op === '~' ? regexOf(want, `json '${spec}'`) : undefined;
  const test = (root: unknown): boolean => {
    if (root === undefined) return false;
    const vals = valuesAt(root, path);
    if (!op) return vals.length > 0;
    return vals.some((x) => (re ? re.test(scalarText(x)) : scalarText(x) === want));
  };
  return (v) => test(jsonOfBody(v.request.body)) || test(jsonOfBody(v.response?.body));
}

function pushLeaves(value: unknown, out: string[], depth: number): void {
  if (depth > 32) return;
  if (typeof value === 'string') out.push(value);
  else if (typeof value === 'number' || typeof value === 'bigint') out.push(String(value));
  else if (Array.isArray(value)) for (const x of value) pushLeaves(x, out, depth + 1);
  else if (value !== null && typeof value === 'object') for (const x of Object.values(value)) pushLeaves(x, out, depth + 1);
}

/**
 * Every string that full-text conditions search, one exchange: the target, each header and
 * trailer as `name: value`, request and response bodies as text (content-decoded when that is
 * text), and every string and number a protocol decoder put in `extras` (decoded gRPC messages;
 * database queries and rows once those decoders exist). Notes are included (`gap`, `truncated`).
 */
export function searchableTexts(v: Stored): string[] {
  const out: string[] = [String(v.request.target)];
  const heads = (h: Array<[string, string]> | undefined) => {
    if (h) for (const [n, val] of h) out.push(`${n}: ${val}`);
  };
  heads(v.request.headers);
  heads(v.request.trailers);
  const rq = bodyText(v.request.body);
  if (rq) out.push(rq);
  if (v.response) {
    heads(v.response.headers);
    heads(v.response.trailers);
    const rs = bodyText(v.response.body);
    if (rs) out.push(rs);
  }
  if (v.extras) pushLeaves(v.extras, out, 0);
  if (v.notes) for (const n of v.notes as string[]) out.push(n);
  return out;
}

/** Case folding of text conditions (both sides). */
export function foldText(s: string): string {
  return s.toLowerCase();
}

export interface CompiledFilter {
  /** Conditions on the summary only. */
  quick: (s: ExchangeSummary) => boolean;
  /** Conditions that need the whole stored exchange; undefined when there are none. */
  full: Pred | undefined;
  /** Folded text terms (each must occur in one searchable string). */
  needles: string[];
  /** The whole filter on a stored exchange. */
  matches: Pred;
}

export function textTerms(spec: FilterSpec): string[] {
  const t = spec.text;
  const list = t === undefined ? [] : Array.isArray(t) ? t : [t];
  return list.filter((x) => x !== '');
}

export function compileFilterParts(spec: FilterSpec): CompiledFilter {
  const quick: Array<(s: ExchangeSummary) => boolean> = [];
  if (spec.fromUs !== undefined) {
    const from = spec.fromUs;
    quick.push((s) => s.startUs >= from);
  }
  if (spec.toUs !== undefined) {
    const to = spec.toUs;
    quick.push((s) => s.startUs < to);
  }
  if (spec.direction) {
    const d = spec.direction;
    quick.push((s) => s.direction === d);
  }
  if (spec.methods?.length) {
    const set = new Set(spec.methods.map((m) => m.toUpperCase()));
    quick.push((s) => set.has(s.method.toUpperCase()));
  }
  if (spec.hosts?.length) {
    const globs = spec.hosts.map((h) => globToRegExp(h.toLowerCase()));
    quick.push((s) => {
      const host = s.host.toLowerCase();
      const bare = host.replace(/:\d+$/, '');
      return globs.some((g) => g.test(host) || g.test(bare));
    });
  }
  if (spec.routes?.length) {
    const tests = spec.routes.map((r) => {
      const m = /^([A-Za-z]+)\s+(\S.*)$/.exec(r.trim());
      const method = m ? m[1]!.toUpperCase() : undefined;
      const glob = globToRegExp(m ? m[2]! : r.trim());
      return (s: ExchangeSummary) => {
        if (method && s.method.toUpperCase() !== method) return false;
        const path = s.target.split('?')[0]!;
        return glob.test(path) || glob.test(routeOf(s.target));
      };
    });
    quick.push((s) => tests.some((t) => t(s)));
  }
  if (spec.statuses?.length) {
    const tests = spec.statuses.map(statusPred);
    quick.push((s) => tests.some((t) => t(s.status)));
  }
  if (spec.services?.length) {
    const globs = spec.services.map((g) => globToRegExp(g, 'i'));
    quick.push((s) => globs.some((g) => g.test(s.service)));
  }
  if (spec.protocols?.length) {
    const set = new Set(spec.protocols.map((p) => p.toLowerCase()));
    quick.push((s) => set.has(s.protocol.toLowerCase()));
  }
  if (spec.peers?.length) {
    const globs = spec.peers.map((g) => globToRegExp(g, 'i'));
    quick.push((s) => globs.some((g) => g.test(s.peerAddr) || g.test(`${s.peerAddr}:${s.peerPort}`)));
  }

  const full: Pred[] = [];
  for (const h of spec.headers ?? []) {
    const test = headerPred(h);
    full.push((v) => test(v.request.headers) || (v.response !== undefined && test(v.response.headers)));
  }
  for (const j of spec.json ?? []) full.push(jsonPred(j));
  const needles = textTerms(spec).map(foldText);
  if (needles.length) {
    full.push((v) => {
      const texts = searchableTexts(v).map(foldText);
      return needles.every((n) => texts.some((t) => t.includes(n)));
    });
  }
  const q = (s: ExchangeSummary) => {
    for (const p of quick) if (!p(s)) return false;
    return true;
  };
  const f = full.length === 0 ? undefined : (v: Stored) => full.every((p) => p(v));
  return {
    quick: q,
    full: f,
    needles,
    matches: (v) => q(summarize(v)) && (f === undefined || f(v)),
  };
}

export function compileFilter(spec: FilterSpec): Pred {
  return compileFilterParts(spec).matches;
}

/** `2024-05-01T12:00:00Z`, epoch seconds/ms/µs, or `+30s` / `-5m` relative to `base` (µs). */
export function parseTimeUs(text: string, flag: string, baseUs?: number): number {
  const rel = /^([+-])(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (rel) {
    if (baseUs === undefined) throw usageError(`${flag}: a relative time needs a snapshot with exchanges`);
    const n = Number(rel[2]) * { ms: 1e3, s: 1e6, m: 6e7, h: 3.6e9 }[rel[3] as 'ms' | 's' | 'm' | 'h'];
    return Math.round(rel[1] === '+' ? baseUs + n : baseUs - n);
  }
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n < 1e11 ? n * 1e6 : n < 1e14 ? n * 1e3 : n;
  }
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) {
    throw usageError(`${flag}: '${text}' is not a time`, 'Use an ISO time (2024-05-01T12:00:00Z), epoch seconds, or +30s/-5m from the first exchange.');
  }
  return ms * 1000;
}
