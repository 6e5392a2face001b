/**
 * Queries over the store: a query selects rows (kept as a row-number array, cached per query and
 * extended as rows arrive), and everything the browser asks for is computed from a selection —
 * a page of rows, the timeline histogram, facet counts, the service map. Summary conditions run
 * over the columns; conditions on contents read only the candidate rows' lines, after the text
 * index ruled out the blocks that cannot match.
 */
import { type CompiledFilter, compileFilterParts } from '../snapshots/index.js';
import { DIR_OUTBOUND, FLAG_NO_RESPONSE, NO_GRPC, type RowView } from './columns.js';
import { type ParsedQuery, parseQuery } from './query.js';
import type { Store } from './store.js';
import { BLOCK_ROWS, trigramHashes } from './text-index.js';

export interface Selection {
  query: ParsedQuery;
  /** Matching rows in row order; null when the query is empty (every row). */
  rows: Uint32Array | null;
  count: number;
  /** Rows of the store examined so far. */
  scanned: number;
}

interface Entry extends Selection {
  compiled: CompiledFilter;
  needleHashes: number[][];
  /** Needles that may be checked on the raw line before parsing it (see rawSafe). */
  rawNeedles: string[];
  busy: Promise<void> | undefined;
  lastUsed: number;
  /** Requests waiting for this selection; a scan nobody waits for any more pauses where it is. */
  interest: number;
}

export class AbortedError extends Error {
  constructor() {
    super('the request was abandoned');
    this.name = 'AbortError';
  }
}

/**
 * A needle of printable ASCII without quote, backslash or colon appears in a stored line (JSON,
 * lowercased) wherever it appears in a searchable string: JSON writes such characters as they
 * are, and `name: value` header strings are the only searchable strings not in the line as such.
 */
