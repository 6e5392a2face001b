/**
 * The demo system end to end, from the TypeScript sources: three real processes on loopback,
 * real TLS between orders and payments, the traffic generator, the seeded regressions, and a
 * clean stop. The last part runs `retap demo` from dist/ as a user would.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../core/paths.js';
import { type DemoSystem, runTraffic, startDemo } from '../../examples/demo/index.js';
import { SLOW_DELAY_MS, VARIANTS } from '../../examples/demo/variants.js';
import { skipPrivileged } from '../helpers/privileged.js';

interface Reply {
  status: number;
  body: Record<string, unknown>;
  ms: number;
}

function call(
  url: string,
  options: { method?: string; token?: string; body?: unknown; ca?: string } = {},
): Promise<Reply> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (payload) headers['content-type'] = 'application/json';
  const target = new URL(url);
  const request = target.protocol === 'https:' ? https.request : http.request;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: options.method ?? 'GET',
        headers,
        timeout: 10_000,
        agent: false,
        ...(options.ca ? { ca: options.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body: text ? JSON.parse(text) : {},
            ms: performance.now() - started,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Demo service processes whose parent is this test process (read from /proc). */
function demoChildren(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (ppid === process.pid && cmdline.includes('examples/demo/')) out.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return out;
}

async function loginAndOrder(
  orders: string,
  user: string,
): Promise<{ token: string; order: Record<string, unknown> }> {
  const login = await call(`${orders}/login`, { method: 'POST', body: { user, password: 'pw' } });
  expect(login.status).toBe(200);
  const token = login.body.token as string;
  const created = await call(`${orders}/orders`, {
    method: 'POST',
    token,
    body: { sku: 'BOOK-001', qty: 2 },
  });
  expect(created.status).toBe(201);
  return { token, order: created.body };
}

async function stockCalls(inventory: string): Promise<number> {
  const stats = await call(`${inventory}/stats`);
  return (stats.body.requests as Record<string, number>)['GET /stock/:sku'] ?? 0;
}

