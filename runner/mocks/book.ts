/**
 * The answer book: recorded outbound exchanges of one endpoint indexed by signature. A call takes
 * the first recorded answer of its signature not served yet, in recorded order; past the end it
 * gets the last one again. A call known to be made for a recorded request (its scope: the
 * request being replayed that made it) takes, first, the answers recorded for that request, when
 * the recording's link to its request is exact; then answers recorded outside any known request;
 * then any. Without a match, `closest` names the nearest recording and says why it did not match.
 */
import { type Exchange, isExactLink } from '../../core/exchange.js';
import { MASK } from './canon.js';
import { describeSignature, type RequestView, type Signature, signatureOf, type Tier } from './signature.js';
import type { VolatileFields } from './volatile.js';

export interface Entry {
  exchange: Exchange;
  sig: Signature;
  served: number;
  /** The recorded request this call was made for, when the link is exact. */
  during?: string;
}

export interface Pick {
  entry: Entry;
  tier: Tier;
  /** Position among the recordings with this signature (0-based) and how many there are. */
  index: number;
  of: number;
}

export interface Closest {
  entry: Entry;
  /** Why it is not a match, e.g. `body differs at $.amount (recorded 5, live 7)`. */
  reason: string;
}

export interface Book {
  entries: Entry[];
  /** Some recorded calls have an exact link to their request: a call's scope is worth asking. */
  scoped: boolean;
  match(live: Signature, scope?: string): Pick | undefined;
  closest(live: Signature): Closest | undefined;
  /** Takes `entry` as served (closest mode), so later calls move on. */
  take(entry: Entry): void;
}

const TIERS: Tier[] = ['exact', 'route', 'loose'];

export function requestView(ex: Exchange): RequestView {
  return {
    method: ex.request.method,
    target: ex.request.target,
    headers: ex.request.headers,
    body: ex.request.body.data,
    truncated: ex.request.body.truncated,
  };
}

export function createBook(exchanges: Exchange[], known?: VolatileFields): Book {
  const entries: Entry[] = exchanges.map((exchange) => ({
    exchange,
    sig: signatureOf(requestView(exchange), known),
    served: 0,
    ...(exchange.cause && isExactLink(exchange.cause.method) ? { during: exchange.cause.exchange } : {}),
  }));
  const index = new Map<string, Entry[]>();
  for (const e of entries) {
    for (const tier of TIERS) {
      // `loose` (method + route only) stands in for recordings whose body we cannot compare.
      if (tier === 'loose' && !e.exchange.request.body.truncated) continue;
      const key = e.sig.keys[tier];
      if (key === undefined) continue;
      const k = `${tier} ${key}`;
      const list = index.get(k);
      if (list) list.push(e);
      else index.set(k, [e]);
    }
  }
  const take = (e: Entry) => {
    e.served++;
  };
  return {
    entries,
    scoped: entries.some((e) => e.during !== undefined),
    take,
    match(live, scope) {
      for (const tier of TIERS) {
        const key = live.keys[tier];
        const list = key === undefined ? undefined : index.get(`${tier} ${key}`);
        if (!list) continue;
        let i = -1;
        if (scope !== undefined) {
          i = list.findIndex((e) => e.served === 0 && e.during === scope);
          if (i === -1) i = list.findIndex((e) => e.served === 0 && e.during === undefined);
        }
        if (i === -1) i = list.findIndex((e) => e.served === 0);
        if (i === -1) i = list.length - 1;
        const entry = list[i]!;
        take(entry);
        return { entry, tier, index: i, of: list.length };
      }
      return undefined;
    },
    closest(live) {
      let best: { e: Entry; score: number } | undefined;
      for (const e of entries) {
        const s = e.sig;
        let score = 0;
        if (s.method === live.method) score += 8;
        if (s.route === live.route) score += 4;
        if (s.path === live.path) score += 2;
        if (s.query === live.query) score += 1;
        if (s.route_ === live.route_) score += 1;
        if (e.served === 0) score += 0.5;
        if (!best || score > best.score) best = { e, score };
      }
      return best ? { entry: best.e, reason: whyNot(best.e.sig, live) } : undefined;
    },
  };
}

/** The first difference between a recorded signature and a live one, in words. */
export function whyNot(rec: Signature, live: Signature): string {
  if (rec.method !== live.method) return `method differs (recorded ${rec.method}, live ${live.method})`;
  if (rec.route !== live.route) return `path differs (recorded ${rec.path}, live ${live.path})`;
  if (rec.query !== live.query) return `query differs (recorded '${rec.query}', live '${live.query}')`;
  const diff = bodyDifference(rec.route_, live.route_);
  return `body differs${diff ? ` ${diff}` : ''}`;
}

function bodyDifference(a: string, b: string): string {
  if (a.startsWith('json:') && b.startsWith('json:')) {
    const [ja, jb] = [JSON.parse(a.slice(5)), JSON.parse(b.slice(5))];
    // A differing real value explains a miss better than a volatile field present on one side only.
    const d = firstDifference(ja, jb, '$', true) ?? firstDifference(ja, jb, '$', false);
    if (d) return d;
  }
  if (a === '') return '(recorded none, live has one)';
  if (b === '') return '(recorded one, live has none)';
  return `(recorded ${short(a)}, live ${short(b)})`;
}

const short = (v: unknown): string => {
  const t = typeof v === 'string' ? v : JSON.stringify(v);
  return t === undefined ? 'nothing' : t.length > 60 ? `${t.slice(0, 59)}…` : t;
};

function firstDifference(a: unknown, b: unknown, path: string, skipMasked: boolean): string | undefined {
  if (skipMasked && (a === MASK || b === MASK)) return undefined;
  if (
    a !== null &&
    b !== null &&
    typeof a === 'object' &&
    typeof b === 'object' &&
    Array.isArray(a) === Array.isArray(b)
  ) {
    if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const d = firstDifference(a[i], b[i], `${path}[${i}]`, skipMasked);
        if (d) return d;
      }
      return undefined;
    }
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort()) {
      const d = firstDifference(ra[k], rb[k], `${path}.${k}`, skipMasked);
      if (d) return d;
    }
    return undefined;
  }
  return JSON.stringify(a) === JSON.stringify(b)
    ? undefined
    : `at ${path} (recorded ${short(a)}, live ${short(b)})`;
}

export { describeSignature };
