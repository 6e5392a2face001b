/**
 * ReplayResults built in code for tests and golden files: a small shop (login, create order,
 * read order, list orders) with volatile values (tokens, uuids, timestamps), seeded latencies,
 * and the demo's seeded regressions; plus a hand-made mix of every kind of difference.
 */
import type { Exchange, HeaderList } from '../../core/exchange.js';
import type {
  MockMiss,
  RecordedItem,
  ReplayResults,
  ReplayRun,
  RunItem,
  RunWarning,
} from '../../core/results.js';
import { prng } from '../stats.js';

export interface AnswerSpec {
  status: number;
  /** JSON value (serialised), or a string sent as text/plain, or bytes. */
  body?: unknown;
  headers?: HeaderList;
  latencyMs?: number;
  /** Outbound calls: `GET inventory /stock/SKU-1`, or with the JSON body the call sent. */
  calls?: Array<string | { call: string; body: unknown }>;
  /** Transport error instead of an answer. */
  error?: string;
  /** Capture missed the exchange: only the client view exists. */
  noLive?: boolean;
}

export interface CaseSpec {
  id: string;
  route: string;
  method: string;
  target: string;
  session?: string;
  /** Request headers (besides host) and body as recorded and sent. */
  requestHeaders?: HeaderList;
  requestBody?: string;
  recorded: AnswerSpec;
  /** Per candidate run (index 0 = `candidate`); a single spec is used for every run. */
  candidate: AnswerSpec | ((run: number) => AnswerSpec);
  baseline?: AnswerSpec | ((run: number) => AnswerSpec);
}

export interface BuildOptions {
  candidateRuns?: number;
  baselineRuns?: number;
  misses?: MockMiss[];
  /** Mock misses of the first baseline run. */
  baselineMisses?: MockMiss[];
  /** Warnings every run reports (e.g. `mock-skipped`). */
  warnings?: RunWarning[];
  capture?: Partial<ReplayRun['capture']>;
  runError?: { code: string; message: string };
  createdAt?: string;
}

const enc = new TextEncoder();
let startUs = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

function bodyOf(spec: AnswerSpec): { data: Uint8Array; type?: string } {
  const b = spec.body;
  if (b === undefined) return { data: new Uint8Array(0) };
  if (b instanceof Uint8Array) return { data: b, type: 'application/octet-stream' };
  if (typeof b === 'string') return { data: enc.encode(b), type: 'text/plain; charset=utf-8' };
  return { data: enc.encode(JSON.stringify(b)), type: 'application/json' };
}

function exchange(
  id: string,
  method: string,
  target: string,
  spec: AnswerSpec,
  direction: 'inbound' | 'outbound',
  host?: string,
  req: { headers?: HeaderList; body?: string } = {},
): Exchange {
  const reqBody = enc.encode(req.body ?? '');
  const { data, type } = bodyOf(spec);
  const headers: HeaderList = [
    ...(type ? ([['content-type', type]] as HeaderList) : []),
    ['content-length', String(data.length)],
    ['date', new Date(startUs / 1000).toUTCString()],
    ...(spec.headers ?? []),
  ];
  startUs += 1000;
  const latencyNs = Math.round((spec.latencyMs ?? 1) * 1e6);
  return {
    id,
    protocol: 'http1',
    direction,
    tls: false,
    service: { addr: '127.0.0.1', port: 8080, name: 'orders' },
    peer: { addr: '127.0.0.1', port: direction === 'inbound' ? 50000 : 9000, ...(host ? { host } : {}) },
    // every exchange on its own connection, as a client that closes each one records them
    connection: { id, order: 0 },
    request: {
      method,
      target,
      version: 'HTTP/1.1',
      headers: [
        ...(host ? [['host', `${host}:9000`]] : [['host', 'orders']]),
        ...(req.headers ?? []),
      ] as HeaderList,
      body: { data: reqBody, size: reqBody.length, truncated: false },
    },
    ...(spec.error
      ? {}
      : {
          response: {
            status: spec.status,
            version: 'HTTP/1.1',
            headers,
            body: { data, size: data.length, truncated: false },
          },
        }),
    timing: {
      startUs,
      requestEndNs: 50_000,
      responseStartNs: 50_000 + latencyNs,
      responseEndNs: 60_000 + latencyNs,
    },
  };
}

