/**
 * `retap snapshot minimise` on a big recording of the demo system: how much of a 100,000-exchange
 * recording it keeps, and how much replay time the minimised version saves while catching the same
 * seeded regressions. Peer: the full recording, replayed the same way in the same run.
 *
 * As a user does it: the demo system runs (examples/demo: orders → inventory over HTTP, → payments
 * over HTTPS), `retap capture --pid <orders>` records it while the demo's client runs sessions in
 * a bounded loop on loopback, `retap snapshot minimise` cuts the recording, then `retap replay`
 * runs each snapshot against the unchanged build (timed, must pass) and against the build with
 * the seeded regressions (`--variant changed-field,extra-call,error`, judged against the unchanged
 * build as the baseline; timed) — the minimised replay must find the same differences (route ×
 * kind × path) as the full.
 *
 * Long (≈ 20 minutes for 50k on 2 vCPUs): off by default. RETAP_BENCH_MINIMISE=N runs it with at
 * least N exchanges. At 100k (61k requests) the full recording's replay results outgrow one
 * results file (RETAP_RESULTS_TOO_LARGE): the rows then say so and only minimisation is measured;
 * RETAP_BENCH_MINIMISE=50000 (35k requests) is the largest documented run with both replays.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Verdict } from '../../assertions/index.js';
import { ErrorCodes } from '../../core/errors.js';
import { demoPasswords, runTraffic, startDemo } from '../../examples/demo/index.js';
import { createRedactor } from '../../snapshots/index.js';
import type { BenchOptions, Row } from '../lib/rows.js';

const MAIN = resolve(import.meta.dirname, '../../../bin/retap.js');
const ORDERS = resolve(import.meta.dirname, '../../examples/demo/orders.js');
const PORT = 8080;
/** Exchanges per demo session (inbound and outbound, measured: 201 for 12 sessions). */
const PER_SESSION = 16;
const SESSIONS_PER_ROUND = 1000;
/** The seeded regressions replayed (all but `slow`, which only adds latency to every answer). */
const REGRESSIONS = 'changed-field,extra-call,error';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function retap(args: string[], cwd: string, timeoutMs: number): Promise<Ran> {
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GITHUB_STEP_SUMMARY: '', RETAP_RUNS_DIR: join(cwd, 'runs') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b));
    child.stderr.on('data', (b: Buffer) => (stderr += b));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      done({ code: code ?? (signal ? 128 : -1), stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** Finds (route kind path) of every counted difference, as the e2e test compares them. */
const found = (v: Verdict): string[] =>
  [
    ...new Set(
      v.items.flatMap((i) => i.diffs.filter((d) => !d.noise).map((d) => `${i.route} ${d.kind} ${d.path}`)),
    ),
  ].sort();

export async function run(_opts: BenchOptions): Promise<Row[]> {
  const wanted = Number(process.env.RETAP_BENCH_MINIMISE ?? 0);
  if (!wanted) {
    console.log('snapshots/minimise: off by default (RETAP_BENCH_MINIMISE=50000 runs it, ≈ 20 minutes)');
    return [];
  }
  const work = mkdtempSync(join(tmpdir(), 'retap-bench-minimise-'));
  const system = await startDemo({});
  let capture: ChildProcess | undefined;
  try {
    // --- record: capture the orders process while the client loops over sessions
    const store = join(work, 'snapshots');
    let captureOut = '';
    let captureErr = '';
    const captured = new Promise<number>((r) => {
      capture = spawn(
        process.execPath,
        [
          MAIN,
          'capture',
          '--pid',
          String(system.orders.pid),
          '--out',
          store,
          '--name',
          'orders',
          '--service',
          'orders',
          '--json',
          '--verbose',
        ],
        { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      capture.stdout!.on('data', (b: Buffer) => (captureOut += b));
      capture.stderr!.on('data', (b: Buffer) => (captureErr += b));
      capture.on('exit', (code) => r(code ?? -1));
    });
    // recording (programs loaded, probes attached: seconds on a loaded machine) before any traffic
    const deadline = Date.now() + 120_000;
    while (!/: recording/.test(captureErr)) {
      if (capture!.exitCode !== null || Date.now() > deadline)
        throw new Error(`retap capture did not start: ${captureErr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const t0 = performance.now();
    let requests = 0;
    let errors = 0;
    const rounds = Math.ceil(wanted / PER_SESSION / SESSIONS_PER_ROUND);
    for (let round = 0; round < rounds; round++) {
      const s = await runTraffic(system.orders.url, { sessions: SESSIONS_PER_ROUND, seed: 100 + round });
      requests += s.requests;
      errors += s.errors;
      console.log(`  traffic round ${round + 1}/${rounds}: ${requests} requests, ${errors} errors`);
    }
    const trafficS = (performance.now() - t0) / 1000;
    capture!.kill('SIGINT');
    const code = await captured;
    if (code !== 0) throw new Error(`retap capture exited ${code}: ${captureErr.slice(-2000)}`);
    const rec = JSON.parse(captureOut) as {
      path: string;
      exchanges: number;
      inbound: number;
      outbound: number;
    };
    console.log(
      `  recorded ${rec.exchanges} exchanges (${rec.inbound} inbound) in ${trafficS.toFixed(0)} s → ${rec.path}`,
    );

    // --- minimise
    const min = await retap(['snapshot', 'minimise', rec.path, '--json'], work, 1_800_000);
    if (min.code !== 0) throw new Error(`retap snapshot minimise exited ${min.code}: ${min.stderr}`);
    const m = JSON.parse(min.stdout) as {
      path: string;
      coverage: { source: Record<string, number>; kept: Record<string, number> };
      requests: { source: number; kept: number };
      exchanges: { source: number; kept: number };
      units: { source: number; kept: number };
      bytes: { source: number; kept: number };
    };
    console.log(`  minimise (${(min.ms / 1000).toFixed(1)} s): ${JSON.stringify(m)}`);

    // --- replay both: the unchanged build, then every seeded regression against it
    const secrets = join(work, 'secrets.yaml');
    const redactor = createRedactor(undefined);
    writeFileSync(
      secrets,
      `${demoPasswords()
        .map((p) => `${redactor.placeholderOf(p)}: ${JSON.stringify(p)}`)
        .join('\n')}\n`,
      { mode: 0o600 },
    );
    const unchanged = [process.execPath, ORDERS, '--port', String(PORT)].join(' ');
    const envArgs = Object.entries(system.env)
      .filter(([k]) => k === 'INVENTORY_URL' || k === 'PAYMENTS_URL')
      .flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    const replayed = async (snapshot: string, name: string, variant?: string) => {
      const out = join(work, 'results', name);
      mkdirSync(out, { recursive: true });
      const r = await retap(
        [
          'replay',
          snapshot,
          '--cmd',
          variant ? `${unchanged} --variant ${variant}` : unchanged,
          ...(variant ? ['--baseline-cmd', unchanged] : []),
          '--port',
          String(PORT),
          ...envArgs,
          '--secrets',
          secrets,
          '--out',
          out,
        ],
        work,
        3_600_000,
      );
      // a run whose results outgrow one results file (RETAP_RESULTS_TOO_LARGE, ~60k requests) is a
      // finding of this benchmark, not its failure
      const tooLarge = r.stderr.includes(ErrorCodes.RESULTS_TOO_LARGE);
      if (r.code !== 0 && tooLarge) {
        console.log(`  replay ${name}: ${(r.ms / 1000).toFixed(1)} s, then ${ErrorCodes.RESULTS_TOO_LARGE}`);
        return { ms: r.ms, reportMs: 0, code: r.code, found: [] as string[], tooLarge: true };
      }
      if (r.code !== 0) throw new Error(`retap replay ${name} exited ${r.code}: ${r.stderr.slice(-2000)}`);
      const file = join(work, `${name}.json`);
      const judged = await retap(['report', out, '--format', 'json', '-o', file], work, 1_800_000);
      if (!existsSync(file)) throw new Error(`retap report ${name} exited ${judged.code}: ${judged.stderr}`);
      const verdict = JSON.parse(readFileSync(file, 'utf8')) as Verdict;
      console.log(
        `  replay ${name}: ${(r.ms / 1000).toFixed(1)} s, report ${(judged.ms / 1000).toFixed(1)} s, exit ${judged.code}`,
      );
      return { ms: r.ms, reportMs: judged.ms, code: judged.code, found: found(verdict), tooLarge: false };
    };
    // interleaved: full, minimised, full, minimised
    const fullGreen = await replayed(rec.path, 'full-unchanged');
    const smallGreen = await replayed(m.path, 'small-unchanged');
    const skip = { ms: 0, reportMs: 0, code: -1, found: [] as string[], tooLarge: true };
    const fullReg = fullGreen.tooLarge ? skip : await replayed(rec.path, 'full-regressed', REGRESSIONS);
    const smallReg = fullGreen.tooLarge ? skip : await replayed(m.path, 'small-regressed', REGRESSIONS);
    const same = JSON.stringify(fullReg.found) === JSON.stringify(smallReg.found);
    console.log(
      `minimise-100k ${JSON.stringify({ exchanges: rec.exchanges, inbound: rec.inbound, minimise: m, fullGreen, smallGreen, fullReg: { ...fullReg, found: fullReg.found.length }, smallReg: { ...smallReg, found: smallReg.found.length }, same, missed: fullReg.found.filter((f) => !smallReg.found.includes(f)) })}`,
    );
    const keptShare = m.requests.kept / m.requests.source;
    if (fullGreen.tooLarge) {
      return [
        {
          figure: `minimise ${m.exchanges.source} exchanges: exchanges kept`,
          value: m.exchanges.kept,
          peer: 'full recording',
          peerValue: m.exchanges.source,
          ratio: m.exchanges.kept / m.exchanges.source,
        },
        { figure: 'minimise: command time s', value: Math.round(min.ms / 100) / 10 },
        {
          figure: 'replay unchanged build: s (replay + report)',
          value: Math.round((smallGreen.ms + smallGreen.reportMs) / 100) / 10,
          peer: 'full recording',
          peerValue: ErrorCodes.RESULTS_TOO_LARGE,
        },
      ];
    }
    const checks = [
      fullGreen.code === 0 && smallGreen.code === 0 ? 'both green unchanged' : 'NOT green unchanged',
      fullReg.code === 1 && smallReg.code === 1 && same ? 'same regressions caught' : 'regressions DIFFER',
    ].join(', ');
    return [
      {
        figure: `minimise ${m.exchanges.source} exchanges: exchanges kept`,
        value: m.exchanges.kept,
        peer: 'full recording',
        peerValue: m.exchanges.source,
        ratio: m.exchanges.kept / m.exchanges.source,
      },
      {
        figure: `minimise: requests kept (behaviours ${m.coverage.kept.behaviours}/${m.coverage.source.behaviours})`,
        value: m.requests.kept,
        peer: 'full recording',
        peerValue: m.requests.source,
        ratio: keptShare,
      },
      {
        figure: 'minimise: bytes kept',
        value: m.bytes.kept,
        peer: 'full recording',
        peerValue: m.bytes.source,
        ratio: m.bytes.kept / m.bytes.source,
      },
      { figure: 'minimise: command time s', value: Math.round(min.ms / 100) / 10 },
      {
        figure: 'replay unchanged build: s (replay + report)',
        value: Math.round((smallGreen.ms + smallGreen.reportMs) / 100) / 10,
        peer: 'full recording',
        peerValue: Math.round((fullGreen.ms + fullGreen.reportMs) / 100) / 10,
        ratio: (smallGreen.ms + smallGreen.reportMs) / (fullGreen.ms + fullGreen.reportMs),
      },
      {
        figure: `replay every seeded regression + baseline: s (replay + report); ${checks}`,
        value: Math.round((smallReg.ms + smallReg.reportMs) / 100) / 10,
        peer: 'full recording',
        peerValue: Math.round((fullReg.ms + fullReg.reportMs) / 100) / 10,
        ratio: (smallReg.ms + smallReg.reportMs) / (fullReg.ms + fullReg.reportMs),
        target: `same findings ${same ? 'met' : 'MISS'}`,
      },
    ];
  } finally {
    if (capture && capture.exitCode === null) capture.kill('SIGINT');
    await system.stop();
    if (!process.env.RETAP_BENCH_KEEP) rmSync(work, { recursive: true, force: true });
    else console.log(`  kept ${work}`);
  }
}
