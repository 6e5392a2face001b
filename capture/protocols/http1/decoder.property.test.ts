import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeEvents, type StreamEvent } from '../collect.js';
import type { DecodedExchange, Side } from '../types.js';
import { Http1Decoder } from './decoder.js';
import { http1 } from './index.js';

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,11}$/);
const value = fc.stringMatching(/^[ -~]{0,20}$/).map((v) => v.trim());
const bodyArb = fc.uint8Array({ maxLength: 300 });

interface Msg {
  method: string;
  headers: Array<[string, string]>;
  reqBody: Uint8Array;
  reqChunked: boolean;
  status: number;
  respBody: Uint8Array;
  respChunked: boolean;
}

const msgArb: fc.Arbitrary<Msg> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'DELETE'),
  headers: fc.array(
    fc.tuple(
      token.filter((t) => !/^(content-length|transfer-encoding|connection|upgrade)$/i.test(t)),
      value,
    ),
    {
      maxLength: 4,
    },
  ),
  reqBody: bodyArb,
  reqChunked: fc.boolean(),
  status: fc.constantFrom(200, 201, 204, 304, 404, 500),
  respBody: bodyArb,
  respChunked: fc.boolean(),
});

function chunked(body: Uint8Array): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += 50) {
    const piece = body.subarray(i, i + 50);
    parts.push(Buffer.from(`${piece.length.toString(16)};x=y\r\n`), Buffer.from(piece), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\nX-T: 1\r\n\r\n'));
  return Buffer.concat(parts);
}

function serialize(msgs: Msg[]): { client: Buffer; server: Buffer } {
  const cl: Buffer[] = [];
  const sv: Buffer[] = [];
  for (const m of msgs) {
    const h = m.headers.map(([n, v]) => `${n}: ${v}\r\n`).join('');
    const reqFraming = m.reqChunked
      ? 'Transfer-Encoding: chunked\r\n'
      : `Content-Length: ${m.reqBody.length}\r\n`;
    cl.push(Buffer.from(`${m.method} /p HTTP/1.1\r\n${h}${reqFraming}\r\n`, 'latin1'));
    cl.push(m.reqChunked ? chunked(m.reqBody) : Buffer.from(m.reqBody));
    const noBody = m.method === 'HEAD' || m.status === 204 || m.status === 304;
    const respFraming = m.respChunked
      ? 'Transfer-Encoding: chunked\r\n'
      : `Content-Length: ${m.respBody.length}\r\n`;
    sv.push(Buffer.from(`HTTP/1.1 ${m.status} X\r\n${h}${respFraming}\r\n`, 'latin1'));
    if (!noBody) sv.push(m.respChunked ? chunked(m.respBody) : Buffer.from(m.respBody));
  }
  return { client: Buffer.concat(cl), server: Buffer.concat(sv) };
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

/** Timestamps depend on chunking; compare everything else. */
function shape(exs: DecodedExchange[]): unknown {
  return exs.map((e) => ({ ...e, requestStartNs: 0, requestEndNs: 0, responseStartNs: 0, responseEndNs: 0 }));
}

describe('http1 decoder properties', () => {
  it('any split of a valid stream decodes to the same exchanges', () => {
    fc.assert(
      fc.property(
        fc.array(msgArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (msgs, cutsC, cutsS) => {
          const { client, server } = serialize(msgs);
          const whole = decodeEvents(http1, [
            { side: 'client', data: client },
            { side: 'server', data: server },
          ]).exchanges;
          expect(whole).toHaveLength(msgs.length);
          whole.forEach((ex, i) => {
            const m = msgs[i]!;
            expect(ex.request.method).toBe(m.method);
            expect(Buffer.from(ex.request.body.data).equals(Buffer.from(m.reqBody))).toBe(true);
            const noBody = m.method === 'HEAD' || m.status === 204 || m.status === 304;
            expect(ex.response?.body.size).toBe(noBody ? 0 : m.respBody.length);
            expect(ex.notes).toBeUndefined();
          });
          const cEv = split(client, cutsC, 'client');
          const sEv = split(server, cutsS, 'server');
          // Capture delivers in time order: a response never precedes its request's head, so
          // all client chunks go first (each side's split is still arbitrary).
          const events: StreamEvent[] = [...cEv, ...sEv];
          const pieces = decodeEvents(http1, events).exchanges;
          expect(shape(pieces)).toEqual(shape(whole));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('random and mutated bytes never throw, always end, and stay under the memory cap', () => {
    const cap = 16 * 1024;
    const eventArb = fc.oneof(
      fc.record({
        side: fc.constantFrom<Side>('client', 'server'),
        data: fc.uint8Array({ maxLength: 3000 }),
      }),
      fc.record({ side: fc.constantFrom<Side>('client', 'server'), gap: fc.integer({ min: 1, max: 5000 }) }),
    );
    const mutated = fc
      .tuple(
        fc.array(msgArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 10 }),
      )
      .map(([msgs, flips]) => {
        const { client, server } = serialize(msgs);
        for (const [at, v] of flips) {
          const target = at % 2 ? client : server;
          if (target.length > 0) target[at % target.length] = v;
        }
        return [
          { side: 'client', data: client },
          { side: 'server', data: server },
        ] as StreamEvent[];
      });
    fc.assert(
      fc.property(fc.oneof(fc.array(eventArb, { maxLength: 20 }), mutated), (events) => {
        const sink = { exchange: () => {}, raw: () => {} };
        const d = new Http1Decoder(sink, { maxBufferBytes: cap, maxBodyBytes: 4096 });
        let ts = 0;
        for (const ev of events) {
          if ('gap' in ev) d.gap(ev.side, ev.gap, ++ts);
          else d.push(ev.side, ev.data, ++ts);
          expect(d.bufferedBytes()).toBeLessThanOrEqual(cap);
          expect(d.bufferedBytes()).toBeGreaterThanOrEqual(0);
        }
        d.end(++ts);
        expect(d.bufferedBytes()).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('a huge header without end and a huge body stay under the cap', () => {
    const cap = 8192;
    const d = new Http1Decoder({ exchange: () => {} }, { maxBufferBytes: cap });
    d.push('client', Buffer.from('GET / HTTP/1.1\r\nX: '), 1);
    for (let i = 0; i < 100; i++) {
      d.push('client', Buffer.alloc(1000, 0x61), 2);
      expect(d.bufferedBytes()).toBeLessThanOrEqual(cap);
    }
    d.push('server', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n'), 3);
    for (let i = 0; i < 100; i++) {
      d.push('server', Buffer.alloc(10000, 0x62), 4);
      expect(d.bufferedBytes()).toBeLessThanOrEqual(cap);
    }
  });
});
