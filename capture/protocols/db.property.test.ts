/**
 * Properties of the database decoders (PostgreSQL, MySQL/MariaDB, Redis): any split of a valid
 * stream decodes to the same calls; random, mutated and gapped bytes never throw, always end, and
 * stay under the memory cap.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DbCall, DbResp } from '../../core/db.js';
import { decodeEvents, type StreamEvent } from './collect.js';
import { MysqlDecoder, mysql } from './mysql/index.js';
import { lenencBytes, writeLenenc } from './mysql/packets.js';
import { PostgresDecoder, postgres } from './postgres/index.js';
import { encodeResp, RedisDecoder, redis } from './redis/index.js';
import type { DecodedExchange, ProtocolDecoder, Side, StreamDecoder } from './types.js';

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

const shape = (exs: DecodedExchange[]): unknown =>
  exs.map((e) => ({ ...e, requestStartNs: 0, requestEndNs: 0, responseStartNs: 0, responseEndNs: 0 }));

const word = fc.stringMatching(/^[a-z][a-z0-9_]{0,9}$/);
const text = fc.string({ maxLength: 20 }).filter((s) => !s.includes('\u0000'));

/** Whole-vs-split: the calls decoded from the whole stream equal those decoded from pieces. */
function splitProperty(
  protocol: ProtocolDecoder,
  gen: fc.Arbitrary<{
    client: Buffer;
    server: Buffer;
    check(exs: DecodedExchange[]): void;
    serverFirst?: boolean;
  }>,
): void {
  fc.assert(
    fc.property(
      gen,
      fc.array(fc.nat(), { maxLength: 10 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (g, cc, cs) => {
        const whole = decodeEvents(protocol, [
          ...(g.serverFirst ? [] : [{ side: 'client' as const, data: g.client }]),
          { side: 'server', data: g.server },
          ...(g.serverFirst ? [{ side: 'client' as const, data: g.client }] : []),
        ]);
        g.check(whole.exchanges);
        expect(whole.raw).toEqual([]);
        // client chunks first (a reply never precedes its request), each side split anywhere
        const pieces = g.serverFirst
          ? null
          : decodeEvents(protocol, [...split(g.client, cc, 'client'), ...split(g.server, cs, 'server')]);
        if (pieces) expect(shape(pieces.exchanges)).toEqual(shape(whole.exchanges));
      },
    ),
    { numRuns: 150 },
  );
}

function fuzz(
  make: (cap: number) => StreamDecoder & { bufferedBytes(): number },
  valid: fc.Arbitrary<{ client: Buffer; server: Buffer }>,
): void {
  const cap = 16 * 1024;
  const eventArb = fc.oneof(
    fc.record({ side: fc.constantFrom<Side>('client', 'server'), data: fc.uint8Array({ maxLength: 3000 }) }),
    fc.record({ side: fc.constantFrom<Side>('client', 'server'), gap: fc.integer({ min: 1, max: 5000 }) }),
  );
  const mutated = fc
    .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 8 }), fc.nat())
    .map(([v, flips, gapAt]) => {
      const client = Buffer.from(v.client);
      const server = Buffer.from(v.server);
      for (const [at, b] of flips) {
        const t = at % 2 ? client : server;
        if (t.length) t[at % t.length] = b;
      }
      const cut = client.length ? gapAt % client.length : 0;
      return [
        { side: 'client', data: client.subarray(0, cut) },
        { side: 'client', gap: 7 },
        { side: 'client', data: client.subarray(cut) },
        { side: 'server', data: server },
      ] as StreamEvent[];
    });
  fc.assert(
    fc.property(fc.oneof(fc.array(eventArb, { maxLength: 20 }), mutated), (events) => {
      const d = make(cap);
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
}

// ------------------------------------------------------------------ Redis

const respArb: fc.Arbitrary<DbResp> = fc.letrec<{ v: DbResp }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    text.map((s) => s as DbResp),
    fc.integer().map((n) => n as DbResp),
    fc.constant(null as DbResp),
    word.map((s) => ({ simple: s }) as DbResp),
    word.map((s) => ({ error: `ERR ${s}` }) as DbResp),
    fc
      .uint8Array({ minLength: 1, maxLength: 8 })
      .map((b) => ({ b64: Buffer.from([0, ...b]).toString('base64') }) as DbResp),
    fc.array(tie('v'), { maxLength: 3 }),
  ),
})).v;

