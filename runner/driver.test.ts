/**
 * The replay driver against a real loopback server, with both clients and both connection modes:
 * lane order, concurrency, global rate, recorded pacing, timeouts without retries, interruption;
 * then recorded connections (one socket per recorded connection, closed where recorded, a new one
 * when the build closes early) and the socket each request reports. Timing checks are lower
 * bounds taken from the server's arrival clock (a slow machine only makes gaps longer).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bodyToSend, drive } from './driver.js';
import type { DriverOptions, SpecItem } from './spec.js';

interface Arrival {
  id: string;
  at: number;
  /** The client's port, as the server saw it. */
  port: number;
}

/** The replayed request's id travels in its target (`/x?id=…`): nothing else is added to it. */
const idOf = (url: string | undefined): string =>
  new URL(url ?? '/', 'http://x').searchParams.get('id') ?? '';

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
    arrivals.push({ id: idOf(req.url), at: performance.now(), port: req.socket.remotePort ?? 0 });
    inFlight++;
    max = Math.max(max, inFlight);
    if (req.url?.startsWith('/hang')) return;
    setTimeout(() => {
      inFlight--;
      res.end(`answer ${idOf(req.url)}`);
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
      const id = `s${s}-${k}`;
      items.push({
        id,
        session: `s${s}`,
        method: 'GET',
        target: `${target}?id=${id}`,
        headers: [['host', 'svc']],
        body: '',
        startUs: startUs(items.length),
        connection: `c${s}`,
        closeAfter: k === perSession - 1,
      });
    }
    out.push({ key: `s${s}`, items: list });
  }
  return { items, sessions: out };
}

const opts = (o: Partial<DriverOptions>): DriverOptions => ({
  concurrency: 1,
  timeoutMs: 5000,
  ...o,
});

