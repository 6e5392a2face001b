/** Records real loopback traffic (node http / http2 peers through the recording relay) for benchmarks. */
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type { StreamEvent } from '../../../capture/protocols/collect.js';
import { startRecordingRelay } from '../../../capture/protocols/record-relay.js';

export interface Recording {
  events: StreamEvent[];
  bytes: number;
  exchanges: number;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
}

function total(events: StreamEvent[]): number {
  let n = 0;
  for (const e of events) if ('data' in e) n += e.data.length;
  return n;
}

/** `count` keep-alive GETs on one connection, each answered with a `bodySize` byte body. */
export async function recordHttp1(count: number, bodySize: number): Promise<Recording> {
  const body = Buffer.alloc(bodySize, 'x');
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'text/plain');
      res.setHeader('cache-control', 'no-store');
      res.end(body);
    });
  });
  const port = await listen(server);
  const relay = await startRecordingRelay({ port });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const req = http.get(
        {
          host: '127.0.0.1',
          port: relay.port,
          path: `/items/${i}?view=full`,
          agent,
          headers: { accept: 'text/plain', 'user-agent': 'bench/1.0' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve());
        },
      );
      req.on('error', reject);
    });
  }
  agent.destroy();
  await relay.close();
  await new Promise<void>((r) => server.close(() => r()));
  const events = relay.connections.flatMap((c) => c.events);
  return { events, bytes: total(events), exchanges: count };
}

/** `count` GETs as HTTP/2 streams on one connection (h2c prior knowledge), `bodySize` byte bodies. */
export async function recordHttp2(count: number, bodySize: number): Promise<Recording> {
  const body = Buffer.alloc(bodySize, 'y');
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'cache-control': 'no-store' });
    stream.end(body);
  });
  const port = await listen(server);
  const relay = await startRecordingRelay({ port });
  const client = http2.connect(`http://127.0.0.1:${relay.port}`);
  const batch = 50;
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i);
    await Promise.all(
      Array.from(
        { length: n },
        (_, k) =>
          new Promise<void>((resolve, reject) => {
            const req = client.request({
              ':path': `/items/${i + k}?view=full`,
              accept: 'text/plain',
              'user-agent': 'bench/1.0',
            });
            req.on('error', reject);
            req.resume();
            req.on('end', () => resolve());
            req.end();
          }),
      ),
    );
  }
  await new Promise<void>((r) => client.close(() => r()));
  await relay.close();
  await new Promise<void>((r) => server.close(() => r()));
  const events = relay.connections.flatMap((c) => c.events);
  return { events, bytes: total(events), exchanges: count };
}
