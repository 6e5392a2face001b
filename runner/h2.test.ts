/**
 * The HTTP/2 replay client against real servers, without eBPF: a grpc-js client's calls (every
 * call shape) recorded byte for byte through the recording relay and the HTTP/2 decoder, then
 * replayed by drive() straight to the grpc-js server — the same answers, message for message,
 * each stream reporting the connection and stream id it went out on; and a node:http2 h2c JSON
 * API whose overlapping streams go out concurrently on one session.
 */
import http2 from 'node:http2';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvents } from '../capture/protocols/collect.js';
import { http2 as h2decoder } from '../capture/protocols/index.js';
import { startRecordingRelay } from '../capture/protocols/record-relay.js';
import type { Exchange } from '../core/exchange.js';
import { grpcFrames } from '../core/protobuf.js';
import { start, stopAll } from '../test/helpers/procs.js';
import { type DrivenItem, drive } from './driver.js';
import { planH2 } from './h2.js';
import type { SpecItem } from './spec.js';

const peer = join(import.meta.dirname, '..', 'test', 'fixtures', 'grpc', 'node-peer.mjs');

async function listening(p: ReturnType<typeof start>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const m = /listening (\d+)/.exec(p.output());
    if (m) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`peer did not start: ${p.output()}`);
}

/** Records what `traffic` sends through a relay to `port`, as inbound exchanges. */
async function record(port: number, traffic: (relayPort: number) => Promise<void>): Promise<Exchange[]> {
  const relay = await startRecordingRelay({ port });
  try {
    await traffic(relay.port);
  } finally {
    await relay.close();
  }
  const out: Exchange[] = [];
  relay.connections.forEach((c, ci) => {
    const t0 = c.events[0]?.ts ?? 0;
    decodeEvents(h2decoder, c.events).exchanges.forEach((d, i) => {
      out.push({
        id: `c${ci}#${i}`,
        protocol: d.protocol,
        direction: 'inbound',
        tls: false,
        service: { addr: '127.0.0.1', port },
        peer: { addr: '127.0.0.1', port: 40000 + ci },
        connection: { id: `c${ci}`, order: i },
        request: d.request,
        ...(d.response ? { response: d.response } : {}),
        timing: {
          startUs: 1_700_000_000_000_000 + Math.round((d.requestStartNs - t0) / 1000),
          requestEndNs: d.requestEndNs - d.requestStartNs,
          ...(d.responseStartNs !== undefined
            ? { responseStartNs: d.responseStartNs - d.requestStartNs }
            : {}),
          ...(d.responseEndNs !== undefined ? { responseEndNs: d.responseEndNs - d.requestStartNs } : {}),
        },
        ...(d.notes ? { notes: d.notes } : {}),
        ...(d.extras ? { extras: d.extras } : {}),
      });
    });
  });
  return out.sort((a, b) => a.timing.startUs - b.timing.startUs);
}

function specItems(recorded: Exchange[]): SpecItem[] {
  return recorded.map((ex) => ({
    id: ex.id,
    session: ex.connection.id,
    method: ex.request.method,
    target: ex.request.target,
    headers: ex.request.headers,
    body: Buffer.from(ex.request.body.data).toString('base64'),
    startUs: ex.timing.startUs,
    connection: ex.connection.id,
    closeAfter: false,
    h2: planH2(ex)!,
    endUs: ex.timing.startUs + (ex.timing.responseEndNs ?? ex.timing.requestEndNs) / 1000,
  }));
}

const trailer = (d: DrivenItem, name: string): string | undefined =>
  d.answer?.trailers?.find(([n]) => n === name)?.[1] ?? d.answer?.headers.find(([n]) => n === name)?.[1];
const recTrailer = (e: Exchange, name: string): string | undefined =>
  e.response?.trailers?.find(([n]) => n === name)?.[1] ?? e.response?.headers.find(([n]) => n === name)?.[1];

afterAll(async () => {
  await stopAll();
});

