/**
 * `retap mock` as users run it: the compiled CLI serves a snapshot written with the snapshot
 * writer, answers real calls (HTTP and HTTPS through its CA), stops on SIGINT and prints stats.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../core/paths.js';
import { createSnapshotWriter } from '../../snapshots/index.js';
import { run, start, stopAll } from '../helpers/procs.js';
import { outbound } from './mock-fixtures.js';

const root = packageRoot();
const cli = join(root, 'bin', 'retap.js');

function buildDist(): void {
  const r = spawnSync('flock', ['/tmp/retap-build-ts.lock', 'npm', 'run', '-s', 'build:ts'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 180_000,
  });
  // Others' work in progress may carry type errors; what matters is that our files were emitted.
  for (const f of ['dist/cli/main.js', 'dist/cli/commands/mock.js', 'dist/runner/mocks/index.js']) {
    if (!existsSync(join(root, f)))
      throw new Error(`npm run build:ts did not produce ${f}:\n${r.stdout}${r.stderr}`);
  }
}

function get(
  url: string,
  opts: { ca?: string; body?: string } = {},
): Promise<{ status: number; body: string }> {
  const request = url.startsWith('https:') ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.body ? 'POST' : 'GET',
        ...(opts.ca ? { ca: opts.ca, servername: 'payments.internal' } : {}),
        headers: opts.body ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function waitFor(p: { output(): string }, re: RegExp, what: string): Promise<RegExpMatchArray> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = re.exec(p.output());
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`retap mock did not print ${what}:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('retap mock (compiled CLI)', () => {
  let dir: string;
  let snap: string;

  beforeAll(async () => {
    buildDist();
    dir = mkdtempSync(join(tmpdir(), 'retap-mock-cli-'));
    const w = await createSnapshotWriter({
      dir: join(dir, 'store'),
      name: 'orders',
      source: { host: 'test', service: 'orders', filters: {} },
    });
    await w.append(outbound({ target: '/stock/sku-1', resBody: '{"left":5}' }));
    await w.append(outbound({ target: '/stock/sku-1', resBody: '{"left":4}' }));
    await w.append(
      outbound({
        host: 'payments.internal',
        port: 443,
        tls: true,
        method: 'POST',
        target: '/charge',
        reqBody: '{"amount":5}',
        resBody: '{"charged":true}',
      }),
    );
    await w.finish();
    snap = w.path;
  }, 240_000);
  afterEach(stopAll);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers --help', async () => {
    const r = await run('node', [cli, 'mock', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/Usage: retap mock SNAPSHOT/);
    expect(r.stdout.toString()).toContain('--ports MODE');
  });

  it('serves with --ports auto --json, stops on SIGINT and prints the stats', async () => {
    const caDir = join(dir, 'ca');
    const p = start('node', [cli, 'mock', snap, '--ports', 'auto', '--json', '--tls-dir', caDir]);
    const line = (await waitFor(p, /^\{"snapshot".*\}$/m, 'its endpoints'))[0];
    const info = JSON.parse(line) as {
      endpoints: Array<{ host: string; url: string; tls: boolean; recordedPort: number }>;
      caCertPath: string;
    };
    expect(info.endpoints.map((e) => [e.host, e.recordedPort, e.tls])).toEqual([
      ['inventory.internal', 80, false],
      ['payments.internal', 443, true],
    ]);
    expect(info.caCertPath).toBe(join(caDir, 'ca.pem'));
    const inv = info.endpoints[0]!.url;
    const pay = info.endpoints[1]!.url;
    expect((await get(`${inv}/stock/sku-1`)).body).toBe('{"left":5}');
    expect((await get(`${inv}/stock/sku-1`)).body).toBe('{"left":4}');
    const ca = await readFile(info.caCertPath, 'utf8');
    expect((await get(`${pay}/charge`, { ca, body: '{"amount":5}' })).body).toBe('{"charged":true}');
    const miss = await get(`${inv}/stock/sku-2`);
    expect(miss.status).toBe(599);

    p.child.kill('SIGINT');
    const code = await new Promise<number | null>((r) =>
      p.child.exitCode !== null ? r(p.child.exitCode) : p.child.once('exit', (c) => r(c)),
    );
    expect(code).toBe(1);
    const stats = JSON.parse((await waitFor(p, /^\{"stats".*\}$/m, 'its stats'))[0]).stats;
    expect(stats).toMatchObject({ calls: 4, matched: 3 });
    expect(stats.misses).toEqual([
      expect.objectContaining({ method: 'GET', host: 'inventory.internal:80', target: '/stock/sku-2' }),
    ]);
    // --tls-dir keeps the CA for the next run.
    expect(existsSync(info.caCertPath)).toBe(true);
  });

  it('prints a table and human stats; a recorded port that is taken falls back to a free one', async () => {
    // Hold a port (never a fixed one) and record the dependency on it.
    const held = http.createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()));
    const heldPort = (held.address() as AddressInfo).port;
    try {
      const w = await createSnapshotWriter({
        dir: join(dir, 'store2'),
        name: 'one',
        source: { host: 'test', filters: {} },
      });
      await w.append(
        outbound({
          host: 'inventory.internal',
          port: heldPort,
          target: '/stock/sku-1',
          resBody: '{"left":5}',
        }),
      );
      await w.finish();
      const p = start('node', [cli, 'mock', w.path]);
      await waitFor(p, /Ctrl-C to stop/, 'its table');
      const out = p.output();
      expect(out).toMatch(/HOST\s+URL\s+PROTOCOLS\s+CALLS/);
      expect(out).toContain(`port ${heldPort} not available (EADDRINUSE): took a free port`);
      const url = new RegExp(`inventory\\.internal:${heldPort}\\s+(http://127\\.0\\.0\\.1:\\d+)`).exec(
        out,
      )![1]!;
      expect(url).not.toBe(`http://127.0.0.1:${heldPort}`);
      expect((await get(`${url}/stock/sku-1`)).status).toBe(200);
      p.child.kill('SIGINT');
      await new Promise((r) => (p.child.exitCode !== null ? r(null) : p.child.once('exit', r)));
      expect(p.child.exitCode).toBe(0);
      expect(p.output()).toMatch(/mock stats: 1 call, 1 matched \(100\.0%\), 0 missed/);
    } finally {
      await new Promise<void>((r) => held.close(() => r()));
    }
  });
});
