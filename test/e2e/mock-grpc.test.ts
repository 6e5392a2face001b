/**
 * gRPC mocks: a grpc-js exchange is recorded byte for byte through the recording relay and the
 * HTTP/2 decoder, then served by the mock to a fresh grpc-js client (recorded messages, trailers
 * and grpc-status), and an unrecorded call fails closed with UNAVAILABLE.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvents } from '../../capture/protocols/collect.js';
import { http2 as h2decoder } from '../../capture/protocols/index.js';
import { startRecordingRelay } from '../../capture/protocols/record-relay.js';
import type { Exchange } from '../../core/exchange.js';
import { planMocks, type RunningMocks, startMocks } from '../../runner/mocks/index.js';

const def = protoLoader.loadSync(join(import.meta.dirname, '..', 'fixtures', 'shop.proto'), {
  keepCase: false,
  longs: Number,
});
const Shop = (
  grpc.loadPackageDefinition(def) as unknown as { shop: { v1: { Shop: grpc.ServiceClientConstructor } } }
).shop.v1.Shop;
type Client = grpc.Client & {
  Get: (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;
};

const get = (client: Client, id: string, qty: number) =>
  new Promise<{ err: grpc.ServiceError | null; res: unknown }>((resolve) =>
    client.Get({ id, qty }, (err, res) => resolve({ err, res })),
  );

async function record(): Promise<Exchange[]> {
  const server = new grpc.Server();
  server.addService(Shop.service, {
    Get: (
      call: grpc.ServerUnaryCall<{ id: string; qty: number }, unknown>,
      cb: grpc.sendUnaryData<unknown>,
    ) => {
      if (call.request.id === 'missing') cb({ code: grpc.status.NOT_FOUND, details: 'no such item' });
      else
        cb(null, {
          id: call.request.id,
          name: `item ${call.request.id}`,
          priceCents: 100 * call.request.qty,
          tags: ['a'],
        });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const relay = await startRecordingRelay({ port });
  try {
    const client = new Shop(
      `127.0.0.1:${relay.port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as Client;
    await get(client, 'sku-1', 1);
    await get(client, 'sku-2', 2);
    await get(client, 'missing', 1);
    client.close();
  } finally {
    await relay.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  }
  const events = relay.connections.flatMap((c) => c.events);
  return decodeEvents(h2decoder, events).exchanges.map((d, i) => ({
    id: `g#${i}`,
    protocol: d.protocol,
    direction: 'outbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 40000 },
    peer: { addr: '10.0.0.9', port: 50051, host: 'shop.internal' },
    connection: { id: 'g', order: i },
    request: d.request,
    ...(d.response ? { response: d.response } : {}),
    timing: { startUs: 1_700_000_000_000_000 + i, requestEndNs: 1 },
  }));
}

describe('gRPC mocks with grpc-js', () => {
  let recorded: Exchange[];
  let mocks: RunningMocks;
  let client: Client;

  beforeAll(async () => {
    recorded = await record();
    mocks = await startMocks(planMocks(recorded), recorded, {
      miss: 'fail',
      bindAddr: () => '127.0.0.1',
      bindPort: () => 0,
    });
    client = new Shop(
      `127.0.0.1:${mocks.endpoints[0]!.port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as Client;
  });
  afterAll(async () => {
    client?.close();
    await mocks?.stop();
  });

  it('records three grpc exchanges and plans one grpc endpoint', () => {
    expect(recorded.map((e) => [e.protocol, e.request.target])).toEqual([
      ['grpc', '/shop.v1.Shop/Get'],
      ['grpc', '/shop.v1.Shop/Get'],
      ['grpc', '/shop.v1.Shop/Get'],
    ]);
    expect(mocks.endpoints.map((e) => [e.host, e.recordedPort, e.protocols])).toEqual([
      ['shop.internal', 50051, ['grpc']],
    ]);
  });

  it('serves the recorded message for the matching request message', async () => {
    const two = await get(client, 'sku-2', 2);
    expect(two.err).toBeNull();
    expect(two.res).toEqual({ id: 'sku-2', name: 'item sku-2', priceCents: 200, tags: ['a'] });
    const one = await get(client, 'sku-1', 1);
    expect(one.res).toMatchObject({ id: 'sku-1', priceCents: 100 });
  });

  it('serves a recorded error status with its message', async () => {
    const r = await get(client, 'missing', 1);
    expect(r.err?.code).toBe(grpc.status.NOT_FOUND);
    expect(r.err?.details).toBe('no such item');
  });

  it('fails closed with UNAVAILABLE for an unrecorded request and reports the miss', async () => {
    const r = await get(client, 'sku-3', 3);
    expect(r.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.err?.details).toContain('retap mock miss');
    expect(r.err?.details).toContain('/shop.v1.Shop/Get');
    const s = mocks.stats();
    expect(s).toMatchObject({ calls: 4, matched: 3 });
    expect(s.misses).toEqual([
      expect.objectContaining({ method: 'POST', host: 'shop.internal:50051', target: '/shop.v1.Shop/Get' }),
    ]);
  });
});
