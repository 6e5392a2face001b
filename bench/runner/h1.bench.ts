/**
 * Micro-benchmark: the replay driver's answer framing (runner/h1.ts: a connection's read callback,
 * i.e. the CRLFCRLF head scan, the framing-only head parse, the body copy into the arena and the
 * answer object), on real-looking answers each delivered in one read, as a socket delivers a
 * keep-alive answer: JSON with Content-Length, chunked HTML, 304 and 204.
 *
 * The connection is real (H1Pool's dedicated connection to a loopback server that answers one
 * request to open it); then its read callback is fed the answers directly, so no syscall is timed.
 * Between answers the bench resets the per-answer state that `send()` resets (everything but the
 * socket write); the check after timing fails if the answers did not come out whole.
 *
 * Peers on the same bytes, in the same rounds: node's own llhttp (internal HTTPParser, a response
 * parser fed one answer per execute, bodies copied), and the floor: Buffer.indexOf CRLFCRLF per
 * answer.
 *
 *   npx tsc -p tsconfig.bench.json && node dist/bench/runner/h1.bench.js [--quick]
 */
import net from 'node:net';
import { type H1Answer, H1Pool } from '../../runner/h1.js';
import { llhttp, parseWithLlhttp } from '../capture/protocols/peers.js';
import { type Arm, type MicroCase, type MicroOptions, prng, randomText, runCases } from '../lib/micro.js';
import type { Row } from '../lib/rows.js';

const HEX = '0123456789abcdef';

interface Expected {
  status: number;
  body: number;
}

/** `count` answers, each one Buffer (one read). */
export function answers(count: number, seed = 5): { reads: Buffer[]; expected: Expected[]; bytes: number } {
  const rnd = prng(seed);
  const reads: Buffer[] = [];
  const expected: Expected[] = [];
  const date = 'Date: Mon, 30 Nov 2026 06:30:00 GMT\r\n';
  for (let i = 0; i < count; i++) {
    const k = i % 20;
    let text: string;
    let body = 0;
    let status = 200;
    if (k < 12) {
      const items: string[] = [];
      const want = 800 + Math.floor(rnd() * 3200);
      let len = 2;
      while (len < want) {
        const it = `{"id":${Math.floor(rnd() * 1e6)},"sku":"${randomText(rnd, 10)}","price":${(rnd() * 100).toFixed(2)},"tags":["${randomText(rnd, 6)}"]}`;
        items.push(it);
        len += it.length + 1;
      }
      const json = `[${items.join(',')}]`;
      body = json.length;
      text =
        `HTTP/1.1 200 OK\r\nServer: gunicorn\r\n${date}Content-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${json.length}\r\nETag: "${randomText(rnd, 20, HEX)}"\r\nVary: Accept-Encoding, Authorization\r\n` +
        `Cache-Control: private, max-age=0, must-revalidate\r\nX-Request-Id: ${randomText(rnd, 36, HEX)}\r\n` +
        `Set-Cookie: session=${randomText(rnd, 40)}; Path=/; HttpOnly; Secure; SameSite=Lax\r\nKeep-Alive: timeout=5\r\n\r\n${json}`;
    } else if (k < 15) {
      const chunks = Array.from(
        { length: 3 },
        () =>
          `<div class="row"><span>${randomText(rnd, 200 + Math.floor(rnd() * 800), 'abcdefghijklmnopqrstuvwxyz ')}</span></div>`,
      );
      body = chunks.reduce((s, c) => s + c.length, 0);
      text =
        `HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n${date}Content-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\n` +
        `Connection: keep-alive\r\nX-Frame-Options: DENY\r\nContent-Security-Policy: default-src 'self'\r\n\r\n` +
        `${chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('')}0\r\n\r\n`;
    } else if (k < 17) {
      status = 304;
      text = `HTTP/1.1 304 Not Modified\r\nServer: nginx/1.22.1\r\n${date}ETag: "${randomText(rnd, 20, HEX)}"\r\nCache-Control: max-age=60\r\n\r\n`;
    } else if (k < 18) {
      status = 204;
      text = `HTTP/1.1 204 No Content\r\nServer: gunicorn\r\n${date}X-Request-Id: ${randomText(rnd, 36, HEX)}\r\n\r\n`;
    } else {
      status = 404;
      const json = `{"error":"not_found","message":"order ${Math.floor(rnd() * 1e6)} does not exist"}`;
      body = json.length;
      text = `HTTP/1.1 404 Not Found\r\nServer: gunicorn\r\n${date}Content-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`;
    }
    reads.push(Buffer.from(text, 'latin1'));
    expected.push({ status, body });
  }
  return { reads, expected, bytes: reads.reduce((s, b) => s + b.length, 0) };
}

