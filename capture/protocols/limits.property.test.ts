/**
 * Properties of the decoders under hostile input (fast-check): declared lengths never drive
 * memory, counted raw bytes are bytes that arrived, cuts are reported, nothing emitted is
 * invalid unless it is marked for quarantine, and a shared memory pool returns to zero.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newPool } from './budget.js';
import { MAX_INTERIM } from './http1/decoder.js';
import { Http1Decoder } from './http1/decoder.js';
import { HpackDecoder, MAX_TABLE_BYTES } from './http2/hpack/decoder.js';
import { Http2Decoder } from './http2/decoder.js';
import type { DecodedExchange, DecoderOptions, DecoderSink, MemoryPool, Side, StreamDecoder } from './types.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

interface Seen {
  exchanges: DecodedExchange[];
  raw: number;
  cuts: string[];
  faults: string[];
}

function sinkFor(seen: Seen): DecoderSink {
  return {
    exchange: (ex) => seen.exchanges.push(ex),
    raw: (_s, n) => {
      expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
      seen.raw += n;
    },
    cut: (_s, what) => seen.cuts.push(what),
    fault: (_s, reason) => seen.faults.push(reason),
  };
}

type Ev = { side: Side; data: Uint8Array };

/** Pushes everything, checking the memory bound after each push; returns what came out. */
function run(
  make: (sink: DecoderSink, o: DecoderOptions) => StreamDecoder & { bufferedBytes(): number },
  events: Ev[],
  o: DecoderOptions,
): Seen & { pushed: number } {
  const seen: Seen = { exchanges: [], raw: 0, cuts: [], faults: [] };
  const d = make(sinkFor(seen), o);
  let pushed = 0;
  let ts = 1;
  for (const e of events) {
    d.push(e.side, e.data, ts++);
    pushed += e.data.length;
    expect(d.bufferedBytes()).toBeLessThanOrEqual(o.maxBufferBytes!);
  }
  d.end(ts);
  expect(d.bufferedBytes()).toBe(0);
  return { ...seen, pushed };
}

/** What capture requires of anything a decoder emits (snapshots/quarantine.ts checks the rest). */
function checkEmitted(ex: DecodedExchange): void {
  expect(ex.request.method.length).toBeGreaterThan(0);
  for (const b of [ex.request.body, ex.response?.body]) {
    if (!b) continue;
    expect(Number.isSafeInteger(b.size) && b.size >= 0).toBe(true);
    expect(b.data.length).toBeLessThanOrEqual(b.size);
  }
  if (ex.quarantine === undefined && ex.response) {
    expect(ex.response.status).toBeGreaterThanOrEqual(100);
    expect(ex.response.status).toBeLessThanOrEqual(599);
  }
  expect(ex.response?.interim?.length ?? 0).toBeLessThanOrEqual(MAX_INTERIM);
}

const h1 = (sink: DecoderSink, o: DecoderOptions) => new Http1Decoder(sink, o);
const h2 = (sink: DecoderSink, o: DecoderOptions) => new Http2Decoder(sink, o);

// ---- HTTP/1 hostile messages ------------------------------------------------------------------

const hugeDecimal = fc.oneof(
  fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String),
  fc.constantFrom('99999999999', '999999999999999', '-1', '1e9', ' 5', '5, 6'),
);
const hugeHex = fc.oneof(
  fc.bigInt({ min: 0n, max: 16n ** 20n }).map((n) => n.toString(16)),
  fc.constantFrom('ffffffffffffffff', 'fffffffffffff', '-1', '0x10', ''),
);

const h1Hostile = fc.oneof(
  fc.tuple(hugeDecimal, fc.uint8Array({ maxLength: 4000 })).map(([cl, body]) => [
    Buffer.from(`POST / HTTP/1.1\r\nContent-Length: ${cl}\r\n\r\n`),
    body,
  ]),
  fc.tuple(hugeHex, fc.uint8Array({ maxLength: 4000 })).map(([size, body]) => [
    Buffer.from(`POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\n`),
    body,
  ]),
  fc.nat({ max: 20_000 }).map((n) => [Buffer.from('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1'), Buffer.alloc(n, 0x30)]),
  fc.nat({ max: 20_000 }).map((n) => [Buffer.from('GET / HTTP/1.1\r\nX: '), Buffer.alloc(n, 0x61)]),
  fc.uint8Array({ maxLength: 4000 }).map((b) => [b]),
);

function pieces(parts: Uint8Array[], cuts: number[], side: Side): Ev[] {
  const all = Buffer.concat(parts);
  const at = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
  const out: Ev[] = [];
  let prev = 0;
  for (const c of [...at, all.length]) {
    if (c > prev) out.push({ side, data: all.subarray(prev, c) });
    prev = c;
  }
  return out;
}