const redisStream = fc
  .array(
    fc.tuple(
      fc.constantFrom('GET', 'SET', 'HSET', 'DEL', 'LPUSH', 'INCR'),
      fc.array(text, { maxLength: 3 }),
      respArb,
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((cmds) => ({
    client: Buffer.concat(cmds.flatMap(([n, a]) => encodeResp([n, ...a]))),
    server: Buffer.concat(cmds.flatMap(([, , r]) => encodeResp(r))),
    check: (exs: DecodedExchange[]) => {
      expect(exs).toHaveLength(cmds.length);
      exs.forEach((e, i) => {
        const [n, a, r] = cmds[i]!;
        const call = e.extras!.db as DbCall;
        expect(e.request.method).toBe(n);
        expect(call.params).toEqual(a);
        expect(Buffer.concat(encodeResp(call.reply!)).equals(Buffer.concat(encodeResp(r)))).toBe(true);
        expect(e.notes).toBeUndefined();
      });
    },
  }));

// ------------------------------------------------------------------ PostgreSQL

const pgMsg = (type: string, payload: Buffer): Buffer => {
  const b = Buffer.alloc(5);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(payload.length + 4, 1);
  return Buffer.concat([b, payload]);
};
const cs = (s: string): Buffer => Buffer.from(`${s}\u0000`);
const i16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const rowDesc = (cols: number): Buffer =>
  pgMsg(
    'T',
    Buffer.concat([
      i16(cols),
      ...Array.from({ length: cols }, (_, k) =>
        Buffer.concat([cs(`c${k}`), i32(0), i16(0), i32(25), i16(-1), i32(-1), i16(0)]),
      ),
    ]),
  );
const dataRowMsg = (row: Array<string | null>): Buffer =>
  pgMsg(
    'D',
    Buffer.concat([
      i16(row.length),
      ...row.map((v) => (v === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(v)), Buffer.from(v)]))),
    ]),
  );

const pgCall = fc.record({
  extended: fc.boolean(),
  sql: word.map((w) => `select ${w}`),
  params: fc.array(fc.option(word, { nil: null }), { maxLength: 3 }),
  cols: fc.integer({ min: 1, max: 3 }),
  rows: fc.array(fc.array(fc.option(text, { nil: null }), { minLength: 3, maxLength: 3 }), { maxLength: 4 }),
  error: fc.boolean(),
});

const pgStream = fc.array(pgCall, { minLength: 1, maxLength: 5 }).map((calls) => {
  const client: Buffer[] = [
    Buffer.concat([i32(8 + 5 + 2 + 2 + 1), i32(196608), cs('user'), cs('u'), Buffer.from([0])]),
  ];
  client[0] = Buffer.concat([i32(4 + 4 + 5 + 2 + 1), i32(196608), cs('user'), cs('u'), Buffer.from([0])]);
  const server: Buffer[] = [
    pgMsg('R', i32(0)),
    pgMsg('S', Buffer.concat([cs('server_version'), cs('15')])),
    pgMsg('K', Buffer.concat([i32(7), i32(9)])),
    pgMsg('Z', Buffer.from('I')),
  ];
  for (const c of calls) {
    const rows = c.rows.map((r) => r.slice(0, c.cols));
    if (c.extended) {
      client.push(
        pgMsg('P', Buffer.concat([cs(''), cs(c.sql), i16(0)])),
        pgMsg(
          'B',
          Buffer.concat([
            cs(''),
            cs(''),
            i16(0),
            i16(c.params.length),
            ...c.params.map((p) => (p === null ? i32(-1) : Buffer.concat([i32(p.length), Buffer.from(p)]))),
            i16(0),
          ]),
        ),
        pgMsg('D', Buffer.concat([Buffer.from('P'), cs('')])),
        pgMsg('E', Buffer.concat([cs(''), i32(0)])),
        pgMsg('S', Buffer.alloc(0)),
      );
      if (c.error)
        server.push(
          pgMsg('1', Buffer.alloc(0)),
          pgMsg('2', Buffer.alloc(0)),
          pgMsg(
            'E',
            Buffer.concat([Buffer.from('C'), cs('22012'), Buffer.from('M'), cs('boom'), Buffer.from([0])]),
          ),
        );
      else
        server.push(
          pgMsg('1', Buffer.alloc(0)),
          pgMsg('2', Buffer.alloc(0)),
          rowDesc(c.cols),
          ...rows.map(dataRowMsg),
          pgMsg('C', cs(`SELECT ${rows.length}`)),
        );
      server.push(pgMsg('Z', Buffer.from('I')));
    } else {
      client.push(pgMsg('Q', cs(c.sql)));
      if (c.error)
        server.push(
          pgMsg(
            'E',
            Buffer.concat([Buffer.from('C'), cs('42703'), Buffer.from('M'), cs('nope'), Buffer.from([0])]),
          ),
        );
      else server.push(rowDesc(c.cols), ...rows.map(dataRowMsg), pgMsg('C', cs(`SELECT ${rows.length}`)));
      server.push(pgMsg('Z', Buffer.from('I')));
    }
  }
  client.push(pgMsg('X', Buffer.alloc(0)));
  return {
    client: Buffer.concat(client),
    server: Buffer.concat(server),
    check: (exs: DecodedExchange[]) => {
      expect(exs).toHaveLength(calls.length + 1);
      expect(exs[0]!.request.method).toBe('STARTUP');
      calls.forEach((c, i) => {
        const e = exs[i + 1]!;
        const call = e.extras!.db as DbCall;
        expect(call.text).toBe(c.sql);
        if (c.extended) expect(call.params).toEqual(c.params);
        if (c.error) expect(e.response!.status).toBe(500);
        else expect(call.results![0]!.rows).toEqual(c.rows.map((r) => r.slice(0, c.cols)));
        expect(e.notes).toBeUndefined();
      });
    },
  };
});

