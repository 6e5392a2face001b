/**
 * Replay sends what was recorded — requests and connections — on real builds with real capture
 * (issue 14):
 * - a Python http.server (HTTP/1.1) service whose client (urllib) closes every connection and
 *   whose /reject handler answers before reading the body: replayed with recorded connections,
 *   every answer is the recorded one; with pooled connections the unread body is read as the next
 *   request line and answers turn into 400/501 — the failure the default now avoids;
 * - httpbin under gunicorn with two workers, which echoes request headers: with keep-alive
 *   connections from several clients interleaved and replayed four lanes at a time, every answer
 *   is exactly the recorded one (the driver adds no header), each joined to its own request,
 *   with both driver clients.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureSession } from '../../capture/session.js';
import type { Exchange } from '../../core/exchange.js';
import { packageRoot } from '../../core/paths.js';
import type { ReplayResults } from '../../core/results.js';
import { createSnapshotWriter } from '../../snapshots/index.js';
import { readResults } from '../../snapshots/results.js';
import { skipPrivileged } from '../helpers/privileged.js';
import { freePort, run, start, stopAll, waitForPort } from '../helpers/procs.js';

const root = packageRoot();
const fixtures = join(root, 'test', 'fixtures');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-replay-conns-'));
});
afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

/** Captures `pids` while `traffic` runs; writes the inbound exchanges as a snapshot. */
async function record(
  name: string,
  pids: number[],
  traffic: () => Promise<void>,
): Promise<{ path: string; inbound: Exchange[] }> {
  const captured: Exchange[] = [];
  const session = CaptureSession.start({ pids, service: name }, (e) => captured.push(e));
  try {
    await traffic();
    // the last answers reach user space with the next batch
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await session.stop();
  }
  const inbound = captured
    .filter((e) => e.direction === 'inbound')
    .sort((a, b) => a.timing.startUs - b.timing.startUs);
  const w = await createSnapshotWriter({
    dir: join(dir, 'snaps', name),
    name,
    source: { host: 'test', service: name, filters: {} },
  });
  for (const e of inbound) await w.append(e);
  await w.finish();
  return { path: w.path, inbound };
}