describe('decoder limits under hostile input', () => {
  it('HTTP/1: absurd lengths, endless heads and chunk lines stay bounded; raw bytes are bytes that arrived', () => {
    fc.assert(
      fc.property(
        fc.array(h1Hostile, { minLength: 1, maxLength: 4 }),
        fc.array(h1Hostile, { maxLength: 3 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (client, server, cuts) => {
          const events = [...pieces(client.flat(), cuts, 'client'), ...pieces(server.flat(), cuts, 'server')];
          const r = run(h1, events, { maxBufferBytes: 16 * 1024, maxBodyBytes: 4096 });
          expect(r.faults).toEqual([]);
          expect(r.raw).toBeLessThanOrEqual(r.pushed);
          for (const ex of r.exchanges) {
            checkEmitted(ex);
            // bodies kept are bounded by what arrived, never by what was declared
            expect(ex.request.body.data.length).toBeLessThanOrEqual(4096);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('HTTP/1: a head that never ends is cut at the limit and reported; the next request is decoded', () => {
    const r = run(
      h1,
      [
        { side: 'client', data: Buffer.from('GET /a HTTP/1.1\r\nX: ') },
        ...Array.from({ length: 40 }, () => ({ side: 'client' as Side, data: Buffer.alloc(1000, 0x61) })),
        { side: 'client', data: Buffer.from('\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n') },
        { side: 'server', data: Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') },
      ],
      { maxBufferBytes: 64 * 1024 },
    );
    expect(r.cuts).toContain('head');
    expect(r.exchanges.map((e) => [e.request.target, e.quarantine !== undefined])).toEqual([
      ['', true],
      ['/b', false],
    ]);
    expect(r.exchanges[0]!.quarantine).toMatch(/request head longer than 16384 bytes/);
  });

  it('HTTP/1 and HTTP/2: a 1xx storm keeps at most MAX_INTERIM interim answers and reports the cut', () => {
    const storm = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n'.repeat(500));
    const r = run(
      h1,
      [
        { side: 'client', data: Buffer.from('GET / HTTP/1.1\r\n\r\n') },
        { side: 'server', data: storm },
        { side: 'server', data: Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') },
      ],
      { maxBufferBytes: 1 << 20 },
    );
    expect(r.exchanges).toHaveLength(1);
    expect(r.exchanges[0]!.response!.interim).toHaveLength(MAX_INTERIM);
    expect(r.exchanges[0]!.extras).toEqual({ interimDropped: 500 - MAX_INTERIM });
    expect(r.cuts).toEqual(['interim']);
    expect(r.raw).toBe(storm.length - MAX_INTERIM * 25);

    const status100 = Buffer.from([0x08, 0x03, 0x31, 0x30, 0x30]); // :status 100, literal
    const interim = Buffer.concat(Array.from({ length: 200 }, () => frame(1, 4, 1, status100)));
    const r2 = run(
      h2,
      [
        { side: 'client', data: Buffer.concat([PREFACE, frame(1, 5, 1, Buffer.from([0x82, 0x84, 0x86]))]) },
        { side: 'server', data: Buffer.concat([frame(4, 0, 0, Buffer.alloc(0)), interim, frame(1, 5, 1, Buffer.from([0x88]))]) },
      ],
      { maxBufferBytes: 1 << 20 },
    );
    expect(r2.exchanges).toHaveLength(1);
    expect(r2.exchanges[0]!.response!.status).toBe(200);
    expect(r2.exchanges[0]!.response!.interim).toHaveLength(32);
    expect(r2.cuts).toEqual(['interim']);
  });

  it('HTTP/2: frames with any declared length, type and flags stay bounded; raw bytes are bytes that arrived', () => {
    const frameArb = fc
      .record({
        length: fc.oneof(fc.nat({ max: 0xffffff }), fc.nat({ max: 64 })),
        type: fc.nat({ max: 12 }),
        flags: fc.nat({ max: 255 }),
        stream: fc.oneof(fc.constantFrom(0, 1, 3), fc.nat({ max: 0x7fffffff })),
        payload: fc.uint8Array({ maxLength: 3000 }),
      })
      .map((f) => frame(f.type, f.flags, f.stream, Buffer.from(f.payload), f.length));
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 12 }),
        fc.array(frameArb, { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (client, server, cuts) => {
          const events = [...pieces([PREFACE, ...client], cuts, 'client'), ...pieces(server, cuts, 'server')];
          const r = run(h2, events, { maxBufferBytes: 64 * 1024, maxBodyBytes: 8192 });
          expect(r.faults).toEqual([]);
          expect(r.raw).toBeLessThanOrEqual(r.pushed);
          for (const ex of r.exchanges) checkEmitted(ex);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('HTTP/2: a frame that declares 16 MiB is counted as its bytes arrive and reported cut', () => {
    const header = frame(1, 4, 1, Buffer.alloc(0), 0xffffff);
    const r = run(
      h2,
      [
        { side: 'client', data: Buffer.concat([PREFACE, header]) },
        ...Array.from({ length: 10 }, () => ({ side: 'client' as Side, data: Buffer.alloc(1000, 1) })),
      ],
      { maxBufferBytes: 64 * 1024 },
    );
    expect(r.raw).toBe(9 + 10_000);
    expect(r.cuts).toEqual(['frame']);
  });

  it('HPACK: no table size update or SETTINGS value grows the table past its cap', () => {
    fc.assert(
      fc.property(fc.integer({ min: 70_000, max: 2 ** 32 - 1 }), fc.boolean(), fc.nat({ max: 300 }), (limit, mid, extra) => {
        const d = new HpackDecoder(4096, mid);
        d.setLimit(limit);
        const update = encodeInt(limit, 5, 0x20);
        // about 130 KiB of new entries, each added to the table
        const fields = Array.from({ length: 400 }, (_, i) =>
          Buffer.concat([Buffer.from([0x40]), str(`n${i}`), str('v'.repeat(300 - (extra % 50)))]),
        );
        d.decode(Buffer.concat([update, ...fields]));
        expect(d.tableSize).toBeLessThanOrEqual(MAX_TABLE_BYTES);
        expect(d.tableSize).toBeGreaterThan(MAX_TABLE_BYTES / 2);
      }),
      { numRuns: 50 },
    );
  });

  it('HPACK: a small block repeating a large table entry does not grow into a large header list', () => {
    const d = new HpackDecoder(65536, false);
    const big = 'v'.repeat(4000);
    const add = Buffer.concat([Buffer.from([0x40]), str('x-big'), Buffer.from([0x7f, 4000 - 127 + 0x80, 0x1e]), Buffer.from(big)]);
    const repeat = Buffer.alloc(10_000, 0xbe); // index 62: the entry just added
    const out = d.decode(Buffer.concat([add, repeat]), 1 << 20);
    expect(out.cut).toBe(true);
    expect(out.listBytes).toBeLessThanOrEqual(1 << 20);
    expect(out.headers.length).toBeLessThan(300);
  });

  it('connections sharing a pool stay under it together, and give everything back at the end', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 7 }), fc.array(h1Hostile, { minLength: 1, maxLength: 2 })), { maxLength: 20 }),
        (pushes) => {
          const pool: MemoryPool = newPool(256 * 1024);
          const decoders = Array.from({ length: 8 }, (_, i) =>
            (i % 2 ? h2 : h1)({ exchange: () => {} }, { maxBufferBytes: 128 * 1024, pool }),
          );
          for (const [i, parts] of pushes) {
            const d = decoders[i]!;
            if (i % 2) d.push('client', PREFACE, 1);
            for (const p of parts.flat()) {
              d.push('client', p, 2);
              // a push may overshoot by what it carries before checking; never by more
              expect(pool.held).toBeLessThanOrEqual(pool.max + 64 * 1024);
              expect(pool.held).toBeGreaterThanOrEqual(0);
            }
          }
          for (const d of decoders) d.end(3);
          expect(pool.held).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a full pool makes bodies truncated and cuts held heads, instead of growing', () => {
    const pool = newPool(64 * 1024);
    const big = new Http1Decoder({ exchange: () => {} }, { maxBufferBytes: 1 << 20, pool });
    big.push('client', Buffer.from('POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n'), 1);
    for (let i = 0; i < 20; i++) big.push('client', Buffer.alloc(10_000, 1), 2);
    expect(pool.held).toBeLessThanOrEqual(pool.max);
    const seen: Seen = { exchanges: [], raw: 0, cuts: [], faults: [] };
    const other = new Http1Decoder(sinkFor(seen), { maxBufferBytes: 1 << 20, pool });
    other.push('client', Buffer.from('GET / HTTP/1.1\r\nX: '), 1);
    for (let i = 0; i < 10; i++) other.push('client', Buffer.alloc(5000, 0x61), 2);
    expect(seen.cuts).toContain('head');
    expect(pool.held).toBeLessThanOrEqual(pool.max);
    big.end(3);
    other.end(3);
    expect(pool.held).toBe(0);
  });
});

// ---- HTTP/2 and HPACK helpers ------------------------------------------------------------------

function frame(type: number, flags: number, stream: number, payload: Buffer, declared = payload.length): Buffer {
  const h = Buffer.alloc(9);
  h[0] = (declared >>> 16) & 0xff;
  h[1] = (declared >>> 8) & 0xff;
  h[2] = declared & 0xff;
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

function encodeInt(v: number, prefix: number, first: number): Buffer {
  const max = (1 << prefix) - 1;
  if (v < max) return Buffer.from([first | v]);
  const out = [first | max];
  let rest = v - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([encodeInt(b.length, 7, 0), b]);
}
