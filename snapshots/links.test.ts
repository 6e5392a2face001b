import { describe, expect, it } from 'vitest';
import type { DbCall } from '../core/db.js';
import type { Exchange } from '../core/exchange.js';
import { danglingCauses, linkCalls, linkSummary, openingCalls } from './links.js';

function ex(
  id: string,
  direction: 'inbound' | 'outbound',
  startUs: number,
  durUs: number,
  headers: Array<[string, string]> = [],
): Exchange {
  return {
    id,
    protocol: 'http1',
    direction,
    tls: false,
    service: { addr: '127.0.0.1', port: 1, pid: 7 },
    peer: { addr: '127.0.0.1', port: 2 },
    connection: { id: `c-${id}`, order: 0 },
    request: {
      method: 'GET',
      target: '/',
      version: 'HTTP/1.1',
      headers,
      body: { data: new Uint8Array(0), size: 0, truncated: false },
    },
    response: {
      status: 200,
      version: 'HTTP/1.1',
      headers: [],
      body: { data: new Uint8Array(0), size: 0, truncated: false },
    },
    timing: { startUs, requestEndNs: 0, responseEndNs: durUs * 1000 },
  };
}
const TP = (n: number): [string, string] => [
  'traceparent',
  `00-${String(n).padStart(32, 'a')}-00f067aa0ba902b7-01`,
];

describe('links between calls and the requests that caused them', () => {
  it('stored exact links first, then trace ids, then the latest request in flight (labelled time-window)', () => {
    const a = ex('a', 'inbound', 0, 100, [TP(1)]);
    const b = ex('b', 'inbound', 10, 100);
    const stored = ex('s', 'outbound', 20, 5);
    stored.cause = { exchange: 'a', method: 'thread' };
    const traced = ex('t', 'outbound', 30, 5, [TP(1)]);
    const guessed = ex('g', 'outbound', 40, 5);
    const outside = ex('o', 'outbound', 500, 5);
    const all = [a, b, stored, traced, guessed, outside];
    const links = linkCalls(all);
    expect(links.get('s')).toMatchObject({ inbound: { id: 'a' }, method: 'thread' });
    expect(links.get('t')).toMatchObject({ inbound: { id: 'a' }, method: 'traceparent' });
    expect(links.get('g')).toMatchObject({ inbound: { id: 'b' }, method: 'time-window' });
    expect(links.has('o')).toBe(false);
    expect(linkSummary(all, links)).toEqual({ thread: 1, traceparent: 1, 'time-window': 1, none: 1 });
  });

  it('a stored link naming a request not in the set falls back, and is reported dangling', () => {
    const a = ex('a', 'inbound', 0, 100);
    const c = ex('c', 'outbound', 5, 1);
    c.cause = { exchange: 'gone', method: 'thread' };
    expect(linkCalls([a, c]).get('c')).toMatchObject({ inbound: { id: 'a' }, method: 'time-window' });
    expect(danglingCauses([a, c])).toEqual([['c', 'gone']]);
  });

  it('a trace id shared by several requests says nothing', () => {
    const a = ex('a', 'inbound', 0, 10, [TP(2)]);
    const b = ex('b', 'inbound', 100, 10, [TP(2)]);
    const c = ex('c', 'outbound', 105, 1, [TP(2)]);
    expect(linkCalls([a, b, c]).get('c')).toMatchObject({ inbound: { id: 'b' }, method: 'time-window' });
  });

  describe("a database connection's opening calls", () => {
    /** Call `order` on connection `conn`: a Redis command, or a SQL statement of a kind. */
    function call(
      conn: string,
      order: number,
      startUs: number,
      db: Partial<DbCall> & { command: string },
    ): Exchange {
      const e = ex(`${conn}#${order}`, 'outbound', startUs, 1);
      const system = db.system ?? 'redis';
      e.protocol = system;
      e.connection = { id: conn, order };
      e.extras = { db: { system, kind: 'query', ...db } };
      return e;
    }

    it('are never linked by a time window: ioredis connecting while the first request runs', () => {
      // the request starts before the client's handshake ends; its own GET is a real call
      const req = ex('r', 'inbound', 10, 1000);
      const calls = [
        call('k', 0, 0, { command: 'AUTH', kind: 'setup' }),
        call('k', 1, 20, { command: 'CLIENT', kind: 'setup', params: ['SETINFO', 'LIB-VER', '5'] }),
        call('k', 2, 30, { command: 'INFO' }),
        call('k', 3, 40, { command: 'GET', params: ['item:1'] }),
        call('k', 4, 50, { command: 'PING' }),
      ];
      const links = linkCalls([req, ...calls]);
      expect([...links.keys()].sort()).toEqual(['k#3', 'k#4']);
      expect(links.get('k#3')?.method).toBe('time-window');
    });

    it('keep an exact link', () => {
      const req = ex('r', 'inbound', 10, 1000);
      const hs = call('k', 0, 20, { command: 'HELLO', kind: 'setup' });
      hs.cause = { exchange: 'r', method: 'async-context' };
      expect(linkCalls([req, hs]).get('k#0')).toMatchObject({
        inbound: { id: 'r' },
        method: 'async-context',
      });
    });

    it('are the leading run only, per connection, in connection order; SQL start-up and settings too', () => {
      const got = openingCalls([
        call('k', 2, 0, { command: 'GET' }),
        call('k', 1, 0, { command: 'INFO' }),
        call('k', 0, 0, { command: 'AUTH', kind: 'setup' }),
        call('k', 3, 0, { command: 'INFO' }),
        call('p', 0, 0, { system: 'postgres', command: 'startup', kind: 'session' }),
        call('p', 1, 0, {
          system: 'postgres',
          command: 'query',
          kind: 'setup',
          text: 'SET application_name = x',
        }),
        call('p', 2, 0, { system: 'postgres', command: 'query', text: 'SELECT 1' }),
        call('p', 3, 0, { system: 'postgres', command: 'query', kind: 'setup', text: 'SET search_path = y' }),
        call('m', 0, 0, { system: 'mysql', command: 'query', text: 'SELECT @@version' }),
        ex('h', 'outbound', 0, 1),
        // a quarantined line with a broken call costs nothing but itself
        {
          ...call('q', 0, 0, { command: 'AUTH', kind: 'setup' }),
          extras: { db: { system: 'redis' } },
          quarantine: { protocol: 'redis', reason: 'broken' },
        } as Exchange,
        {
          ...call('z', 0, 0, { command: 'AUTH' }),
          extras: { db: { system: 'redis', kind: 'query' } },
        } as Exchange,
      ]);
      expect([...got].sort()).toEqual(['k#0', 'k#1', 'p#0', 'p#1']);
    });
  });
});
