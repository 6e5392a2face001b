/**
 * `retap snapshot minimise`: a new version that keeps every distinct behaviour of the recording
 * and drops repeats. A behaviour is route × status × response schema × the set of calls the
 * request caused (linked as a replay links them: snapshots/links.ts). Requests are kept or
 * dropped by replay session (credential chains, tokens.yaml; else the client connection) so token
 * chains stay intact; the calls
 * each kept request caused are kept with it, and calls linked to no request are all kept.
 *
 * Units are taken greedily in recorded order: a unit is kept when it has a behaviour seen fewer
 * than `keep` times in the units kept so far.
 */
import { dbSignature } from '../../../assertions/db-calls.js';
import { callSignature } from '../../../assertions/outbound.js';
import { dbCallOf } from '../../../core/db.js';
import { type Exchange, headerValue, isQuarantined } from '../../../core/exchange.js';
import { planReplay } from '../../../runner/plan.js';
import { rulesFor } from '../../../runner/rules.js';
import {
  createReplayContext,
  type Derived,
  type DeriveOutput,
  label,
  openSnapshot,
  routeTemplate,
  type StoredLine,
  writeDerived,
} from '../../../snapshots/index.js';

export interface MinimiseOptions extends DeriveOutput {
  /** Examples kept per behaviour (default 1). */
  keep?: number;
}

export interface Coverage {
  behaviours: number;
  routes: number;
  statuses: number;
}

export interface MinimiseResult extends Derived {
  parent: string;
  /** What the source covers and what the new version keeps (equal by construction, checked). */
  coverage: { source: Coverage; kept: Coverage };
  requests: { source: number; kept: number };
  units: { source: number; kept: number };
  exchanges: { source: number; kept: number };
  /** Bytes of the exchange lines (uncompressed), before and after. */
  bytes: { source: number; kept: number };
  /** Quarantined exchanges are never replayed: left out. */
  quarantinedDropped: number;
}

const MAX_SHAPE = 2048;

/** The structure of a JSON value: key names and value types, arrays as the set of their element shapes. */
function shapeOfJson(v: unknown, depth = 0): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) {
    if (depth > 8) return '[…]';
    return `[${[...new Set(v.map((x) => shapeOfJson(x, depth + 1)))].sort().join('|')}]`;
  }
  if (typeof v === 'object') {
    if (depth > 8) return '{…}';
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${k}:${shapeOfJson(o[k], depth + 1)}`)
      .join(',')}}`;
  }
  return typeof v;
}

