/**
 * How trustworthy the gate's verdicts are on the repository's own example systems, measured the
 * way a user runs it (`retap ci`, redaction on, eBPF capture and replay):
 *   - false alarms: N replays of each unchanged build (20; 1 with --quick) must all exit 0;
 *   - regressions caught: each seeded regression must exit with its code and name the assertion;
 *   - broken environments: each replay that cannot reproduce its recording must exit 3 and name
 *     the cause;
 * each without and with a baseline (`--baseline-cmd`: the unchanged build). Systems: the demo
 * (Node: orders → inventory, payments), examples/notes (Python) and httpbin from PyPI under
 * gunicorn (examples/httpbin: an application no one here wrote). Prints the Markdown table
 * quoted in docs/assertions.md, with every miss spelled out, and returns it as rows.
 *
 *   npm run build && node dist/bench/gate/verdicts.bench.js [--quick] [--only demo|notes|httpbin]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Verdict } from '../../assertions/index.js';
import {
  cleanPass,
  counted,
  type Expectation,
  failedBudgets,
  NOTES_BROKEN,
  NOTES_BUDGETS,
  NOTES_REGRESSIONS,
  notReproduced,
} from '../../examples/notes/expectations.js';
import type { BenchOptions, Row } from '../lib/rows.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const RETAP = join(ROOT, 'bin', 'retap.js');
const PORT = 8080;

function retap(
  args: string[],
  cwd: string,
  timeoutMs = 300_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [RETAP, ...args], {
    cwd,
    env: { ...process.env, GITHUB_STEP_SUMMARY: '', GITHUB_ACTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  return new Promise((done) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code: code ?? -1, stdout, stderr });
    }),
  );
}

interface System {
  name: string;
  /** Snapshot per scenario: `main` for builds, broken environments by name. */
  snapshots: Record<string, string>;
  command: (variant?: string) => string;
  flags: string[];
  config: string;
  regressions: Array<
    Expectation & { exitWithoutBaseline?: number; caughtWithoutBaseline?: (v: Verdict) => boolean }
  >;
  broken: Expectation[];
}

let counter = 0;
async function gate(
  sys: System,
  dir: string,
  snapshot: string,
  variant: string | undefined,
  baseline: boolean,
) {
  const out = join(dir, 'out', `${sys.name}-${counter++}`);
  const t0 = performance.now();
  const r = await retap(
    [
      'ci',
      '--config',
      sys.config,
      '--snapshot',
      snapshot,
      '--cmd',
      sys.command(variant),
      '--port',
      String(PORT),
      ...sys.flags,
      ...(baseline ? ['--baseline-cmd', sys.command()] : []),
      '--reports',
      out,
      '--format',
      'json',
      '--no-step-summary',
      '--no-annotations',
    ],
    dir,
  );
  const seconds = (performance.now() - t0) / 1000;
  process.stderr.write(
    `verdicts: ${sys.name} ${variant ?? 'unchanged'}${baseline ? ' (baseline)' : ''}: exit ${r.code} in ${seconds.toFixed(1)} s\n`,
  );
  const file = join(out, 'report.json');
  if (!existsSync(file))
    throw new Error(
      `retap ci (${sys.name} ${variant ?? 'unchanged'}) exited ${r.code} without a report:\n${r.stderr}`,
    );
  const verdict = JSON.parse(readFileSync(file, 'utf8')) as Verdict;
  rmSync(out, { recursive: true, force: true });
  return { code: r.code, verdict, seconds };
}

const summarize = (code: number, v: Verdict): string =>
  `exit ${code}; ${[
    ...notReproduced(v).map(([r, c]) => `not reproduced ${r} (${c.join(', ')})`),
    ...counted(v).slice(0, 3),
    ...failedBudgets(v).map((b) => `budget ${b}`),
  ].join('; ')}`;

