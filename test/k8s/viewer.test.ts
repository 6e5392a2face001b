/**
 * `retap view --k8s` on the real test cluster, in Chromium: the node agents record the demo's
 * orders pod and stream its exchanges through the API server into the viewer while the demo's
 * traffic generator runs. The exchanges appear without a reload, newest first; the list holds
 * exactly what the generator got answers to and what inventory and payments counted (HTTPS
 * included, in plaintext); the node's capture health is shown; the selection saves as a valid
 * snapshot that names the cluster, with the per-node counters. The untargeted canary never shows.
 *
 * Uses the agents already installed when they are ready (they are the cluster's, not this
 * test's); otherwise installs them from this tree's image and uninstalls them afterwards. The
 * demo runs in a namespace of its own, deleted at the end. Runs when the cluster is up
 * (RETAP_K8S=1 makes a missing cluster a failure).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../capture/k8s/kube.js';
import { podHttp, readJson } from '../../capture/k8s/portforward.js';
import { AGENT_NAMESPACE, findAgents } from '../../capture/k8s/remote.js';
import { AGENT_API_PORT } from '../../capture/k8s/wire.js';
import { openSnapshot, validateSnapshot } from '../../snapshots/index.js';
import { buildAndLoad, KUBECONFIG, retapArgs, root, skipCluster, until } from '../helpers/k8s.js';
import { skipWithoutTool } from '../helpers/privileged.js';
import { answered, type DemoCluster, delta, deployDemo } from './demo-system.js';

const exec = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
const skip = skipCluster() || skipWithoutTool('Chromium', CHROMIUM, 'chromium, see ci/apt-packages.txt');

async function retap(args: string[], timeoutMs = 240_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const { file, args: argv, env } = retapArgs(args);
  try {
    const r = await exec(file, argv, { env, timeout: timeoutMs, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

// Page-side functions are sent to the page as source: they reach its DOM through globalThis (this
// file is compiled without the DOM library), never through anything of this module.

describe.skipIf(skip)('retap view --k8s on the test cluster, in Chromium', () => {
  const tag = randomBytes(4).toString('hex');
  const ns = `retap-view-${tag}`;
  let work: string;
  let demo: DemoCluster | undefined;
  let installed = false;
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> | undefined;
  let output = '';
  let url: string;
  let browser: Browser | undefined;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'retap-view-k8s-'));
    const status = await retap(['k8s', 'status', '--json']);
    const agentsReady = status.code === 0 && JSON.parse(status.stdout).ready === true;
    const demoImage = `retap.local/retap-demo:view-${tag}`;
    await buildAndLoad('build-demo', demoImage, join(work, 'demo.tar'));
    const installing = (async () => {
      if (agentsReady) return;
      const image = `retap.local/retap:view-${tag}`;
      await buildAndLoad('build', image, join(work, 'retap.tar'));
      const r = await retap(['k8s', 'install', '--image', image, '--json']);
      installed = r.code === 0;
      if (r.code !== 0) throw new Error(`retap k8s install failed (${r.code}): ${r.stderr}`);
    })();
    [demo] = await Promise.all([deployDemo(ns, demoImage), installing]);

    const { file, args, env } = retapArgs(['view', '--k8s', '--namespace', ns, '--selector', 'app=orders', '--json']);
    child = spawn(file, args, { env: { ...env, RETAP_SNAPSHOT_DIR: join(work, 'snapshots') }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    exited = new Promise((r) => child!.once('exit', (code) => r(code)));
    const line = await until('retap view to print its URL', async () => /^\{"url".*\}$/m.exec(output)?.[0] ?? (child!.exitCode !== null ? Promise.reject(new Error(output)) : undefined), 60_000, 50);
    url = JSON.parse(line).url;

    if (!existsSync(join(root, 'dist/viewer/web/app.js'))) throw new Error('dist/viewer/web is missing: run npm run build first');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const origin = new URL(url).origin;
    page.on('request', (r) => {
      if (!r.url().startsWith(`${origin}/`) && !r.url().startsWith('data:')) problems.push(`request to ${r.url()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    await page.goto(url);
    await page.waitForSelector('body[data-ready]');
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    if (child && child.exitCode === null) {
      // the viewer stops the agents' capture on its way out (bounded by the client's own deadline)
      child.kill('SIGTERM');
      const t = setTimeout(() => child!.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(t);
    }
    await demo?.delete().catch((e: Error) => console.warn(`could not delete namespace ${ns}: ${e.message}`));
    if (installed) await retap(['k8s', 'uninstall']).catch(() => undefined);
    if (work) rmSync(work, { recursive: true, force: true });
  }, 300_000);

  it('streams the pods’ exchanges in as they are captured, with capture health per node, and saves the selection', async () => {
    const d = demo!;
    // every node's agent is recording: the page shows each node, live
    await page.waitForSelector('#nodes .node[data-state="live"]', { timeout: 90_000 }).catch((e: Error) => {
      throw new Error(`${e.message}\nretap view said: ${output}`);
    });
    const nodes = await page.locator('#nodes .node').evaluateAll((es) => es.map((e) => e.getAttribute('data-node')));
    expect(nodes.length).toBeGreaterThan(0);
    expect(await page.isChecked('#newest')).toBe(true);
    expect(await page.textContent('#health')).toMatch(/^● live · drops 0 · gaps 0 B · 1 node/);

    const s0 = await d.stats();
    const a = await d.traffic('orders', 2, 31);
    const s1 = await d.stats();
    // the copy nobody selected, same image and dependencies: none of it may show up
    const canary = await d.traffic('orders-canary', 1, 32);
    expect(a.errors + canary.errors, JSON.stringify([a.errorSamples, canary.errorSamples])).toBe(0);
    const outbound = Object.values(delta(s1.inventory, s0.inventory)).reduce((x, y) => x + y, 0) + Object.values(delta(s1.payments, s0.payments)).reduce((x, y) => x + y, 0);
    const inbound = answered(a);
    expect(inbound).toBeGreaterThan(0);
    expect(outbound).toBeGreaterThan(0);

    // pushed over server-sent events, without a reload
    const total = inbound + outbound;
    // biome-ignore lint/suspicious/noExplicitAny: the page's document
    await page.waitForFunction((n) => Number((globalThis as any).document.getElementById('status').dataset.total || 0) >= n, total, { timeout: 60_000 });
    await page.waitForTimeout(1500); // nothing more may come: the canary's traffic is not ours
    expect(Number(await page.getAttribute('#status', 'data-total'))).toBe(total);
    // per-node health, always visible: the node's chip counts what it delivered and what was lost
    // biome-ignore lint/suspicious/noExplicitAny: the page's document
    await page.waitForFunction((n) => [...(globalThis as any).document.querySelectorAll('#nodes .node')].reduce((s: number, e: { dataset: { exchanges: string } }) => s + Number(e.dataset.exchanges), 0) === n, total, { timeout: 10_000 });
    const chips = await page.locator('#nodes .node').evaluateAll((es) => es.map((e) => ({ drops: e.getAttribute('data-drops'), gaps: e.getAttribute('data-gaps'), text: e.textContent })));
    for (const c of chips) expect(c, JSON.stringify(c)).toMatchObject({ drops: '0', gaps: '0' });
    expect(await page.getAttribute('#health', 'data-drops')).toBe('0');
    const artifacts = join(process.env.RETAP_ARTIFACTS ?? join(tmpdir(), 'retap-artifacts'), `viewer-k8s-${tag}`);
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'k8s-live.png') });
    console.log(`retap view --k8s screenshot: ${artifacts}`);

    // the filters work over cluster traffic like any other: as the generator and the dependencies counted
    const apply = async (q: string) => {
      await page.fill('#q', q);
      await page.press('#q', 'Enter');
      await page.waitForFunction(() => {
        // biome-ignore lint/suspicious/noExplicitAny: the page's document
        const s = (globalThis as any).document.getElementById('status');
        return s && s.dataset.count !== undefined && s.dataset.count !== '' && s.textContent !== 'searching…';
      });
      // biome-ignore lint/suspicious/noExplicitAny: the page's document
      await page.waitForFunction((want) => new URL((globalThis as any).document.location.href).searchParams.get('q') === want, q);
      return Number(await page.getAttribute('#status', 'data-count'));
    };
    expect(await apply('dir:inbound')).toBe(inbound);
    expect(await apply('dir:outbound')).toBe(outbound);
    // payments is HTTPS: its calls were captured in plaintext at node's OpenSSL
    expect(await apply('dir:outbound url:/charges')).toBe(s1.payments['POST /charges']! - (s0.payments['POST /charges'] ?? 0));

    // save the inbound selection: a valid snapshot naming the cluster, with the node's counters
    expect(await apply('dir:inbound')).toBe(inbound);
    await page.click('#save');
    await page.waitForSelector('#status[data-saved]', { timeout: 60_000 });
    const saved = (await page.getAttribute('#status', 'data-saved'))!;
    expect((await validateSnapshot(saved)).ok).toBe(true);
    const snap = await openSnapshot(saved);
    const m = snap.manifest;
    expect(m.counts.exchanges).toBe(inbound);
    expect(m.name).toBe('orders');
    expect(m.source.host).toMatch(/^k8s:/);
    expect(m.source.filters).toMatchObject({ kubernetes: { namespace: ns, selector: 'app=orders' } });
    expect(Object.keys(m.counters).some((k) => k.startsWith('nodes/'))).toBe(true);
    expect(m.counters.streamLostExchanges).toBe(0);
    expect(m.notes.join('\n')).toContain('selected in retap view from a cluster capture');
    for await (const ex of snap.exchanges()) {
      expect(ex.direction).toBe('inbound');
      expect(ex.service.k8s).toMatchObject({ namespace: ns, workload: { kind: 'Deployment', name: 'orders' } });
    }
    expect(problems).toEqual([]);
  }, 400_000);

  it('stops the agents’ capture when the viewer stops', async () => {
    const ours = async () => {
      const kc = loadKubeConfig({ kubeconfig: KUBECONFIG });
      const out: Array<{ state: string }> = [];
      for (const agent of await findAgents(kc)) {
        const res = await podHttp(kc, { namespace: AGENT_NAMESPACE, pod: agent.name, port: AGENT_API_PORT }, { method: 'GET', path: '/v1/status', timeoutMs: 20_000 });
        const st = await readJson<{ captures: Array<{ state: string; request: { namespace?: string } }> }>(res);
        out.push(...st.captures.filter((c) => c.request.namespace === ns));
      }
      return out;
    };
    // while the viewer runs, each node records for it
    expect((await ours()).some((c) => c.state !== 'ended')).toBe(true);
    child!.kill('SIGTERM');
    expect(await exited, output).toBe(0);
    // once it stopped, nothing keeps recording for it on any node
    const left = await ours();
    expect(left.filter((c) => c.state !== 'ended'), JSON.stringify(left)).toEqual([]);
  }, 120_000);
});
