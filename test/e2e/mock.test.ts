/**
 * Mocks served over real sockets on loopback, called by real clients: node http/https (keep-alive,
 * trusting the ephemeral CA), node http2 (h2c and h2 over TLS), curl --cacert.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Exchange } from '../../core/exchange.js';
import { type MockCall, planMocks, type RunningMocks, startMocks } from '../../runner/mocks/index.js';
import { createEphemeralCa, type EphemeralCa } from '../../runner/tls/ca.js';
import { outbound } from './mock-fixtures.js';

interface Got {
  status: number;
  reason?: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  trailers?: Record<string, string | undefined>;
}

function call1(
  url: string,
  opts: {
    method?: string;
    body?: string;
    headers?: Record<string, string>;
    agent?: http.Agent;
    ca?: string;
  } = {},
): Promise<Got> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      u,
      {
        method: opts.method ?? 'GET',
        headers: { ...(opts.body ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        ...(opts.agent ? { agent: opts.agent } : {}),
        ...(opts.ca ? { ca: opts.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            reason: res.statusMessage,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            trailers: res.trailers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function call2(session: http2.ClientHttp2Session, path: string, method = 'GET', body?: string): Promise<Got> {
  return new Promise((resolve, reject) => {
    const s = session.request({
      ':method': method,
      ':path': path,
      ...(body ? { 'content-type': 'application/json' } : {}),
    });
    let status = 0;
    let headers: http.IncomingHttpHeaders = {};
    let trailers: Record<string, string | undefined> | undefined;
    s.on('response', (h) => {
      status = Number(h[':status']);
      headers = h as http.IncomingHttpHeaders;
    });
    s.on('trailers', (t) => {
      trailers = t as Record<string, string | undefined>;
    });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () =>
      resolve({ status, headers, body: Buffer.concat(chunks).toString(), ...(trailers ? { trailers } : {}) }),
    );
    s.on('error', reject);
    s.end(body);
  });
}

const curl = (args: string[]) =>
  new Promise<string>((resolve, reject) =>
    execFile('curl', ['-sS', '--max-time', '10', ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`curl: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );

const json = (v: unknown) => JSON.stringify(v);

describe('mocks over HTTP/1.1 and TLS', () => {
  let dir: string;
  let ca: EphemeralCa;
  let mocks: RunningMocks;
  const calls: MockCall[] = [];
  let inv: string;
  let pay: string;
  const recorded: Exchange[] = [
    outbound({ target: '/stock/sku-1', resBody: json({ sku: 'sku-1', left: 5 }) }),
    outbound({ target: '/stock/sku-1', resBody: json({ sku: 'sku-1', left: 4 }) }),
    outbound({ target: '/stock/sku-1', resBody: json({ sku: 'sku-1', left: 3 }) }),
    outbound({ target: '/search?b=2&a=1&a=0', resBody: json({ hits: 1 }) }),
    outbound({
      method: 'POST',
      target: '/reserve',
      reqBody: json({
        sku: 'sku-1',
        qty: 2,
        requestId: 'f3a1c2d4-1111-4222-8333-444455556666',
        at: '2025-11-20T10:00:00Z',
      }),
      status: 201,
      resBody: json({ reserved: true }),
    }),
    outbound({
      method: 'POST',
      target: '/reserve',
      reqBody: json({ sku: 'sku-9', qty: 1 }),
      status: 409,
      resBody: json({ reserved: false }),
    }),
    outbound({
      target: '/big',
      resBody: 'partial-body',
      resTruncatedSize: 5000,
      resHeaders: [
        ['Content-Type', 'text/plain'],
        ['Content-Length', '5000'],
      ],
    }),
    outbound({
      target: '/chunked',
      resHeaders: [
        ['Content-Type', 'text/plain'],
        ['Transfer-Encoding', 'chunked'],
        ['Trailer', 'x-sum'],
        ['X-Custom', 'a'],
        ['X-Custom', 'b'],
      ],
      resBody: 'hello chunks',
      resTrailers: [['x-sum', '42']],
    }),
    outbound({
      host: 'payments.internal',
      port: 443,
      tls: true,
      method: 'POST',
      target: '/charge',
      reqBody: json({ amount: 500, currency: 'EUR' }),
      resBody: json({ charged: true, id: 'ch_1' }),
    }),
    outbound({
      host: 'payments.internal',
      port: 443,
      tls: true,
      method: 'POST',
      target: '/charge',
      reqBody: json({ amount: 500, currency: 'EUR' }),
      resBody: json({ charged: true, id: 'ch_2' }),
    }),
  ];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'retap-mock-'));
    ca = await createEphemeralCa(join(dir, 'ca'));
    const plan = planMocks(recorded);
    mocks = await startMocks(plan, recorded, {
      ca,
      miss: 'fail',
      bindAddr: () => '127.0.0.1',
      bindPort: () => 0,
      onCall: (c) => calls.push(c),
    });
    const ep = (h: string) => mocks.endpoints.find((e) => e.host === h)!;
    inv = `http://127.0.0.1:${ep('inventory.internal').port}`;
    pay = `https://127.0.0.1:${ep('payments.internal').port}`;
  });
  afterAll(async () => {
    await mocks?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('plans one endpoint per recorded host and port, each host on its own loopback address', () => {
    const plan = planMocks(recorded);
    expect(plan.endpoints.map((e) => [e.host, e.addr, e.port, e.tls, e.protocols])).toEqual([
      ['inventory.internal', '127.0.0.2', 80, false, ['http1']],
      ['payments.internal', '127.0.0.3', 443, true, ['http1']],
    ]);
  });

  it('answers repeated signatures in recorded order, then repeats the last', async () => {
    const agent = new http.Agent({ keepAlive: true });
    const lefts: number[] = [];
    for (let i = 0; i < 4; i++)
      lefts.push(JSON.parse((await call1(`${inv}/stock/sku-1`, { agent })).body).left);
    agent.destroy();
    expect(lefts).toEqual([5, 4, 3, 3]);
  });

  it('normalises the query (sorted params) and serves status, reason and cleaned headers', async () => {
    const r = await call1(`${inv}/search?a=0&b=2&a=1`);
    expect(r.status).toBe(200);
    expect(r.reason).toBe('OK');
    expect(JSON.parse(r.body)).toEqual({ hits: 1 });
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
    expect(r.headers.connection).not.toBe('close');
  });

  it('canonicalises JSON bodies: key order and volatile values do not matter, other values do', async () => {
    const a = await call1(`${inv}/reserve`, {
      method: 'POST',
      body: json({
        at: '2026-01-02T03:04:05Z',
        qty: 2,
        requestId: '0b9e8c7d-2222-4333-8444-555566667777',
        sku: 'sku-1',
      }),
    });
    expect([a.status, JSON.parse(a.body)]).toEqual([201, { reserved: true }]);
    const b = await call1(`${inv}/reserve`, { method: 'POST', body: json({ qty: 1, sku: 'sku-9' }) });
    expect([b.status, JSON.parse(b.body)]).toEqual([409, { reserved: false }]);
  });

  it('fails closed on an unmatched call: 599, a JSON body naming the closest recording, a MockMiss', async () => {
    const before = mocks.stats().misses.length;
    const r = await call1(`${inv}/reserve`, { method: 'POST', body: json({ sku: 'sku-1', qty: 3 }) });
    expect(r.status).toBe(599);
    expect(r.headers['x-retap-mock']).toBe('miss');
    const body = JSON.parse(r.body);
    expect(body).toMatchObject({
      retap: 'mock-miss',
      method: 'POST',
      host: 'inventory.internal:80',
      target: '/reserve',
    });
    expect(body.closest).toContain('POST /reserve');
    const miss = mocks.stats().misses.slice(before);
    expect(miss).toHaveLength(1);
    expect(miss[0]).toMatchObject({ method: 'POST', host: 'inventory.internal:80', target: '/reserve' });
    expect(miss[0]!.reason).toContain('$.qty');
    const unknown = await call1(`${inv}/nothing/here`);
    expect(unknown.status).toBe(599);
    expect(calls.at(-1)).toMatchObject({ outcome: 'miss', status: 599, target: '/nothing/here' });
  });

  it('serves what a truncated recording has, with a warning', async () => {
    const r = await call1(`${inv}/big`);
    expect(r.body).toBe('partial-body');
    expect(r.headers['content-length']).toBe('12');
    expect(r.headers['x-retap-warning']).toContain('truncated');
    expect(calls.at(-1)!.warnings[0]).toContain('serving 12 of 5000 bytes');
  });

  it('serves trailers and duplicate headers over chunked HTTP/1.1', async () => {
    const r = await call1(`${inv}/chunked`);
    expect(r.body).toBe('hello chunks');
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.headers['x-custom']).toBe('a, b');
    expect(r.trailers).toEqual({ 'x-sum': '42' });
  });

  it('serves TLS that node https (keep-alive) and curl trust through the ephemeral CA', async () => {
    expect(statSync(join(dir, 'ca', 'ca.key')).mode & 0o777).toBe(0o600);
    const agent = new https.Agent({ keepAlive: true, ca: ca.caCert, servername: 'payments.internal' });
    const first = await call1(`${pay}/charge`, {
      method: 'POST',
      body: json({ currency: 'EUR', amount: 500 }),
      agent,
    });
    const second = await call1(`${pay}/charge`, {
      method: 'POST',
      body: json({ amount: 500, currency: 'EUR' }),
      agent,
    });
    agent.destroy();
    expect([JSON.parse(first.body).id, JSON.parse(second.body).id]).toEqual(['ch_1', 'ch_2']);
    const port = new URL(pay).port;
    const out = await curl([
      '--cacert',
      ca.caCertPath,
      '--resolve',
      `payments.internal:${port}:127.0.0.1`,
      '-X',
      'POST',
      '-H',
      'content-type: application/json',
      '--data',
      json({ amount: 500, currency: 'EUR' }),
      `https://payments.internal:${port}/charge`,
    ]);
    expect(JSON.parse(out).id).toBe('ch_2');
    // Without the CA the connection is refused by the client.
    await expect(
      curl([`https://payments.internal:${port}/charge`, '--resolve', `payments.internal:${port}:127.0.0.1`]),
    ).rejects.toThrow(/certificate/i);
  });

  it('counts calls, matches and misses', () => {
    const s = mocks.stats();
    expect(s.calls).toBe(calls.length);
    expect(s.matched).toBe(calls.filter((c) => c.outcome === 'matched').length);
    expect(s.misses).toHaveLength(2);
    expect(s.calls - s.matched).toBe(2);
  });
});

describe('mocks over HTTP/2', () => {
  let dir: string;
  let ca: EphemeralCa;
  let mocks: RunningMocks;
  const recorded: Exchange[] = [
    outbound({
      host: 'h2c.internal',
      port: 8080,
      protocol: 'http2',
      target: '/items?page=1',
      resHeaders: [
        ['content-type', 'application/json'],
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
      ],
      resBody: json({ page: 1 }),
    }),
    outbound({
      host: 'h2c.internal',
      port: 8080,
      protocol: 'http2',
      method: 'POST',
      target: '/items',
      reqBody: json({ name: 'x', createdAt: '2025-01-01T00:00:00Z' }),
      status: 201,
      resHeaders: [['content-type', 'application/json']],
      resBody: json({ ok: 1 }),
      resTrailers: [['x-done', 'yes']],
    }),
    outbound({
      host: 'h2.internal',
      port: 8443,
      protocol: 'http2',
      tls: true,
      target: '/secure',
      resHeaders: [['content-type', 'text/plain']],
      resBody: 'over h2 tls',
    }),
  ];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'retap-mock-h2-'));
    ca = await createEphemeralCa(dir);
    mocks = await startMocks(planMocks(recorded), recorded, {
      ca,
      miss: 'fail',
      bindAddr: () => '127.0.0.1',
      bindPort: () => 0,
    });
  });
  afterAll(async () => {
    await mocks?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = (h: string) => mocks.endpoints.find((e) => e.host === h)!.port;

  it('h2c with prior knowledge: answers, duplicate headers, trailers; HTTP/1.1 on the same port', async () => {
    const session = http2.connect(`http://127.0.0.1:${port('h2c.internal')}`);
    try {
      const a = await call2(session, '/items?page=1');
      expect([a.status, JSON.parse(a.body)]).toEqual([200, { page: 1 }]);
      expect(a.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      const b = await call2(
        session,
        '/items',
        'POST',
        json({ createdAt: '2026-06-01T12:00:00Z', name: 'x' }),
      );
      expect([b.status, JSON.parse(b.body), b.trailers?.['x-done']]).toEqual([201, { ok: 1 }, 'yes']);
      const miss = await call2(session, '/items?page=2');
      expect(miss.status).toBe(599);
      expect(JSON.parse(miss.body).retap).toBe('mock-miss');
    } finally {
      session.close();
    }
    const viaH1 = await call1(`http://127.0.0.1:${port('h2c.internal')}/items?page=1`);
    expect(JSON.parse(viaH1.body)).toEqual({ page: 1 });
  });

  it('h2 over TLS with ALPN, trusted through the CA; curl --http2 too', async () => {
    const session = http2.connect(`https://127.0.0.1:${port('h2.internal')}`, {
      ca: ca.caCert,
      servername: 'h2.internal',
    });
    try {
      expect(
        session.alpnProtocol ??
          (await new Promise((r) => session.once('connect', () => r(session.alpnProtocol)))),
      ).toBe('h2');
      const r = await call2(session, '/secure');
      expect([r.status, r.body]).toEqual([200, 'over h2 tls']);
    } finally {
      session.close();
    }
    const p = port('h2.internal');
    const out = await curl([
      '--http2',
      '--cacert',
      ca.caCertPath,
      '--resolve',
      `h2.internal:${p}:127.0.0.1`,
      '-w',
      ' %{http_version}',
      `https://h2.internal:${p}/secure`,
    ]);
    expect(out).toBe('over h2 tls 2');
    expect(mocks.stats()).toMatchObject({ calls: 6, matched: 5 });
  });
});