async function measure(sys: System, dir: string, replays: number, modes: boolean[], quick: boolean) {
  const table: string[] = [];
  const misses: string[] = [];
  const rows: Row[] = [];
  const seconds: number[] = [];
  for (const baseline of modes) {
    const mode = baseline ? 'with baseline' : 'no baseline';
    let green = 0;
    for (let i = 0; i < replays; i++) {
      const {
        code,
        verdict,
        seconds: s,
      } = await gate(sys, dir, sys.snapshots.main as string, undefined, baseline);
      seconds.push(s);
      if (cleanPass(code, verdict)) green++;
      else misses.push(`${sys.name}, ${mode}, unchanged replay ${i + 1}: ${summarize(code, verdict)}`);
    }
    let caught = 0;
    const regressions = quick && baseline ? [] : sys.regressions;
    for (const r of regressions) {
      const exit = !baseline && r.exitWithoutBaseline !== undefined ? r.exitWithoutBaseline : r.exit;
      const check = !baseline && r.caughtWithoutBaseline ? r.caughtWithoutBaseline : r.caught;
      const {
        code,
        verdict,
        seconds: s,
      } = await gate(sys, dir, sys.snapshots.main as string, r.name, baseline);
      seconds.push(s);
      if (code === exit && check(verdict)) caught++;
      else
        misses.push(
          `${sys.name}, ${mode}, ${r.name}: expected exit ${exit} naming ${r.named}; got ${summarize(code, verdict)}`,
        );
    }
    let errors = 0;
    for (const b of sys.broken) {
      const {
        code,
        verdict,
        seconds: s,
      } = await gate(sys, dir, sys.snapshots[b.name] as string, undefined, baseline);
      seconds.push(s);
      if (code === b.exit && b.caught(verdict)) errors++;
      else
        misses.push(
          `${sys.name}, ${mode}, broken ${b.name}: expected exit 3 naming ${b.named}; got ${summarize(code, verdict)}`,
        );
    }
    const regressionCell = regressions.length ? `${caught} / ${regressions.length}` : '–';
    const brokenCell = sys.broken.length ? `${errors} / ${sys.broken.length}` : '–';
    table.push(
      `| ${sys.name} | ${mode} | ${regressionCell} | ${replays - green} / ${replays} | ${brokenCell} |`,
    );
    rows.push(
      {
        figure: `${sys.name} ${mode}: false alarms over ${replays} unchanged replays`,
        value: replays - green,
        target: '= 0',
      },
      ...(regressions.length
        ? [
            {
              figure: `${sys.name} ${mode}: regressions caught`,
              value: `${caught}/${regressions.length}`,
              target: 'all',
            },
          ]
        : []),
      ...(sys.broken.length
        ? [
            {
              figure: `${sys.name} ${mode}: broken environments as errors`,
              value: `${errors}/${sys.broken.length}`,
              target: 'all',
            },
          ]
        : []),
    );
  }
  seconds.sort((a, b) => a - b);
  return {
    table,
    misses,
    rows,
    medianSeconds: seconds[Math.floor(seconds.length / 2)] ?? 0,
    runs: seconds.length,
  };
}

