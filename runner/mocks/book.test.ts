import { describe, expect, it } from 'vitest';
import type { Exchange } from '../../core/exchange.js';
import { createBook } from './book.js';
import { signatureOf } from './signature.js';

let n = 0;
function ex(method: string, target: string, body?: unknown, answer = '', truncated = false): Exchange {
  const data = body === undefined ? new Uint8Array(0) : Buffer.from(JSON.stringify(body));
  const i = n++;
  return {
    id: `e${i}`,
    protocol: 'http1',
    direction: 'outbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 1 },
    peer: { addr: '10.0.0.1', port: 80, host: 'dep' },
    connection: { id: 'c', order: i },
    request: {
      method,
      target,
      version: 'HTTP/1.1',
      headers: [['content-type', 'application/json']],
      body: { data, size: data.length + (truncated ? 10 : 0), truncated },
    },
    response: {
      status: 200,
      version: 'HTTP/1.1',
      headers: [],
      body: { data: Buffer.from(answer), size: answer.length, truncated: false },
    },
    timing: { startUs: i, requestEndNs: 0 },
  };
}
const live = (method: string, target: string, body?: unknown) =>
  signatureOf({
    method,
    target,
    headers: [['content-type', 'application/json']],
    body: body === undefined ? new Uint8Array(0) : Buffer.from(JSON.stringify(body)),
  });

describe('answer book', () => {
  it('serves repeated signatures in recorded order, then repeats the last', () => {
    const book = createBook([
      ex('GET', '/a', undefined, '1'),
      ex('GET', '/b', undefined, 'b'),
      ex('GET', '/a', undefined, '2'),
    ]);
    const got = [0, 1, 2].map(() => book.match(live('GET', '/a')));
    expect(got.map((p) => Buffer.from(p!.entry.exchange.response!.body.data).toString())).toEqual([
      '1',
      '2',
      '2',
    ]);
    expect(got.map((p) => [p!.index, p!.of, p!.tier])).toEqual([
      [0, 2, 'exact'],
      [1, 2, 'exact'],
      [1, 2, 'exact'],
    ]);
  });

  it('prefers an exact match, then the route tier', () => {
    const book = createBook([
      ex('GET', '/users/17', undefined, 'u17'),
      ex('GET', '/users/99', undefined, 'u99'),
    ]);
    expect(book.match(live('GET', '/users/99'))!.entry.exchange.id).toBe(book.entries[1]!.exchange.id);
    const other = book.match(live('GET', '/users/5'))!;
    expect([other.tier, other.entry.exchange.id]).toEqual(['route', book.entries[0]!.exchange.id]);
  });

  it('matches a truncated recording by method and route only', () => {
    const book = createBook([ex('POST', '/upload', { big: 'x' }, 'ok', true)]);
    expect(book.match(live('POST', '/upload', { big: 'y' }))!.tier).toBe('loose');
  });

  it('names the closest recording and the first real difference', () => {
    const book = createBook([
      ex('POST', '/pay', { amount: 5, at: '2025-01-01T00:00:00Z' }),
      ex('GET', '/health'),
    ]);
    const s = live('POST', '/pay', { amount: 7 });
    expect(book.match(s)).toBeUndefined();
    const c = book.closest(s)!;
    expect(c.entry.exchange.request.target).toBe('/pay');
    expect(c.reason).toBe('body differs at $.amount (recorded 5, live 7)');
    expect(book.closest(live('DELETE', '/health'))!.reason).toBe(
      'method differs (recorded GET, live DELETE)',
    );
    expect(book.closest(live('GET', '/healthz'))!.reason).toBe(
      'path differs (recorded /health, live /healthz)',
    );
  });
});

describe('answer book scoped to the request that made the call', () => {
  const caused = (answer: string, request: string, method: 'thread' | 'time-window'): Exchange => {
    const e = ex('GET', '/price', undefined, answer);
    e.cause = { exchange: request, method };
    return e;
  };
  const body = (p: ReturnType<ReturnType<typeof createBook>['match']>) =>
    Buffer.from(p!.entry.exchange.response!.body.data).toString();

  it('a call made for request R takes the answers recorded for R, in their order', () => {
    const book = createBook([
      caused('a0', 'A', 'thread'),
      caused('b0', 'B', 'thread'),
      caused('b1', 'B', 'thread'),
      caused('a1', 'A', 'thread'),
    ]);
    expect(book.scoped).toBe(true);
    expect(body(book.match(live('GET', '/price'), 'B'))).toBe('b0');
    expect(body(book.match(live('GET', '/price'), 'A'))).toBe('a0');
    expect(body(book.match(live('GET', '/price'), 'A'))).toBe('a1');
    expect(body(book.match(live('GET', '/price'), 'B'))).toBe('b1');
  });

  it('time-window links do not scope: recorded order as before', () => {
    const book = createBook([caused('a0', 'A', 'time-window'), caused('b0', 'B', 'time-window')]);
    expect(book.scoped).toBe(false);
    expect(body(book.match(live('GET', '/price'), 'B'))).toBe('a0');
  });
});
