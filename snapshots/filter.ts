/**
 * Traffic-viewer filters over stored exchanges: time range, direction, method, host, route,
 * status, header and full text. They run on the stored JSON value, so nothing is decoded that
 * the predicate does not need. All given conditions must hold (AND); lists within one are OR.
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
  /** Case-insensitive substring searched in target, header values and text bodies. */
  text?: string;
}

type Pred = (v: StoredLine['value']) => boolean;

function globToRegExp(glob: string): RegExp {
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
  return new RegExp(`^${re}$`);
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
  throw usageError(`--status: '${spec}' is not a status`, 'Use 200, 5xx, 400-499 or none.');
}

function headerPred(spec: string): (h: Array<[string, string]>) => boolean {
  const tilde = spec.indexOf('~');
  const eq = spec.indexOf('=');
  if (tilde > 0 && (eq === -1 || tilde < eq)) {
    const name = spec.slice(0, tilde).toLowerCase();
    let re: RegExp;
    try {
      re = new RegExp(spec.slice(tilde + 1), 'i');
    } catch (e) {
      throw usageError(`--header: '${spec}' has a bad regular expression: ${(e as Error).message}`);
    }
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

function bodyText(b: { data: string; encoding: string; decoded?: { data: string; encoding: string } } | undefined): string {
  if (!b) return '';
  if (b.decoded?.encoding === 'utf8') return b.decoded.data;
  return b.encoding === 'utf8' ? b.data : '';
}

export function compileFilter(spec: FilterSpec): Pred {
  const preds: Pred[] = [];
  if (spec.fromUs !== undefined) preds.push((v) => v.timing.startUs >= spec.fromUs!);
  if (spec.toUs !== undefined) preds.push((v) => v.timing.startUs < spec.toUs!);
  if (spec.direction) preds.push((v) => v.direction === spec.direction);
  if (spec.methods?.length) {
    const set = new Set(spec.methods.map((m) => m.toUpperCase()));
    preds.push((v) => set.has(String(v.request.method).toUpperCase()));
  }
  if (spec.hosts?.length) {
    const globs = spec.hosts.map((h) => globToRegExp(h.toLowerCase()));
    preds.push((v) => {
      const hh = (v.request.headers as Array<[string, string]>).find(([n]) => n.toLowerCase() === 'host' || n === ':authority');
      const host = String(v.peer.host ?? hh?.[1] ?? v.peer.addr).toLowerCase();
      return globs.some((g) => g.test(host) || g.test(host.replace(/:\d+$/, '')));
    });
  }
  if (spec.routes?.length) {
    const tests = spec.routes.map((r) => {
      const m = /^([A-Za-z]+)\s+(\S.*)$/.exec(r.trim());
      const method = m ? m[1]!.toUpperCase() : undefined;
      const glob = globToRegExp(m ? m[2]! : r.trim());
      return (v: StoredLine['value']) => {
        if (method && String(v.request.method).toUpperCase() !== method) return false;
        const target = String(v.request.target);
        const path = target.split('?')[0]!;
        return glob.test(path) || glob.test(routeOf(target));
      };
    });
    preds.push((v) => tests.some((t) => t(v)));
  }
  if (spec.statuses?.length) {
    const tests = spec.statuses.map(statusPred);
    preds.push((v) => tests.some((t) => t(v.response?.status)));
  }
  for (const h of spec.headers ?? []) {
    const test = headerPred(h);
    preds.push((v) => test(v.request.headers) || (v.response !== undefined && test(v.response.headers)));
  }
  if (spec.text) {
    const needle = spec.text.toLowerCase();
    preds.push((v) => {
      if (String(v.request.target).toLowerCase().includes(needle)) return true;
      const heads = [...v.request.headers, ...(v.response?.headers ?? [])] as Array<[string, string]>;
      if (heads.some(([n, val]) => `${n}: ${val}`.toLowerCase().includes(needle))) return true;
      return bodyText(v.request.body).toLowerCase().includes(needle) || bodyText(v.response?.body).toLowerCase().includes(needle);
    });
  }
  return (v) => preds.every((p) => p(v));
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
