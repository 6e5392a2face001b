/**
 * `retap replay` end to end as a user runs it: a snapshot, a build command, an ephemeral
 * namespace, eBPF capture of the answers. Every test also asserts that nothing is left behind:
 * no namespace, no cgroup, no process, no registry entry.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroup2Root } from '../../capture/cgroup.js';
import type { Exchange } from '../../core/exchange.js';
import { packageRoot } from '../../core/paths.js';
import { createSnapshotWriter } from '../../snapshots/index.js';
import { readResults } from '../../snapshots/results.js';
import { skipPrivileged } from '../helpers/privileged.js';
import { freePort, run } from '../helpers/procs.js';

const root = packageRoot();
const server = join(root, 'test', 'fixtures', 'http-server.mjs');
let dir: string;
let runsDir: string;

function inbound(i: number, target: string, body = `payload-${i}`): Exchange {
  const enc = (s: string) => new Uint8Array(Buffer.from(s));
  return {
    id: `c${i}#0`,
    protocol: 'http1',
    direction: 'inbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 9999, pid: 1 },
    peer: { addr: '127.0.0.1', port: 40000 + i },
    connection: { id: 'c-all', order: i },
    request: {
      method: 'POST',
      target,
      version: 'HTTP/1.1',
      headers: [
        ['host', 'svc'],
        ['content-type', 'text/plain'],
      ],
      body: { data: enc(body), size: body.length, truncated: false },
    },
    response: {
      status: 200,
      version: 'HTTP/1.1',
      headers: [],
      body: { data: enc('x'), size: 1, truncated: false },
    },
    timing: {
      startUs: 1_700_000_000_000_000 + i * 1000,
      requestEndNs: 10,
      responseStartNs: 100,
      responseEndNs: 200,
    },
  };
}

async function snapshot(name: string, exchanges: Exchange[]): Promise<string> {
  const w = await createSnapshotWriter({
    dir: join(dir, 'snaps', name),
    name,
    source: { host: 'test', filters: {} },
  });
  for (const e of exchanges) await w.append(e);
  await w.finish();
  return w.path;
}

function retap(args: string[]): ChildProcess {
  return spawn(process.execPath, [join(root, 'bin', 'retap.js'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RETAP_RUNS_DIR: runsDir },
  });
}

/** `retap replay SNAP --cmd CMD --port P --out OUT …extra`. */
function replayArgs(snap: string, cmd: string, port: number, out: string, extra: string[] = []): string[] {
  return ['replay', snap, '--cmd', cmd, '--port', String(port), '--out', out, ...extra];
}

/** The same with the fixture server as the build (it listens on $PORT). */
function replayNode(snap: string, port: number, out: string, extra: string[] = []): string[] {
  return replayArgs(snap, `node ${server}`, port, out, ['--env', `PORT=${port}`, ...extra]);
}

async function finish(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { code, stdout, stderr };
}

/**
 * Nothing of a run may survive it: its namespace, /etc/netns entry, cgroup (which can only be
 * removed once every process in it is gone) and registry entry. Scoped to this run's names, since
 * other test files replay at the same time.
 */
async function expectNothingLeft(namespace: string): Promise<void> {
  expect(namespace).toMatch(/^retap-/);
  const ns = await run('ip', ['netns', 'list']);
  expect(
    ns.stdout
      .toString()
      .split('\n')
      .map((l) => l.split(' ')[0]),
  ).not.toContain(namespace);
  expect(existsSync(join('/etc/netns', namespace))).toBe(false);
  const id = namespace.slice('retap-'.length);
  expect(existsSync(join(cgroup2Root(), 'retap', `replay-${id}`))).toBe(false);
  expect(existsSync(join(runsDir, `${id}.json`))).toBe(false);
}