/** The response's schema: the JSON structure of its body, else its media type. */
export function responseSchema(ex: Exchange): string {
  const r = ex.response;
  if (!r) return 'no-response';
  const data = r.body.decoded ?? r.body.data;
  const type = (headerValue(r.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (data.length === 0) return 'empty';
  if (type.includes('json') || data[0] === 0x7b || data[0] === 0x5b) {
    try {
      return shapeOfJson(JSON.parse(Buffer.from(data).toString('utf8'))).slice(0, MAX_SHAPE);
    } catch {
      // not JSON after all (or truncated): its media type
    }
  }
  return type || 'unknown';
}

function callKey(ex: Exchange): string {
  const db = dbCallOf(ex);
  if (db && db.kind !== 'session' && db.kind !== 'push') return `${ex.protocol} ${dbSignature(db)}`;
  return callSignature(ex);
}

export function behaviourOf(inbound: Exchange, calls: Exchange[]): string {
  const route = `${inbound.request.method} ${routeTemplate(inbound.request.target)}`;
  const status = inbound.response ? String(inbound.response.status) : 'none';
  const set = [...new Set(calls.map(callKey))].sort();
  return `${route} ${status} ${responseSchema(inbound)} calls[${set.join('; ')}]`;
}

function coverage(list: Array<{ exchange: Exchange; behaviour: string }>): Coverage {
  const routes = new Set<string>();
  const statuses = new Set<string>();
  const behaviours = new Set<string>();
  for (const it of list) {
    routes.add(`${it.exchange.request.method} ${routeTemplate(it.exchange.request.target)}`);
    statuses.add(it.exchange.response ? String(it.exchange.response.status) : 'none');
    behaviours.add(it.behaviour);
  }
  return { behaviours: behaviours.size, routes: routes.size, statuses: statuses.size };
}

export async function minimiseSnapshot(source: string, opts: MinimiseOptions = {}): Promise<MinimiseResult> {
  const keep = opts.keep ?? 1;
  const src = await openSnapshot(source);
  const all: Exchange[] = [];
  for await (const ex of src.exchanges()) all.push(ex);
  const rules = await rulesFor(src, all);
  const sessions = createReplayContext({ transforms: rules.transforms, tokens: rules.tokens });
  const plan = planReplay(all, (ex) => sessions.sessionOf(ex));

  // replay units: requests sharing a session (a credential chain, else a client connection: the
  // token engine's sessionOf). A connection shared by several sessions (a client's pool) does not
  // tie them: what is left of it is replayed in recorded order.
  const parent = plan.items.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
    return i;
  };
  const firstBy = new Map<string, number>();
  plan.items.forEach((it, i) => {
    for (const k of [`s:${it.session}`]) {
      const j = firstBy.get(k);
      if (j === undefined) firstBy.set(k, i);
      else parent[find(i)] = find(j);
    }
  });
  const units = new Map<number, number[]>();
  plan.items.forEach((_, i) => {
    const r = find(i);
    const u = units.get(r);
    if (u) u.push(i);
    else units.set(r, [i]);
  });

  const behaviours = plan.items.map((it) => behaviourOf(it.exchange, it.outbound));
  const seen = new Map<string, number>();
  const keptItems = new Set<number>();
  let keptUnits = 0;
  // units in recorded order (of their first request)
  for (const members of [...units.values()].sort((a, b) => a[0]! - b[0]!)) {
    if (!members.some((i) => (seen.get(behaviours[i]!) ?? 0) < keep)) continue;
    keptUnits++;
    for (const i of members) {
      keptItems.add(i);
      seen.set(behaviours[i]!, (seen.get(behaviours[i]!) ?? 0) + 1);
    }
  }

  const keptIds = new Set<string>();
  const linked = new Set<string>();
  plan.items.forEach((it, i) => {
    for (const o of it.outbound) linked.add(o.id);
    if (!keptItems.has(i)) return;
    keptIds.add(it.exchange.id);
    for (const o of it.outbound) keptIds.add(o.id);
  });
  let quarantinedDropped = 0;
  for (const ex of all) {
    if (isQuarantined(ex)) quarantinedDropped++;
    // calls no request caused (start-up, background work) are dependencies too: all kept
    else if (ex.direction === 'outbound' && !linked.has(ex.id)) keptIds.add(ex.id);
  }

  const items = plan.items.map((it, i) => ({ exchange: it.exchange, behaviour: behaviours[i]! }));
  const srcCov = coverage(items);
  const keptCov = coverage(items.filter((_, i) => keptItems.has(i)));
  let bytesIn = 0;
  let bytesOut = 0;
  const lines = (async function* (): AsyncGenerator<StoredLine> {
    for await (const l of src.lines()) {
      bytesIn += Buffer.byteLength(l.text) + 1;
      if (!keptIds.has(l.id)) continue;
      bytesOut += Buffer.byteLength(l.text) + 1;
      yield l;
    }
  })();
  const derived = await writeDerived([src], lines, opts, {
    transforms: await src.transforms(),
    tokens: await src.tokens(),
    notes: [
      `minimised from ${label(src)}: ${keptItems.size} of ${plan.items.length} requests (${keptUnits} of ${units.size} replay units), ` +
        `every behaviour kept (${keptCov.behaviours}) up to ${keep} time(s)`,
    ],
    counters: src.manifest.counters,
  });
  return {
    ...derived,
    parent: src.path,
    coverage: { source: srcCov, kept: keptCov },
    requests: { source: plan.items.length, kept: keptItems.size },
    units: { source: units.size, kept: keptUnits },
    exchanges: { source: all.length, kept: derived.written },
    bytes: { source: bytesIn, kept: bytesOut },
    quarantinedDropped,
  };
}
