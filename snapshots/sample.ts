/** Synthetic exchanges for tests and benchmarks (deterministic from their index). */
import type { Exchange } from '../core/exchange.js';

const enc = new TextEncoder();

export function sampleExchange(i: number, over: Partial<Exchange> = {}): Exchange {
  const conn = `c${i % 7}`;
  const body = enc.encode(`{"id":${i},"name":"item ${i}"}`);
  return {
    id: `${conn}#${Math.floor(i / 7)}`,
    protocol: 'http1',
    direction: i % 5 === 0 ? 'outbound' : 'inbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 8080, pid: 100, comm: 'node', name: 'orders' },
    peer: i % 5 === 0 ? { addr: '127.0.0.2', port: 443, host: 'api.example.test' } : { addr: '127.0.0.1', port: 40000 + (i % 7) },
    connection: { id: conn, order: Math.floor(i / 7) },
    request: {
      method: i % 3 === 0 ? 'POST' : 'GET',
      target: `/orders/${i}?full=1`,
      version: 'HTTP/1.1',
      headers: [
        ['Host', 'orders.test'],
        ['Accept', 'application/json'],
      ],
      body: { data: new Uint8Array(0), size: 0, truncated: false },
    },
    response: {
      status: i % 11 === 0 ? 404 : 200,
      reason: 'OK',
      version: 'HTTP/1.1',
      headers: [
        ['Content-Type', 'application/json'],
        ['Content-Length', String(body.length)],
      ],
      body: { data: body, size: body.length, truncated: false },
    },
    timing: { startUs: 1_700_000_000_000_000 + i * 1000, requestEndNs: 20_000, responseStartNs: 250_000, responseEndNs: 300_000 },
    ...over,
  };
}