function rawSafe(needle: string): boolean {
  return /^[\x20-\x7e]+$/.test(needle) && !/["\\:]/.test(needle);
}

const isError = (status: number, grpc: number, flags: number): boolean =>
  (flags & FLAG_NO_RESPONSE) !== 0 || status >= 500 || (grpc !== NO_GRPC && grpc !== 0);

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export interface MapNode {
  id: string;
  kind: 'caller' | 'service' | 'dependency';
  label: string;
  count: number;
}

export interface MapEdge {
  from: string;
  to: string;
  protocols: string[];
  count: number;
  errors: number;
  errorRate: number;
  p95Us?: number;
  /** Query that selects this edge's exchanges. */
  query: string;
}

const quote = (v: string) => (/[\s,"\\]/.test(v) ? `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"` : v);

export class Search {
  private cache = new Map<string, Entry>();
  private tick = 0;

  constructor(private readonly store: Store) {}

  /** First exchange's time: relative times in queries count from it. */
  baseUs(): number | undefined {
    const c = this.store.columns;
    return c.count > 0 ? c.minUs : undefined;
  }

  /**
   * Parses the query (usage errors say where), then brings its selection up to date. When
   * `signal` aborts (the browser moved on), the scan stops at the next block unless someone
   * else waits for the same query; what was scanned is kept for the next time.
   */
  async select(q: string, signal?: AbortSignal): Promise<Selection> {
    const query = parseQuery(q, this.baseUs());
    let e = this.cache.get(query.canonical);
    if (!e) {
      const compiled = compileFilterParts(query.spec);
      e = {
        query,
        compiled,
        needleHashes: compiled.needles.filter((n) => n.length >= 3).map(trigramHashes),
        rawNeedles: compiled.needles.filter(rawSafe),
        rows: query.terms.length === 0 ? null : new Uint32Array(1024),
        count: 0,
        scanned: 0,
        busy: undefined,
        lastUsed: ++this.tick,
        interest: 0,
      };
      this.cache.set(query.canonical, e);
      if (this.cache.size > 16) {
        const oldest = [...this.cache.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0]!;
        this.cache.delete(oldest[0]);
      }
    }
    e.lastUsed = ++this.tick;
    const entry = e;
    let counted = true;
    const drop = () => {
      if (counted) {
        counted = false;
        entry.interest--;
      }
    };
    entry.interest++;
    signal?.addEventListener('abort', drop, { once: true });
    try {
      while (entry.scanned < this.store.count) {
        if (signal?.aborted) throw new AbortedError();
        if (!entry.busy) entry.busy = this.extend(entry).finally(() => (entry.busy = undefined));
        await entry.busy;
      }
      if (signal?.aborted) throw new AbortedError();
      return entry;
    } finally {
      drop();
      signal?.removeEventListener('abort', drop);
    }
  }

  private push(e: Entry, row: number): void {
    if (e.count === e.rows!.length) {
      const b = new Uint32Array(e.rows!.length * 2);
      b.set(e.rows!);
      e.rows = b;
    }
    e.rows![e.count++] = row;
  }

  private async extend(e: Entry): Promise<void> {
    const end = this.store.count;
    if (e.rows === null) {
      e.count = end;
      e.scanned = end;
      return;
    }
    const view = this.store.columns.summaryView();
    const quick = e.compiled.quick;
    const full = e.compiled.full;
    // Block by block, so the text index can skip blocks and the event loop breathes in between.
    let started = Date.now();
    while (e.scanned < end) {
      const from = e.scanned;
      const blockEnd = Math.min(end, (Math.floor(from / BLOCK_ROWS) + 1) * BLOCK_ROWS);
      if (full === undefined) {
        for (let r = from; r < blockEnd; r++) if (quick(view.at(r))) this.push(e, r);
      } else if (this.store.text.mayContain(Math.floor(from / BLOCK_ROWS), e.needleHashes)) {
        const cand: number[] = [];
        for (let r = from; r < blockEnd; r++) if (quick(view.at(r))) cand.push(r);
        const hits: number[] = [];
        await this.store.eachLine(cand, 0, cand.length, (row, text) => {
          if (e.rawNeedles.length > 0) {
            const low = text.toLowerCase();
            for (const n of e.rawNeedles) if (!low.includes(n)) return;
          }
          let v: unknown;
          try {
            v = JSON.parse(text);
          } catch {
            return; // counted when the row was indexed
          }
          if (full(v)) hits.push(row);
        });
        for (const h of hits) this.push(e, h);
      }
      e.scanned = blockEnd;
      if (e.interest <= 0) return;
      if (Date.now() - started > 30) {
        await new Promise((r) => setImmediate(r));
        started = Date.now();
      }
    }
  }

  rowAt(s: Selection, i: number): number {
    return s.rows === null ? i : s.rows[i]!;
  }

  /** Rows `offset..offset+limit` of the selection, oldest first (`asc`) or newest first (`desc`). */
  page(s: Selection, offset: number, limit: number, order: 'asc' | 'desc'): RowView[] {
    const out: RowView[] = [];
    const c = this.store.columns;
    for (let i = offset; i < Math.min(s.count, offset + limit); i++) {
      const k = order === 'asc' ? i : s.count - 1 - i;
      out.push(c.row(this.rowAt(s, k)));
    }
    return out;
  }

  /** Counts per time bin over [fromUs, toUs) (default: the whole traffic), with errors. */
  histogram(s: Selection, bins: number, fromUs?: number, toUs?: number): { fromUs: number; toUs: number; counts: number[]; errors: number[] } {
    const c = this.store.columns;
    const lo = fromUs ?? (c.count ? c.minUs : 0);
    const hi = Math.max(lo + 1, toUs ?? (c.count ? c.maxUs + 1 : 1));
    const counts = new Array<number>(bins).fill(0);
    const errors = new Array<number>(bins).fill(0);
    const width = (hi - lo) / bins;
    for (let i = 0; i < s.count; i++) {
      const r = this.rowAt(s, i);
      const t = c.startUs[r]!;
      if (t < lo || t >= hi) continue;
      const b = Math.min(bins - 1, Math.floor((t - lo) / width));
      counts[b]!++;
      if (isError(c.status[r]!, c.grpc[r]!, c.flags[r]!)) errors[b]!++;
    }
    return { fromUs: lo, toUs: hi, counts, errors };
  }

  /**
   * Facet counts for the chips. Each facet is counted over the selection of the query without
   * that facet's own terms, so the other values of a facet stay visible (and clickable) while one
   * of them is selected.
   */
  async facets(q: string, signal?: AbortSignal): Promise<Record<string, Record<string, number>>> {
    const base = parseQuery(q, this.baseUs());
    const without = (key: string) =>
      base.terms
        .filter((t) => t.key !== key)
        .map((t) => t.raw)
        .join(' ');
    const out: Record<string, Record<string, number>> = {};
    // keys the query does not name share one selection: count it once
    const counted = new Map<Selection, Record<string, Record<string, number>>>();
    for (const key of ['dir', 'status', 'proto', 'method', 'service'] as const) {
      const sel = await this.select(without(key), signal);
      let counts = counted.get(sel);
      if (!counts) counted.set(sel, (counts = this.facetCounts(sel)));
      out[key] = counts[key]!;
    }
    return out;
  }

  private facetCounts(s: Selection): Record<string, Record<string, number>> {
    const c = this.store.columns;
    const dir = [0, 0];
    const cls: Record<string, number> = {};
    const proto = new Map<number, number>();
    const method = new Map<number, number>();
    const svc = new Map<number, number>();
    for (let i = 0; i < s.count; i++) {
      const r = this.rowAt(s, i);
      dir[c.dir[r]!]!++;
      const st = c.status[r]!;
      const k = st === 0 ? 'none' : `${Math.floor(st / 100)}xx`;
      cls[k] = (cls[k] ?? 0) + 1;
      proto.set(c.proto[r]!, (proto.get(c.proto[r]!) ?? 0) + 1);
      method.set(c.method[r]!, (method.get(c.method[r]!) ?? 0) + 1);
      svc.set(c.service[r]!, (svc.get(c.service[r]!) ?? 0) + 1);
    }
    const named = (m: Map<number, number>, t: { get(i: number): string }) =>
      Object.fromEntries([...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([k, v]) => [t.get(k), v]));
    return {
      dir: { inbound: dir[0]!, outbound: dir[1]! },
      status: cls,
      proto: named(proto, c.protocols),
      method: named(method, c.methods),
      service: named(svc, c.services),
    };
  }

  /** Callers → services → dependencies, with volume, error rate and p95 per edge. */
  serviceMap(s: Selection): { nodes: MapNode[]; edges: MapEdge[] } {
    const c = this.store.columns;
    const nodes = new Map<string, MapNode>();
    const edges = new Map<string, MapEdge & { durs: number[]; protoSet: Set<string> }>();
    const node = (id: string, kind: MapNode['kind'], label: string) => {
      let n = nodes.get(id);
      if (!n) nodes.set(id, (n = { id, kind, label, count: 0 }));
      n.count++;
      return id;
    };
    for (let i = 0; i < s.count; i++) {
      const r = this.rowAt(s, i);
      const svc = c.services.get(c.service[r]!);
      const svcId = node(`service:${svc}`, 'service', svc);
      let from: string;
      let to: string;
      let query: string;
      if (c.dir[r] === DIR_OUTBOUND) {
        // a dependency is the host asked for, with the port dialled when the host does not name one
        const host = c.hosts.get(c.host[r]!);
        const withPort = /:\d+$/.test(host) || host.endsWith(']');
        const dep = withPort ? host : `${host}:${c.peerPort[r]}`;
        from = svcId;
        to = node(`dependency:${dep}`, 'dependency', dep);
        query = `dir:outbound service:${quote(svc)} host:${quote(host)}${withPort ? '' : ` peer:*:${c.peerPort[r]}`}`;
      } else {
        const peer = c.peers.get(c.peerAddr[r]!);
        from = node(`caller:${peer}`, 'caller', peer);
        to = svcId;
        query = `dir:inbound service:${quote(svc)} peer:${quote(peer)}`;
      }
      const key = `${from}\u0000${to}`;
      let e = edges.get(key);
      if (!e) {
        e = { from, to, protocols: [], count: 0, errors: 0, errorRate: 0, query, durs: [], protoSet: new Set() };
        edges.set(key, e);
      }
      e.count++;
      if (isError(c.status[r]!, c.grpc[r]!, c.flags[r]!)) e.errors++;
      const d = c.durUs[r]!;
      if (!Number.isNaN(d)) e.durs.push(d);
      e.protoSet.add(c.protocols.get(c.proto[r]!));
    }
    return {
      nodes: [...nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
      edges: [...edges.values()].map(({ durs, protoSet, ...e }) => {
        durs.sort((a, b) => a - b);
        const p95 = percentile(durs, 95);
        return { ...e, protocols: [...protoSet].sort(), errorRate: e.count ? e.errors / e.count : 0, ...(p95 !== undefined ? { p95Us: p95 } : {}) };
      }),
    };
  }
}
