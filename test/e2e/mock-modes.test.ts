/**
 * What a mock does with a call it has no recording for, besides failing closed: `closest` serves
 * the nearest recording and still reports the miss; `passthrough` forwards to the real host (here a
 * real server on loopback) and reports it too; a failed forward falls back to the miss answer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planMocks, startMocks } from '../../runner/mocks/index.js';
import { outbound } from './mock-fixtures.js';

function get(
  url: string,
  body?: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: body ? 'POST' : 'GET', headers: body ? { 'content-type': 'application/json' } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('closest mode', () => {
  it('serves the nearest recording, marks it, and counts a miss', async () => {
    const recorded = [
      outbound({
        method: 'POST',
        target: '/quote',
        reqBody: JSON.stringify({ sku: 'a', qty: 1 }),
        resBody: '{"price":10}',
      }),
      outbound({ target: '/health', resBody: 'ok', resHeaders: [['content-type', 'text/plain']] }),
    ];
    const mocks = await startMocks(planMocks(recorded), recorded, {
      miss: 'closest',
      bindAddr: () => '127.0.0.1',
      bindPort: () => 0,
    });
    try {
      const base = `http://127.0.0.1:${mocks.endpoints[0]!.port}`;
      const r = await get(`${base}/quote`, JSON.stringify({ sku: 'a', qty: 7 }));
      expect([r.status, r.body, r.headers['x-retap-mock']]).toEqual([200, '{"price":10}', 'closest']);
      const s = mocks.stats();
      expect(s).toMatchObject({ calls: 1, matched: 0 });
      expect(s.misses[0]!.reason).toMatch(
        /^served the closest recording .*at \$\.qty \(recorded 1, live 7\)/,
      );
      expect(s.misses[0]!.closest).toContain('POST /quote');
    } finally {
      await mocks.stop();
    }
  });
});

describe('passthrough mode', () => {
  let real: http.Server;
  let realPort: number;
  beforeAll(async () => {
    real = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`real ${req.method} ${req.url} host=${req.headers.host}`);
    });
    await new Promise<void>((r) => real.listen(0, '127.0.0.1', () => r()));
    realPort = (real.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => real.close(() => r())));

  it('forwards an unmatched call to the recorded host and reports it as a miss', async () => {
    const recorded = [
      outbound({
        host: '127.0.0.1',
        port: realPort,
        target: '/known',
        resBody: 'recorded',
        resHeaders: [['content-type', 'text/plain']],
      }),
    ];
    const plan = planMocks(recorded);
    expect(plan.endpoints[0]).toMatchObject({ host: '127.0.0.1', addr: '127.0.0.1', literal: true });
    const mocks = await startMocks(plan, recorded, {
      miss: 'passthrough',
      bindAddr: () => '127.0.0.1',
      bindPort: () => 0,
    });
    try {
      const base = `http://127.0.0.1:${mocks.endpoints[0]!.port}`;
      expect((await get(`${base}/known`)).body).toBe('recorded');
      const r = await get(`${base}/unknown?x=1`);
      expect([r.status, r.body]).toEqual([200, `real GET /unknown?x=1 host=127.0.0.1:${realPort}`]);
      const s = mocks.stats();
      expect(s).toMatchObject({ calls: 2, matched: 1 });
      expect(s.misses[0]!.reason).toMatch(/^passed through to 127\.0\.0\.1:\d+/);
    } finally {
      await mocks.stop();
    }
  });

  it('answers the fail-closed miss when the real host cannot be reached', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const recorded = [outbound({ host: '127.0.0.1', port: closed, target: '/known', resBody: 'recorded' })];
    const mocks = await startMocks(planMocks(recorded), recorded, {
      miss: 'passthrough',
      bindAddr: () => '127.0.0.1',
      bindPort: () => 0,
    });
    try {
      const r = await get(`http://127.0.0.1:${mocks.endpoints[0]!.port}/other`);
      expect(r.status).toBe(599);
      expect(JSON.parse(r.body).reason).toContain('passthrough to 127.0.0.1');
      expect(mocks.stats().misses[0]!.reason).toContain('ECONNREFUSED');
    } finally {
      await mocks.stop();
    }
  });
});
