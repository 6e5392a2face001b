/**
 * The replay plan's connections: where a recorded connection closed, which driver connection each
 * request goes out on, and lanes that keep both the credential sessions and the connections in
 * recorded order.
 */
import { describe, expect, it } from 'vitest';
import type { Exchange, HeaderList } from '../core/exchange.js';
import { closesAfter, connectionPlan, lanesFor, planReplay } from './plan.js';

const T0 = 1_700_000_000_000_000;
let clock = 0;

function ex(
  conn: string,
  order: number,
  o: { req?: HeaderList; res?: HeaderList; version?: string; resVersion?: string; target?: string } = {},
): Exchange {
  const empty = { data: new Uint8Array(0), size: 0, truncated: false };
  return {
    id: `${conn}#${order}`,
    protocol: 'http1',
    direction: 'inbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 8080 },
    peer: { addr: '127.0.0.1', port: 40000 },
    connection: { id: conn, order },
    request: {
      method: 'GET',
      target: o.target ?? `/${conn}/${order}`,
      version: o.version ?? 'HTTP/1.1',
      headers: o.req ?? [],
      body: empty,
    },
    response: { status: 200, version: o.resVersion ?? 'HTTP/1.1', headers: o.res ?? [], body: empty },
    timing: { startUs: T0 + clock++ * 1000, requestEndNs: 1 },
  };
}

describe('where a recorded connection closed', () => {
  it('explicit close on either side, HTTP/1.0 without keep-alive on either side', () => {
    expect(closesAfter(ex('a', 0))).toBe(false);
    expect(closesAfter(ex('a', 0, { req: [['Connection', 'close']] }))).toBe(true);
    expect(closesAfter(ex('a', 0, { req: [['connection', 'TE, Close']] }))).toBe(true);
    expect(closesAfter(ex('a', 0, { res: [['connection', 'close']] }))).toBe(true);
    expect(closesAfter(ex('a', 0, { version: 'HTTP/1.0' }))).toBe(true);
    expect(closesAfter(ex('a', 0, { version: 'HTTP/1.0', req: [['Connection', 'keep-alive']] }))).toBe(false);
    expect(closesAfter(ex('a', 0, { resVersion: 'HTTP/1.0' }))).toBe(true);
    expect(closesAfter(ex('a', 0, { resVersion: 'HTTP/1.0', res: [['Connection', 'Keep-Alive']] }))).toBe(
      false,
    );
    expect(closesAfter(ex('a', 0, { req: [['x-connection', 'close']] }))).toBe(false);
  });

  it('each request goes out on its recorded connection, closed after its last request or a close', () => {
    const plan = planReplay([
      ex('a', 0),
      ex('b', 0, { req: [['Connection', 'close']] }),
      ex('a', 1),
      ex('a', 2, { res: [['Connection', 'close']] }),
      // the same connection id after a close (merged or imported snapshots): a new connection
      ex('a', 3),
      ex('a', 4),
    ]);
    expect(connectionPlan(plan.items)).toEqual([
      { connection: 'a', closeAfter: false },
      { connection: 'b', closeAfter: true },
      { connection: 'a', closeAfter: false },
      { connection: 'a', closeAfter: true },
      { connection: 'a/1', closeAfter: false },
      { connection: 'a/1', closeAfter: true },
    ]);
  });
});

describe('lanes', () => {
  it('recorded: sessions and connections that share a request are one lane, in recorded order', () => {
    // a login on connection L hands a token used on connections M and N; connection O is alone;
    // P and Q share nothing with anyone
    const all = [
      ex('L', 0, { target: '/login' }),
      ex('O', 0),
      ex('M', 0),
      ex('P', 0),
      ex('N', 0),
      ex('M', 1),
      ex('Q', 0),
      ex('O', 1),
    ];
    const session = (e: Exchange): string =>
      ['L', 'M', 'N'].includes(e.connection.id) ? 'login' : `conn:${e.connection.id}`;
    // M#1 belongs to another session (say a second user) but rides on M: it joins the lane
    const plan = planReplay(all, (e) => (e.id === 'M#1' ? 'other' : session(e)));
    const lanes = lanesFor(plan, 'recorded').map((l) => l.items.map((i) => plan.items[i]!.id));
    expect(lanes).toEqual([['L#0', 'M#0', 'N#0', 'M#1'], ['O#0', 'O#1'], ['P#0'], ['Q#0']]);
    // pooled: the sessions as they are
    const pooled = lanesFor(plan, 'pooled').map((l) => l.items.map((i) => plan.items[i]!.id));
    expect(pooled).toEqual([['L#0', 'M#0', 'N#0'], ['O#0', 'O#1'], ['P#0'], ['M#1'], ['Q#0']]);
  });

  it('a client that closes every connection: each request is its own lane unless a session joins them', () => {
    const close: HeaderList = [['Connection', 'close']];
    const all = [0, 1, 2, 3].map((i) => ex(`c${i}`, 0, { req: close }));
    const plan = planReplay(all);
    expect(lanesFor(plan, 'recorded').map((l) => l.items)).toEqual([[0], [1], [2], [3]]);
    expect(connectionPlan(plan.items).every((c) => c.closeAfter)).toBe(true);
    const chained = planReplay(all, () => 'one-user');
    expect(lanesFor(chained, 'recorded').map((l) => l.items)).toEqual([[0, 1, 2, 3]]);
  });
});
