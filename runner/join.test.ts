/**
 * Joining captured answers to the requests sent, by connection and order: port reuse, sockets
 * capture never saw, connections no request went out on, exchanges capture lost, clock offsets.
 * The e2e replay tests join real captures; here every awkward case is built on purpose.
 */
import { describe, expect, it } from 'vitest';
import type { Exchange } from '../core/exchange.js';
import { joinByConnection, type SentRequest } from './join.js';

const T0 = 1_700_000_000_000_000;

/** A request the driver sent: on port `port`, socket opened at `opened` ms, `seq`-th there, sent at `at` ms. */
function sent(
  index: number,
  target: string,
  port: number,
  opened: number,
  seq: number,
  at: number,
): SentRequest {
  return {
    index,
    method: 'GET',
    target,
    socket: { port, openedUs: T0 + opened * 1000, seq, sentUs: T0 + at * 1000 },
  };
}

/** What capture saw at the build: connection `conn` from peer port `port`, `order`-th, started at `at` ms. */
function seen(conn: string, order: number, target: string, port: number, at: number, skewMs = 0): Exchange {
  const empty = { data: new Uint8Array(0), size: 0, truncated: false };
  return {
    id: `${conn}#${order}`,
    protocol: 'http1',
    direction: 'inbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 8080 },
    peer: { addr: '127.0.0.1', port },
    connection: { id: conn, order },
    request: { method: 'GET', target, version: 'HTTP/1.1', headers: [], body: empty },
    response: { status: 200, version: 'HTTP/1.1', headers: [], body: empty },
    timing: { startUs: T0 + (at + skewMs) * 1000, requestEndNs: 1 },
  };
}

const ids = (m: Map<number, Exchange>): Record<number, string> =>
  Object.fromEntries([...m].sort((a, b) => a[0] - b[0]).map(([i, e]) => [i, e.id]));

describe('joining captured answers to requests by connection and order', () => {
  it('keep-alive connections: the n-th exchange of the connection from port P is the n-th request sent from P', () => {
    const out = joinByConnection(
      [
        sent(0, '/a', 40001, 0, 0, 1),
        sent(1, '/b', 40002, 0, 0, 1),
        sent(2, '/a', 40001, 0, 1, 3),
        sent(3, '/b', 40002, 0, 1, 3),
      ],
      // capture delivers in its own order; connection ids say nothing about ports
      [
        seen('x', 1, '/b', 40002, 3),
        seen('y', 0, '/a', 40001, 1),
        seen('x', 0, '/b', 40002, 1),
        seen('y', 1, '/a', 40001, 3),
      ],
    );
    expect(ids(out)).toEqual({ 0: 'y#0', 1: 'x#0', 2: 'y#1', 3: 'x#1' });
  });

  it('a reused local port: sockets and connections of one port are paired in time order', () => {
    // the same request three times, each on its own connection, all from port 40000
    const req = [
      sent(0, '/same', 40000, 0, 0, 1),
      sent(1, '/same', 40000, 10, 0, 11),
      sent(2, '/same', 40000, 20, 0, 21),
    ];
    const cap = [
      seen('c3', 0, '/same', 40000, 21),
      seen('c1', 0, '/same', 40000, 1),
      seen('c2', 0, '/same', 40000, 11),
    ];
    expect(ids(joinByConnection(req, cap))).toEqual({ 0: 'c1#0', 1: 'c2#0', 2: 'c3#0' });
    // capture missed the middle connection: the others keep their own, the middle stays unjoined
    expect(ids(joinByConnection(req, [cap[0]!, cap[1]!]))).toEqual({ 0: 'c1#0', 2: 'c3#0' });
    // only the last one was seen: it goes to the socket whose send time it sits next to
    expect(ids(joinByConnection(req, [cap[0]!]))).toEqual({ 2: 'c3#0' });
    // a clock offset between the driver and capture (here 2 ms late) changes nothing
    const late = [
      seen('c1', 0, '/same', 40000, 1, 2),
      seen('c2', 0, '/same', 40000, 11, 2),
      seen('c3', 0, '/same', 40000, 21, 2),
    ];
    expect(ids(joinByConnection(req, late))).toEqual({ 0: 'c1#0', 1: 'c2#0', 2: 'c3#0' });
  });

  it.each([
    [7, 'paired by alignment'],
    [1, 'so many on one port that they are paired greedily in time order'],
  ])(
    'many connections, several requests each, ports reused (%i ports, %s): every answer finds its own request',
    (ports) => {
      const req: SentRequest[] = [];
      const cap: Exchange[] = [];
      let index = 0;
      // 200 connections, 1–4 requests each, targets naming connection and position
      for (let c = 0; c < 200; c++) {
        const port = 41000 + (c % ports);
        const opened = c * 5;
        const n = 1 + (c % 4);
        for (let k = 0; k < n; k++) {
          req.push(sent(index++, `/r?c=${c}&k=${k}`, port, opened, k, opened + k + 1));
          cap.push(seen(`conn${c}`, k, `/r?c=${c}&k=${k}`, port, opened + k + 1, 0.3));
        }
      }
      cap.reverse();
      const out = joinByConnection(req, cap);
      expect(out.size).toBe(req.length);
      for (const r of req) expect(out.get(r.index)!.request.target).toBe(r.target);
    },
  );

  it('a connection no request went out on (a readiness probe) joins nothing', () => {
    const out = joinByConnection(
      [sent(0, '/health', 40010, 0, 0, 1)],
      [seen('probe', 0, '/health', 40011, 0), seen('real', 0, '/health', 40010, 1)],
    );
    expect(ids(out)).toEqual({ 0: 'real#0' });
  });

  it('an exchange capture lost does not shift the later answers onto the wrong requests', () => {
    const req = [0, 1, 2, 3].map((k) => sent(k, `/k${k}`, 40020, 0, k, k + 1));
    // /k1 never reached capture (a gap): orders on the connection are 0, 1, 2 for /k0, /k2, /k3
    const cap = [seen('c', 0, '/k0', 40020, 1), seen('c', 1, '/k2', 40020, 3), seen('c', 2, '/k3', 40020, 4)];
    expect(ids(joinByConnection(req, cap))).toEqual({ 0: 'c#0', 2: 'c#1', 3: 'c#2' });
  });

  it('the build closed early: the requests after the close went out on a new socket and join there', () => {
    const req = [sent(0, '/a', 40030, 0, 0, 1), sent(1, '/b', 40030, 0, 1, 2), sent(2, '/c', 40031, 3, 0, 4)];
    const cap = [seen('c1', 0, '/a', 40030, 1), seen('c1', 1, '/b', 40030, 2), seen('c2', 0, '/c', 40031, 4)];
    expect(ids(joinByConnection(req, cap))).toEqual({ 0: 'c1#0', 1: 'c1#1', 2: 'c2#0' });
  });

  it('requests that never reached a socket, and captures without a peer port, stay unjoined', () => {
    const out = joinByConnection(
      [{ index: 0, method: 'GET', target: '/a' }, sent(1, '/b', 40040, 0, 0, 1)],
      [seen('c', 0, '/a', 0, 1), seen('d', 0, '/b', 40040, 1)],
    );
    expect(ids(out)).toEqual({ 1: 'd#0' });
  });

  it('a capture that started long before the socket was opened is not its answer', () => {
    const out = joinByConnection([sent(0, '/a', 40050, 5000, 0, 5001)], [seen('old', 0, '/a', 40050, 1)]);
    expect(out.size).toBe(0);
  });
});
