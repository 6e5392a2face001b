/**
 * `retap snapshot diff A B`: routes from the manifests, exchanges by a streaming merge-join on
 * the sort key (startUs, id). Both files are sorted, so memory stays flat whatever the size; an
 * exchange whose start time changed shows as removed + added. Listed ids are capped per kind.
 */
import type { RouteCount } from './format.js';
import { type OpenedSnapshot, openSnapshot, type StoredLine } from './reader.js';

export interface RouteChange {
  key: string;
  a?: { count: number; statuses: Record<string, number> };
  b?: { count: number; statuses: Record<string, number> };
}

export interface ExchangeChange {
  id: string;
  startUs: number;
  /** Top-level parts that differ: request, response, timing, notes… */
  fields?: string[];
}

export interface SnapshotDiff {
  a: { path: string; name: string; version: number; hash: string };
  b: { path: string; name: string; version: number; hash: string };
  identical: boolean;
  routes: { added: RouteChange[]; removed: RouteChange[]; changed: RouteChange[] };
  /**
   * Outbound calls linked to their request, per method (manifest `counts.links`), when A and B
   * differ there; an exchange whose link changed also lists `cause` among its changed fields.
   */
  links?: { a: Record<string, number>; b: Record<string, number> };
  exchanges: {
    added: number;
    removed: number;
    changed: number;
    same: number;
    list: { added: ExchangeChange[]; removed: ExchangeChange[]; changed: ExchangeChange[] };
  };
}

function routeKey(r: RouteCount): string {
  return `${r.direction} ${r.method} ${r.host ? `${r.host}` : ''}${r.route}`;
}

function routeDiff(a: RouteCount[], b: RouteCount[]): SnapshotDiff['routes'] {
  const ma = new Map(a.map((r) => [routeKey(r), r]));
  const mb = new Map(b.map((r) => [routeKey(r), r]));
  const out: SnapshotDiff['routes'] = { added: [], removed: [], changed: [] };
  const side = (r: RouteCount) => ({ count: r.count, statuses: r.statuses });
  for (const [k, r] of ma) {
    const o = mb.get(k);
    if (!o) out.removed.push({ key: k, a: side(r) });
    else if (r.count !== o.count || JSON.stringify(r.statuses) !== JSON.stringify(o.statuses)) out.changed.push({ key: k, a: side(r), b: side(o) });
  }
  for (const [k, r] of mb) if (!ma.has(k)) out.added.push({ key: k, b: side(r) });
  return out;
}

function changedFields(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}

export async function diffSnapshots(pathA: string, pathB: string, opts: { limit?: number } = {}): Promise<SnapshotDiff> {
  const limit = opts.limit ?? 1000;
  const A = await openSnapshot(pathA);
  const B = await openSnapshot(pathB);
  const info = (s: OpenedSnapshot) => ({ path: s.path, name: s.manifest.name, version: s.manifest.version, hash: s.manifest.hash });
  const ex: SnapshotDiff['exchanges'] = { added: 0, removed: 0, changed: 0, same: 0, list: { added: [], removed: [], changed: [] } };
  const ia = A.lines()[Symbol.asyncIterator]();
  const ib = B.lines()[Symbol.asyncIterator]();
  let a = (await ia.next()).value as StoredLine | undefined;
  let b = (await ib.next()).value as StoredLine | undefined;
  const push = (kind: 'added' | 'removed' | 'changed', l: StoredLine, fields?: string[]) => {
    ex[kind]++;
    if (ex.list[kind].length < limit) ex.list[kind].push({ id: l.id, startUs: l.us, ...(fields ? { fields } : {}) });
  };
  while (a !== undefined || b !== undefined) {
    const cmp = a === undefined ? 1 : b === undefined ? -1 : a.us !== b.us ? (a.us < b.us ? -1 : 1) : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    if (cmp < 0) {
      push('removed', a!);
      a = (await ia.next()).value as StoredLine | undefined;
    } else if (cmp > 0) {
      push('added', b!);
      b = (await ib.next()).value as StoredLine | undefined;
    } else {
      if (a!.text === b!.text) ex.same++;
      else push('changed', a!, changedFields(a!.value, b!.value));
      a = (await ia.next()).value as StoredLine | undefined;
      b = (await ib.next()).value as StoredLine | undefined;
    }
  }
  const routes = routeDiff(A.manifest.counts.routes, B.manifest.counts.routes);
  const identical =
    A.manifest.hash === B.manifest.hash ||
    (ex.added + ex.removed + ex.changed === 0 && routes.added.length + routes.removed.length + routes.changed.length === 0);
  const la = A.manifest.counts.links ?? {};
  const lb = B.manifest.counts.links ?? {};
  const links = JSON.stringify(la) === JSON.stringify(lb) ? undefined : { a: la, b: lb };
  return { a: info(A), b: info(B), identical, routes, ...(links ? { links } : {}), exchanges: ex };
}