/** The parts of runner/h1.ts's (unexported) connection the bench drives: its read callback and the state `send()` resets. */
interface DriverConn {
  cur: unknown;
  phase: number;
  headBuf: unknown;
  first: unknown;
  more: unknown;
  bbuf: unknown;
  size: number;
  answered: boolean;
  onData(d: Buffer): void;
}

export interface Driver {
  /** Feeds every answer to the connection; returns the answers it resolved. */
  feed(reads: Buffer[]): H1Answer[];
  close(): Promise<void>;
}

/** A real dedicated driver connection to a loopback server that answers the first request only. */
export async function openDriver(): Promise<Driver> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('data', () => s.write('HTTP/1.1 204 No Content\r\n\r\n'));
    s.on('data', () => {});
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const pool = new H1Pool('127.0.0.1', port, { connections: 1, timeoutMs: 600_000, maxBody: 64 << 20 });
  const own = pool.connection();
  const first = await own.request({
    method: 'GET',
    target: '/',
    headers: [['Host', 'bench']],
    body: new Uint8Array(0),
  });
  if (first.status !== 204) throw new Error(`opening request answered ${first.status}`);
  const conn = (own as unknown as { conn?: DriverConn }).conn;
  if (!conn || typeof conn.onData !== 'function')
    throw new Error('runner/h1.ts connection internals changed: update this bench');
  const out: H1Answer[] = [];
  const pending = {
    wire: '',
    body: undefined,
    isHead: false,
    isConnect: false,
    closes: false,
    where: undefined,
    conn: undefined,
    seq: 0,
    sentUs: 0,
    resolve: (a: H1Answer) => out.push(a),
    reject: (e: Error) => {
      throw e;
    },
  };
  return {
    feed(reads) {
      out.length = 0;
      for (const d of reads) {
        // what send() resets, without the socket write
        conn.cur = pending;
        conn.phase = 0;
        conn.headBuf = undefined;
        conn.first = undefined;
        conn.more = undefined;
        conn.bbuf = undefined;
        conn.size = 0;
        conn.answered = false;
        conn.onData(d);
      }
      return out.slice();
    },
    async close() {
      own.close();
      await pool.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

export async function cases(): Promise<{ cases: MicroCase[]; close: () => Promise<void> }> {
  const a = answers(1000);
  const driver = await openDriver();
  const P = llhttp();
  const events = a.reads.map((data) => ({ side: 'server' as const, data }));
  const peers: Arm[] = [];
  if (P)
    peers.push({
      name: 'node llhttp (internal HTTPParser), same answers',
      fn: () => parseWithLlhttp(P, events),
    });
  peers.push({
    name: 'floor: Buffer.indexOf CRLFCRLF per answer',
    fn: () => {
      let n = 0;
      for (const d of a.reads) n += d.indexOf(CRLFCRLF);
      return n;
    },
  });
  return {
    cases: [
      {
        path: 'driver HTTP/1 answer framing (read callback)',
        input: `${a.reads.length} answers, one read each (60% JSON with Content-Length 0.8–4 KB, 15% chunked HTML, 10% 304, 5% 204, 10% 404), ${(a.bytes / 1e6).toFixed(2)} MB`,
        op: 'answer',
        opsPerCall: a.reads.length,
        bytesPerCall: a.bytes,
        ours: { name: 'retap driver (H1 connection read callback)', fn: () => driver.feed(a.reads).length },
        peers,
        check: () => {
          const got = driver.feed(a.reads);
          if (got.length !== a.expected.length)
            throw new Error(`driver resolved ${got.length} answers of ${a.expected.length}`);
          got.forEach((x, i) => {
            const e = a.expected[i]!;
            if (x.status !== e.status || x.body.length !== e.body)
              throw new Error(
                `answer ${i}: ${x.status} with ${x.body.length} body bytes, expected ${e.status} with ${e.body}`,
              );
          });
          if (P) {
            const m = parseWithLlhttp(P, events);
            if (m !== a.reads.length) throw new Error(`llhttp completed ${m} answers of ${a.reads.length}`);
          }
        },
      },
    ],
    close: () => driver.close(),
  };
}

export async function run(opts: MicroOptions): Promise<Row[]> {
  const c = await cases();
  try {
    return await runCases(c.cases, opts);
  } finally {
    await c.close();
  }
}

if (process.argv[1]?.endsWith('h1.bench.js')) {
  run({ quick: process.argv.includes('--quick') }).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