describe('gRPC replay over HTTP/2 (grpc-js server and client)', () => {
  let port = 0;
  let recorded: Exchange[] = [];

  beforeAll(async () => {
    const server = start(process.execPath, [peer, 'server', '0']);
    port = await listening(server);
    recorded = await record(port, async (relayPort) => {
      const client = start(process.execPath, [peer, 'client', String(relayPort)]);
      await new Promise<void>((r) => client.child.once('exit', () => r()));
    });
  }, 30_000);

  it('records every call shape with message times and the half-close', () => {
    const methods = recorded.map((e) => e.request.target);
    expect(methods).toEqual([
      '/retap.test.Catalog/Get',
      '/retap.test.Catalog/Get',
      '/retap.test.Catalog/Get',
      '/retap.test.Catalog/List',
      '/retap.test.Catalog/Checkout',
      '/retap.test.Catalog/Chat',
    ]);
    const chat = recorded[5]!;
    const plan = planH2(chat)!;
    // ping-pong: message k went out after the k-th answer
    expect(plan.messages?.map((m) => m.after)).toEqual([0, 1, 2]);
    expect(plan.halfClose).toMatchObject({ after: 3 });
    const checkout = planH2(recorded[4]!)!;
    expect(checkout.messages?.map((m) => m.after)).toEqual([0, 0, 0]);
  });

  it('replays them: the same statuses and messages, each stream named by connection and id', async () => {
    const items = specItems(recorded);
    const lanes = [{ key: 'c0', items: items.map((_, i) => i) }];
    const driven = await drive(`http://127.0.0.1:${port}`, items, lanes, { concurrency: 1, timeoutMs: 5000 });
    for (const [i, d] of driven.entries()) {
      const rec = recorded[i]!;
      if (!rec.response) {
        // the recorded client gave up first (its deadline): replay resets the stream there too
        expect(rec.extras?.resetBy).toBe('client');
        // the request carries the recorded grpc-timeout, so the server may enforce the deadline
        // itself a few ms before the recorded reset: either outcome is the recorded race
        if (d.error === undefined) expect(trailer(d, 'grpc-status')).toBe('4');
        else expect(d.error).toMatch(/reset by the client as recorded/);
        continue;
      }
      expect(d.error, rec.request.target).toBeUndefined();
      expect(trailer(d, 'grpc-status'), `${i} ${rec.request.target}`).toBe(recTrailer(rec, 'grpc-status'));
      const got = grpcFrames(d.answer!.body).frames.map((f) => Buffer.from(f.bytes).toString('hex'));
      const want = grpcFrames(rec.response!.body.data).frames.map((f) =>
        Buffer.from(f.bytes).toString('hex'),
      );
      expect(got, rec.request.target).toEqual(want);
      expect(d.socket?.stream).toBe(rec.extras?.streamId);
    }
    // one session for the recorded connection
    expect(new Set(driven.map((d) => `${d.socket?.port}/${d.socket?.openedUs}`)).size).toBe(1);
    // the deadline travelled as recorded: the server answered DEADLINE_EXCEEDED… or the client
    // cancelled; either way what was recorded is what replay sees
    expect(recorded[2]!.request.headers.some(([n]) => n === 'grpc-timeout')).toBe(true);
  }, 30_000);
});

describe('h2c JSON API (node:http2): overlapping streams go out at once on one session', () => {
  it('keeps the recorded concurrency and the answers', async () => {
    let open = 0;
    let most = 0;
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      open++;
      most = Math.max(most, open);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        setTimeout(() => {
          open--;
          stream.respond({ ':status': 200, 'content-type': 'application/json' });
          stream.end(JSON.stringify({ path: headers[':path'], got: Buffer.concat(chunks).toString() }));
        }, 50);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const recorded = await record(port, async (relayPort) => {
        const s = http2.connect(`http://127.0.0.1:${relayPort}`);
        await Promise.all(
          [1, 2, 3, 4].map(
            (k) =>
              new Promise<void>((resolve) => {
                const r = s.request({
                  ':method': 'POST',
                  ':path': `/items/${k}`,
                  'content-type': 'application/json',
                });
                r.end(JSON.stringify({ k }));
                r.on('data', () => {});
                r.on('close', () => resolve());
              }),
          ),
        );
        await new Promise<void>((r) => s.close(() => r()));
      });
      expect(recorded).toHaveLength(4);
      most = 0;
      const items = specItems(recorded);
      const driven = await drive(`http://127.0.0.1:${port}`, items, [{ key: 'c0', items: [0, 1, 2, 3] }], {
        concurrency: 1,
        timeoutMs: 5000,
      });
      expect(most).toBe(4);
      for (const [i, d] of driven.entries()) {
        expect(d.status).toBe(200);
        expect(Buffer.from(d.answer!.body).toString()).toBe(
          Buffer.from(recorded[i]!.response!.body.data).toString(),
        );
      }
    } finally {
      server.close();
    }
  }, 30_000);
});

describe('a gRPC call the build resets at its deadline (as grpc-go does when its timer wins)', () => {
  /** One empty gRPC request to `path` with `grpc-timeout: 100m`, as the driver sends it. */
  const call = (path: string): SpecItem => ({
    id: path,
    session: 'c0',
    method: 'POST',
    target: path,
    headers: [
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['grpc-timeout', '100m'],
    ],
    body: Buffer.from([0, 0, 0, 0, 0]).toString('base64'),
    startUs: 1,
    connection: 'c0',
    closeAfter: false,
    h2: {},
    endUs: 2,
  });

  it('reads as DEADLINE_EXCEEDED, said to be the client’s; a reset before the deadline stays an error', async () => {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.on('data', () => {});
      // past the deadline: reset, never a status (grpc-go's deadline timer); before it: reset too
      const wait = headers[':path'] === '/x.Svc/Late' ? 200 : 10;
      setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), wait);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const items = [call('/x.Svc/Late'), call('/x.Svc/Early')];
      const [late, early] = await drive(
        `http://127.0.0.1:${port}`,
        items,
        [
          { key: 'a', items: [0] },
          { key: 'b', items: [1] },
        ],
        { concurrency: 2, timeoutMs: 5000 },
      );
      expect(late!.status).toBe(200);
      expect(trailer(late!, 'grpc-status')).toBe('4');
      expect(late!.answer?.deadline).toMatch(/past its grpc-timeout of 100 ms: DEADLINE_EXCEEDED/);
      expect(early!.status).toBeUndefined();
      expect(early!.error).toMatch(/reset the stream \(HTTP\/2 error code 8\)/);
    } finally {
      server.close();
    }
  }, 30_000);
});