async function demoSystem(dir: string): Promise<System> {
  const r = await retap(
    ['demo', '--sessions', '12', '--seed', '3', '--out', join(dir, 'demo'), '--json'],
    dir,
    600_000,
  );
  if (r.code !== 0) throw new Error(`retap demo exited ${r.code}:\n${r.stderr}`);
  const summary = JSON.parse(r.stdout) as { env: Record<string, string>; snapshot?: string };
  const config = join(dir, 'demo.retap.yaml');
  writeFileSync(
    config,
    ['assertions:', '  budgets:', "    - 'GET /orders/{id}: p95 < 100ms'", "    - 'errors < 1%'", ''].join(
      '\n',
    ),
  );
  const orders = join(ROOT, 'dist', 'examples', 'demo', 'orders.js');
  const found = (re: RegExp) => (v: Verdict) => counted(v).some((c) => re.test(c));
  return {
    name: 'demo (Node)',
    snapshots: { main: summary.snapshot ?? join(dir, 'demo', 'snapshots', 'orders', 'v1') },
    command: (variant) =>
      [process.execPath, orders, '--port', String(PORT), ...(variant ? ['--variant', variant] : [])].join(
        ' ',
      ),
    flags: [
      ...['INVENTORY_URL', 'PAYMENTS_URL'].flatMap((k) => ['--env', `${k}=${summary.env[k] ?? ''}`]),
      // the demo client's passwords, redacted in the snapshot, written by retap demo for its replays
      ...(existsSync(join(dir, 'demo', 'secrets.yaml'))
        ? ['--secrets', join(dir, 'demo', 'secrets.yaml')]
        : []),
    ],
    config,
    regressions: [
      {
        name: 'changed-field',
        exit: 1,
        named: 'GET /orders/{id} changed-type $.total',
        caught: found(/^GET \/orders\/\{id\} changed-type \$\.total$/),
      },
      {
        name: 'extra-call',
        exit: 1,
        named: 'POST /orders extra-call GET …/stock/…',
        caught: found(/^POST \/orders extra-call outbound:GET \S+ \/stock\//),
      },
      {
        name: 'error',
        exit: 1,
        named: 'GET /orders status-class (200 → 500); without a baseline: exit 3, GET /orders not reproduced',
        caught: found(/^GET \/orders status-class status$/),
        // the whole route fails: without a baseline that cannot be told from a broken replay
        exitWithoutBaseline: 3,
        caughtWithoutBaseline: (v) =>
          notReproduced(v)
            .map(([r]) => r)
            .join() === 'GET /orders' && found(/^GET \/orders status-class status$/)(v),
      },
      {
        name: 'slow',
        exit: 2,
        named: 'budget GET /orders/{id} p95 < 100ms',
        caught: (v) => counted(v).length === 0 && failedBudgets(v).includes('GET /orders/{id} p95 < 100ms'),
      },
    ],
    broken: [],
  };
}

async function notesSystem(dir: string): Promise<System> {
  const notes = await import('../../examples/notes/system.js');
  const deps = await notes.startNotesDependencies(dir);
  try {
    const rec = await notes.recordNotes({ dir, deps });
    if (rec.traffic.unexpected.length) throw new Error(`notes traffic: ${rec.traffic.unexpected.join('; ')}`);
    const snapshots = await notes.splitRecording(rec, dir);
    const secrets = join(dir, 'notes-secrets.yaml');
    await notes.writeNotesSecrets(snapshots.main as string, secrets);
    const config = join(dir, 'notes.retap.yaml');
    writeFileSync(
      config,
      ['assertions:', '  budgets:', ...NOTES_BUDGETS.map((b) => `    - '${b}'`), ''].join('\n'),
    );
    return {
      name: 'notes (Python)',
      snapshots,
      command: (variant) => notes.notesCommand(PORT, variant),
      flags: [
        ...Object.entries(deps.env)
          .filter(([k]) => k !== 'SSL_CERT_FILE')
          .flatMap(([k, v]) => ['--env', `${k}=${v}`]),
        '--secrets',
        secrets,
      ],
      config,
      regressions: NOTES_REGRESSIONS,
      broken: NOTES_BROKEN,
    };
  } finally {
    // the replays mock both dependencies: the real ones are needed only while recording
    await deps.stop();
  }
}

async function httpbinSystem(dir: string): Promise<System> {
  const httpbin = await import('../../examples/httpbin/system.js');
  const gunicorn = await httpbin.gunicornBin();
  const rec = await httpbin.recordHttpbin(join(dir, 'httpbin'));
  const secrets = join(dir, 'httpbin-secrets.yaml');
  await httpbin.writeHttpbinSecrets(rec.snapshot, secrets);
  const config = join(dir, 'httpbin.retap.yaml');
  writeFileSync(config, 'assertions: {}\n');
  return {
    name: 'httpbin (PyPI, gunicorn)',
    snapshots: { main: rec.snapshot },
    command: (variant) => httpbin.httpbinCommand(gunicorn, PORT, { changed: variant === 'changed-answer' }),
    flags: ['--secrets', secrets, '--ready-timeout', '30s'],
    config,
    regressions: [
      {
        name: 'changed-answer',
        exit: 1,
        named: 'GET /json changed-value $.slideshow.title',
        caught: (v) => counted(v).join() === 'GET /json changed-value $.slideshow.title',
      },
    ],
    broken: [],
  };
}

export async function runBench(opts: BenchOptions & { only?: string }): Promise<Row[]> {
  const replays = opts.quick ? 1 : 20;
  const dir = mkdtempSync(join(tmpdir(), 'retap-bench-verdicts-'));
  const table = [
    '| system | mode | regressions caught | false alarms (unchanged replays) | broken environments as errors |',
    '|---|---|--:|--:|--:|',
  ];
  const misses: string[] = [];
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    for (const [key, make] of [
      ['demo', demoSystem],
      ['notes', notesSystem],
      ['httpbin', httpbinSystem],
    ] as const) {
      if (opts.only && opts.only !== key) continue;
      const t0 = performance.now();
      const sys = await make(dir);
      const m = await measure(sys, dir, replays, [false, true], opts.quick);
      table.push(...m.table);
      misses.push(...m.misses);
      rows.push(...m.rows);
      notes.push(
        `${sys.name}: ${m.runs} gate runs, median ${m.medianSeconds.toFixed(1)} s each, ${((performance.now() - t0) / 60_000).toFixed(1)} min with its capture`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(
    `\n${table.join('\n')}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n${misses.length ? `\nMisses:\n${misses.map((m) => `- ${m}`).join('\n')}\n` : '\nNo misses.\n'}`,
  );
  return rows;
}

export async function run(opts: BenchOptions): Promise<Row[]> {
  return runBench(opts);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, only: { type: 'string' } } });
  await runBench({ quick: values.quick ?? false, ...(values.only ? { only: values.only } : {}) });
}
