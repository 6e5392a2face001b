/**
 * The gate on the demo system, end to end with the compiled CLI: `retap demo` records orders with
 * eBPF into a snapshot; `retap replay` replays it 20 times against the unchanged build (each must
 * be judged green by `retap report`: no false alarm, without a noise run) and once against each
 * seeded regression, which must be caught by the right assertion with the right exit code.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Verdict } from '../../assertions/index.js';
import { packageRoot } from '../../core/paths.js';
import { skipPrivileged } from '../helpers/privileged.js';

const root = packageRoot();
const REPLAYS = 20;
const PORT = 8080;
let work: string;
let snapshot: string;
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

/** Replays the snapshot against orders (with seeded variants) and judges it. */
function replayAndJudge(name: string, variant?: string): { code: number; verdict: Verdict; stderr: string } {
  const cmd = [
    process.execPath,
    join(root, 'dist/examples/demo/orders.js'),
    '--port',
    String(PORT),
    ...(variant ? ['--variant', variant] : []),
  ].join(' ');
  const out = join(work, 'results', name);
  const rep = retap([
    'replay',
    snapshot,
    '--cmd',
    cmd,
    '--port',
    String(PORT),
    ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
    // the demo wrote its client's passwords there (they are redacted in the snapshot)
    '--secrets',
    join(work, 'demo', 'secrets.yaml'),
    '--out',
    out,
  ]);
  if (rep.code !== 0) throw new Error(`retap replay (${name}) exited ${rep.code}:\n${rep.stderr}`);
  const judged = retap(['report', out, '--format', 'json', '-o', join(work, `${name}.json`)], 60_000);
  const file = join(work, `${name}.json`);
  if (!existsSync(file))
    throw new Error(`retap report (${name}) exited ${judged.code} without a report:\n${judged.stderr}`);
  const verdict = JSON.parse(readFileSync(file, 'utf8')) as Verdict;
  return { code: judged.code, verdict, stderr: judged.stderr };
}

const counted = (v: Verdict): string[] => [
  ...new Set(
    v.items.flatMap((i) => i.diffs.filter((d) => !d.noise).map((d) => `${i.route} ${d.kind} ${d.path}`)),
  ),
];

describe.skipIf(skipPrivileged())('the gate on the demo system (eBPF record, replay, report)', () => {
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'retap-gate-demo-'));
    const build = spawnSync('flock', ['/tmp/retap-build-ts.lock', 'npm', 'run', '-s', 'build:ts'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 180_000,
    });
    for (const f of ['dist/cli/main.js', 'dist/cli/commands/report.js', 'dist/examples/demo/orders.js']) {
      if (!existsSync(join(root, f)))
        throw new Error(`npm run build:ts did not produce ${f}:\n${build.stdout}${build.stderr}`);
    }
    const demo = retap(
      ['demo', '--sessions', '12', '--seed', '3', '--out', join(work, 'demo'), '--json'],
      300_000,
    );
    if (demo.code !== 0) throw new Error(`retap demo exited ${demo.code}:\n${demo.stderr}`);
    const summary = JSON.parse(demo.stdout) as { env: Record<string, string>; snapshot?: string };
    snapshot = summary.snapshot ?? join(work, 'demo', 'snapshots', 'orders', 'v1');
    env = { INVENTORY_URL: summary.env.INVENTORY_URL ?? '', PAYMENTS_URL: summary.env.PAYMENTS_URL ?? '' };
    writeFileSync(
      join(work, 'retap.yaml'),
      [
        'assertions:',
        '  budgets:',
        "    - 'GET /orders/{id}: p95 < 100ms'",
        "    - 'GET /orders/{id}: p95 < +50%'",
        "    - 'errors < 1%'",
        '',
      ].join('\n'),
    );
  }, 600_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it(`${REPLAYS} replays of the unchanged build are all green`, () => {
    const outcomes: string[] = [];
    for (let i = 0; i < REPLAYS; i++) {
      const { code, verdict } = replayAndJudge(`green-${i}`);
      outcomes.push(
        `${i}: exit ${code} ${verdict.status} ${counted(verdict).join('; ')} ${verdict.budgets
          .filter((b) => b.status === 'fail')
          .map((b) => b.message)
          .join('; ')}`,
      );
      expect(verdict.summary.items).toBeGreaterThan(50);
    }
    expect(outcomes.filter((o) => !/exit 0 pass/.test(o))).toEqual([]);
  }, 1_800_000);

  const variants: Array<[string, number, (v: Verdict) => boolean]> = [
    [
      'changed-field',
      1,
      (v) => counted(v).some((c) => /^GET \/orders\/\{id\} changed-type \$\.total$/.test(c)),
    ],
    [
      'extra-call',
      1,
      (v) => counted(v).some((c) => /^POST \/orders extra-call outbound:GET \S+ \/stock\//.test(c)),
    ],
    // GET /orders failing as a whole, with no baseline to tell: the replay did not reproduce the
    // recording (exit 3), and the finding is still listed
    [
      'error',
      3,
      (v) =>
        v.validity.routes.filter((r) => !r.reproduced).map((r) => r.route).join() === 'GET /orders' &&
        /--baseline-cmd/.test(v.validity.note ?? '') &&
        counted(v).some((c) => c === 'GET /orders status-class status'),
    ],
    [
      'slow',
      2,
      (v) =>
        counted(v).length === 0 &&
        v.budgets.some((b) => b.name === 'GET /orders/{id} p95 < 100ms' && b.status === 'fail') &&
        v.budgets.some((b) => b.name === 'GET /orders/{id} p95 < +50%' && b.status !== 'pass'),
    ],
  ];
  for (const [variant, exit, caught] of variants) {
    it(`catches ${variant} (exit ${exit})`, () => {
      const { code, verdict } = replayAndJudge(variant, variant);
      expect({ code, caught: caught(verdict), found: counted(verdict).slice(0, 5) }).toMatchObject({
        code: exit,
        caught: true,
      });
    }, 300_000);
  }
});
