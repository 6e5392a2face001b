/**
 * `retap view` in a real browser (Debian's Chromium driven by playwright-core, no browser
 * download) against real captures: an `orders` service calling a gRPC and an HTTP dependency is
 * recorded through the real kernel path, then viewed. The list renders; every filter narrows to
 * what the snapshot's own counts (or the shared filter over the snapshot reader) say; full text
 * finds a string that exists only inside gRPC messages; the pair view shows pretty JSON; the
 * service map has the right nodes and edges; save-as-snapshot writes a valid version; a live
 * capture streams in; replay results show recorded vs replayed. Screenshots of each view are
 * kept in an artifacts folder (its path is printed).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mixedResults } from '../../assertions/testing/fixtures.js';
import { countersOf } from '../../capture/record.js';
import { CaptureSession } from '../../capture/session.js';
import type { Exchange } from '../../core/exchange.js';
import { compileFilter, createSnapshotWriter, type Manifest, openSnapshot, validateSnapshot } from '../../snapshots/index.js';
import { writeResults } from '../../snapshots/results.js';
import { parseQuery } from '../../viewer/query.js';
import { skipPrivileged, skipWithoutTool } from '../helpers/privileged.js';
import { type Proc, start, stopAll } from '../helpers/procs.js';

const repo = resolve(import.meta.dirname, '../..');
const BIN = join(repo, 'bin/retap.js');
const fixtures = join(repo, 'test/fixtures');
const CHROMIUM = '/usr/bin/chromium';
const noChromium = skipWithoutTool('Chromium', CHROMIUM, 'chromium, see ci/apt-packages.txt');
const noBrowserOrEbpf = noChromium || skipPrivileged();

const artifacts = join(process.env.RETAP_ARTIFACTS ?? join(tmpdir(), 'retap-artifacts'), `viewer-${new Date().toISOString().replace(/[:.]/g, '-')}`);
let work: string;
let browser: Browser | undefined;

async function launch(): Promise<Browser> {
  if (!existsSync(join(repo, 'dist/viewer/web/app.js'))) throw new Error('dist/viewer/web is missing: run npm run build first');
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return browser;
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'retap-viewer-e2e-'));
  mkdirSync(artifacts, { recursive: true });
  console.log(`retap view screenshots: ${artifacts}`);
});

afterAll(async () => {
  await browser?.close();
  await stopAll();
  rmSync(work, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  url: string;
  output(): string;
  stop(): Promise<number | null>;
}

/** `retap view ARGS --json` as a process; resolves once it printed its URL. */
async function view(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'view', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 30_000;
  while (!/^\{"url".*\}$/m.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`retap view did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const url = JSON.parse(/^\{"url".*\}$/m.exec(out)![0]).url as string;
  return {
    child,
    url,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/** A page that must not load anything from anywhere but the viewer, nor break its CSP. */
async function openPage(url: string): Promise<{ page: Page; problems: string[] }> {
  const b = await launch();
  const page = await b.newPage({ viewport: { width: 1440, height: 900 } });
  const origin = new URL(url).origin;
  const problems: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(`${origin}/`) && !r.url().startsWith('data:')) problems.push(`request to ${r.url()}`);
  });
  page.on('console', (m) => {
    // a refused query answers 400 on purpose; anything else (a CSP violation included) is a problem
    if (m.type() === 'error' && !/status of 400/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector('body[data-ready]');
  return { page, problems };
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`) });
}

/** Count the status line shows once the query `q` is applied (typed into the query box). */
async function typeQuery(page: Page, q: string): Promise<number> {
  await page.fill('#q', q);
  await page.press('#q', 'Enter');
  return settledCount(page);
}

// Page-side functions reach the DOM through globalThis: this file is compiled without the DOM
// library. They must be functions, not strings: the viewer's CSP forbids evaluating strings.
const SETTLED = () => {
  // biome-ignore lint/suspicious/noExplicitAny: the page's document
  const s = (globalThis as any).document.getElementById('status');
  return s && s.dataset.count !== undefined && s.dataset.count !== '' && s.textContent !== 'searching…';
};
// biome-ignore lint/suspicious/noExplicitAny: the page's document
const READY_CHANGED = (before: string | null) => (globalThis as any).document.body.dataset.ready !== before;