describe.each([
  ['h1', 'recorded'],
  ['undici', 'recorded'],
  ['h1', 'pooled'],
  ['undici', 'pooled'],
] as const)('replay driver controls (%s, %s connections)', (client, connections) => {
  it('runs at most --concurrency sessions at once and keeps each session in order', async () => {
    const srv = await server(30);
    const p = plan(6, 4);
    const out = await drive(srv.origin, p.items, p.sessions, opts({ concurrency: 3, client, connections }));
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
    await drive(srv.origin, p.items, p.sessions, opts({ concurrency: 4, rate: 50, client, connections }));
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
    // measured from before the driver's clock starts (the server runs in this process), not
    // from the first arrival, which also waited for its connection
    const t0 = performance.now();
    await drive(srv.origin, p.items, p.sessions, opts({ speed: 2, client, connections }));
    const offsets = srv.arrivals.map((a) => a.at - t0);
    expect(offsets[1]).toBeGreaterThanOrEqual(98);
    expect(offsets[2]).toBeGreaterThanOrEqual(298);
  });

  it('a request with no answer fails after --timeout, is not retried, and the rest go on', async () => {
    const srv = await server();
    const hang = plan(1, 1, (i) => i, '/hang');
    const rest = plan(1, 2);
    const items = [
      ...hang.items,
      ...rest.items.map((i) => ({ ...i, id: `r-${i.id}`, target: `/x?id=r-${i.id}` })),
    ];
    const out = await drive(
      srv.origin,
      items,
      [{ key: 's', items: [0, 1, 2] }],
      opts({ timeoutMs: 300, client, connections }),
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
    const out = await drive(
      srv.origin,
      p.items,
      p.sessions,
      opts({ client, connections }),
      {},
      undefined,
      stop.signal,
    );
    expect(out).toHaveLength(3);
    expect(out[0]!.error).toMatch(/interrupted|abort/i);
    expect(out.slice(1).map((o) => o.error)).toEqual([
      'not sent (replay interrupted)',
      'not sent (replay interrupted)',
    ]);
  });
});

/** A server that notes, per request, the client port, what it received and on which connection. */
async function connServer(
  answer: (req: http.IncomingMessage, res: http.ServerResponse) => void = (req, res) =>
    res.end(`answer ${idOf(req.url)}`),
): Promise<{
  origin: string;
  seen: Array<{ id: string; port: number; conn: number; version: string; raw: string[] }>;
  closed: Array<{ conn: number; at: number }>;
}> {
  const seen: Array<{ id: string; port: number; conn: number; version: string; raw: string[] }> = [];
  const closed: Array<{ conn: number; at: number }> = [];
  let conns = 0;
  const ids = new WeakMap<object, number>();
  const s = http.createServer((req, res) => {
    seen.push({
      id: idOf(req.url),
      port: req.socket.remotePort ?? 0,
      conn: ids.get(req.socket) ?? -1,
      version: req.httpVersion,
      raw: req.rawHeaders,
    });
    answer(req, res);
  });
  s.on('connection', (sock) => {
    const n = conns++;
    ids.set(sock, n);
    sock.on('close', () => closed.push({ conn: n, at: seen.length }));
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, seen, closed };
}

function item(id: string, connection: string, closeAfter: boolean, extra: Partial<SpecItem> = {}): SpecItem {
  return {
    id,
    session: 's',
    method: 'GET',
    target: `/x?id=${id}`,
    headers: [['host', 'svc']],
    body: '',
    startUs: 0,
    connection,
    closeAfter,
    ...extra,
  };
}

describe.each(['h1', 'undici'] as const)('recorded connections (%s)', (client) => {
  it('one socket per recorded connection, interleaved as recorded, closed where recorded', async () => {
    const srv = await connServer();
    // one lane: A0 B0 A1 B1 A2 — A closes after A1 (recorded close), then A2 is a new connection
    const items = [
      item('A0', 'A', false),
      item('B0', 'B', false),
      item('A1', 'A', true),
      item('B1', 'B', true),
      item('A2', 'A/1', true),
    ];
    const out = await drive(srv.origin, items, [{ key: 'l', items: [0, 1, 2, 3, 4] }], opts({ client }));
    expect(out.map((o) => o.status)).toEqual([200, 200, 200, 200, 200]);
    const conn = Object.fromEntries(srv.seen.map((x) => [x.id, x.conn]));
    expect(srv.seen.map((x) => x.id)).toEqual(['A0', 'B0', 'A1', 'B1', 'A2']);
    expect(conn.A0).toBe(conn.A1);
    expect(conn.B0).toBe(conn.B1);
    expect(new Set([conn.A0, conn.B0, conn.A2]).size).toBe(3);
    // each item says which socket it went out on, as the server saw it, and its place there
    out.forEach((o, i) => {
      expect(o.socket?.port).toBe(srv.seen[i]!.port);
    });
    expect(out.map((o) => o.socket?.seq)).toEqual([0, 0, 1, 1, 0]);
    expect(out[0]!.socket?.openedUs).toBe(out[2]!.socket?.openedUs);
    expect(out.every((o) => o.reopened === undefined)).toBe(true);
    // A was closed after A1 (the server may see that FIN after B1, which went out on another
    // socket, but before the last request), and every connection is closed at the end
    await new Promise((r) => setTimeout(r, 50));
    expect(srv.closed.find((c) => c.conn === conn.A0)?.at).toBeGreaterThanOrEqual(3);
    expect(srv.closed.find((c) => c.conn === conn.A0)?.at).toBeLessThanOrEqual(4);
    expect(srv.closed.map((c) => c.conn).sort()).toEqual([conn.A0, conn.B0, conn.A2].sort());
  });

  it('a connection the build closes early is replaced for the next request, and says why', async () => {
    const srv = await connServer((req, res) => {
      if (idOf(req.url) === 'k1') res.setHeader('connection', 'close');
      res.end('ok');
    });
    const items = [item('k0', 'K', false), item('k1', 'K', false), item('k2', 'K', true)];
    const out = await drive(srv.origin, items, [{ key: 'l', items: [0, 1, 2] }], opts({ client }));
    expect(out.map((o) => o.status)).toEqual([200, 200, 200]);
    expect(srv.seen[0]!.conn).toBe(srv.seen[1]!.conn);
    expect(srv.seen[2]!.conn).not.toBe(srv.seen[1]!.conn);
    expect(out[2]!.reopened).toMatch(/close/i);
    expect(out[2]!.socket?.seq).toBe(0);
    expect(out.slice(0, 2).map((o) => o.reopened)).toEqual([undefined, undefined]);
  });

  it('pooled mode shares connections across recorded ones and never reports a reopen', async () => {
    const srv = await connServer();
    const items = [item('p0', 'P', true), item('p1', 'Q', true), item('p2', 'R', true)];
    const out = await drive(
      srv.origin,
      items,
      [{ key: 'l', items: [0, 1, 2] }],
      opts({ client, connections: 'pooled' }),
    );
    expect(out.map((o) => o.status)).toEqual([200, 200, 200]);
    expect(new Set(srv.seen.map((x) => x.conn)).size).toBe(1);
    expect(out.map((o) => o.socket?.seq)).toEqual([0, 1, 2]);
  });
});

describe('recorded requests go out as recorded (h1)', () => {
  it('headers in recorded order and case, Connection kept, HTTP/1.0 request lines, nothing added', async () => {
    const srv = await connServer();
    const headers: Array<[string, string]> = [
      ['Host', 'svc'],
      ['User-Agent', 'python-requests/2.31'],
      ['Accept-Encoding', 'gzip, deflate'],
      ['Accept', '*/*'],
      ['Connection', 'close'],
      ['Content-Length', '2'],
    ];
    const items = [
      item('v1', 'V', true, { method: 'POST', headers, body: Buffer.from('{}').toString('base64') }),
      item('v0', 'W', true, { version: 'HTTP/1.0', headers: [['Host', 'svc']] }),
    ];
    const out = await drive(srv.origin, items, [{ key: 'l', items: [0, 1] }], opts({}));
    expect(out.map((o) => o.status)).toEqual([200, 200]);
    expect(srv.seen[0]!.raw).toEqual(headers.flat());
    expect(srv.seen[0]!.version).toBe('1.1');
    expect(srv.seen[1]!.raw).toEqual(['Host', 'svc']);
    expect(srv.seen[1]!.version).toBe('1.0');
    // pooled: the connection's own headers are the pool's business, as before
    const pooled = await drive(
      srv.origin,
      items.slice(0, 1),
      [{ key: 'l', items: [0] }],
      opts({ connections: 'pooled' }),
    );
    expect(pooled[0]!.status).toBe(200);
    expect(srv.seen[2]!.raw).toEqual([...headers.slice(0, 4).flat(), 'content-length', '2']);
  });
});

describe('recorded request bodies capture did not see whole', () => {
  it('go out at their declared length (zeros for the missing part); whole or unframed ones as recorded', () => {
    const cl: Array<[string, string]> = [['Content-Length', '9']];
    const part = new Uint8Array(Buffer.from('pay'));
    expect(Buffer.from(bodyToSend({ data: part, size: 3, truncated: true }, cl))).toEqual(
      Buffer.from([...Buffer.from('pay'), 0, 0, 0, 0, 0, 0]),
    );
    expect(bodyToSend({ data: new Uint8Array(0), size: 0, truncated: true }, cl)).toHaveLength(9);
    expect(bodyToSend({ data: part, size: 3, truncated: false }, cl)).toBe(part);
    // chunked (no length said): what there is
    expect(bodyToSend({ data: part, size: 3, truncated: true }, [['Transfer-Encoding', 'chunked']])).toBe(
      part,
    );
  });
});