// ------------------------------------------------------------------ MySQL

const myPacket = (seq: number, p: Buffer): Buffer => {
  const h = Buffer.alloc(4);
  h.writeUIntLE(p.length, 0, 3);
  h[3] = seq;
  return Buffer.concat([h, p]);
};
const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const colDef = (name: string): Buffer =>
  Buffer.concat([
    ...['def', 'db', 't', 't', name, name].map((s) => lenencBytes(Buffer.from(s))),
    Buffer.from([0x0c]),
    u16(33),
    u32(10),
    Buffer.from([253]),
    u16(0),
    Buffer.from([0, 0, 0]),
  ]);

const myStream = fc
  .tuple(
    fc.boolean(),
    fc.array(
      fc.record({
        sql: word.map((w) => `select ${w}`),
        cols: fc.integer({ min: 1, max: 3 }),
        rows: fc.array(fc.array(fc.option(text, { nil: null }), { minLength: 3, maxLength: 3 }), {
          maxLength: 4,
        }),
        ok: fc.boolean(),
      }),
      { minLength: 1, maxLength: 5 },
    ),
  )
  .map(([deprecateEof, calls]) => {
    const caps = 512 | (1 << 15) | (1 << 19) | (deprecateEof ? 1 << 24 : 0) | 8;
    const server: Buffer[] = [
      myPacket(
        0,
        Buffer.concat([
          Buffer.from([10]),
          Buffer.from('10.11.0-MariaDB\u0000'),
          u32(5),
          Buffer.alloc(8, 1),
          Buffer.from([0]),
          u16(caps & 0xffff),
          Buffer.from([33]),
          u16(2),
          u16(caps >>> 16),
          Buffer.from([21]),
          Buffer.alloc(10),
          Buffer.alloc(13, 2),
          Buffer.from('mysql_native_password\u0000'),
        ]),
      ),
    ];
    const client: Buffer[] = [
      myPacket(
        1,
        Buffer.concat([
          u32(caps | 1),
          u32(1 << 24),
          Buffer.from([33]),
          Buffer.alloc(23),
          Buffer.from('u\u0000'),
          Buffer.from([20]),
          Buffer.alloc(20, 3),
          Buffer.from('db\u0000'),
          Buffer.from('mysql_native_password\u0000'),
        ]),
      ),
    ];
    server.push(myPacket(2, Buffer.from([0, 0, 0, 2, 0, 0, 0])));
    const eof = (seq: number) => myPacket(seq, Buffer.from([0xfe, 0, 0, 2, 0]));
    for (const c of calls) {
      client.push(myPacket(0, Buffer.concat([Buffer.from([3]), Buffer.from(c.sql)])));
      if (c.ok) {
        server.push(
          myPacket(1, Buffer.concat([Buffer.from([0]), writeLenenc(3), writeLenenc(0), u16(2), u16(0)])),
        );
        continue;
      }
      let seq = 1;
      server.push(myPacket(seq++, writeLenenc(c.cols)));
      for (let k = 0; k < c.cols; k++) server.push(myPacket(seq++, colDef(`c${k}`)));
      if (!deprecateEof) server.push(eof(seq++));
      for (const r of c.rows)
        server.push(
          myPacket(
            seq++,
            Buffer.concat(
              r.slice(0, c.cols).map((v) => (v === null ? Buffer.from([0xfb]) : lenencBytes(Buffer.from(v)))),
            ),
          ),
        );
      server.push(deprecateEof ? myPacket(seq++, Buffer.from([0xfe, 0, 0, 2, 0, 0, 0])) : eof(seq++));
    }
    return {
      client: Buffer.concat(client),
      server: Buffer.concat(server),
      serverFirst: false,
      check: (exs: DecodedExchange[]) => {
        expect(exs).toHaveLength(calls.length + 1);
        expect((exs[0]!.extras!.db as DbCall).session?.user).toBe('u');
        calls.forEach((c, i) => {
          const call = exs[i + 1]!.extras!.db as DbCall;
          expect(call.text).toBe(c.sql);
          if (c.ok) expect(call.results![0]!.ok!.affectedRows).toBe(3);
          else expect(call.results![0]!.rows).toEqual(c.rows.map((r) => r.slice(0, c.cols)));
        });
      },
    };
  });

