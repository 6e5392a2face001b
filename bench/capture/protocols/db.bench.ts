/**
 * Databases, one run: decode throughput of recorded PostgreSQL, Redis and MySQL streams (real
 * servers and clients through the loopback recording relay) against a named npm parser on the same
 * bytes where one exists (pg-protocol's backend parser, redis-parser), interleaved A B A B; and the
 * answer latency of the mocks against the real server answering the same queries.
 *
 *   npx tsc -p tsconfig.bench.json && node dist/bench/capture/protocols/db.bench.js
 *
 * Our decoders read both sides (they pair queries with answers); the peers parse the server side
 * only. MB/s is over the bytes each one read.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { StreamEvent } from '../../../capture/protocols/collect.js';
import { mysql, postgres, redis, type ProtocolDecoder } from '../../../capture/protocols/index.js';
import { startRecordingRelay } from '../../../capture/protocols/record-relay.js';
import type { DecodedExchange } from '../../../capture/protocols/types.js';
import type { DbCall } from '../../../core/db.js';
import type { Exchange } from '../../../core/exchange.js';
import { planMocks, startMocks } from '../../../runner/mocks/index.js';
import { type DbServer, startMariadb, startPostgres, startRedis } from '../../../test/helpers/databases.js';
import { toExchanges } from '../../../test/helpers/db-record.js';
import { median, range } from '../../lib/stats.js';

const require = createRequire(import.meta.url);
const { Parser: PgParser } = require('pg-protocol/dist/parser.js') as {
  Parser: new () => { parse(b: Buffer, cb: (m: unknown) => void): void };
};
const RedisParser = require('redis-parser') as new (o: {
  returnReply(r: unknown): void;
  returnError(e: unknown): void;
}) => { execute(b: Buffer): void };
const run = promisify(execFile);

interface Rec {
  /** Per connection, in order. */
  conns: StreamEvent[][];
  bytes: number;
  server: Buffer[];
  serverBytes: number;
  exchanges: Exchange[];
}

async function recordWith(
  server: DbServer,
  protocol: string,
  drive: (port: number) => Promise<void>,
): Promise<Rec> {
  const relay = await startRecordingRelay({ port: server.port });
  await drive(relay.port);
  await relay.close();
  const conns = relay.connections.map((c) => c.events);
  const events = conns.flat();
  const serverChunks = events
    .filter((e): e is { side: 'server'; data: Uint8Array } => e.side === 'server' && 'data' in e)
    .map((e) => Buffer.from(e.data));
  return {
    conns,
    bytes: events.reduce((n, e) => n + ('data' in e ? e.data.length : 0), 0),
    server: serverChunks,
    serverBytes: serverChunks.reduce((n, b) => n + b.length, 0),
    exchanges: toExchanges(protocol, relay, { host: '127.0.0.1', port: server.port }).exchanges,
  };
}

/**
 * Decodes every connection and reads every result's rows: a large result's rows are decoded on
 * first read (capture/protocols/db-rows.ts), and the peers make their row values, so not reading
 * them would time less work than theirs.
 */
function decodeOurs(proto: ProtocolDecoder, rec: Rec): number {
  let n = 0;
  const sink = (ex: DecodedExchange): void => {
    n++;
    const call = ex.extras?.db as DbCall | undefined;
    for (const r of call?.results ?? []) n += r.rows?.length ?? 0;
  };
  for (const events of rec.conns) {
    const d = proto.create({ exchange: sink });
    for (const e of events) if ('data' in e) d.push(e.side, e.data, e.ts ?? 0);
    d.end(0);
  }
  return n;
}

function timeIt(fn: () => unknown, minMs: number): { ms: number; runs: number } {
  const t0 = performance.now();
  let runs = 0;
  let ms = 0;
  do {
    fn();
    runs++;
    ms = performance.now() - t0;
  } while (ms < minMs);
  return { ms, runs };
}

function throughput(name: string, rec: Rec, ours: () => unknown, peer?: [string, () => unknown]): string[] {
  timeIt(ours, 300);
  if (peer) timeIt(peer[1], 300);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < 7; i++) {
    const ra = timeIt(ours, 400);
    a.push((rec.bytes * ra.runs) / (ra.ms / 1000) / 1e6);
    if (peer) {
      const rb = timeIt(peer[1], 400);
      b.push((rec.serverBytes * rb.runs) / (rb.ms / 1000) / 1e6);
    }
  }
  const ratios = a.map((x, i) => x / (b[i] ?? Number.NaN));
  const lines = [
    `| ${name} | retap (both sides) | ${median(a).toFixed(0)} MB/s | ${range(a)
      .map((x) => x.toFixed(0))
      .join('–')} | ${(rec.bytes / 1e6).toFixed(1)} MB, ${rec.exchanges.length} calls |`,
  ];
  if (peer)
    lines.push(
      `| ${name} | ${peer[0]} (server side) | ${median(b).toFixed(0)} MB/s | ${range(b)
        .map((x) => x.toFixed(0))
        .join('–')} | retap/peer ${median(ratios).toFixed(2)}× |`,
    );
  return lines;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function latency(
  label: string,
  once: () => Promise<unknown>,
  n: number,
): Promise<{ p50: number; p99: number; label: string }> {
  for (let i = 0; i < 50; i++) await once();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await once();
    t.push((performance.now() - t0) * 1000);
  }
  return { label, p50: pct(t, 50), p99: pct(t, 99) };
}