function calls(prefix: string, list: AnswerSpec['calls']): Exchange[] {
  return (list ?? []).map((c, i) => {
    const call = typeof c === 'string' ? c : c.call;
    const [method, host, target] = call.split(' ') as [string, string, string];
    const ex = exchange(`${prefix}-out${i}#0`, method, target, { status: 200, body: {} }, 'outbound', host);
    if (typeof c !== 'string') {
      const data = enc.encode(JSON.stringify(c.body));
      ex.request.headers.push(['content-type', 'application/json']);
      ex.request.body = { data, size: data.length, truncated: false };
    }
    return ex;
  });
}

function runItem(c: CaseSpec, spec: AnswerSpec, label: string): RunItem {
  const live = exchange(`${label}-${c.id}#0`, c.method, c.target, spec, 'inbound', undefined, {
    ...(c.requestHeaders ? { headers: c.requestHeaders } : {}),
    ...(c.requestBody ? { body: c.requestBody } : {}),
  });
  const { data } = bodyOf(spec);
  return {
    id: c.id,
    client: {
      method: c.method,
      target: c.target,
      headers: c.requestHeaders ?? [],
      ...(spec.error
        ? { error: spec.error }
        : { status: spec.status, responseHeaders: live.response?.headers ?? [], responseBody: data }),
      durationMs: (spec.latencyMs ?? 1) + 0.5,
    },
    ...(spec.noLive || spec.error ? {} : { live }),
    outbound: calls(`${label}-${c.id}`, spec.calls),
  };
}

const pick = (s: AnswerSpec | ((run: number) => AnswerSpec), run: number): AnswerSpec =>
  typeof s === 'function' ? s(run) : s;

export function buildResults(cases: CaseSpec[], opts: BuildOptions = {}): ReplayResults {
  startUs = 1_767_225_600_000_000;
  const recorded: RecordedItem[] = cases.map((c) => ({
    id: c.id,
    route: c.route,
    session: c.session ?? 's1',
    exchange: exchange(c.id, c.method, c.target, c.recorded, 'inbound', undefined, {
      ...(c.requestHeaders ? { headers: c.requestHeaders } : {}),
      ...(c.requestBody ? { body: c.requestBody } : {}),
    }),
    outbound: calls(`rec-${c.id}`, c.recorded.calls),
  }));
  const run = (
    label: string,
    role: 'candidate' | 'baseline',
    index: number,
    spec: (c: CaseSpec) => AnswerSpec | undefined,
  ): ReplayRun => {
    const items = cases.flatMap((c) => {
      const s = spec(c);
      return s ? [runItem(c, s, label)] : [];
    });
    const outboundCalls = items.reduce((n, i) => n + i.outbound.length, 0);
    const misses =
      index !== 0 ? [] : role === 'candidate' ? (opts.misses ?? []) : (opts.baselineMisses ?? []);
    return {
      label,
      role,
      build: { command: role === 'candidate' ? 'node orders.js' : 'node orders-main.js', port: 8080 },
      startedAt: opts.createdAt ?? '2026-01-01T00:00:00.000Z',
      durationMs: 1000 + index,
      items,
      mocks: { calls: outboundCalls + misses.length, matched: outboundCalls, misses },
      capture: {
        exchanges: items.length + outboundCalls,
        ringbufDrops: 0,
        userBatchDrops: 0,
        gapBytes: 0,
        ...(index === 0 ? opts.capture : {}),
      },
      warnings: [...(opts.warnings ?? [])],
      ...(opts.runError && index === 0 && role === 'candidate' ? { error: opts.runError } : {}),
    };
  };
  const runs: ReplayRun[] = [];
  const nc = opts.candidateRuns ?? 1;
  for (let i = 0; i < nc; i++)
    runs.push(run(i === 0 ? 'candidate' : `candidate#${i + 1}`, 'candidate', i, (c) => pick(c.candidate, i)));
  for (let i = 0; i < (opts.baselineRuns ?? 0); i++) {
    runs.push(
      run(i === 0 ? 'baseline' : `baseline#${i + 1}`, 'baseline', i, (c) =>
        c.baseline ? pick(c.baseline, i) : undefined,
      ),
    );
  }
  return {
    format: 'retap-results',
    formatVersion: 1,
    createdAt: opts.createdAt ?? '2026-01-01T00:00:00.000Z',
    snapshot: {
      path: '/tmp/snapshots/orders/v1',
      name: 'orders',
      version: 1,
      hash: 'sha256:0123456789abcdef',
    },
    environment: { kind: 'local', namespace: 'retap-test' },
    options: {},
    recorded,
    runs,
  };
}

