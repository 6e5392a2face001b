/**
 * Micro-benchmark: redaction (snapshots/redaction.ts, the built-in rules, no key) of a snapshot's
 * exchanges the way the snapshot writer does it: learn every exchange, then apply to every one.
 * The input is one API's traffic: logins whose answers hand out a session cookie and a bearer token
 * that later requests present, order lists and order posts as JSON (emails, a card number now and
 * then), health checks with nothing to redact.
 *
 * Peer, the floor: JSON.parse of every body of the same exchanges (utf8 decode + parse), the least
 * a redactor that looks inside JSON bodies must do.
 *
 *   npx tsc -p tsconfig.bench.json && node dist/bench/snapshots/redaction.bench.js [--quick]
 */
import type { Exchange, HeaderList } from '../../core/exchange.js';
import { createRedactor } from '../../snapshots/redaction.js';
import { sampleExchange } from '../../snapshots/sample.js';
import { type MicroCase, type MicroOptions, prng, randomText, runCases } from '../lib/micro.js';
import type { Row } from '../lib/rows.js';

const HEX = '0123456789abcdef';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const enc = new TextEncoder();

const body = (s: string) => {
  const data = enc.encode(s);
  return { data, size: data.length, truncated: false };
};

export interface Snapshot {
  exchanges: Exchange[];
  /** Secret values that must not survive redaction. */
  secrets: string[];
  bytes: number;
}

/** `count` exchanges of one API, a login every 50. */
export function apiTraffic(count: number, seed = 13): Snapshot {
  const rnd = prng(seed);
  const exchanges: Exchange[] = [];
  const secrets: string[] = [];
  let token = '';
  let sid = '';
  const date: [string, string] = ['Date', 'Mon, 30 Nov 2026 06:30:00 GMT'];
  for (let i = 0; i < count; i++) {
    const base = sampleExchange(i);
    const reqHeaders: HeaderList = [
      ['Host', 'shop.internal:8080'],
      [
        'User-Agent',
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
      ],
      ['Accept', 'application/json'],
      ['X-Request-Id', randomText(rnd, 36, HEX)],
    ];
    const resHeaders: HeaderList = [
      ['Content-Type', 'application/json; charset=utf-8'],
      date,
      ['ETag', `"${randomText(rnd, 20, HEX)}"`],
    ];
    let method = 'GET';
    let target: string;
    let reqBody = '';
    let resBody: string;
    let status = 200;
    if (i % 50 === 0) {
      const password = `${randomText(rnd, 10)}!${randomText(rnd, 4)}`;
      token = `eyJhbGciOiJIUzI1NiJ9.${randomText(rnd, 120, B64)}.${randomText(rnd, 43, B64)}`;
      sid = randomText(rnd, 40, B64);
      secrets.push(password, token, sid);
      method = 'POST';
      target = '/api/login';
      reqBody = JSON.stringify({ username: `user${i}@example.com`, password });
      reqHeaders.push(['Content-Type', 'application/json']);
      resHeaders.push(['Set-Cookie', `session=${sid}; Path=/; HttpOnly; Secure; SameSite=Lax`]);
      resBody = JSON.stringify({ token, expiresIn: 3600, user: { id: i, email: `user${i}@example.com` } });
    } else {
      reqHeaders.push(['Authorization', `Bearer ${token}`], ['Cookie', `session=${sid}; theme=dark`]);
      if (i % 10 === 3) {
        method = 'POST';
        target = '/api/orders';
        const card = i % 20 === 3 ? '4111 1111 1111 1111' : undefined;
        reqBody = JSON.stringify({
          items: [{ sku: randomText(rnd, 10), qty: 2 }],
          shipping: { name: 'A. Customer', street: `${Math.floor(rnd() * 200)} Long Road`, city: 'Leeds' },
          ...(card ? { payment: { card, expiry: '12/29' } } : {}),
        });
        reqHeaders.push(['Content-Type', 'application/json']);
        status = 201;
        resBody = JSON.stringify({
          id: 100000 + i,
          status: 'created',
          total: Number((rnd() * 300).toFixed(2)),
        });
      } else if (i % 10 === 7) {
        target = '/healthz';
        reqHeaders.length = 2;
        resBody = '{"ok":true}';
      } else {
        target = `/api/orders?page=${i % 30}&per_page=20&sort=-created`;
        const orders = Array.from({ length: 12 }, () => ({
          id: Math.floor(rnd() * 1e6),
          customer: { id: Math.floor(rnd() * 1e5), email: `${randomText(rnd, 8)}@example.com` },
          total: Number((rnd() * 300).toFixed(2)),
          status: rnd() < 0.5 ? 'shipped' : 'pending',
          created: '2026-11-29T18:00:00Z',
        }));
        resBody = JSON.stringify({ page: i % 30, orders });
      }
    }
    const rb = body(resBody);
    resHeaders.push(['Content-Length', String(rb.size)]);
    exchanges.push({
      ...base,
      request: { method, target, version: 'HTTP/1.1', headers: reqHeaders, body: body(reqBody) },
      response: {
        status,
        reason: status === 201 ? 'Created' : 'OK',
        version: 'HTTP/1.1',
        headers: resHeaders,
        body: rb,
      },
    });
  }
  let bytes = 0;
  for (const ex of exchanges) {
    bytes += ex.request.method.length + ex.request.target.length + ex.request.body.data.length;
    for (const [k, v] of [...ex.request.headers, ...(ex.response?.headers ?? [])])
      bytes += k.length + v.length + 4;
    bytes += ex.response?.body.data.length ?? 0;
  }
  return { exchanges, secrets, bytes };
}

