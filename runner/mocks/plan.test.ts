import { describe, expect, it } from 'vitest';
import type { Exchange } from '../../core/exchange.js';
import { planMocks } from './plan.js';

function ex(
  id: string,
  host: string | undefined,
  addr: string,
  port: number,
  extra: Partial<Exchange> = {},
): Exchange {
  return {
    id,
    protocol: 'http1',
    direction: 'outbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 1 },
    peer: { addr, port, ...(host ? { host } : {}) },
    connection: { id, order: 0 },
    request: {
      method: 'GET',
      target: '/',
      version: 'HTTP/1.1',
      headers: [],
      body: { data: new Uint8Array(0), size: 0, truncated: false },
    },
    response: {
      status: 200,
      version: 'HTTP/1.1',
      headers: [],
      body: { data: new Uint8Array(0), size: 0, truncated: false },
    },
    timing: { startUs: 0, requestEndNs: 0 },
    ...extra,
  };
}

describe('planMocks', () => {
  it('one endpoint per host and port; one loopback address per host name; IP literals kept', () => {
    const plan = planMocks([
      ex('a', 'Inventory.internal', '10.0.0.1', 80),
      ex('b', 'inventory.internal', '10.0.0.1', 8443, { tls: true, protocol: 'http2' }),
      ex('c', 'payments', '10.0.0.2', 443, { tls: true }),
      ex('d', undefined, '127.0.0.2', 9000),
      ex('e', 'inventory.internal', '10.0.0.1', 80, { protocol: 'grpc' }),
    ]);
    expect(
      plan.endpoints.map((e) => [e.host, e.addr, e.port, e.tls, e.protocols, e.literal, e.exchanges]),
    ).toEqual([
      ['inventory.internal', '127.0.0.3', 80, false, ['http1', 'grpc'], false, 2],
      ['inventory.internal', '127.0.0.3', 8443, true, ['http2'], false, 1],
      ['payments', '127.0.0.4', 443, true, ['http1'], false, 1],
      ['127.0.0.2', '127.0.0.2', 9000, false, ['http1'], true, 1],
    ]);
  });

  it('takes the host name from HTTP/2 :authority when the peer has none', () => {
    const plan = planMocks([
      ex('a', undefined, '10.0.0.7', 50051, {
        protocol: 'grpc',
        extras: { pseudo: { ':authority': 'Shop.internal:50051', ':scheme': 'http' } },
      }),
    ]);
    expect(plan.endpoints.map((e) => [e.host, e.addr, e.port])).toEqual([
      ['shop.internal', '127.0.0.2', 50051],
    ]);
  });

  it('skips what it cannot serve, with the reason', () => {
    const plan = planMocks([
      ex('a', 'x', '10.0.0.3', 5432, { protocol: 'amqp' }),
      ex('b', 'x', '10.0.0.4', 80, { response: undefined }),
      ex('c', 'x', '1.2.3.4', 80, { direction: 'inbound' }),
    ]);
    expect(plan.endpoints).toEqual([]);
    expect(plan.skipped.map((s) => s.id)).toEqual(['a', 'b', 'c']);
    expect(plan.skipped[0]!.reason).toContain('amqp');
  });

  it('serves database endpoints on their recorded address, one protocol per port', () => {
    const plan = planMocks([
      ex('a', 'db', '10.0.0.3', 5432, { protocol: 'postgres' }),
      ex('b', 'cache', '10.0.0.5', 6379, { protocol: 'redis', response: undefined }),
    ]);
    expect(plan.skipped).toEqual([]);
    expect(plan.endpoints.map((e) => [e.protocols, e.port])).toEqual([
      [['postgres'], 5432],
      [['redis'], 6379],
    ]);
  });
});
