/**
 * Synthetic traffic for viewer tests and benchmarks: an `orders` service answering clients, and
 * calling `inventory` over HTTP and `payments` over gRPC. Deterministic from the index; about
 * 900 bytes a stored line. Written with the real snapshot writer.
 */
import type { Exchange } from '../../core/exchange.js';
import { createSnapshotWriter } from '../../snapshots/index.js';

const enc = new TextEncoder();
const T0 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z in µs

/** `payments` gRPC message bytes: field 1 = order id (string), field 2 = amount (varint). */
function grpcFrame(orderId: string, amount: number): Uint8Array {
  const id = enc.encode(orderId);
  const varint: number[] = [];
  let v = amount;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    varint.push(b);
  } while (v > 0);
  const msg = new Uint8Array([0x0a, id.length, ...id, 0x10, ...varint]);
  const out = new Uint8Array(5 + msg.length);
  out[4] = msg.length;
  out.set(msg, 5);
  return out;
}

export function synthExchange(i: number): Exchange {
  const kind = i % 10; // 0-5 inbound orders, 6-7 outbound inventory, 8-9 outbound payments (gRPC)
  const startUs = T0 + i * 250 + (i % 7);
  const conn = `c${i % 64}`;
  const base = {
    id: `${conn}#${Math.floor(i / 64)}`,
    tls: false,
    service: { addr: '10.0.0.5', port: 8080, pid: 4242, comm: 'node', name: 'orders' },
    connection: { id: conn, order: Math.floor(i / 64) },
  };
  const durNs = 200_000 + ((i * 7919) % 5_000_000);
  const timing = { startUs, requestEndNs: 30_000, responseStartNs: 30_000 + durNs, responseEndNs: 60_000 + durNs };
  const user = `user-${i % 997}`;
  if (kind <= 5) {
    const status = i % 53 === 0 ? 503 : i % 17 === 0 ? 404 : kind === 5 ? 201 : 200;
    const reqBody = kind === 5 ? enc.encode(JSON.stringify({ user: { id: user }, items: [{ sku: `sku-${i % 300}`, qty: 1 + (i % 4) }] })) : new Uint8Array(0);
    const resBody = enc.encode(JSON.stringify({ order: i, user: { id: user, tier: i % 3 === 0 ? 'gold' : 'basic' }, total: (i % 1000) / 10, status: status < 400 ? 'ok' : 'failed' }));
    return {
      ...base,
      protocol: 'http1',
      direction: 'inbound',
      peer: { addr: `10.0.1.${1 + (i % 3)}`, port: 40000 + (i % 2000) },
      request: {
        method: kind === 5 ? 'POST' : 'GET',
        target: kind === 5 ? '/orders' : `/orders/${i}?expand=items`,
        version: 'HTTP/1.1',
        headers: [
          ['Host', 'orders.shop.test'],
          ['User-Agent', 'shop-web/4.2'],
          ['Accept', 'application/json'],
          ['X-Request-Id', `req-${i.toString(16)}`],
          ...(kind === 5 ? ([['Content-Type', 'application/json']] as Array<[string, string]>) : []),
        ],
        body: { data: reqBody, size: reqBody.length, truncated: false },
      },
      response: {
        status,
        reason: status === 200 ? 'OK' : status === 201 ? 'Created' : status === 404 ? 'Not Found' : 'Service Unavailable',
        version: 'HTTP/1.1',
        headers: [
          ['Content-Type', 'application/json'],
          ['Content-Length', String(resBody.length)],
          ['Date', new Date(startUs / 1000).toUTCString()],
        ],
        body: { data: resBody, size: resBody.length, truncated: false },
      },
      timing,
      ...(i % 4001 === 0 ? { notes: ['gap'] } : {}),
    };
  }
  if (kind <= 7) {
    const sku = `sku-${i % 300}`;
    const resBody = enc.encode(JSON.stringify({ sku, available: (i * 31) % 50, warehouse: `wh-${i % 5}` }));
    const status = i % 101 === 0 ? 500 : 200;
    return {
      ...base,
      protocol: 'http1',
      direction: 'outbound',
      peer: { addr: '10.0.2.9', port: 8081, host: 'inventory.shop.test' },
      request: {
        method: 'GET',
        target: `/stock/${sku}`,
        version: 'HTTP/1.1',
        headers: [
          ['Host', 'inventory.shop.test'],
          ['Accept', 'application/json'],
        ],
        body: { data: new Uint8Array(0), size: 0, truncated: false },
      },
      response: {
        status,
        reason: status === 200 ? 'OK' : 'Internal Server Error',
        version: 'HTTP/1.1',
        headers: [['Content-Type', 'application/json']],
        body: { data: resBody, size: resBody.length, truncated: false },
      },
      timing,
    };
  }
  const orderId = `ord-${i}`;
  const reqBody = grpcFrame(orderId, 100 + (i % 9000));
  const grpcStatus = i % 97 === 0 ? 14 : 0;
  return {
    ...base,
    protocol: 'grpc',
    direction: 'outbound',
    peer: { addr: '10.0.3.7', port: 50051, host: 'payments.shop.test:50051' },
    request: {
      method: 'POST',
      target: '/payments.v1.Payments/Charge',
      version: 'HTTP/2',
      headers: [
        [':method', 'POST'],
        [':path', '/payments.v1.Payments/Charge'],
        [':authority', 'payments.shop.test:50051'],
        ['content-type', 'application/grpc'],
      ],
      body: { data: reqBody, size: reqBody.length, truncated: false },
    },
    response: {
      status: 200,
      version: 'HTTP/2',
      headers: [[':status', '200'], ['content-type', 'application/grpc']],
      body: { data: new Uint8Array(0), size: 0, truncated: false },
      trailers: [['grpc-status', String(grpcStatus)]],
    },
    timing,
    extras: {
      grpc: {
        service: 'payments.v1.Payments',
        method: 'Charge',
        requestMessages: [{ compressed: false, length: reqBody.length - 5, fields: [{ field: 1, wire: 'len', string: orderId }, { field: 2, wire: 'varint', value: 100 + (i % 9000) }] }],
        responseMessages: [],
        status: grpcStatus,
      },
    },
  };
}

/** Writes `n` synthetic exchanges as a snapshot version under `dir`; returns its path. */
export async function writeSynthSnapshot(dir: string, n: number, onProgress?: (done: number) => void): Promise<string> {
  const w = await createSnapshotWriter({
    dir,
    name: 'shop',
    source: { host: 'synthetic', service: 'orders', filters: {} },
    redaction: false,
    memoryLimitBytes: 256 << 20,
  });
  for (let i = 0; i < n; i++) {
    await w.append(synthExchange(i));
    if (onProgress && i % 50_000 === 0) onProgress(i);
  }
  await w.finish({ counters: { ringbufDrops: 0, userBatchDrops: 0, gapBytes: 0 } });
  return w.path;
}