/** The demo's seeded regressions, mirrored on synthetic answers. */
export type ShopVariant = 'changed-field' | 'slow' | 'extra-call' | 'error';

export interface ShopOptions {
  sessions?: number;
  variants?: ShopVariant[];
  seed?: number;
  candidateRuns?: number;
  /** Baseline runs of the unchanged build (0: none). */
  baselineRuns?: number;
}

/**
 * Replays of a shop: each session logs in, creates an order, reads it and lists orders. Volatile
 * values (token, uuid, timestamps) differ in every run; latencies are seeded and jittered.
 */
export function shopResults(opts: ShopOptions = {}): ReplayResults {
  const sessions = opts.sessions ?? 25;
  const variants = new Set(opts.variants ?? []);
  const seed = opts.seed ?? 7;
  const hex = (r: () => number, n: number): string =>
    Array.from({ length: n }, () => Math.floor(r() * 16).toString(16)).join('');
  const uuid = (r: () => number): string =>
    `${hex(r, 8)}-${hex(r, 4)}-4${hex(r, 3)}-a${hex(r, 3)}-${hex(r, 12)}`;
  const token = (r: () => number): string =>
    Array.from(
      { length: 32 },
      () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[Math.floor(r() * 64)],
    ).join('');
  const iso = (r: () => number): string => new Date(1_767_225_600_000 + Math.floor(r() * 1e9)).toISOString();
  const lat = (r: () => number, base: number): number =>
    base * (0.7 + 0.8 * r()) + (r() < 0.05 ? base * 3 : 0);

  // generator per (run, case) so every run has its own volatile values and timings
  const answer = (run: number, s: number, step: number, live: boolean): AnswerSpec => {
    const r = prng(seed * 7919 + run * 104729 + s * 131 + step);
    const v = (name: ShopVariant): boolean => live && variants.has(name);
    const total = 19.99 * ((s % 3) + 1);
    const order = {
      id: uuid(r),
      sku: `SKU-${s % 5}`,
      qty: (s % 3) + 1,
      total: v('changed-field') ? total.toFixed(2) : total,
      status: 'confirmed',
      createdAt: iso(r),
    };
    switch (step) {
      case 0:
        return { status: 200, body: { token: token(r), expiresAt: iso(r) }, latencyMs: lat(r, 0.6) };
      case 1: {
        const calls = [
          'GET inventory /stock/SKU-1',
          'POST inventory /reservations',
          ...(v('extra-call') ? ['GET inventory /stock/SKU-1'] : []),
          'POST payments /charges',
        ];
        return { status: 201, body: order, latencyMs: lat(r, 4), calls };
      }
      case 2:
        return { status: 200, body: order, latencyMs: lat(r, 0.8) + (v('slow') ? 150 : 0) };
      default:
        if (v('error')) return { status: 500, body: { error: 'internal error' }, latencyMs: lat(r, 0.5) };
        return { status: 200, body: { orders: [order], count: 1 }, latencyMs: lat(r, 0.9) };
    }
  };
  const routes = [
    ['POST', '/login', 'POST /login'],
    ['POST', '/orders', 'POST /orders'],
    ['GET', '/orders/{id}', 'GET /orders/{id}'],
    ['GET', '/orders', 'GET /orders'],
  ] as const;
  const cases: CaseSpec[] = [];
  for (let s = 0; s < sessions; s++) {
    routes.forEach(([method, target, route], step) => {
      cases.push({
        id: `c${s}#${step}`,
        route,
        method,
        target: target.replace('{id}', `0000000${s}-0000-4000-a000-000000000000`),
        session: `s${s}`,
        recorded: answer(0, s, step, false),
        candidate: (run) => answer(run + 1, s, step, true),
        baseline: (run) => answer(run + 101, s, step, false),
      });
    });
  }
  return buildResults(cases, {
    candidateRuns: opts.candidateRuns ?? 1,
    baselineRuns: opts.baselineRuns ?? 0,
  });
}

