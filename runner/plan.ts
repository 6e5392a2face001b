/**
 * What a replay will do, computed from a snapshot: the inbound requests in recorded order grouped
 * into client sessions, the outbound calls the recorded service made while answering each one
 * (attributed by time window on the same process), and the dependency endpoints to mock.
 */
import { type Exchange, isQuarantined } from '../core/exchange.js';
import type { RecordedItem } from '../core/results.js';
import { routeTemplate } from '../snapshots/routes.js';

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

const end = (e: Exchange): number =>
  e.timing.startUs + (e.timing.responseEndNs ?? e.timing.responseStartNs ?? e.timing.requestEndNs) / 1000;

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
  // step: each outbound call belongs to the inbound request of the same process whose window holds
  // its start; with several candidates (concurrency), the latest-started one.
  for (const out of outbound) {
    let best: RecordedItem | undefined;
    for (const it of items) {
      const ex = it.exchange;
      if (ex.service.pid !== undefined && out.service.pid !== undefined && ex.service.pid !== out.service.pid)
        continue;
      if (ex.timing.startUs <= out.timing.startUs && out.timing.startUs <= end(ex)) {
        if (!best || ex.timing.startUs > best.exchange.timing.startUs) best = it;
      }
    }
    best?.outbound.push(out);
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
