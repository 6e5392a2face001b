/**
 * `retap snapshot minimise` on the demo system: the minimised version keeps every behaviour of the
 * recording (coverage printed equal), is a fraction of its size, names its parent, and a replay of
 * it catches the same seeded regressions as the full recording (the same counted differences per
 * route, kind and path), is green on the unchanged build, and takes less time.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Verdict } from '../../assertions/index.js';
import { packageRoot } from '../../core/paths.js';
import { skipPrivileged } from '../helpers/privileged.js';

const root = packageRoot();
const PORT = 8080;
let work: string;
let full: string;
let small: string;
let env: Record<string, string>;

function retap(args: string[], timeout = 240_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'retap.js'), ...args], {
    cwd: work,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, GITHUB_STEP_SUMMARY: '', RETAP_RUNS_DIR: join(work, 'runs') },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function replayAndJudge(
  snapshot: string,
  name: string,
  variant?: string,
): { code: number; verdict: Verdict; ms: number } {
  const unchanged = [
    process.execPath,
    join(root, 'dist/examples/demo/orders.js'),
    '--port',
    String(PORT),
  ].join(' ');
  const cmd = variant ? `${unchanged} --variant ${variant}` : unchanged;
  const out = join(work, 'results', name);
  const t0 = performance.now();
  const rep = retap([
    'replay',
    snapshot,
    '--cmd',
    cmd,
    // a regressed build is judged against the unchanged one: without a baseline a route failing
    // as a whole (the error variant) cannot be told from a replay that did not reproduce it
    ...(variant ? ['--baseline-cmd', unchanged] : []),
    '--port',
    String(PORT),
    ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
    '--secrets',
    join(work, 'demo', 'secrets.yaml'),
    '--out',
    out,
  ]);
  const ms = performance.now() - t0;
  if (rep.code !== 0) throw new Error(`retap replay (${name}) exited ${rep.code}:\n${rep.stderr}`);
  const file = join(work, `${name}.json`);
  const judged = retap(['report', out, '--format', 'json', '-o', file], 60_000);
  if (!existsSync(file))
    throw new Error(`retap report (${name}) exited ${judged.code} without a report:\n${judged.stderr}`);
  return { code: judged.code, verdict: JSON.parse(readFileSync(file, 'utf8')) as Verdict, ms };
}

const counted = (v: Verdict): string[] =>
  [
    ...new Set(
      v.items.flatMap((i) => i.diffs.filter((d) => !d.noise).map((d) => `${i.route} ${d.kind} ${d.path}`)),
    ),
  ].sort();

describe.skipIf(skipPrivileged())('snapshot minimise on the demo system', () => {
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'retap-minimise-demo-'));
    const build = spawnSync('flock', ['/tmp/retap-build-ts.lock', 'npm', 'run', '-s', 'build:ts'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 180_000,
    });
    if (!existsSync(join(root, 'dist/examples/demo/orders.js'))) throw new Error(`build:ts: ${build.stderr}`);
    const demo = retap(
      ['demo', '--sessions', '12', '--seed', '3', '--out', join(work, 'demo'), '--json'],
      300_000,
    );
    if (demo.code !== 0) throw new Error(`retap demo exited ${demo.code}:\n${demo.stderr}`);
    const summary = JSON.parse(demo.stdout) as { env: Record<string, string>; snapshot?: string };
    full = summary.snapshot ?? join(work, 'demo', 'snapshots', 'orders', 'v1');
    env = { INVENTORY_URL: summary.env.INVENTORY_URL ?? '', PAYMENTS_URL: summary.env.PAYMENTS_URL ?? '' };
  }, 600_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('keeps every behaviour, names its parent, and is smaller', () => {
    const r = retap(['snapshot', 'minimise', full, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as {
      path: string;
      parent: string;
      coverage: { source: Record<string, number>; kept: Record<string, number> };
      requests: { source: number; kept: number };
      bytes: { source: number; kept: number };
    };
    small = s.path;
    console.log(`minimise demo ${JSON.stringify(s)}`);
    expect(s.coverage.kept).toEqual(s.coverage.source);
    expect(s.requests.kept).toBeLessThan(s.requests.source);
    expect(s.bytes.kept).toBeLessThan(s.bytes.source);
    expect(s.parent).toBe(full);
    const shown = retap(['snapshot', 'show', small, '--json']);
    expect(
      (JSON.parse(shown.stdout) as { parent: { path?: string; hash: string } }).parent.hash,
    ).toBeTruthy();
    expect(retap(['snapshot', 'validate', small]).code).toBe(0);
    // text form prints the coverage and the size saved
    const text = retap(['snapshot', 'minimise', full, '--out', join(work, 'text-store')]);
    expect(text.stdout).toMatch(/coverage: +behaviours (\d+)\/\1, routes (\d+)\/\2, statuses (\d+)\/\3/);
    expect(text.stdout).toMatch(/% saved\)/);
  }, 120_000);

  it('a replay of it is green on the unchanged build and catches what the full one catches', () => {
    const green = replayAndJudge(small, 'small-green');
    expect({ code: green.code, found: counted(green.verdict) }).toEqual({ code: 0, found: [] });
    // replay wall time, the same three variants each (the green run is not counted)
    const times = { full: 0, small: 0 };
    for (const variant of ['changed-field', 'extra-call', 'error']) {
      const a = replayAndJudge(full, `full-${variant}`, variant);
      const b = replayAndJudge(small, `small-${variant}`, variant);
      times.full += a.ms;
      times.small += b.ms;
      expect(a.code, `${variant}: the full recording must catch it`).toBe(1);
      expect({ variant, code: b.code, found: counted(b.verdict) }).toEqual({
        variant,
        code: a.code,
        found: counted(a.verdict),
      });
    }
    console.log(`minimise demo replay ms ${JSON.stringify(times)}`);
  }, 1_200_000);
});
