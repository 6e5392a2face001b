/**
 * Traffic generator for the demo: several client sessions, each logging in, creating 2–3 orders,
 * reading each one back by the id from its POST answer, listing them, checking health, and now and
 * then asking for an unknown order (404) or using a bad token (401). Tokens and ids flow from
 * answers into later requests, as in real traffic. Bounded: sessions, requests per session,
 * time per request.
 *
 * As a command: `node dist/examples/demo/traffic.js --url http://127.0.0.1:P [--sessions N] [--seed S] [--json]`
 */
import http from 'node:http';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CATALOG } from './catalog.js';
import { rng, type Rng } from './prng.js';
import { formatSummary, newSummary, record, type TrafficSummary } from './traffic-summary.js';

export const MAX_SESSIONS = 1000;
export const REQUEST_TIMEOUT_MS = 10_000;
const MAX_CONCURRENCY = 4;
const MAX_RESPONSE_BYTES = 1024 * 1024;
const NAMES = ['ada', 'grace', 'linus', 'barbara', 'ken', 'radia', 'dennis', 'margaret', 'edsger', 'frances'];

/**
 * Each demo user's password: what the client knows before any recording, so a replay must be
 * given it (redaction replaces it in the snapshot; `retap demo` writes them to its secrets file).
 */
export function passwordOf(name: string): string {
  return `${name[0]!.toUpperCase()}${name.slice(1)}-pass-${(name.length * 2718).toString(36)}`;
}

/** Every password the generator may send (for a secrets file). */
export function demoPasswords(): string[] {
  return NAMES.map(passwordOf);
}

export interface TrafficOptions {
  sessions?: number;
  seed?: number;
  /** Sessions at once (default 4). 1 makes every downstream call attributable to one request. */
  concurrency?: number;
  /** Stops starting new sessions (the ones running finish); the summary says how many ran. */
  signal?: AbortSignal;
  /** Called after each finished session. */
  onProgress?: (done: number, total: number, summary: TrafficSummary) => void;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  error?: string;
}

function send(
  agent: http.Agent,
  base: URL,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string | number> = { accept: 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  return new Promise((resolve) => {
    const req = http.request(
      new URL(path, base),
      { method, agent, headers, timeout: REQUEST_TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_RESPONSE_BYTES) chunks.push(c);
        });
        res.on('error', (e) => resolve({ status: 0, body: {}, error: e.message }));
        res.on('end', () => {
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            resolve({ status: res.statusCode ?? 0, body: {}, error: 'answer is not JSON' });
            return;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed ?? {} });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', (e) => resolve({ status: 0, body: {}, error: e.message }));
    req.end(payload);
  });
}

function fakeUuid(r: Rng): string {
  const h = r.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

async function session(
  index: number,
  r: Rng,
  agent: http.Agent,
  base: URL,
  s: TrafficSummary,
): Promise<void> {
  const call = async (
    route: string,
    expected: number,
    method: string,
    path: string,
    token?: string,
    body?: unknown,
  ) => {
    const a = await send(agent, base, method, path, token, body);
    const ok = record(s, route, a.status, expected, a.error);
    return { ...a, ok };
  };

  const name = r.pick(NAMES);
  const user = `${name}-${index}`;
  const login = await call('POST /login', 200, 'POST', '/login', undefined, {
    user,
    password: passwordOf(name),
  });
  const token = typeof login.body.token === 'string' ? login.body.token : undefined;
  if (!login.ok || token === undefined) return;

  const created: { id: string; sku: string; qty: number }[] = [];
  const count = r.int(2, 3);
  for (let i = 0; i < count; i++) {
    const sku = r.pick(CATALOG).sku;
    const qty = r.int(1, 3);
    const a = await call('POST /orders', 201, 'POST', '/orders', token, { sku, qty });
    if (a.ok && typeof a.body.id === 'string') {
      created.push({ id: a.body.id, sku, qty });
      s.ordersCreated++;
    }
  }

  for (const o of created) {
    const a = await send(agent, base, 'GET', `/orders/${encodeURIComponent(o.id)}`, token);
    const mismatch =
      a.status === 200 && (a.body.id !== o.id || a.body.sku !== o.sku || a.body.qty !== o.qty)
        ? `order ${o.id} came back as ${JSON.stringify(a.body).slice(0, 200)}`
        : undefined;
    record(s, 'GET /orders/:id', a.status, 200, a.error ?? mismatch);
  }

  const list = await send(agent, base, 'GET', '/orders', token);
  const listed = Array.isArray(list.body.orders)
    ? (list.body.orders as { id?: unknown }[]).map((o) => o.id)
    : [];
  const missing = list.status === 200 ? created.filter((o) => !listed.includes(o.id)).map((o) => o.id) : [];
  record(
    s,
    'GET /orders',
    list.status,
    200,
    list.error ?? (missing.length ? `list lacks ${missing.join(', ')}` : undefined),
  );

  await call('GET /health', 200, 'GET', '/health');
  if (r.chance(0.5)) await call('GET /orders/:id', 404, 'GET', `/orders/${fakeUuid(r)}`, token);
  if (r.chance(0.3)) await call('GET /orders', 401, 'GET', '/orders', `expired-${r.hex(16)}`);
}

/** Runs the sessions (at most MAX_CONCURRENCY at a time) and returns what happened. */
export async function runTraffic(ordersUrl: string, options: TrafficOptions = {}): Promise<TrafficSummary> {
  const sessions = options.sessions ?? 5;
  const seed = options.seed ?? 1;
  if (!Number.isInteger(sessions) || sessions < 1 || sessions > MAX_SESSIONS) {
    throw new Error(`sessions must be a whole number from 1 to ${MAX_SESSIONS}, got ${sessions}`);
  }
  const base = new URL(ordersUrl);
  const summary = newSummary(base.href, sessions, seed);
  const concurrency = Math.max(1, Math.min(options.concurrency ?? MAX_CONCURRENCY, MAX_CONCURRENCY, sessions));
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  // One generator per session, derived from the seed, so sessions do not depend on scheduling.
  const root = rng(seed);
  const seeds = Array.from({ length: sessions }, () => root.int(0, 2 ** 31));
  const started = Date.now();
  let nextIndex = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (nextIndex < sessions && !options.signal?.aborted) {
      const index = nextIndex++;
      await session(index, rng(seeds[index] ?? index), agent, base, summary);
      done++;
      options.onProgress?.(done, sessions, summary);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  summary.durationMs = Date.now() - started;
  summary.sessionsRun = done;
  return summary;
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      sessions: { type: 'string', default: '5' },
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.url) {
    process.stderr.write('traffic: --url of the orders service is required\n');
    process.exit(64);
  }
  runTraffic(values.url, { sessions: Number(values.sessions), seed: Number(values.seed) }).then(
    (summary) => {
      process.stdout.write(
        values.json ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary).join('\n')}\n`,
      );
      process.exitCode = summary.errors === 0 ? 0 : 1;
    },
    (e: unknown) => {
      process.stderr.write(`traffic: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