async function retap(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child: ChildProcess = spawn(process.execPath, [join(root, 'bin', 'retap.js'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RETAP_RUNS_DIR: join(dir, 'runs') },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { code, stdout, stderr };
}

async function replay(
  snap: string,
  cmd: string,
  port: number,
  out: string,
  extra: string[],
): Promise<ReplayResults> {
  const r = await retap([
    'replay',
    snap,
    '--cmd',
    cmd,
    '--port',
    String(port),
    '--out',
    out,
    '--json',
    ...extra,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return readResults(out);
}

const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString();

describe.skipIf(skipPrivileged())(
  'replay keeps the recorded connections (http.server, a client that closes every connection)',
  () => {
    let snap = '';
    let recorded: Exchange[] = [];

    beforeAll(async () => {
      const port = await freePort();
      const server = start('python3', [join(fixtures, 'early-answer-server.py'), String(port)]);
      try {
        await waitForPort(port);
        const rec = await record('early', [server.pid], async () => {
          const r = await run('python3', [
            join(fixtures, 'close-client.py'),
            `http://127.0.0.1:${port}`,
            '6',
          ]);
          const { statuses } = JSON.parse(r.stdout.toString()) as { statuses: number[] };
          // the client, closing every connection, never meets the unread body
          expect(statuses).toEqual(Array.from({ length: 6 }, () => [200, 403, 200, 201]).flat());
        });
        snap = rec.path;
        recorded = rec.inbound;
      } finally {
        await server.stop();
      }
    }, 60_000);

    it('the recording: one connection per request, each closed by the client', () => {
      expect(recorded).toHaveLength(24);
      expect(new Set(recorded.map((e) => e.connection.id)).size).toBe(24);
      for (const e of recorded) expect(e.request.headers).toContainEqual(['Connection', 'close']);
    });

    it('recorded connections (the default): every answer is the recorded one, joined at the build', async () => {
      const port = await freePort();
      const results = await replay(
        snap,
        `python3 ${join(fixtures, 'early-answer-server.py')} ${port}`,
        port,
        join(dir, 'res-recorded'),
        ['--concurrency', '4'],
      );
      const run0 = results.runs[0]!;
      const byId = new Map(results.recorded.map((r) => [r.id, r.exchange]));
      for (const it of run0.items) {
        const rec = byId.get(it.id)!;
        expect({ id: it.id, status: it.client.status, body: text(it.client.responseBody) }).toEqual({
          id: it.id,
          status: rec.response?.status,
          body: text(rec.response?.body.data),
        });
        // capture at the build saw the same request and answer, joined by connection
        expect(it.live?.request.target).toBe(rec.request.target);
        expect(it.live?.response?.status).toBe(rec.response?.status);
        // sent as recorded: the client's Connection: close, nothing added
        expect(it.live?.request.headers).toEqual(rec.request.headers);
      }
      expect(results.options.connections).toBe('recorded');
      expect(run0.connections).toEqual({ mode: 'recorded', opened: 24, reopened: 0 });
      expect(run0.warnings.filter((w) => w.code === 'connection-reopened')).toEqual([]);
    }, 120_000);

    it('pooled connections: the unread bodies turn later answers into 400/501 (what recorded mode prevents)', async () => {
      const port = await freePort();
      const results = await replay(
        snap,
        `python3 ${join(fixtures, 'early-answer-server.py')} ${port}`,
        port,
        join(dir, 'res-pooled'),
        ['--connections', 'pooled'],
      );
      const run0 = results.runs[0]!;
      expect(run0.connections?.mode).toBe('pooled');
      const broken = run0.items.filter((i) => i.client.status === 400 || i.client.status === 501);
      expect(broken.length).toBeGreaterThan(0);
      // each one followed a refused POST on the same connection
      const index = new Map(results.recorded.map((r, i) => [r.id, i]));
      for (const b of broken) {
        const prev = results.recorded[index.get(b.id)! - 1]!;
        expect(prev.exchange.request.target).toMatch(/^\/reject\//);
      }
    }, 120_000);
  },
);

describe.skipIf(skipPrivileged())(
  'replay adds nothing a header-echoing application can see (httpbin, gunicorn: 2 workers, keep-alive threads)',
  () => {
    let snap = '';
    let recorded: Exchange[] = [];
    let bin = '';

    beforeAll(async () => {
      const probe = await run('python3', [
        '-c',
        'import httpbin, gunicorn, shutil; print(shutil.which("gunicorn") or "")',
      ]).catch((e: Error) => ({ stdout: Buffer.from(''), stderr: e.message }));
      bin = probe.stdout.toString().trim();
      // a missing test peer is a broken setup, never a skipped test
      expect(bin, 'httpbin and gunicorn must be installed (ci/pip-packages.txt, ci/setup)').not.toBe('');
      const port = await freePort();
      const server = start(bin, [
        '-w',
        '2',
        '-k',
        'gthread',
        '--threads',
        '4',
        '-b',
        `127.0.0.1:${port}`,
        '--log-level',
        'warning',
        'httpbin:app',
      ]);
      try {
        await waitForPort(port, 30_000);
        // the workers are forked before capture starts: name them all
        await new Promise((r) => setTimeout(r, 1000));
        const pids = [server.pid, ...childrenOf(server.pid)];
        expect(pids.length).toBe(3);
        const rec = await record('httpbin', pids, async () => {
          // three python-requests sessions (keep-alive, Connection: keep-alive), their calls
          // interleaved: several requests per connection, several connections at once
          const script = `
import json, requests, sys
base = sys.argv[1]
sessions = [requests.Session() for _ in range(3)]
out = []
for i in range(8):
    for s, sess in enumerate(sessions):
        n = i * 3 + s
        kind = n % 4
        if kind == 0:
            r = sess.get(f'{base}/headers', headers={'X-Call': str(n)})
        elif kind == 1:
            r = sess.get(f'{base}/get?n={n}')
        elif kind == 2:
            r = sess.post(f'{base}/anything/{n}', json={'n': n, 'who': 'client'})
        else:
            r = sess.put(f'{base}/anything/{n}', data=f'body-{n}', headers={'Content-Type': 'text/plain'})
        out.append(r.status_code)
print(json.dumps(out))`;
          const r = await run('python3', ['-c', script, `http://127.0.0.1:${port}`]);
          expect(JSON.parse(r.stdout.toString())).toEqual(Array.from({ length: 24 }, () => 200));
        });
        snap = rec.path;
        recorded = rec.inbound;
      } finally {
        await server.stop();
      }
    }, 90_000);

    it('the recording: keep-alive connections carrying several requests each', () => {
      expect(recorded).toHaveLength(24);
      const perConn = new Map<string, number>();
      for (const e of recorded) perConn.set(e.connection.id, (perConn.get(e.connection.id) ?? 0) + 1);
      expect(perConn.size).toBeLessThanOrEqual(6);
      expect(Math.max(...perConn.values())).toBeGreaterThan(1);
    });

    it.each(['h1', 'undici'])(
      'every answer is exactly the recorded one (--client %s, four lanes at once)',
      async (client) => {
        const port = await freePort();
        const results = await replay(
          snap,
          `${bin} -w 2 -k gthread --threads 4 -b 127.0.0.1:${port} --log-level warning httpbin:app`,
          port,
          join(dir, `res-httpbin-${client}`),
          ['--client', client, '--concurrency', '4', '--ready-timeout', '30s'],
        );
        const run0 = results.runs[0]!;
        const byId = new Map(results.recorded.map((r) => [r.id, r.exchange]));
        const differs: string[] = [];
        for (const it of run0.items) {
          const rec = byId.get(it.id)!;
          const want = JSON.parse(text(rec.response?.body.data)) as unknown;
          if (
            it.client.status !== 200 ||
            JSON.stringify(JSON.parse(text(it.client.responseBody))) !== JSON.stringify(want)
          )
            differs.push(
              `${rec.request.method} ${rec.request.target}: ${it.client.status} ${text(it.client.responseBody)}`,
            );
          // joined to its own request: the build saw this very target and gave this very answer
          expect(it.live?.request.target).toBe(rec.request.target);
          expect(text(it.live?.response?.body.data)).toBe(text(it.client.responseBody));
        }
        expect(differs).toEqual([]);
        expect(run0.connections?.reopened).toBe(0);
        expect(run0.connections?.opened).toBe(new Set(recorded.map((e) => e.connection.id)).size);
      },
      120_000,
    );
  },
);

/** Child processes of `pid` (gunicorn's workers). */
function childrenOf(pid: number): number[] {
  const file = `/proc/${pid}/task/${pid}/children`;
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}
