/**
 * Joins the answers capture saw at the build to the requests the driver sent — by connection,
 * with nothing added to the requests.
 *
 * The build's side of each driver connection is an accepted socket whose peer port is the driver
 * socket's local port; capture numbers the exchanges on it (`connection.order`). The driver notes
 * for every request the socket it went out on (local port + when it was opened) and its position
 * there (runner/driver.ts, `SocketUse`). So a captured connection belongs to the driver socket with
 * its peer port, and its n-th exchange to the n-th request written on that socket.
 *
 * What makes it more than a lookup:
 * - A local port is reused over a long run (or right away, on loopback): several driver sockets
 *   and several captured connections share one port. They are paired in time order (each side
 *   sorted by its own clock, so a clock offset between the two cannot reorder them), as an
 *   alignment that may skip a socket capture never saw or a connection the driver does not know
 *   (a readiness probe): the pairing that joins the most requests wins, then the one whose
 *   captured start times sit closest to the driver's send times.
 * - A request and the exchange at its position must agree on method and target, so a connection
 *   where capture lost an exchange (or the build closed before reading a request) is realigned
 *   instead of shifting every later answer onto the wrong request; what cannot be matched stays
 *   unjoined, and the client's view of it is used, as for any answer capture missed.
 */
import type { Exchange } from '../core/exchange.js';
import type { SocketUse } from '../core/results.js';

export interface SentRequest {
  /** Caller's index for this request (returned as the key of the join). */
  index: number;
  method: string;
  target: string;
  /** Where it went out; absent when it never reached a socket (connect failed, not sent). */
  socket?: SocketUse | undefined;
}

interface DriverSocket {
  port: number;
  openedUs: number;
  /** Requests in the order written on the socket. */
  reqs: SentRequest[];
}

interface CapturedConn {
  port: number;
  firstUs: number;
  /** Exchanges in connection order. */
  list: Exchange[];
}

/** How far a captured start may precede the driver's clock reading (two processes, two conversions). */
const SLOP_US = 1_000_000;
/** How many captured exchanges to look past for a request's match (lost or unread ones). */
const LOOKAHEAD = 8;
/** Above this many socket × connection pairs on one port, pair greedily in time order instead. */
const DP_MAX = 2_500;

const same = (ex: Exchange, r: SentRequest): boolean =>
  ex.request.method === r.method && ex.request.target === r.target;

interface Pairing {
  pairs: Array<[number, Exchange]>;
  /** Sum of |captured start − sent| over the pairs, µs. */
  cost: number;
}

/**
 * HTTP/2: streams are keyed by their id on both sides (capture's `extras.streamId`), so the
 * join does not depend on which stream the build saw start first.
 */
function alignStreams(s: DriverSocket, c: CapturedConn): Pairing {
  const byStream = new Map<number, Exchange>();
  for (const ex of c.list) {
    const id = ex.extras?.streamId;
    if (typeof id === 'number') byStream.set(id, ex);
  }
  const pairs: Array<[number, Exchange]> = [];
  let cost = 0;
  for (const r of s.reqs) {
    const ex = byStream.get(r.socket!.stream!);
    if (!ex || !same(ex, r)) continue;
    pairs.push([r.index, ex]);
    cost += Math.abs(ex.timing.startUs - (r.socket?.sentUs ?? ex.timing.startUs));
  }
  return { pairs, cost };
}

/** Requests of one socket against the exchanges of one captured connection, in order. */
function align(s: DriverSocket, c: CapturedConn): Pairing {
  if (s.reqs[0]?.socket?.stream !== undefined) return alignStreams(s, c);
  const pairs: Array<[number, Exchange]> = [];
  let cost = 0;
  let j = 0;
  for (const r of s.reqs) {
    let k = j;
    const stop = Math.min(c.list.length, j + LOOKAHEAD);
    while (k < stop && !same(c.list[k]!, r)) k++;
    if (k >= stop) continue;
    const ex = c.list[k]!;
    pairs.push([r.index, ex]);
    cost += Math.abs(ex.timing.startUs - (r.socket?.sentUs ?? ex.timing.startUs));
    j = k + 1;
  }
  return { pairs, cost };
}

const better = (a: Pairing, b: Pairing): boolean =>
  a.pairs.length !== b.pairs.length ? a.pairs.length > b.pairs.length : a.cost < b.cost;