describe('demo system', () => {
  let normal: DemoSystem;
  let variant: DemoSystem;
  let ca: string;

  beforeAll(async () => {
    const [a, b] = await Promise.allSettled([startDemo(), startDemo({ variant: 'all' })]);
    for (const r of [a, b])
      if (r.status === 'rejected') {
        await Promise.all([a, b].map((x) => (x.status === 'fulfilled' ? x.value.stop() : undefined)));
        throw r.reason;
      }
    normal = (a as PromiseFulfilledResult<DemoSystem>).value;
    variant = (b as PromiseFulfilledResult<DemoSystem>).value;
    ca = readFileSync(normal.caFile, 'utf8');
  });

  afterAll(async () => {
    await Promise.all([normal?.stop(), variant?.stop()]);
  });

  it('starts three separate processes that answer health', async () => {
    const pids = new Set([normal.orders.pid, normal.inventory.pid, normal.payments.pid, process.pid]);
    expect(pids.size).toBe(4);
    expect((await call(`${normal.orders.url}/health`)).status).toBe(200);
    expect((await call(`${normal.inventory.url}/health`)).status).toBe(200);
    expect((await call(`${normal.payments.url}/health`, { ca })).status).toBe(200);
  });

  it('reaches dependencies by host name and trusts payments through NODE_EXTRA_CA_CERTS', async () => {
    expect(normal.env.INVENTORY_URL).toBe(`http://localhost:${normal.inventory.port}`);
    expect(normal.env.PAYMENTS_URL).toBe(`https://localhost:${normal.payments.port}`);
    expect(normal.env.NODE_EXTRA_CA_CERTS).toBe(normal.caFile);
    const config = await call(`${normal.orders.url}/debug/config`);
    expect(config.body.dependencies).toEqual({
      inventory: `${normal.env.INVENTORY_URL}/`,
      payments: `${normal.env.PAYMENTS_URL}/`,
    });
  });

  it('payments speaks TLS only', async () => {
    await expect(call(`http://127.0.0.1:${normal.payments.port}/health`)).rejects.toThrow();
    // Without the demo CA the certificate is not trusted.
    await expect(call(`${normal.payments.url}/health`)).rejects.toThrow(/certificate/);
  });

  it('runs the traffic generator with zero errors', async () => {
    const charged = await call(`${normal.payments.url}/stats`, { ca });
    const chargesBefore = (charged.body.requests as Record<string, number>)['POST /charges'] ?? 0;
    const summary = await runTraffic(normal.orders.url, { sessions: 3, seed: 11 });
    expect(summary.errorSamples).toEqual([]);
    expect(summary.errors).toBe(0);
    expect(summary.sessionsRun).toBe(3);
    expect(summary.ordersCreated).toBeGreaterThanOrEqual(6);
    expect(summary.ordersCreated).toBeLessThanOrEqual(9);
    expect(summary.byRoute['POST /login']).toEqual({ '200': 3 });
    expect(summary.byRoute['POST /orders']).toEqual({ '201': summary.ordersCreated });
    expect(summary.byRoute['GET /orders/:id']?.['200']).toBe(summary.ordersCreated);
    expect(summary.byRoute['GET /health']).toEqual({ '200': 3 });

    // Every order went to payments over TLS.
    const stats = await call(`${normal.payments.url}/stats`, { ca });
    const charges = (stats.body.requests as Record<string, number>)['POST /charges'] ?? 0;
    expect(charges - chargesBefore).toBe(summary.ordersCreated);
    expect(Object.keys(stats.body.tlsProtocols as object).some((p) => p.startsWith('TLSv1.'))).toBe(true);
  });

  it('the same seed gives the same requests', async () => {
    const a = await runTraffic(normal.orders.url, { sessions: 2, seed: 99 });
    const b = await runTraffic(normal.orders.url, { sessions: 2, seed: 99 });
    expect(b.byRoute).toEqual(a.byRoute);
    expect(b.ordersCreated).toBe(a.ordersCreated);
  });

  it('tokens and ids flow from answers into later requests', async () => {
    const orders = normal.orders.url;
    const { token, order } = await loginAndOrder(orders, 'flow-user');
    expect(order).toMatchObject({ sku: 'BOOK-001', qty: 2, total: 49.98, status: 'confirmed' });
    expect(order.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(order.createdAt as string).toISOString()).toBe(order.createdAt);

    const again = await call(`${orders}/orders/${order.id}`, { token });
    expect(again).toMatchObject({ status: 200, body: order });
    const list = await call(`${orders}/orders`, { token });
    expect(list.status).toBe(200);
    expect((list.body.orders as { id: string }[]).map((o) => o.id)).toEqual([order.id]);

    expect((await call(`${orders}/orders/${order.id}`)).status).toBe(401);
    expect((await call(`${orders}/orders`, { token: 'not-a-token' })).status).toBe(401);
    expect(
      (await call(`${orders}/orders`, { method: 'POST', body: { sku: 'BOOK-001', qty: 1 } })).status,
    ).toBe(401);
    expect((await call(`${orders}/orders/00000000-0000-4000-8000-000000000000`, { token })).status).toBe(404);
    const other = await call(`${orders}/login`, {
      method: 'POST',
      body: { user: 'someone-else', password: 'pw' },
    });
    expect((await call(`${orders}/orders/${order.id}`, { token: other.body.token as string })).status).toBe(
      404,
    );
  });

  it('each order reads stock, reserves it, and charges over https', async () => {
    const before = await call(`${normal.inventory.url}/stats`);
    await loginAndOrder(normal.orders.url, 'calls-user');
    const after = await call(`${normal.inventory.url}/stats`);
    const delta = (route: string): number =>
      ((after.body.requests as Record<string, number>)[route] ?? 0) -
      ((before.body.requests as Record<string, number>)[route] ?? 0);
    expect(delta('GET /stock/:sku')).toBe(1);
    expect(delta('POST /reservations')).toBe(1);
  });

  describe('--variant all', () => {
    it('reports its seeded regressions', async () => {
      const config = await call(`${variant.orders.url}/debug/config`);
      expect(config.body.variants).toEqual([...VARIANTS]);
      expect(config.body.delays).toEqual({ 'GET /orders/:id': SLOW_DELAY_MS });
      expect(config.body.failing).toEqual(['GET /orders']);
      const plain = await call(`${normal.orders.url}/debug/config`);
      expect(plain.body).toMatchObject({ variants: [], delays: {}, failing: [] });
    });

    it('changed-field: total becomes a string', async () => {
      const n = await loginAndOrder(normal.orders.url, 'field-user');
      const v = await loginAndOrder(variant.orders.url, 'field-user');
      expect(typeof n.order.total).toBe('number');
      expect(typeof v.order.total).toBe('string');
      expect(Number(v.order.total)).toBe(n.order.total);
    });

    it('extra-call: one more stock lookup per order', async () => {
      const normalBefore = await stockCalls(normal.inventory.url);
      const variantBefore = await stockCalls(variant.inventory.url);
      await loginAndOrder(normal.orders.url, 'extra-user');
      await loginAndOrder(variant.orders.url, 'extra-user');
      expect((await stockCalls(normal.inventory.url)) - normalBefore).toBe(1);
      expect((await stockCalls(variant.inventory.url)) - variantBefore).toBe(2);
    });

    it('error: the order list answers 500', async () => {
      const { token } = await loginAndOrder(variant.orders.url, 'error-user');
      expect((await call(`${variant.orders.url}/orders`, { token })).status).toBe(500);
      const ok = await loginAndOrder(normal.orders.url, 'error-user');
      expect((await call(`${normal.orders.url}/orders`, { token: ok.token })).status).toBe(200);
    });

    it('slow: GET /orders/:id waits the seeded delay', async () => {
      const { token, order } = await loginAndOrder(variant.orders.url, 'slow-user');
      const got = await call(`${variant.orders.url}/orders/${order.id}`, { token });
      expect(got.status).toBe(200);
      // A sleep's guaranteed lower bound (timers may fire ~1 ms early), not a performance threshold.
      expect(got.ms).toBeGreaterThanOrEqual(SLOW_DELAY_MS - 5);
    });

    it('the generator reports the 500s as errors and nothing else', async () => {
      const summary = await runTraffic(variant.orders.url, { sessions: 2, seed: 3 });
      expect(summary.errors).toBe(2);
      expect(summary.errorSamples.every((e) => e.route === 'GET /orders' && e.status === 500)).toBe(true);
    });
  });

  it('stop() ends every process and removes the certificates', async () => {
    const pids = [normal, variant].flatMap((d) => [d.orders.pid, d.inventory.pid, d.payments.pid]);
    expect(pids.every(alive)).toBe(true);
    await Promise.all([normal.stop(), variant.stop()]);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(dirname(normal.caFile))).toBe(false);
    expect(existsSync(dirname(variant.caFile))).toBe(false);
    expect(demoChildren()).toEqual([]);
  });
});

