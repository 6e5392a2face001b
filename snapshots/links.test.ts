import { describe, expect, it } from 'vitest';
import type { Exchange } from '../core/exchange.js';
import { danglingCauses, linkCalls, linkSummary } from './links.js';

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
});
