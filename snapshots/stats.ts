/**
 * Counts for the manifest, accumulated one exchange at a time (order does not matter, so the
 * writer counts on append and the result is the same whatever order exchanges arrive in).
 */
import { type Exchange, isQuarantined } from '../core/exchange.js';
import { exchangeAuthority, pathTemplate } from '../core/http.js';
import type { Counts, RouteCount } from './format.js';

/** Routes listed in the manifest; the rest are counted in `otherRoutes`. */
export const ROUTE_CAP = 2000;
/** Distinct routes tracked in memory; past this, new routes go to `otherRoutes` as they come. */
const ROUTE_MEMORY = 100_000;

/** `/orders/7/items/3f2a…` → `/orders/{id}/items/{id}` (core/http.ts). */
export const routeOf = pathTemplate;

function hostOf(ex: Exchange): string | undefined {
  return ex.direction === 'outbound' ? exchangeAuthority(ex) : undefined;
}

export interface Stats {
  add(ex: Exchange): void;
  /**
   * `scrub`, when given, rewrites route and host texts (the writer counts before it redacts:
   * a secret in a path segment must not reach the manifest); routes it makes equal merge.
   */
  counts(scrub?: (text: string) => string): Counts;
  timeRange(): { firstStartUs: number; lastStartUs: number } | null;
}

function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

function sortedMap(map: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(map).sort()) out[k] = map[k]!;
  return out;
}

/** Routes with scrubbed route and host texts, re-templated (a placeholder is an id) and merged. */
function rescrub(routes: Map<string, RouteCount>, scrub: (text: string) => string): Map<string, RouteCount> {
  const out = new Map<string, RouteCount>();
  for (const r of routes.values()) {
    const scrubbed = scrub(r.route);
    const route = scrubbed === r.route ? r.route : routeOf(scrubbed);
    const host = r.host === undefined ? undefined : scrub(r.host);
    const key = `${r.direction} ${host ?? ''} ${r.method} ${route}`;
    const prev = out.get(key);
    if (!prev) {
      out.set(key, { ...r, route, ...(host !== undefined ? { host } : {}), statuses: { ...r.statuses } });
      continue;
    }
    prev.count += r.count;
    for (const [s, n] of Object.entries(r.statuses)) bump(prev.statuses, s, n);
  }
  return out;
}

export function createStats(): Stats {
  let exchanges = 0;
  let truncatedBodies = 0;
  let noResponse = 0;
  let quarantined = 0;
  let otherRoutes = 0;
  const links: Record<string, number> = {};
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  const byDirection: Record<string, number> = {};
  const byProtocol: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  const routes = new Map<string, RouteCount>();
  return {
    add(ex) {
      exchanges++;
      bump(byDirection, ex.direction);
      bump(byProtocol, ex.protocol);
      if (ex.timing.startUs < first) first = ex.timing.startUs;
      if (ex.timing.startUs > last) last = ex.timing.startUs;
      if (isQuarantined(ex)) {
        // not a route and not a status: what was seen is kept, counted here only
        quarantined++;
        return;
      }
      if (ex.cause) bump(links, ex.cause.method);
      const status = ex.response ? String(ex.response.status) : 'none';
      bump(byStatus, status);
      if (!ex.response) noResponse++;
      if (ex.request.body.truncated) truncatedBodies++;
      if (ex.response?.body.truncated) truncatedBodies++;
      const host = hostOf(ex);
      const route = routeOf(ex.request.target);
      const key = `${ex.direction} ${host ?? ''} ${ex.request.method} ${route}`;
      let r = routes.get(key);
      if (!r) {
        if (routes.size >= ROUTE_MEMORY) {
          otherRoutes++;
          return;
        }
        r = { direction: ex.direction, method: ex.request.method, route, count: 0, statuses: {} };
        if (host !== undefined) r.host = host;
        routes.set(key, r);
      }
      r.count++;
      bump(r.statuses, status);
    },
    counts(scrub) {
      const all = [...(scrub ? rescrub(routes, scrub) : routes).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
      let other = otherRoutes;
      for (const r of all.slice(ROUTE_CAP)) other += r.count;
      const list = all.slice(0, ROUTE_CAP).map((r): RouteCount => {
        const statuses = sortedMap(r.statuses);
        if (r.host !== undefined) return { direction: r.direction, host: r.host, method: r.method, route: r.route, count: r.count, statuses };
        return { direction: r.direction, method: r.method, route: r.route, count: r.count, statuses };
      });
      const counts: Counts = {
        exchanges,
        byDirection: sortedMap(byDirection),
        byProtocol: sortedMap(byProtocol),
        byStatus: sortedMap(byStatus),
        routes: list,
        otherRoutes: other,
        truncatedBodies,
        noResponse,
      };
      if (quarantined > 0) counts.quarantined = quarantined;
      if (Object.keys(links).length > 0) counts.links = sortedMap(links);
      return counts;
    },
    timeRange() {
      return exchanges === 0 ? null : { firstStartUs: first, lastStartUs: last };
    },
  };
}
