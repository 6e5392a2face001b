import http2 from 'node:http2';
import type net from 'node:net';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeEvents, type StreamEvent } from '../collect.js';
import { startRecordingRelay } from '../record-relay.js';
import type { DecodedExchange, Side } from '../types.js';
import { Http2Decoder } from './decoder.js';
import { http2 as h2 } from './index.js';

/** One real h2c connection (node client and server via the recording relay). */
async function record(): Promise<StreamEvent[]> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'x-path': String(headers[':path']) }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-t': '1' }));
      stream.end(Buffer.alloc(3000, String(headers[':path']).length));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const relay = await startRecordingRelay({ port: (server.address() as net.AddressInfo).port });
  const client = http2.connect(`http://127.0.0.1:${relay.port}`);
  await Promise.all(
    Array.from(
      { length: 6 },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const req = client.request({
            ':method': 'POST',
            ':path': `/p/${i}`,
            'x-same': 'value-for-the-table',
          });
          req.on('error', reject);
          req.resume();
          req.on('end', () => resolve());
          req.end(Buffer.alloc(100 * i, i));
        }),
    ),
  );
  await new Promise<void>((r) => client.close(() => r()));
  await relay.close();
  await new Promise<void>((r) => server.close(() => r()));
  return relay.connections[0]!.events;
}

function joinSide(events: StreamEvent[], side: Side): Buffer {
  return Buffer.concat(
    events.filter((e) => e.side === side && 'data' in e).map((e) => (e as { data: Uint8Array }).data),
  );
}

function split(buf: Buffer, cuts: number[], side: Side): StreamEvent[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: StreamEvent[] = [];
  let prev = 0;
  for (const c of [...at, buf.length]) {
    if (c > prev) out.push({ side, data: buf.subarray(prev, c) });
    prev = c;
  }
  return out;
}

const shape = (exs: DecodedExchange[]) =>
  exs
    .map((e) => ({ ...e, requestStartNs: 0, requestEndNs: 0, responseStartNs: 0, responseEndNs: 0 }))
    .sort((a, b) => (a.extras!.streamId as number) - (b.extras!.streamId as number));

describe('http2 decoder properties', () => {
  let client: Buffer;
  let server: Buffer;
  let whole: DecodedExchange[];

  beforeAll(async () => {
    const events = await record();
    client = joinSide(events, 'client');
    server = joinSide(events, 'server');
    whole = decodeEvents(h2, [
      { side: 'client', data: client },
      { side: 'server', data: server },
    ]).exchanges;
  });

  it('the recorded connection decodes cleanly', () => {
    expect(whole).toHaveLength(6);
    for (const ex of whole) {
      expect(ex.notes).toBeUndefined();
      expect(ex.response?.trailers).toEqual([['x-t', '1']]);
      expect(ex.response?.body.size).toBe(3000);
    }
  });

  it('any split of the stream decodes to the same exchanges', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 40 }), (cc, cs) => {
        const exs = decodeEvents(h2, [
          ...split(client, cc, 'client'),
          ...split(server, cs, 'server'),
        ]).exchanges;
        expect(shape(exs)).toEqual(shape(whole));
      }),
      { numRuns: 60 },
    );
  });

  it('random, mutated and gapped bytes never throw and stay under the memory cap', () => {
    const cap = 16 * 1024;
    const mutated = fc
      .tuple(
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 4000 })), { maxLength: 3 }),
      )
      .map(([flips, cuts, gaps]) => {
        const c = Buffer.from(client);
        const s = Buffer.from(server);
        for (const [at, v] of flips) (at % 2 ? c : s)[at % (at % 2 ? c : s).length] = v;
        const events: StreamEvent[] = [...split(c, cuts, 'client'), ...split(s, cuts, 'server')];
        for (const [at, len] of gaps)
          events.splice(at % (events.length + 1), 0, { side: at % 2 ? 'client' : 'server', gap: len });
        return events;
      });
    const random = fc.array(
      fc.oneof(
        fc.record({
          side: fc.constantFrom<Side>('client', 'server'),
          data: fc.uint8Array({ maxLength: 2000 }),
        }),
        fc.record({
          side: fc.constantFrom<Side>('client', 'server'),
          gap: fc.integer({ min: 1, max: 5000 }),
        }),
      ),
      { maxLength: 20 },
    );
    fc.assert(
      fc.property(fc.oneof(mutated, random), (events) => {
        const d = new Http2Decoder(
          { exchange: () => {}, raw: () => {} },
          { maxBufferBytes: cap, maxBodyBytes: 4096 },
        );
        let ts = 0;
        for (const ev of events) {
          if ('gap' in ev) d.gap(ev.side, ev.gap, ++ts);
          else d.push(ev.side, ev.data, ++ts);
          expect(d.bufferedBytes()).toBeLessThanOrEqual(cap);
        }
        d.end(++ts);
        expect(d.bufferedBytes()).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
