/**
 * Token discovery over exchanges in recorded order (one pass, values indexed by string):
 *
 * - every answer's values (JSON leaves, headers, Set-Cookie, Location parts, text fragments)
 *   go into an index: value → the exchanges and places that produced it;
 * - every later request's values (headers, cookies, path segments, query, JSON and form bodies)
 *   are looked up in it: a hit from the same client is a token flow (origin → use);
 * - a value the client itself sent before the answer produced it is not a flow (echoes);
 * - sessions: a request that carries a value from an earlier answer joins that answer's session
 *   (credentials are looked at first: Authorization, cookies); one that carries none starts a new
 *   session. The same client means the same peer address.
 * - values volatile by nature (JWTs, times, uuids, request ids, nonces) are counted per route
 *   and place, whether they flow or not;
 * - outbound calls whose answer echoes a value of their request are noted for mocks.
 */
import { type Exchange, isQuarantined } from '../../core/exchange.js';
import { routeTemplate } from '../routes.js';
import { classify, type Classified, isCandidate, volatileKind } from './classify.js';
import { type Found, requestValues, responseValues } from './values.js';

/** Index and memory bounds: values remembered, and producers kept per value. */
const INDEX_CAP = 500_000;
const PRODUCERS_PER_VALUE = 4;

export interface Producer {
  exchange: string;
  startUs: number;
  client: string;
  session: string;
  direction: Exchange['direction'];
  method: string;
  route: string;
  found: Found;
}

export interface Use {
  exchange: string;
  where: string;
  method: string;
  route: string;
  prefix?: string;
  suffix?: string;
}

export interface Flow {
  producer: Producer;
  value: string;
  kind: Classified;
  uses: Use[];
}

export interface VolatileSpot {
  direction: Exchange['direction'];
  side: 'request' | 'response';
  method: string;
  route: string;
  host?: string;
  where: string;
  kind: Classified;
  count: number;
  example: string;
  /** For response values in JSON/headers: how to read them again (extractor). */
  pattern?: string;
  /** True when some value at this spot also flowed as a token. */
  flows: boolean;
}

export interface Echo {
  method: string;
  route: string;
  host?: string;
  requestWhere: string;
  responseWhere: string;
  count: number;
  example: string;
}

export interface Discovery {
  flows: Flow[];
  volatile: VolatileSpot[];
  echoes: Echo[];
  /** Session of every exchange that took part in a flow. */
  sessions: Map<string, string>;
  exchanges: number;
}

export interface Discoverer {
  /** Exchanges must come in recorded order (snapshot order: start time, then id). */
  add(ex: Exchange): void;
  finish(): Discovery;
}

function capSet<K, V>(m: Map<K, V>, k: K, v: V): void {
  if (m.size >= INDEX_CAP && !m.has(k)) {
    const oldest = m.keys().next();
    if (!oldest.done) m.delete(oldest.value);
  }
  m.set(k, v);
}

/** Credentials decide the session first. */
function sinkRank(where: string): number {
  if (where === 'header:authorization') return 0;
  if (where.startsWith('cookie:')) return 1;
  if (where.startsWith('header:')) return 2;
  return 3;
}