describe('database decoders: properties', () => {
  it('redis: any split decodes to the same commands and replies', () => splitProperty(redis, redisStream));
  it('postgres: any split decodes to the same calls (simple and extended, errors)', () =>
    splitProperty(postgres, pgStream));
  it('mysql: any split decodes to the same calls (with and without DEPRECATE_EOF)', () => {
    // the server speaks first: put its handshake before the client's bytes when splitting
    fc.assert(
      fc.property(myStream, fc.array(fc.nat(), { maxLength: 10 }), (g, cuts) => {
        const whole = decodeEvents(mysql, interleave(g.client, g.server));
        g.check(whole.exchanges);
        const pieces: StreamEvent[] = [];
        for (const ev of interleave(g.client, g.server)) {
          if ('data' in ev) pieces.push(...split(Buffer.from(ev.data), cuts, ev.side));
        }
        expect(shape(decodeEvents(mysql, pieces).exchanges)).toEqual(shape(whole.exchanges));
      }),
      { numRuns: 150 },
    );
  });
  it('redis: random and mutated bytes never throw and stay under the cap', () =>
    fuzz(
      (cap) => new RedisDecoder({ exchange: () => {}, raw: () => {} }, { maxBufferBytes: cap }),
      redisStream,
    ));
  it('postgres: random and mutated bytes never throw and stay under the cap', () =>
    fuzz(
      (cap) =>
        new PostgresDecoder(
          { exchange: () => {}, raw: () => {} },
          { maxBufferBytes: cap, maxBodyBytes: 4096 },
        ),
      pgStream,
    ));
  it('mysql: random and mutated bytes never throw and stay under the cap', () =>
    fuzz(
      (cap) =>
        new MysqlDecoder({ exchange: () => {}, raw: () => {} }, { maxBufferBytes: cap, maxBodyBytes: 4096 }),
      myStream,
    ));
});

/** Packets of a request/response protocol in wire order: each command, then its answer. */
function interleave(client: Buffer, server: Buffer): StreamEvent[] {
  const packets = (b: Buffer): Buffer[] => {
    const out: Buffer[] = [];
    for (let i = 0; i + 4 <= b.length; ) {
      const len = b.readUIntLE(i, 3);
      out.push(b.subarray(i, i + 4 + len));
      i += 4 + len;
    }
    return out;
  };
  const c = packets(client);
  const s = packets(server);
  const ev: StreamEvent[] = [];
  let si = 0;
  // handshake first
  ev.push({ side: 'server', data: s[si++]! });
  for (const p of c) {
    ev.push({ side: 'client', data: p });
    const answer: Buffer[] = [];
    while (si < s.length) {
      answer.push(s[si]!);
      si++;
      if (si < s.length && s[si]![3] === 1) break;
    }
    if (answer.length) ev.push({ side: 'server', data: Buffer.concat(answer) });
  }
  return ev;
}