async function main(): Promise<void> {
  const [pgs, rds, maria] = await Promise.all([startPostgres(), startRedis(), startMariadb()]);
  const out: string[] = [];
  try {
    const setup = new pg.Client({
      host: '127.0.0.1',
      port: pgs.port,
      user: 'retap',
      password: 'retap-pw',
      database: 'retap',
    });
    await setup.connect();
    await setup.query(
      "create table items(id int primary key, name text, price numeric(8,2), note text); insert into items select g, 'item-' || g, g * 1.25, repeat('x', 40) from generate_series(1, 2000) g",
    );
    await setup.end();
    const N = 2000;

    // ---- PostgreSQL
    const pgRec = await recordWith(pgs, 'postgres', async (port) => {
      const c = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'retap',
        password: 'retap-pw',
        database: 'retap',
      });
      await c.connect();
      for (let i = 0; i < 200; i++)
        await c.query('select id, name, price, note from items where id > $1 order by id limit 100', [i]);
      for (let i = 1; i <= N; i++)
        await c.query({ name: 'one', text: 'select id, name from items where id = $1', values: [i] });
      await c.end();
    });
    const pgServer = Buffer.concat(pgRec.server);
    out.push(
      ...throughput('postgres', pgRec, () => decodeOurs(postgres, pgRec), [
        'pg-protocol Parser',
        () => {
          let n = 0;
          new PgParser().parse(pgServer, () => void n++);
          return n;
        },
      ]),
    );

    // ---- Redis
    const value = 'v'.repeat(100);
    const rdRec = await recordWith(rds, 'redis', async (port) => {
      const c = new Redis({ host: '127.0.0.1', port });
      for (let k = 0; k < 10; k++) {
        const p = c.pipeline();
        for (let i = 0; i < 1000; i++) p.set(`k:${i}`, value).get(`k:${i}`).hgetall(`h:${i}`);
        await p.exec();
      }
      for (let i = 0; i < N; i++) await c.get(`k:${i % 1000}`);
      c.disconnect();
    });
    const rdServer = Buffer.concat(rdRec.server);
    out.push(
      ...throughput('redis', rdRec, () => decodeOurs(redis, rdRec), [
        'redis-parser',
        () => {
          let n = 0;
          const p = new RedisParser({ returnReply: () => void n++, returnError: () => void n++ });
          p.execute(rdServer);
          return n;
        },
      ]),
    );

    // ---- MySQL (no standalone npm parser of the wire protocol to compare with)
    const sql =
      'create table t(id int primary key, n varchar(40), p decimal(8,2)); insert into t select seq, concat("item-", seq), seq * 1.25 from seq_1_to_5000; ' +
      'select * from t; '.repeat(10);
    const myRec = await recordWith(maria, 'mysql', async (port) => {
      await run(
        'mariadb',
        ['--no-defaults', '-h127.0.0.1', `-P${port}`, '-uretap', '-pretap-pw', 'retap', '-e', sql],
        { maxBuffer: 1 << 28 },
      );
    });
    out.push(...throughput('mysql', myRec, () => decodeOurs(mysql, myRec)));

    // ---- mock answer latency vs the real server, same queries
    const lat: Array<{ label: string; p50: number; p99: number }> = [];
    const mocks = await startMocks(
      planMocks([...pgRec.exchanges, ...rdRec.exchanges]),
      [...pgRec.exchanges, ...rdRec.exchanges],
      {
        miss: 'fail',
        bindAddr: () => '127.0.0.1',
        bindPort: () => 0,
      },
    );
    try {
      const pgMockPort = mocks.endpoints.find((e) => e.protocols.includes('postgres'))!.port;
      const rdMockPort = mocks.endpoints.find((e) => e.protocols.includes('redis'))!.port;
      for (const [label, port] of [
        ['postgres server', pgs.port],
        ['postgres mock', pgMockPort],
      ] as const) {
        const c = new pg.Client({
          host: '127.0.0.1',
          port,
          user: 'retap',
          password: 'retap-pw',
          database: 'retap',
        });
        await c.connect();
        let i = 0;
        lat.push(
          await latency(
            label,
            () =>
              c.query({
                name: 'one',
                text: 'select id, name from items where id = $1',
                values: [(i++ % N) + 1],
              }),
            N - 50,
          ),
        );
        await c.end();
      }
      for (const [label, port] of [
        ['redis server', rds.port],
        ['redis mock', rdMockPort],
      ] as const) {
        const c = new Redis({ host: '127.0.0.1', port });
        let i = 0;
        lat.push(await latency(label, () => c.get(`k:${i++ % 1000}`), N - 50));
        c.disconnect();
      }
      const misses = mocks.stats().misses.length;
      out.push('', '| mock answer latency (client side, sequential) | p50 µs | p99 µs |', '|---|---|---|');
      for (const l of lat) out.push(`| ${l.label} | ${l.p50.toFixed(0)} | ${l.p99.toFixed(0)} |`);
      out.push('', `mock misses during the latency runs: ${misses}`);
    } finally {
      await mocks.stop();
    }
  } finally {
    await Promise.all([pgs.stop(), rds.stop(), maria.stop()]);
  }
  process.stdout.write(
    `| protocol | decoder | throughput (median) | spread | notes |\n|---|---|---|---|---|\n${out.join('\n')}\n`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
