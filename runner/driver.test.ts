/**
 * The replay driver's controls against a real loopback server, with both clients: session order,
 * concurrency, global rate, recorded pacing, timeouts without retries, interruption. Timing checks
 * are lower bounds taken from the server's arrival clock (a slow machine only makes gaps longer).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { drive } from './driver.js';
import type { DriverOptions, SpecItem } from './spec.js';

interface Arrival {
  id: string;
  at: number;
}

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

/** A server that records arrivals and answers after `holdMs` (never, for paths under /hang). */
async function server(
  holdMs = 0,
): Promise<{ origin: string; arrivals: Arrival[]; inFlightMax: () => number }> {
  const arrivals: Arrival[] = [];
  let inFlight = 0;
  let max = 0;
  const s = http.createServer((req, res) => {
    arrivals.push({ id: String(req.headers['x-retap-id']), at: performance.now() });
    inFlight++;
    max = Math.max(max, inFlight);
    if (req.url?.startsWith('/hang')) return;
    setTimeout(() => {
      inFlight--;
      res.end(`answer ${req.headers['x-retap-id']}`);
    }, holdMs);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    arrivals,
    inFlightMax: () => max,
  };
}

function plan(
  sessions: number,
  perSession: number,
  startUs: (i: number) => number = (i) => i,
  target = '/x',
): { items: SpecItem[]; sessions: Array<{ key: string; items: number[] }> } {
  const items: SpecItem[] = [];
  const out: Array<{ key: string; items: number[] }> = [];
  for (let s = 0; s < sessions; s++) {
    const list: number[] = [];
    for (let k = 0; k < perSession; k++) {
      list.push(items.length);
      items.push({
        id: `s${s}-${k}`,
        session: `s${s}`,
        method: 'GET',
        target,
        headers: [['host', 'svc']],
        body: '',
        startUs: startUs(items.length),
      });
    }
    out.push({ key: `s${s}`, items: list });
  }
  return { items, sessions: out };
}

const opts = (o: Partial<DriverOptions>): DriverOptions => ({
  concurrency: 1,
  timeoutMs: 5000,
  idHeader: 'x-retap-id',
  ...o,
});

describe.each(['h1', 'undici'] as const)('replay driver controls (%s)', (client) => {
  it('runs at most --concurrency sessions at once and keeps each session in order', async () => {
    const srv = await server(30);
    const p = plan(6, 4);
    const out = await drive(srv.origin, p.items, p.sessions, opts({ concurrency: 3, client }));
    expect(out.every((o) => o.status === 200)).toBe(true);
    expect(out.map((o) => Buffer.from(o.answer!.body).toString())).toEqual(
      p.items.map((i) => `answer ${i.id}`),
    );
    expect(srv.inFlightMax()).toBe(3);
    for (let s = 0; s < 6; s++) {
      const seen = srv.arrivals.filter((a) => a.id.startsWith(`s${s}-`)).map((a) => a.id);
      expect(seen).toEqual([0, 1, 2, 3].map((k) => `s${s}-${k}`));
    }
  });

  it('--rate spaces requests over the whole run', async () => {
    const srv = await server();
    const p = plan(4, 5);
    await drive(srv.origin, p.items, p.sessions, opts({ concurrency: 4, rate: 50, client }));
    expect(srv.arrivals).toHaveLength(20);
    const span = srv.arrivals.at(-1)!.at - srv.arrivals[0]!.at;
    // 20 requests at 50/s: 19 gaps of 20 ms (less a little timer slack)
    expect(span).toBeGreaterThanOrEqual(19 * 20 * 0.9);
  });

  it('--speed keeps the recorded gaps, scaled', async () => {
    const srv = await server();
    // recorded at 0, 200 and 600 ms; replayed twice as fast: 0, 100 and 300 ms
    const recorded = [0, 200_000, 600_000];
    const p = plan(1, 3, (i) => 1_700_000_000_000_000 + recorded[i]!);
    await drive(srv.origin, p.items, p.sessions, opts({ speed: 2, client }));
    const t0 = srv.arrivals[0]!.at;
    const offsets = srv.arrivals.map((a) => a.at - t0);
    expect(offsets[1]).toBeGreaterThanOrEqual(90);
    expect(offsets[2]).toBeGreaterThanOrEqual(290);
  });

  it('a request with no answer fails after --timeout, is not retried, and the rest go on', async () => {
    const srv = await server();
    const hang = plan(1, 1, (i) => i, '/hang');
    const rest = plan(1, 2);
    const items = [...hang.items, ...rest.items.map((i) => ({ ...i, id: `r-${i.id}` }))];
    const out = await drive(
      srv.origin,
      items,
      [{ key: 's', items: [0, 1, 2] }],
      opts({ timeoutMs: 300, client }),
    );
    expect(out[0]!.error).toMatch(/timeout|no answer/i);
    expect(out[0]!.status).toBeUndefined();
    expect(out.slice(1).map((o) => o.status)).toEqual([200, 200]);
    expect(srv.arrivals.filter((a) => a.id === items[0]!.id)).toHaveLength(1);
  });

  it('an interrupted replay reports what was not sent instead of dropping it', async () => {
    const srv = await server();
    const p = plan(1, 3, (i) => i, '/hang');
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100);
    const out = await drive(srv.origin, p.items, p.sessions, opts({ client }), {}, undefined, stop.signal);
    expect(out).toHaveLength(3);
    expect(out[0]!.error).toMatch(/interrupted|abort/i);
    expect(out.slice(1).map((o) => o.error)).toEqual([
      'not sent (replay interrupted)',
      'not sent (replay interrupted)',
    ]);
  });
});