async function settledCount(page: Page): Promise<number> {
  await page.waitForFunction(SETTLED);
  return Number(await page.getAttribute('#status', 'data-count'));
}

async function clickChip(page: Page, key: string, value: string): Promise<number> {
  const before = await page.getAttribute('body', 'data-ready');
  await page.click(`.chip[data-key="${key}"][data-value="${value}"]`);
  await page.waitForFunction(READY_CHANGED, before);
  return settledCount(page);
}

function request(port: number, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolveReq, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolveReq({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function server(args: string[]): Promise<{ proc: Proc; port: number }> {
  const proc = start('node', args);
  const deadline = Date.now() + 15_000;
  while (!/listening (\d+)/.test(proc.output())) {
    if (Date.now() > deadline || proc.child.exitCode !== null) throw new Error(`${args[0]} did not start: ${proc.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, port: Number(/listening (\d+)/.exec(proc.output())![1]) };
}

describe.skipIf(noBrowserOrEbpf)('retap view over a real capture, in Chromium', () => {
  let orders: { proc: Proc; port: number };
  let grpcPort: number;
  let httpPort: number;
  let snapPath: string;
  let manifest: Manifest;
  let v: Running;
  let page: Page;
  let problems: string[];

  /** The shared filter run over the snapshot reader: what `retap snapshot filter` would keep. */
  async function expected(q: string): Promise<number> {
    const snap = await openSnapshot(snapPath);
    const keep = compileFilter(parseQuery(q, snap.manifest.timeRange?.firstStartUs).spec);
    let n = 0;
    for await (const l of snap.lines()) if (keep(l.value)) n++;
    return n;
  }

  beforeAll(async () => {
    const g = await server([join(fixtures, 'grpc-peer.mjs'), 'server']);
    const h = await server([join(fixtures, 'http-server.mjs')]);
    grpcPort = g.port;
    httpPort = h.port;
    orders = await server([join(fixtures, 'view-orders.mjs'), String(grpcPort), String(httpPort)]);

    // Record `orders` through the real kernel path, as retap capture does.
    const exchanges: Exchange[] = [];
    const session = CaptureSession.start({ pids: [orders.proc.pid], service: 'orders' }, (e) => exchanges.push(e));
    for (let n = 1; n <= 12; n++) expect((await request(orders.port, 'GET', `/orders/${n}`)).status).toBe(200);
    for (let n = 1; n <= 3; n++) expect((await request(orders.port, 'POST', '/orders', JSON.stringify({ user: `ann-${n}` }))).status).toBe(201);
    for (let n = 1; n <= 4; n++) expect((await request(orders.port, 'GET', `/missing/${n}`)).status).toBe(404);
    for (let n = 1; n <= 2; n++) expect((await request(orders.port, 'GET', `/fail/${n}`)).status).toBe(503);
    expect((await request(orders.port, 'GET', '/logo.png')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    const stats = await session.stop();
    const w = await createSnapshotWriter({ dir: join(work, 'orders'), name: 'orders', source: { host: 'e2e', service: 'orders', filters: { pids: [orders.proc.pid] } }, discoverTokens: true });
    for (const e of exchanges) await w.append(e);
    manifest = await w.finish({ counters: countersOf(stats) });
    snapPath = w.path;
    // 22 answered requests, 12 gRPC calls and 12 HTTP calls made while answering
    expect(manifest.counts.byDirection).toEqual({ inbound: 22, outbound: 24 });
    expect(manifest.counts.byProtocol.grpc).toBe(12);

    v = await view([snapPath]);
    ({ page, problems } = await openPage(v.url));
  }, 120_000);

  afterAll(async () => {
    await page?.close();
    if (v) expect(await v.stop()).toBe(0);
    await orders?.proc.stop();
  });

  it('the list renders every exchange, in a virtualised list', async () => {
    await page.waitForSelector('.row[data-n="0"]');
    expect(Number(await page.getAttribute('#status', 'data-total'))).toBe(manifest.counts.exchanges);
    expect(await settledCount(page)).toBe(manifest.counts.exchanges);
    const rendered = await page.locator('#rows .row:not([hidden])').count();
    expect(rendered).toBeGreaterThan(10);
    expect(rendered).toBeLessThanOrEqual(manifest.counts.exchanges);
    await shot(page, '1-list');
  });

  it('chips narrow by direction, status class and protocol, as the manifest counts', async () => {
    const c = manifest.counts;
    expect(await clickChip(page, 'dir', 'inbound')).toBe(c.byDirection.inbound);
    expect(await page.inputValue('#q')).toBe('dir:inbound');
    expect(await clickChip(page, 'dir', 'outbound')).toBe(c.byDirection.outbound);
    expect(await clickChip(page, 'dir', 'outbound')).toBe(c.exchanges);
    expect(await clickChip(page, 'status', '4xx')).toBe(c.byStatus['404']);
    expect(await clickChip(page, 'status', '5xx')).toBe((c.byStatus['404'] ?? 0) + (c.byStatus['503'] ?? 0));
    await shot(page, '2-filter-status-chips');
    expect(await page.inputValue('#q')).toBe('status:4xx,5xx');
    expect(new URL(page.url()).searchParams.get('q')).toBe('status:4xx,5xx');
    expect(await typeQuery(page, '')).toBe(c.exchanges);
    expect(await clickChip(page, 'proto', 'grpc')).toBe(c.byProtocol.grpc);
    expect(await typeQuery(page, '')).toBe(c.exchanges);
  });

  it('typed conditions narrow as the snapshot counts and the shared filter say', async () => {
    const routes = manifest.counts.routes;
    const sum = (f: (r: (typeof routes)[number]) => boolean) => routes.filter(f).reduce((n, r) => n + r.count, 0);
    expect(await typeQuery(page, 'method:POST')).toBe(sum((r) => r.method === 'POST'));
    expect(await typeQuery(page, 'url:/orders/*')).toBe(sum((r) => r.route === '/orders/{id}'));
    expect(await typeQuery(page, 'service:orders')).toBe(manifest.counts.exchanges);
    expect(await typeQuery(page, `host:127.0.0.1:${grpcPort}`)).toBe(sum((r) => r.host === `127.0.0.1:${grpcPort}`));
    expect(await typeQuery(page, 'status:none')).toBe(manifest.counts.noResponse);
    for (const [q, known] of [
      ['header:content-type=application/grpc', 12],
      ['json:user.tier=gold', 6],
      ['dir:outbound json:user.tier=gold', 0],
      ['dir:inbound status:2xx url:/orders/* json:lines[0].qty=7', 1],
    ] as const) {
      const got = await typeQuery(page, q);
      expect(got, q).toBe(await expected(q));
      expect(got, q).toBe(known);
    }
    await shot(page, '3-filter-typed');
    // a bad query says what and where, and keeps the last result
    await page.fill('#q', 'status:7xx');
    await page.press('#q', 'Enter');
    await page.waitForSelector('#query-error:not([hidden])');
    expect(await page.textContent('#query-error')).toMatch(/status: '7xx' is not a status/);
  });

  it('full text finds a string that only exists inside gRPC messages', async () => {
    // the id orders sent to the dependency is binary protobuf on the wire (base64 in the snapshot)
    const snap = await openSnapshot(snapPath);
    for await (const ex of snap.lines()) {
      if (ex.value.protocol === 'grpc' && String(ex.value.request.body.data).length > 0) expect(ex.value.request.body.encoding).toBe('base64');
    }
    expect(await typeQuery(page, 'zq7x')).toBe(1);
    await page.waitForSelector('.row[data-n] .c-proto');
    expect(await page.textContent('#rows .row:not([hidden]) .c-proto')).toBe('grpc');
    await page.click('#rows .row:not([hidden])');
    await page.click('button[data-tab="request"]');
    await page.waitForSelector('pre.grpc');
    expect(await page.textContent('pre.grpc')).toContain('zq7x');
    await shot(page, '4-text-in-grpc');
    // the answer's item name too (response message), and nothing else carries it
    expect(await typeQuery(page, '"item zq11x"')).toBe(1);
    expect(await typeQuery(page, 'zq7x dir:inbound')).toBe(0);
  });

  it('the timeline brush writes a time range that narrows like the shared filter', async () => {
    await typeQuery(page, '');
    const box = (await page.locator('#timeline').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 5 });
    const before = await page.getAttribute('body', 'data-ready');
    await page.mouse.up();
    await page.waitForFunction(READY_CHANGED, before);
    const n = await settledCount(page);
    const q = await page.inputValue('#q');
    expect(q).toMatch(/^from:\S+ to:\S+$/);
    expect(n).toBe(await expected(q));
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(manifest.counts.exchanges);
    await shot(page, '5-timeline-brush');
  });

  it('the pair view shows the answer as pretty JSON, with the pair info', async () => {
    await typeQuery(page, 'url:/orders/5');
    await page.click('#rows .row:not([hidden]):not([data-n=""])');
    await page.click('button[data-tab="info"]');
    await page.waitForSelector('.pbody[data-view="info"]');
    expect(await page.textContent('.pbody')).toMatch(/server-side/);
    await page.click('button[data-tab="response"]');
    await page.waitForSelector('pre.json-pretty');
    const snap = await openSnapshot(snapPath);
    let body = '';
    for await (const ex of snap.exchanges()) if (ex.request.target === '/orders/5') body = Buffer.from(ex.response!.body.data).toString();
    expect(await page.textContent('pre.json-pretty')).toBe(JSON.stringify(JSON.parse(body), null, 2));
    await shot(page, '6-pair-pretty-json');
    await page.click('button[data-toggle="pretty"]');
    expect(await page.textContent('pre.json-raw')).toBe(body);
    await page.click('button[data-toggle="pretty"]');
  });

  it('the pair view decodes JWTs and shows images', async () => {
    expect(await typeQuery(page, 'dir:inbound method:POST')).toBe(3);
    await page.click('#rows .row:not([hidden]):not([data-n=""])');
    await page.click('button[data-tab="response"]');
    await page.waitForSelector('pre.jwt');
    const jwt = await page.textContent('pre.jwt');
    expect(jwt).toContain('"alg": "HS256"');
    expect(jwt).toMatch(/"sub": "ann-\d"/);
    expect(jwt).toContain('"scope": "orders"');
    await shot(page, '6b-pair-jwt');
    expect(await typeQuery(page, 'url:/logo.png')).toBe(1);
    await page.click('#rows .row:not([hidden]):not([data-n=""])');
    await page.click('button[data-tab="response"]');
    const img = page.locator('img.preview');
    await img.waitFor();
    // the browser decoded the captured bytes: a 2×2 image
    expect(await img.evaluate((e) => [(e as unknown as { naturalWidth: number }).naturalWidth, (e as unknown as { naturalHeight: number }).naturalHeight])).toEqual([2, 2]);
    await shot(page, '6c-pair-image');
  });

  it('the service map has the callers, the service and its dependencies; an edge filters', async () => {
    await typeQuery(page, '');
    await page.click('#tab-map');
    await page.waitForSelector('#map svg');
    const ids = await page.locator('#map .node').evaluateAll((ns) => ns.map((n) => n.getAttribute('data-id')));
    expect(ids.sort()).toEqual(['caller:127.0.0.1', `dependency:127.0.0.1:${grpcPort}`, `dependency:127.0.0.1:${httpPort}`, 'service:orders'].sort());
    expect(await page.textContent(`#map .edge[data-to="dependency:127.0.0.1:${grpcPort}"] text`)).toMatch(/^12 req · 0\.0% err · p95 \d/);
    const edges = await page.locator('#map .edge').evaluateAll((es) => es.map((e) => [e.getAttribute('data-from'), e.getAttribute('data-to'), Number(e.getAttribute('data-count'))]));
    expect(edges.sort()).toEqual(
      [
        ['caller:127.0.0.1', 'service:orders', manifest.counts.byDirection.inbound],
        ['service:orders', `dependency:127.0.0.1:${grpcPort}`, 12],
        ['service:orders', `dependency:127.0.0.1:${httpPort}`, 12],
      ].sort(),
    );
    await shot(page, '7-service-map');
    await page.click(`#map .edge[data-to="dependency:127.0.0.1:${grpcPort}"]`);
    await page.waitForSelector('#traffic:not([hidden])');
    expect(await settledCount(page)).toBe(12);
    expect(await page.inputValue('#q')).toMatch(new RegExp(`^dir:outbound service:orders host:127\\.0\\.0\\.1(:${grpcPort}| peer:\\*:${grpcPort})$`));
  });

  it('save selection writes a valid new version with lineage, tokens and transforms', async () => {
    expect(await typeQuery(page, 'status:4xx')).toBe(4);
    await page.click('#save');
    await page.waitForSelector('#status[data-saved]');
    const saved = (await page.getAttribute('#status', 'data-saved'))!;
    await shot(page, '8-saved');
    expect((await validateSnapshot(saved)).ok).toBe(true);
    const m = (await openSnapshot(saved)).manifest;
    expect(m.version).toBe(manifest.version + 1);
    expect(m.parent).toMatchObject({ hash: manifest.hash, version: manifest.version, name: 'orders' });
    expect(m.counts.exchanges).toBe(4);
    expect(m.files.transforms.sha256).toBe(manifest.files.transforms.sha256);
    expect(m.files.tokens.sha256).toBe(manifest.files.tokens.sha256);
    expect(m.notes.join('\n')).toContain('selected in retap view: status:4xx');
  });

  it('loads nothing from the network and breaks no content-security rule', () => {
    expect(problems).toEqual([]);
  });

  it('a live capture streams in, newest first, with capture health shown', async () => {
    const live = await view(['--live', '--pid', String(orders.proc.pid)]);
    const { page: lp, problems: lproblems } = await openPage(live.url);
    try {
      expect(await lp.isChecked('#newest')).toBe(true);
      // biome-ignore lint/suspicious/noExplicitAny: the page's document
      await lp.waitForFunction(() => /live/.test((globalThis as any).document.getElementById('health').textContent));
      for (let n = 200; n < 203; n++) expect((await request(orders.port, 'GET', `/orders/${n}`)).status).toBe(200);
      // 3 answers + 6 calls, pushed over server-sent events without a reload
      // biome-ignore lint/suspicious/noExplicitAny: the page's document
      await lp.waitForFunction(() => Number((globalThis as any).document.getElementById('status').dataset.total || 0) >= 9, undefined, { timeout: 20_000 });
      await lp.waitForFunction(() =>
        // biome-ignore lint/suspicious/noExplicitAny: the page's elements
        [...(globalThis as any).document.querySelectorAll('#rows .row .c-target')].some((e: any) => e.textContent.startsWith('/orders/202')),
      );
      expect(await lp.getAttribute('#health', 'data-drops')).toBe('0');
      expect(await lp.textContent('#health')).toMatch(/● live · drops 0 · gaps 0 B/);
      const firstTime = await lp.textContent('#rows .row[data-i="0"] .c-time');
      const lastTime = await lp.textContent('#rows .row[data-i="8"] .c-time');
      expect(firstTime! >= lastTime!).toBe(true);
      await shot(lp, '9-live');
      expect(lproblems).toEqual([]);
    } finally {
      await lp.close();
      expect(await live.stop()).toBe(0);
    }
  }, 60_000);
});

describe.skipIf(noChromium)('retap view over replay results, in Chromium', () => {
  it('shows the recorded and replayed answers side by side with the differences marked', async () => {
    const results = mixedResults();
    const dir = join(work, 'results');
    await writeResults(dir, results);
    const v = await view([dir]);
    const { page, problems } = await openPage(v.url);
    try {
      const rows = results.recorded.reduce((n, r) => n + 1 + r.outbound.length, 0);
      expect(Number(await page.getAttribute('#status', 'data-total'))).toBe(rows);
      await page.click('#rows .row.verdict-fail');
      await page.click('button[data-tab="replay"]');
      await page.waitForSelector('.side');
      expect(await page.locator('.side .del, .side .ins').count()).toBeGreaterThan(0);
      expect(await page.locator('table.diffs tr').count()).toBeGreaterThan(0);
      await shot(page, '10-results-diff');
      expect(problems).toEqual([]);
    } finally {
      await page.close();
      expect(await v.stop()).toBe(0);
    }
  }, 60_000);
});