/** One of everything: the fixture behind the golden reports. */
export function mixedResults(): ReplayResults {
  const order = { id: 42, sku: 'SKU-1', qty: 2, total: 39.98, status: 'confirmed', tags: ['new'] };
  const cases: CaseSpec[] = [
    {
      id: 'c1#0',
      route: 'GET /orders/{id}',
      method: 'GET',
      target: '/orders/42',
      recorded: { status: 200, body: order, latencyMs: 1.2 },
      candidate: { status: 200, body: order, latencyMs: 1.3 },
    },
    {
      id: 'c1#1',
      route: 'GET /orders/{id}',
      method: 'GET',
      target: '/orders/43',
      recorded: { status: 200, body: { ...order, id: 43 }, latencyMs: 1.1 },
      candidate: { status: 200, body: { ...order, id: 43, total: '39.98' }, latencyMs: 1.4 },
    },
    {
      id: 'c1#2',
      route: 'GET /orders/{id}',
      method: 'GET',
      target: '/orders/44',
      recorded: { status: 200, body: { ...order, id: 44 }, latencyMs: 1.0 },
      candidate: {
        status: 200,
        body: { ...order, id: 44, qty: 3, tags: ['new', 'gift'], discount: 5 },
        latencyMs: 1.2,
      },
    },
    {
      id: 'c2#0',
      route: 'GET /orders',
      method: 'GET',
      target: '/orders',
      recorded: { status: 200, body: { orders: [order], count: 1, worker: 'w1' }, latencyMs: 2.0 },
      candidate: (run) => ({
        status: 200,
        body: { orders: [order], count: 1, worker: run === 0 ? 'w3' : 'w4' },
        latencyMs: 2.2,
      }),
    },
    {
      id: 'c2#1',
      route: 'GET /orders',
      method: 'GET',
      target: '/orders?page=2',
      recorded: { status: 200, body: { orders: [], count: 0, worker: 'w2' }, latencyMs: 1.9 },
      candidate: { status: 500, body: { error: 'internal error' }, latencyMs: 0.4 },
    },
    {
      id: 'c3#0',
      route: 'POST /orders',
      method: 'POST',
      target: '/orders',
      recorded: {
        status: 201,
        body: { ...order, createdAt: '2026-01-01T00:00:00.000Z', receipt: 'R-1' },
        latencyMs: 4.0,
        calls: ['GET inventory /stock/SKU-1', 'POST payments /charges'],
      },
      candidate: {
        status: 201,
        body: { ...order, createdAt: '2026-03-04T10:11:12.000Z' },
        latencyMs: 4.4,
        calls: ['GET inventory /stock/SKU-1', 'GET inventory /stock/SKU-1'],
      },
    },
    {
      id: 'c4#0',
      route: 'GET /reports/{id}',
      method: 'GET',
      target: '/reports/9',
      recorded: { status: 200, body: 'report 9\nrows: 10\n', latencyMs: 20 },
      candidate: { status: 200, body: 'report 9\nrows: 10\n', latencyMs: 310 },
    },
    {
      id: 'c4#1',
      route: 'GET /reports/{id}',
      method: 'GET',
      target: '/reports/10',
      recorded: { status: 200, body: 'report 10\nrows: 3\n', latencyMs: 22 },
      candidate: { status: 200, body: 'report 10\nrows: 3\n', latencyMs: 290, noLive: true },
    },
    {
      id: 'c5#0',
      route: 'GET /health',
      method: 'GET',
      target: '/health',
      recorded: { status: 200, body: { status: 'ok' }, latencyMs: 0.2, headers: [['x-request-id', 'a1']] },
      candidate: { status: 200, body: { status: 'ok' }, latencyMs: 0.3, headers: [['x-request-id', 'b2']] },
    },
  ];
  return buildResults(cases, {
    candidateRuns: 2,
    misses: [
      {
        method: 'POST',
        host: 'payments',
        target: '/charges',
        reason: 'no recorded call with this body',
        closest: 'POST payments /charges (amount differs)',
        during: 'c3#0',
      },
    ],
    capture: { ringbufDrops: 2 },
  });
}

