/**
 * What a replay will do, computed from a snapshot: the inbound requests in recorded order grouped
 * into client sessions, the outbound calls the recorded service made while answering each one
 * (linked by execution context, trace id or time window: snapshots/links.ts), and the dependency
 * endpoints to mock.
 */
import { hasToken } from '../core/http1.js';
import { type Exchange, type HeaderList, isQuarantined } from '../core/exchange.js';
import type { RecordedItem } from '../core/results.js';
import { linkCalls, markOpeningCalls, routeTemplate } from '../snapshots/index.js';

export interface ReplayPlan {
  items: RecordedItem[];
  outbound: Exchange[];
  /** Sessions in order of their first request; each lists item indexes in recorded order. */
  sessions: Array<{ key: string; items: number[] }>;
  /** Host names the build called (from Host/:authority or the peer address), for the hosts file. */
  hosts: string[];
  /** Quarantined exchanges of the snapshot: never replayed, never served, only counted. */
  quarantined: number;
}

/** How requests are grouped into sessions that keep their order: by client connection by default. */
export type SessionKey = (ex: Exchange) => string;
export const byConnection: SessionKey = (ex) => ex.connection.id;

export function planReplay(everything: Exchange[], sessionKey: SessionKey = byConnection): ReplayPlan {
  const all = everything.filter((e) => !isQuarantined(e));
  const inbound = all
    .filter((e) => e.direction === 'inbound')
    .sort((a, b) => a.timing.startUs - b.timing.startUs || a.id.localeCompare(b.id));
  const outbound = all
    .filter((e) => e.direction === 'outbound')
    .sort((a, b) => a.timing.startUs - b.timing.startUs);
  const items: RecordedItem[] = inbound.map((ex) => ({
    id: ex.id,
    route: `${ex.request.method} ${routeTemplate(ex.request.target)}`,
    session: sessionKey(ex),
    exchange: ex,
    outbound: [],
  }));
  // step: each outbound call belongs to the inbound request that caused it (snapshots/links.ts:
  // the link capture decided, the trace id, else a time window); the link travels on the call
  const byId = new Map(items.map((it) => [it.id, it]));
  const links = linkCalls(all);
  markOpeningCalls(outbound);
  for (const out of outbound) {
    const link = links.get(out.id);
    if (!link) {
      delete out.cause;
      continue;
    }
    out.cause = { exchange: link.inbound.id, method: link.method };
    byId.get(link.inbound.id)?.outbound.push(out);
  }
  const sessions = new Map<string, number[]>();
  items.forEach((it, i) => {
    const list = sessions.get(it.session);
    if (list) list.push(i);
    else sessions.set(it.session, [i]);
  });
  const hosts = new Set<string>();
  for (const o of outbound) hosts.add(o.peer.host ?? o.peer.addr);
  return {
    items,
    outbound,
    sessions: [...sessions].map(([key, list]) => ({ key, items: list })),
    hosts: [...hosts].filter((h) => h !== ''),
    quarantined: everything.length - all.length,
  };
}

/** Every value of a header, joined as one list (`Connection: a` + `Connection: b` → `a, b`). */
function allValues(headers: HeaderList, name: string): string {
  let out = '';
  for (const [n, v] of headers) if (n.length === name.length && n.toLowerCase() === name) out += `${v},`;
  return out;
}

/**
 * Whether the recorded connection ended after this exchange, as HTTP/1 says it does: an explicit
 * `Connection: close` in the request or the answer, or HTTP/1.0 without keep-alive on either side.
 * (The last exchange of a connection ends it too; connectionPlan adds that.)
 */
export function closesAfter(ex: Exchange): boolean {
  const req = allValues(ex.request.headers, 'connection');
  if (hasToken(req, 'close')) return true;
  if (ex.request.version === 'HTTP/1.0' && !hasToken(req, 'keep-alive')) return true;
  const res = ex.response;
  if (!res) return false;
  const ans = allValues(res.headers, 'connection');
  if (hasToken(ans, 'close')) return true;
  return res.version === 'HTTP/1.0' && !hasToken(ans, 'keep-alive');
}

/**
 * Per item: the driver connection it goes out on in recorded mode, and whether that connection is
 * closed after it. A recorded connection is one driver connection, cut where the recording closed
 * it (a connection id seen again after a close, as merged or imported snapshots can have, starts
 * a new one).
 */
export function connectionPlan(items: RecordedItem[]): Array<{ connection: string; closeAfter: boolean }> {
  const out = items.map((it) => ({ connection: it.exchange.connection.id, closeAfter: false }));
  const segment = new Map<string, number>();
  const last = new Map<string, number>();
  items.forEach((it, i) => {
    const id = it.exchange.connection.id;
    const n = segment.get(id) ?? 0;
    out[i]!.connection = n ? `${id}/${n}` : id;
    last.set(out[i]!.connection, i);
    if (closesAfter(it.exchange)) {
      out[i]!.closeAfter = true;
      segment.set(id, n + 1);
    }
  });
  for (const i of last.values()) out[i]!.closeAfter = true;
  return out;
}

/**
 * Requests that must keep their relative order. Pooled: the sessions. Recorded: sessions and
 * recorded connections merged — two requests that share either one end up in one lane, in
 * recorded order, so a credential chain and a connection's request order both hold; lanes are
 * what runs concurrently.
 */
export function lanesFor(
  plan: ReplayPlan,
  mode: 'recorded' | 'pooled',
): Array<{ key: string; items: number[] }> {
  if (mode === 'pooled') return plan.sessions;
  const parent = plan.items.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    // the root is the earliest item, so a lane is named after its first request
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  for (const s of plan.sessions) for (const i of s.items) union(s.items[0]!, i);
  const firstOnConn = new Map<string, number>();
  plan.items.forEach((it, i) => {
    const first = firstOnConn.get(it.exchange.connection.id);
    if (first === undefined) firstOnConn.set(it.exchange.connection.id, i);
    else union(first, i);
  });
  const lanes = new Map<number, number[]>();
  plan.items.forEach((_, i) => {
    const root = find(i);
    const list = lanes.get(root);
    if (list) list.push(i);
    else lanes.set(root, [i]);
  });
  return [...lanes].map(([root, list]) => ({ key: plan.items[root]!.session, items: list }));
}