function redactAll(exchanges: Exchange[]): Exchange[] {
  const r = createRedactor(undefined);
  for (const ex of exchanges) r.learn(ex);
  return exchanges.map((ex) => r.apply(ex));
}

function parseBodies(exchanges: Exchange[]): number {
  let n = 0;
  for (const ex of exchanges) {
    for (const b of [ex.request.body.data, ex.response?.body.data]) {
      if (!b || b.length === 0) continue;
      JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8'));
      n++;
    }
  }
  return n;
}

export function cases(): MicroCase[] {
  const s = apiTraffic(1000);
  return [
    {
      path: 'redaction of a snapshot (learn + apply)',
      input: `${s.exchanges.length} exchanges of one JSON API (logins every 50 handing out a session and a bearer token, order lists, order posts with a card now and then, health checks), ${(s.bytes / 1e6).toFixed(2)} MB of targets, headers and bodies`,
      op: 'exchange',
      opsPerCall: s.exchanges.length,
      bytesPerCall: s.bytes,
      ours: { name: 'retap redactor, built-in rules', fn: () => redactAll(s.exchanges) },
      peers: [
        { name: 'floor: JSON.parse of every body (utf8 decode + parse)', fn: () => parseBodies(s.exchanges) },
      ],
      check: () => {
        const text = new TextDecoder();
        const out = redactAll(s.exchanges);
        const all = out
          .map(
            (ex) =>
              `${ex.request.target}\n${JSON.stringify(ex.request.headers)}${JSON.stringify(ex.response?.headers)}` +
              `${text.decode(ex.request.body.data)}${text.decode(ex.response?.body.data)}`,
          )
          .join('\n');
        const left = s.secrets.filter((x) => all.includes(x));
        if (left.length) throw new Error(`${left.length} secret values survived redaction`);
        if (!all.includes('REDACTED-')) throw new Error('nothing was redacted');
      },
    },
  ];
}

export async function run(opts: MicroOptions): Promise<Row[]> {
  return runCases(cases(), opts);
}

if (process.argv[1]?.endsWith('redaction.bench.js')) {
  run({ quick: process.argv.includes('--quick') }).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
