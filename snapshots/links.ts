/**
 * Which inbound request caused which outbound call. Capture stores the links it decided from the
 * process's execution context in `Exchange.cause` (thread, goroutine, async context) or from the
 * trace id the application propagated; here every outbound call gets one: its stored cause when
 * that names an inbound exchange of the set, else the trace id it shares with exactly one inbound
 * request, else a time window (the latest request of the same process in flight when the call
 * started — right only when the process handles one request at a time).
 *
 * A database connection's opening calls (authentication, session settings, a client library's
 * ready check) are never linked by a time window. A connection pool opens its connections when
 * it likes — at start, or under whichever request first needs one — so a time window would give
 * them to a request in one run and to none in the next, and the gate would count them as calls
 * added or lost. Linked exactly, they keep their link.
 */
import { type DbCall, dbCallOf } from '../core/db.js';
import { type Exchange, isExactLink, isQuarantined, type LinkMethod } from '../core/exchange.js';
import { traceIdOf } from '../core/trace.js';

export interface Link {
  inbound: Exchange;
  method: LinkMethod;
}

/** Redis commands client libraries send on a new connection before its first real command. */
const REDIS_OPENING = new Set(['AUTH', 'HELLO', 'SELECT', 'READONLY', 'READWRITE', 'CLIENT', 'INFO', 'PING']);

function opens(call: DbCall): boolean {
  if (call.kind === 'session' || call.kind === 'setup') return true;
  return (
    call.system === 'redis' &&
    typeof call.command === 'string' &&
    REDIS_OPENING.has(call.command.toUpperCase())
  );
}

/**
 * Ids of the calls that open their database connection: the leading run of start-up, session
 * settings and (Redis) handshake commands, up to the connection's first other call. A
 * quarantined exchange takes no part.
 */
export function openingCalls(outbound: Iterable<Exchange>): Set<string> {
  const byConn = new Map<string, Array<{ ex: Exchange; call: DbCall }>>();
  for (const ex of outbound) {
    const call = dbCallOf(ex);
    if (!call || typeof call !== 'object' || isQuarantined(ex)) continue;
    const list = byConn.get(ex.connection.id);
    if (list) list.push({ ex, call });
    else byConn.set(ex.connection.id, [{ ex, call }]);
  }
  const out = new Set<string>();
  for (const list of byConn.values()) {
    list.sort((a, b) => a.ex.connection.order - b.ex.connection.order);
    for (const { ex, call } of list) {
      if (!opens(call)) break;
      out.add(ex.id);
    }
  }
  return out;
}

/** Marks each opening call (`extras.db.opening`) for the assertions; returns their ids. */
export function markOpeningCalls(exchanges: Iterable<Exchange>): Set<string> {
  const list = [...exchanges];
  const ids = openingCalls(list);
  for (const ex of list) if (ids.has(ex.id)) dbCallOf(ex)!.opening = true;
  return ids;
}

const endUs = (e: Exchange): number =>
  e.timing.startUs + (e.timing.responseEndNs ?? e.timing.responseStartNs ?? e.timing.requestEndNs) / 1000;

/**
 * Outbound id → its link, for every outbound exchange that has one (quarantined exchanges take
 * no part). Runs in O(n log n): the time-window search walks back from the last request started
 * before the call and stops where no earlier request can still be in flight.
 */
export function linkCalls(exchanges: Iterable<Exchange>): Map<string, Link> {
  const inbound: Exchange[] = [];
  const outbound: Exchange[] = [];
  for (const e of exchanges) {
    if (isQuarantined(e)) continue;
    (e.direction === 'inbound' ? inbound : outbound).push(e);
  }
  const byId = new Map(inbound.map((e) => [e.id, e]));
  const byTrace = new Map<string, Exchange | null>();
  for (const e of inbound) {
    const t = traceIdOf(e.request.headers);
    if (t) byTrace.set(t, byTrace.has(t) ? null : e); // null: shared by several requests
  }
  const links = new Map<string, Link>();
  const rest: Exchange[] = [];
  for (const o of outbound) {
    const stored = o.cause ? byId.get(o.cause.exchange) : undefined;
    if (stored && o.cause && isExactLink(o.cause.method)) {
      links.set(o.id, { inbound: stored, method: o.cause.method });
      continue;
    }
    const t = traceIdOf(o.request.headers);
    const traced = t ? byTrace.get(t) : undefined;
    if (traced) {
      links.set(o.id, { inbound: traced, method: 'traceparent' });
      continue;
    }
    rest.push(o);
  }
  if (rest.length === 0) return links;
  const opening = openingCalls(outbound);
  // time windows: inbound by start; prefix maximum of the ends bounds the walk back
  const sorted = [...inbound].sort((a, b) => a.timing.startUs - b.timing.startUs || (a.id < b.id ? -1 : 1));
  const starts = sorted.map((e) => e.timing.startUs);
  const maxEnd: number[] = [];
  let m = Number.NEGATIVE_INFINITY;
  for (const e of sorted) maxEnd.push((m = Math.max(m, endUs(e))));
  for (const o of rest) {
    if (opening.has(o.id)) continue;
    const t = o.timing.startUs;
    // last inbound whose start <= t
    let lo = 0;
    let hi = sorted.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= t) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (let i = at; i >= 0 && maxEnd[i]! >= t; i--) {
      const e = sorted[i]!;
      if (e.service.pid !== undefined && o.service.pid !== undefined && e.service.pid !== o.service.pid)
        continue;
      if (endUs(e) >= t) {
        links.set(o.id, { inbound: e, method: 'time-window' });
        break;
      }
    }
  }
  return links;
}

/** Count of links per method, methods in LINK_METHODS order; `none` for calls without one. */
export function linkSummary(exchanges: Exchange[], links: Map<string, Link>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of exchanges) {
    if (e.direction !== 'outbound' || isQuarantined(e)) continue;
    const k = links.get(e.id)?.method ?? 'none';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/**
 * Stored causes that name no inbound exchange of the set (the request was filtered out, or the
 * line is corrupt): `[outbound id, named id]`.
 */
export function danglingCauses(exchanges: Iterable<Exchange>): Array<[string, string]> {
  const inbound = new Set<string>();
  const withCause: Exchange[] = [];
  for (const e of exchanges) {
    if (e.direction === 'inbound') inbound.add(e.id);
    if (e.cause) withCause.push(e);
  }
  return withCause.filter((e) => !inbound.has(e.cause!.exchange)).map((e) => [e.id, e.cause!.exchange]);
}