export function createDiscoverer(): Discoverer {
  const index = new Map<string, Producer[]>();
  const requestSeen = new Map<string, number>();
  const flows = new Map<string, Flow>();
  const sessions = new Map<string, string>();
  const volatile = new Map<string, VolatileSpot>();
  const echoes = new Map<string, Echo>();
  let sessionCount = 0;
  let exchanges = 0;

  const spot = (ex: Exchange, side: 'request' | 'response', exRoute: string, f: Found, c: Classified): void => {
    // Headers such as Date or X-Request-Id mean the same on every route: one place per host.
    const anyRoute = f.where.startsWith('header:') && !f.pattern;
    const method = anyRoute ? '*' : ex.request.method;
    const route = anyRoute ? '/**' : exRoute;
    const host = ex.direction === 'outbound' ? (ex.peer.host ?? '') : '';
    const key = `${ex.direction}|${host}|${side}|${method}|${route}|${f.where}|${f.pattern ?? ''}|${c.kind}`;
    const s = volatile.get(key);
    if (s) {
      s.count++;
      return;
    }
    const v: VolatileSpot = { direction: ex.direction, side, method, route, where: f.where, kind: c, count: 1, example: ex.id, flows: false };
    if (ex.direction === 'outbound' && ex.peer.host) v.host = ex.peer.host;
    if (f.pattern) v.pattern = f.pattern;
    capSet(volatile, key, v);
  };

  const noteVolatile = (ex: Exchange, side: 'request' | 'response', route: string, list: Found[]): void => {
    for (const f of list) {
      const c = volatileKind(f.value, { ...(f.key ? { key: f.key } : {}), ...(f.idPlace ? { idPlace: true } : {}) });
      if (c) spot(ex, side, route, f, c);
    }
  };

  return {
    add(ex) {
      // a quarantined exchange is never replayed: nothing flows from or into it
      if (isQuarantined(ex)) return;
      exchanges++;
      const req = ex.request;
      const client = ex.direction === 'inbound' ? `in|${ex.peer.addr}` : `out|${ex.service.pid ?? ex.service.addr}`;
      const sent = requestValues(req.target, req.headers, req.body);
      const sinks = sent.filter((f) => isCandidate(f.value, { ...(f.key ? { key: f.key } : {}), ...(f.idPlace ? { idPlace: true } : {}) }));

      // 1. Uses: request values produced by earlier answers to the same client.
      const hits: Array<{ f: Found; producers: Producer[] }> = [];
      for (const f of sinks) {
        const producers = index.get(f.value)?.filter((p) => {
          if (p.client !== client || p.exchange === ex.id || p.startUs > ex.timing.startUs) return false;
          const seen = requestSeen.get(f.value);
          return seen === undefined || seen > p.startUs;
        });
        if (producers && producers.length > 0) hits.push({ f, producers });
      }
      hits.sort((a, b) => sinkRank(a.f.where) - sinkRank(b.f.where));
      const session = hits[0]?.producers.at(-1)?.session ?? `s${++sessionCount}`;
      const routeSegs = new Set<string>();
      for (const h of hits) if (h.f.where.startsWith('path:')) routeSegs.add(h.f.value);
      const route = routeTemplate(req.target, routeSegs);
      for (const { f, producers } of hits) {
        const p = producers.findLast((x) => x.session === session) ?? producers.at(-1)!;
        const key = `${p.exchange}\u0000${p.found.where}\u0000${p.found.pattern ?? ''}\u0000${f.value}`;
        let flow = flows.get(key);
        if (!flow) {
          const hint = { ...(p.found.key ? { key: p.found.key } : {}), ...(f.idPlace || p.found.idPlace ? { idPlace: true } : {}) };
          flow = { producer: p, value: f.value, kind: classify(f.value, hint), uses: [] };
          flows.set(key, flow);
          sessions.set(p.exchange, p.session);
        }
        if (!flow.uses.some((u) => u.exchange === ex.id && u.where === f.where)) {
          const u: Use = { exchange: ex.id, where: f.where, method: req.method, route };
          if (f.prefix) u.prefix = f.prefix;
          if (f.suffix) u.suffix = f.suffix;
          flow.uses.push(u);
        }
        sessions.set(ex.id, p.session);
      }

      // 2. What this client now knows from its own request.
      for (const f of sinks) if (!requestSeen.has(f.value)) capSet(requestSeen, f.value, ex.timing.startUs);
      noteVolatile(ex, 'request', route, sent);

      // 3. Origins: the answer's values.
      const res = ex.response;
      if (!res) return;
      const produced = responseValues(res.headers, res.body);
      noteVolatile(ex, 'response', route, produced);
      if (ex.direction === 'outbound') {
        const byValue = new Map(sinks.map((f) => [f.value, f]));
        for (const f of produced) {
          const from = byValue.get(f.value);
          if (!from || f.pattern) continue;
          const key = `${req.method}|${route}|${from.where}|${f.where}`;
          const e = echoes.get(key);
          if (e) e.count++;
          else {
            const echo: Echo = { method: req.method, route, requestWhere: from.where, responseWhere: f.where, count: 1, example: ex.id };
            if (ex.peer.host) echo.host = ex.peer.host;
            capSet(echoes, key, echo);
          }
        }
        return;
      }
      for (const f of produced) {
        if (!isCandidate(f.value, { ...(f.key ? { key: f.key } : {}), ...(f.idPlace ? { idPlace: true } : {}) })) continue;
        const p: Producer = { exchange: ex.id, startUs: ex.timing.startUs, client, session, direction: ex.direction, method: req.method, route, found: f };
        const list = index.get(f.value);
        if (list) {
          list.push(p);
          if (list.length > PRODUCERS_PER_VALUE) list.shift();
        } else capSet(index, f.value, [p]);
      }
    },

    finish() {
      const list = [...flows.values()].filter((f) => f.uses.length > 0);
      // Mark volatile spots that also flowed (their values are handled by flow rules).
      const origins = new Set(list.map((f) => `${f.producer.method}|${f.producer.route}|${f.producer.found.where}`));
      for (const v of volatile.values()) {
        if (v.side === 'response' && origins.has(`${v.method}|${v.route}|${v.where}`)) v.flows = true;
      }
      return { flows: list, volatile: [...volatile.values()], echoes: [...echoes.values()], sessions, exchanges };
    },
  };
}

export async function discoverTokens(exchanges: AsyncIterable<Exchange> | Iterable<Exchange>): Promise<Discovery> {
  const d = createDiscoverer();
  for await (const ex of exchanges) d.add(ex);
  return d.finish();
}