/** Best order-keeping pairing of one port's sockets and captured connections. */
function pairPort(sockets: DriverSocket[], conns: CapturedConn[]): Pairing {
  const n = sockets.length;
  const m = conns.length;
  const fits = (s: DriverSocket, c: CapturedConn): boolean => c.firstUs >= s.openedUs - SLOP_US;
  if (n === 1 && m === 1)
    return fits(sockets[0]!, conns[0]!) ? align(sockets[0]!, conns[0]!) : { pairs: [], cost: 0 };
  if (n * m > DP_MAX) {
    // greedy, in time order: each connection to the socket not yet passed whose first request
    // was sent closest to the connection's first exchange
    const out: Pairing = { pairs: [], cost: 0 };
    let i = 0;
    for (const c of conns) {
      let best = -1;
      let bestGap = Number.POSITIVE_INFINITY;
      for (let j = i; j < n && fits(sockets[j]!, c); j++) {
        const gap = Math.abs((sockets[j]!.reqs[0]!.socket?.sentUs ?? sockets[j]!.openedUs) - c.firstUs);
        if (gap < bestGap) {
          best = j;
          bestGap = gap;
        }
      }
      if (best < 0) continue;
      const p = align(sockets[best]!, c);
      if (p.pairs.length) {
        out.pairs.push(...p.pairs);
        out.cost += p.cost;
        i = best + 1;
      }
    }
    return out;
  }
  // alignment DP: best[i][j] = best pairing of the first i sockets with the first j connections
  const empty: Pairing = { pairs: [], cost: 0 };
  let prev: Pairing[] = new Array(m + 1).fill(empty);
  for (let i = 1; i <= n; i++) {
    const row: Pairing[] = [empty];
    for (let j = 1; j <= m; j++) {
      let best = prev[j]!;
      if (better(row[j - 1]!, best)) best = row[j - 1]!;
      const s = sockets[i - 1]!;
      const c = conns[j - 1]!;
      if (fits(s, c)) {
        const p = align(s, c);
        if (p.pairs.length) {
          const base = prev[j - 1]!;
          const joined: Pairing = { pairs: [...base.pairs, ...p.pairs], cost: base.cost + p.cost };
          if (better(joined, best)) best = joined;
        }
      }
      row.push(best);
    }
    prev = row;
  }
  return prev[m]!;
}

/**
 * Captured inbound exchanges joined to the requests sent: request index → the exchange capture
 * saw for it at the build. Requests without a socket, and exchanges on connections no driver
 * socket matches, stay out.
 */
export function joinByConnection(sent: SentRequest[], captured: Exchange[]): Map<number, Exchange> {
  const sockets = new Map<string, DriverSocket>();
  for (const r of sent) {
    const s = r.socket;
    if (!s || s.port <= 0) continue;
    const key = `${s.port}/${s.openedUs}`;
    let sock = sockets.get(key);
    if (!sock) {
      sock = { port: s.port, openedUs: s.openedUs, reqs: [] };
      sockets.set(key, sock);
    }
    sock.reqs.push(r);
  }
  const conns = new Map<string, CapturedConn>();
  for (const ex of captured) {
    if (ex.direction !== 'inbound' || !(ex.peer.port > 0)) continue;
    let c = conns.get(ex.connection.id);
    if (!c) {
      c = { port: ex.peer.port, firstUs: ex.timing.startUs, list: [] };
      conns.set(ex.connection.id, c);
    }
    c.firstUs = Math.min(c.firstUs, ex.timing.startUs);
    c.list.push(ex);
  }
  const byPort = new Map<number, { sockets: DriverSocket[]; conns: CapturedConn[] }>();
  const at = (port: number) => {
    let p = byPort.get(port);
    if (!p) {
      p = { sockets: [], conns: [] };
      byPort.set(port, p);
    }
    return p;
  };
  for (const s of sockets.values()) {
    s.reqs.sort((a, b) => a.socket!.seq - b.socket!.seq);
    at(s.port).sockets.push(s);
  }
  for (const c of conns.values()) {
    c.list.sort((a, b) => a.connection.order - b.connection.order);
    // a connection no request went out on (a readiness probe, another client) cannot join
    if (byPort.has(c.port)) at(c.port).conns.push(c);
  }
  const out = new Map<number, Exchange>();
  for (const p of byPort.values()) {
    if (!p.conns.length) continue;
    p.sockets.sort((a, b) => a.openedUs - b.openedUs);
    p.conns.sort((a, b) => a.firstUs - b.firstUs);
    for (const [index, ex] of pairPort(p.sockets, p.conns).pairs) out.set(index, ex);
  }
  return out;
}