/**
 * A replay that did not reproduce its recording: every session logs in, then its reads are refused
 * (the session was not carried) by the baseline and the candidate alike, and the directory calls
 * the recording made are never made; one upload route is answered 501 after a body left unread.
 */
export function brokenResults(): ReplayResults {
  const cases: CaseSpec[] = [];
  const hex = (n: number): string => n.toString(16).padStart(32, '0');
  for (let s = 0; s < 3; s++) {
    cases.push({
      id: `s${s}#0`,
      route: 'POST /login',
      method: 'POST',
      target: '/login',
      session: `s${s}`,
      requestBody: '{"user":"ana","password":"REDACTED-00000000000000aa"}',
      recorded: { status: 200, body: { session: hex(s + 1) } },
      candidate: { status: 200, body: { session: hex(s + 100) } },
      baseline: { status: 200, body: { session: hex(s + 200) } },
    });
    cases.push({
      id: `s${s}#1`,
      route: 'POST /notes/{id}/attachments',
      method: 'POST',
      target: `/notes/${s + 1}/attachments`,
      session: `s${s}`,
      requestBody: 'x'.repeat(512),
      recorded: { status: 202, body: { queued: true } },
      candidate: { status: 202, body: { queued: true } },
      baseline: { status: 202, body: { queued: true } },
    });
    cases.push({
      id: `s${s}#2`,
      route: 'GET /notes/{id}',
      method: 'GET',
      target: `/notes/${s + 1}`,
      session: `s${s}`,
      requestHeaders: [['authorization', `Session ${hex(s + 1)}`]],
      recorded: { status: 200, body: { id: s + 1, title: 'n' }, calls: ['GET directory /users/ana'] },
      candidate: { status: 501, body: 'Unsupported method' },
      baseline: { status: 501, body: 'Unsupported method' },
    });
    cases.push({
      id: `s${s}#3`,
      route: 'GET /notes',
      method: 'GET',
      target: '/notes',
      session: `s${s}`,
      requestHeaders: [['authorization', `Session ${hex(s + 1)}`]],
      recorded: { status: 200, body: { notes: [] }, calls: ['GET directory /users/ana'] },
      candidate: { status: 401, body: { error: 'no such session' } },
      baseline: { status: 401, body: { error: 'no such session' } },
    });
  }
  return buildResults(cases, { baselineRuns: 1 });
}
