/**
 * Route templates: `/orders/7f3c…` → `/orders/{id}`. A segment becomes `{id}` when it looks like
 * an identifier (number, uuid, long hex, long opaque), when it is a value discovery knows to be a
 * token, or when a route table learned from the traffic saw that position take many distinct
 * values under the same prefix (`/users/ada-1`, `/users/grace-2`, … → `/users/{id}`).
 * Templates and globs (`*` one segment, `**` any depth) are matched with `routeMatches`.
 */
import { targetPath } from '../core/exchange.js';
import { isIdSegment, pathTemplate } from '../core/http.js';

function segmentsOf(target: string): string[] | undefined {
  const path = targetPath(target);
  return path.startsWith('/') ? path.split('/').slice(1) : undefined;
}

/**
 * Template of one target by the segment's own look (core/http.ts `pathTemplate`, the one
 * definition of an id segment), and known token values.
 */
export function routeTemplate(target: string, tokens?: ReadonlySet<string>): string {
  if (!tokens || tokens.size === 0) return pathTemplate(target);
  const segs = segmentsOf(target);
  if (!segs) return targetPath(target);
  return `/${segs.map((s) => (isIdSegment(s) || tokens?.has(safeDecode(s)) ? '{id}' : s)).join('/')}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Distinct values at one position before it counts as a parameter. */
const LEARN_MIN_DISTINCT = 8;
/** Values kept per position while learning (memory bound). */
const LEARN_CAP = 64;

export interface RouteTable {
  add(method: string, target: string): void;
  template(target: string, method?: string): string;
}

/**
 * Learns parameter positions from many targets. A position under a fixed prefix that took at
 * least 8 distinct values, each seen at most twice on average, is a parameter.
 */
export function createRouteTable(tokens?: ReadonlySet<string>): RouteTable {
  // key: method + template prefix of the first i segments → values seen at segment i
  const seen = new Map<string, { values: Set<string>; hits: number }>();
  const keyOf = (method: string, prefix: string[]): string => `${method} /${prefix.join('/')}`;
  const isParam = (method: string, prefix: string[]): boolean => {
    const s = seen.get(keyOf(method, prefix)) ?? seen.get(keyOf('*', prefix));
    return s !== undefined && s.values.size >= LEARN_MIN_DISTINCT && s.hits <= s.values.size * 2;
  };
  const build = (method: string, segs: string[]): string[] => {
    const out: string[] = [];
    for (const s of segs) {
      out.push(isIdSegment(s) || tokens?.has(safeDecode(s)) || isParam(method, out) ? '{id}' : s);
    }
    return out;
  };
  return {
    add(method, target) {
      const segs = segmentsOf(target);
      if (!segs) return;
      const prefix: string[] = [];
      for (const s of segs) {
        for (const m of [method, '*']) {
          const k = keyOf(m, prefix);
          let e = seen.get(k);
          if (!e) seen.set(k, (e = { values: new Set(), hits: 0 }));
          e.hits++;
          if (e.values.size < LEARN_CAP) e.values.add(s);
        }
        prefix.push(isIdSegment(s) || tokens?.has(safeDecode(s)) ? '{id}' : s);
      }
    },
    template(target, method = '*') {
      const segs = segmentsOf(target);
      if (!segs) return targetPath(target);
      return `/${build(method, segs).join('/')}`;
    },
  };
}

const globCache = new Map<string, RegExp>();

/** Compiles a route template or glob: `{name}` and `*` match one segment, `**` any number. */
export function routePattern(route: string): RegExp {
  let re = globCache.get(route);
  if (re) return re;
  const body = route
    .split('/')
    .map((seg) => {
      if (seg === '**') return '\u0000';
      return seg
        .split(/(\{[^/}]*\}|\*)/)
        .map((p) => (p === '*' || /^\{[^/}]*\}$/.test(p) ? '[^/]+' : p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
        .join('');
    })
    .join('/')
    .replace(/\/\u0000/g, '(?:/.*)?')
    .replace(/\u0000/g, '.*');
  re = new RegExp(`^${body}$`);
  if (globCache.size > 1000) globCache.clear();
  globCache.set(route, re);
  return re;
}

/** True when the target's path matches a template or glob, or its own template equals it. */
export function routeMatches(route: string, target: string): boolean {
  const path = targetPath(target);
  return routePattern(route).test(path) || routeTemplate(path) === route;
}