describe('demo start failures', () => {
  let blocker: Server | undefined;
  afterAll(() => new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve())));

  it('leaves nothing running when a service cannot start', async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as { port: number }).port;
    // orders gets base+2: the port held above, so it cannot listen.
    await expect(startDemo({ portBase: taken - 2 })).rejects.toThrow(/demo service/);
    expect(demoChildren()).toEqual([]);
  });
});

function buildDist(root: string): void {
  const r = spawnSync('flock', ['/tmp/retap-build-ts.lock', 'npm', 'run', '-s', 'build:ts'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 180_000,
  });
  // Others' work in progress may carry type errors; what matters is that our files were emitted.
  for (const f of ['dist/cli/main.js', 'dist/cli/commands/demo.js', 'dist/examples/demo/orders.js']) {
    if (!existsSync(join(root, f)))
      throw new Error(`npm run build:ts did not produce ${f}:\n${r.stdout}${r.stderr}`);
  }
}

describe('retap demo (compiled CLI)', () => {
  const root = packageRoot();
  beforeAll(() => buildDist(root), 200_000);

  it.skipIf(skipPrivileged())(
    'runs the whole loop (capture, snapshot, replay, verdict) and stops everything',
    () => {
      const out = mkdtempSync(join(tmpdir(), 'retap-demo-out-'));
      const r = spawnSync(
        process.execPath,
        [join(root, 'bin/retap.js'), 'demo', '--json', '--sessions', '2', '--seed', '4', '--out', out],
        {
          cwd: root,
          encoding: 'utf8',
          timeout: 120_000,
        },
      );
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as {
        ok: boolean;
        services: Record<string, { pid: number }>;
        traffic: { errors: number; sessionsRun: number; requests: number };
        stages: { name: string; status: string }[];
        notBuilt: string[];
        snapshot: string;
        capture: { inbound: number; outbound: number; drops: number };
        verdicts: Array<{ variant: string; exitCode: number; caught: string[]; reports: string }>;
      };
      expect(report.ok).toBe(true);
      expect(report.traffic).toMatchObject({ errors: 0, sessionsRun: 2 });
      expect(report.notBuilt).toEqual([]);
      expect(report.stages.filter((s) => s.status === 'done').map((s) => s.name)).toEqual([
        'start',
        'capture',
        'traffic',
        'snapshot',
        'replay',
        'verdict',
      ]);
      // the gate: the unchanged build passes, the seeded regressions are caught
      const verdicts = Object.fromEntries(report.verdicts.map((v) => [v.variant, v]));
      expect(verdicts.none?.exitCode).toBe(0);
      expect(verdicts.all?.exitCode).toBe(1);
      const caught = verdicts.all?.caught.join('\n') ?? '';
      expect(caught).toMatch(/\$\.total changed type/);
      expect(caught).toMatch(/GET \/orders: status 200 → 500/);
      expect(caught).toMatch(/budget GET \/orders\/\{id\} p95/);
      expect(existsSync(join(verdicts.all!.reports, 'report.junit.xml'))).toBe(true);
      // every request the generator sent was captured, and orders' calls to inventory and payments
      expect(report.capture.inbound).toBe(report.traffic.requests);
      expect(report.capture.outbound).toBeGreaterThan(0);
      expect(report.capture.drops).toBe(0);
      const lines = readFileSync(join(report.snapshot, 'exchanges.jsonl'), 'utf8').trim().split('\n');
      const exchanges = lines.map(
        (l) => JSON.parse(l) as { direction: string; tls: boolean; peer: { port: number } },
      );
      expect(exchanges.filter((e) => e.direction === 'inbound')).toHaveLength(report.traffic.requests);
      expect(exchanges.some((e) => e.direction === 'outbound' && e.tls)).toBe(true);
      expect(exchanges.some((e) => e.direction === 'outbound' && !e.tls)).toBe(true);
      rmSync(out, { recursive: true, force: true });
      expect(r.stderr).toMatch(/Drive client traffic/);
      const pids = Object.values(report.services).map((s) => s.pid);
      expect(pids).toHaveLength(3);
      expect(pids.filter(alive)).toEqual([]);
    },
  );

  it('runs a compiled service on its own, as the replay runner will', async () => {
    const script = join(root, 'dist/examples/demo/orders.js');
    const missing = spawnSync(process.execPath, [script, '--port', '0'], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, INVENTORY_URL: '', PAYMENTS_URL: '' },
    });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/INVENTORY_URL is not set/);

    const child = spawn(process.execPath, [script, '--port', '0', '--variant', 'slow'], {
      env: { ...process.env, INVENTORY_URL: 'http://localhost:9', PAYMENTS_URL: 'https://localhost:9' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`orders exited with ${code}`)));
      });
      const ready = JSON.parse(line.replace('RETAP_DEMO_READY ', '')) as { port: number; pid: number };
      expect(ready.pid).toBe(child.pid);
      const url = `http://127.0.0.1:${ready.port}`;
      expect((await call(`${url}/health`)).status).toBe(200);
      expect((await call(`${url}/debug/config`)).body.variants).toEqual(['slow']);
      // Dependencies down: an order fails cleanly with 502.
      const login = await call(`${url}/login`, { method: 'POST', body: { user: 'u', password: 'p' } });
      const order = await call(`${url}/orders`, {
        method: 'POST',
        token: login.body.token as string,
        body: { sku: 'MUG-002', qty: 1 },
      });
      expect(order.status).toBe(502);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    expect(alive(child.pid!)).toBe(false);
  });

  it('refuses an unknown variant with a usage error', () => {
    const r = spawnSync(process.execPath, [join(root, 'bin/retap.js'), 'demo', '--variant', 'fast'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/unknown variant 'fast'/);
  });
});