async function namespaceOf(out: string): Promise<string> {
  return (await readResults(out)).environment.namespace ?? '';
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-replay-'));
  runsDir = join(dir, 'runs');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(skipPrivileged())('retap replay (namespace, cgroup, eBPF)', () => {
  it('replays every request in order; answers are captured at the build with server-side timings', async () => {
    const snap = await snapshot(
      'ok',
      [0, 1, 2, 3, 4].map((i) => inbound(i, `/echo/${i}`)),
    );
    const port = await freePort();
    const out = join(dir, 'res-ok');
    const r = await finish(retap(replayNode(snap, port, out, ['--json'])));
    expect(r.code, r.stderr).toBe(0);
    const results = await readResults(out);
    expect(results.runs).toHaveLength(1);
    const items = results.runs[0]!.items;
    expect(items.map((i) => i.client.status)).toEqual([200, 200, 200, 200, 200]);
    items.forEach((it, i) => {
      expect(Buffer.from(it.client.responseBody ?? []).toString()).toBe(`echo ${i} payload-${i}`);
      expect(it.live?.request.target).toBe(`/echo/${i}`);
      expect(Buffer.from(it.live?.response?.body.data ?? []).toString()).toBe(`echo ${i} payload-${i}`);
      expect(it.live?.timing.responseStartNs).toBeGreaterThanOrEqual(it.live?.timing.requestEndNs ?? 0);
    });
    // recorded order kept: live start times increase
    const starts = items.map((i) => i.live!.timing.startUs);
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
    expect(results.options.client).toBe('h1');
    await expectNothingLeft(await namespaceOf(out));
  });

  it('--client undici drives the same replay through undici', async () => {
    const snap = await snapshot(
      'undici',
      [0, 1, 2].map((i) => inbound(i, `/echo/${i}`)),
    );
    const port = await freePort();
    const out = join(dir, 'res-undici');
    const r = await finish(retap(replayNode(snap, port, out, ['--client', 'undici', '--json'])));
    expect(r.code, r.stderr).toBe(0);
    const results = await readResults(out);
    expect(results.options.client).toBe('undici');
    const items = results.runs[0]!.items;
    expect(items.map((i) => Buffer.from(i.client.responseBody ?? []).toString())).toEqual(
      [0, 1, 2].map((i) => `echo ${i} payload-${i}`),
    );
    expect(items.every((i) => i.live?.response?.status === 200)).toBe(true);
    await expectNothingLeft(await namespaceOf(out));
  });

  it('a Python http.server build (HTTP/1.0, every answer closes its connection) replays completely', async () => {
    const www = join(dir, 'www');
    mkdirSync(www, { recursive: true });
    writeFileSync(join(www, 'a.txt'), 'alpha file\n');
    writeFileSync(join(www, 'b.json'), JSON.stringify({ b: [1, 2, 3] }));
    const get = (i: number, target: string): Exchange => {
      const ex = inbound(i, target, '');
      return { ...ex, request: { ...ex.request, method: 'GET', headers: [['host', 'svc']] } };
    };
    const snap = await snapshot('python', [
      get(0, '/a.txt'),
      get(1, '/b.json'),
      get(2, '/missing'),
      get(3, '/a.txt'),
    ]);
    const port = await freePort();
    const out = join(dir, 'res-python');
    const r = await finish(
      retap(
        replayArgs(snap, `python3 -m http.server --bind 127.0.0.1 ${port} --directory ${www}`, port, out, [
          '--json',
        ]),
      ),
    );
    expect(r.code, r.stderr).toBe(0);
    const items = (await readResults(out)).runs[0]!.items;
    expect(items.map((i) => i.client.error)).toEqual([undefined, undefined, undefined, undefined]);
    expect(items.map((i) => i.client.status)).toEqual([200, 200, 404, 200]);
    const body = (i: number) => Buffer.from(items[i]!.client.responseBody ?? []).toString();
    expect([body(0), body(1), body(3)]).toEqual(['alpha file\n', '{"b":[1,2,3]}', 'alpha file\n']);
    expect(body(2)).toContain('404');
    // the same answers, seen by capture at the build
    expect(items.map((i) => i.live?.response?.status)).toEqual([200, 200, 404, 200]);
    // the snapshot has all four on one keep-alive connection; this build closes after each
    // answer, so each later request needed a new connection: said and counted, not hidden
    const results = await readResults(out);
    expect(results.runs[0]!.connections).toEqual({ mode: 'recorded', opened: 4, reopened: 3 });
    const reopened = results.runs[0]!.warnings.filter((w) => w.code === 'connection-reopened');
    expect(reopened.map((w) => w.item)).toEqual(items.slice(1).map((i) => i.id));
    expect(reopened[0]!.message).toMatch(/HTTP\/1\.0 without keep-alive|closed/);
    await expectNothingLeft(await namespaceOf(out));
  });

  it('a build that never becomes ready: clear error with its own output, nothing left', async () => {
    const snap = await snapshot('never', [inbound(0, '/echo/0')]);
    const r = await finish(
      retap([
        'replay',
        snap,
        '--cmd',
        'echo starting up; sleep 30',
        '--port',
        '9',
        '--ready-timeout',
        '2s',
        '--out',
        join(dir, 'res-never'),
      ]),
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not ready after 2 s/);
    expect(r.stderr).toMatch(/starting up/);
    await expectNothingLeft(await namespaceOf(join(dir, 'res-never')));
  });

  it('a build that crashes mid-replay: reported, partial results kept, nothing left', async () => {
    const snap = await snapshot(
      'crash',
      [0, 1, 2, 3, 4, 5].map((i) => inbound(i, `/echo/${i}`)),
    );
    const port = await freePort();
    const out = join(dir, 'res-crash');
    const r = await finish(retap(replayNode(snap, port, out, ['--env', 'EXIT_AFTER=2'])));
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/exited during the replay/);
    const results = await readResults(out);
    const items = results.runs[0]!.items;
    expect(items.filter((i) => i.client.status === 200).length).toBe(2);
    expect(items.filter((i) => i.client.error).length).toBeGreaterThan(0);
    expect(results.runs[0]!.error?.code).toBe('RETAP_BUILD_CRASHED');
    await expectNothingLeft(await namespaceOf(out));
  });

  /** Resolves once a run has registered its namespace and cgroup (runner/registry.ts), then a moment more. */
  async function runRegistered(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const recs = readdirSync(runsDir).flatMap((f) => {
        try {
          return [JSON.parse(readFileSync(join(runsDir, f), 'utf8')) as { cgroup?: string }];
        } catch {
          return []; // being written
        }
      });
      if (recs.some((r) => r.cgroup)) break;
      if (Date.now() > deadline) throw new Error('no replay run registered in time');
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 500)); // the worker and the build are starting
  }

  it('SIGINT mid-run stops the replay and tears everything down', async () => {
    const snap = await snapshot(
      'sigint',
      Array.from({ length: 30 }, (_, i) => inbound(i, '/slow/300')),
    );
    const port = await freePort();
    const child = retap(replayNode(snap, port, join(dir, 'res-int')));
    const done = finish(child);
    await runRegistered(); // mid-run: its namespace and cgroup exist (however slow the machine)
    child.kill('SIGINT');
    const r = await done;
    expect(r.code === 130 || r.code === 3, `exit ${r.code}: ${r.stderr}`).toBe(true);
    await expectNothingLeft(await namespaceOf(join(dir, 'res-int')));
  });

  it('retap gc removes what a killed run left behind', async () => {
    const snap = await snapshot(
      'killed',
      Array.from({ length: 30 }, (_, i) => inbound(i, '/slow/300')),
    );
    const port = await freePort();
    const child = retap(replayNode(snap, port, join(dir, 'res-kill')));
    const done = finish(child);
    await runRegistered();
    child.kill('SIGKILL');
    await done;
    const left = readdirSync(runsDir).map(
      (f) => JSON.parse(readFileSync(join(runsDir, f), 'utf8')) as { netns: string },
    );
    expect(left).toHaveLength(1);
    const before = await run('ip', ['netns', 'list']);
    expect(before.stdout.toString()).toContain(left[0]!.netns);
    const gc = await finish(retap(['gc', '--json']));
    expect(gc.code, gc.stderr).toBe(0);
    expect(JSON.parse(gc.stdout).removed).toHaveLength(1);
    await expectNothingLeft(left[0]!.netns);
  });

  it('refuses bad usage with the fix', async () => {
    const r = await finish(retap(['replay', join(dir, 'nope'), '--port', '80']));
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/--cmd/);
    const r2 = await finish(
      retap(['replay', join(dir, 'nope'), '--cmd', 'x', '--port', '80', '--mock-miss', 'maybe']),
    );
    expect(r2.code).toBe(64);
    expect(readFileSync(join(root, 'docs', 'cli.md'), 'utf8')).toMatch(/retap replay/);
  });
});
