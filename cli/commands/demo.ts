/**
 * `retap demo`: the product end to end on a built-in system. It runs as an ordered list of small
 * stages sharing one context; stages that land later (capture → snapshot, replay, verdict) are in
 * the list already and report "not built yet" until someone fills them in.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { readSnapshotTokens } from '../../assertions/config-file.js';
import { defaultConfig, withBudgets } from '../../assertions/index.js';
import { type RecordResult, recordUntil } from '../../capture/record.js';
import type { CaptureSession, CaptureStats } from '../../capture/session.js';
import { judge, writeReports } from '../../ci/judge.js';
import { ExitCodes, formatError, usageError } from '../../core/errors.js';
import { packageRoot } from '../../core/paths.js';
import {
  type DemoSystem,
  demoPasswords,
  formatSummary,
  parseVariants,
  runTraffic,
  startDemo,
  type TrafficSummary,
  VARIANT_EFFECTS,
  VARIANTS,
  type Variant,
} from '../../examples/demo/index.js';
import { type ReplayOutcome, replay } from '../../runner/replay.js';
import { createRedactor, createSnapshotWriter, type SnapshotWriter } from '../../snapshots/index.js';
import { parse, parseIntFlag } from '../args.js';
import type { Command } from '../command.js';

export interface DemoCliOptions {
  sessions: number;
  seed: number;
  variants: Variant[];
  keep: boolean;
  json: boolean;
  portBase: number | undefined;
  /** Where snapshots (and later results) go. */
  out: string;
}

export type StageStatus = 'done' | 'not-built' | 'failed' | 'skipped';

export interface StageResult {
  name: string;
  title: string;
  status: StageStatus;
  detail: string;
  durationMs: number;
}

/** Everything stages share. A stage reads what earlier ones left and adds its own part. */
export interface DemoContext {
  options: DemoCliOptions;
  /** Aborted on SIGINT/SIGTERM: stages stop early, cleanups still run. */
  signal: AbortSignal;
  /** Progress lines (stderr under --json, stdout otherwise). */
  say(line: string): void;
  /** Run in reverse order when the demo ends, whatever happened. */
  cleanups: (() => Promise<void>)[];
  system?: DemoSystem;
  traffic?: TrafficSummary;
  capture?: {
    writer: SnapshotWriter;
    stop(): void;
    done: Promise<RecordResult>;
  };
  recorded?: { inbound: number; outbound: number };
  captureStats?: CaptureStats;
  snapshotPath?: string;
  replays?: Array<{ label: string; variant: string; outcome: ReplayOutcome }>;
  verdicts?: Array<{
    label: string;
    variant: string;
    exitCode: number;
    line: string;
    caught: string[];
    reports: string;
  }>;
}

export interface Stage {
  name: string;
  title: string;
  /** Returns a one-line detail; throw to fail the demo. */
  run?: (ctx: DemoContext) => Promise<string>;
  /** What the stage will do once built (shown while `run` is missing). */
  planned?: string;
}

async function startStage(ctx: DemoContext): Promise<string> {
  const variants = ctx.options.variants;
  const system = await startDemo({
    variant: variants,
    portBase: ctx.options.portBase,
    log: (service, line) => ctx.say(`  [${service}] ${line}`),
  });
  ctx.system = system;
  ctx.cleanups.push(() => system.stop());
  for (const name of ['orders', 'inventory', 'payments'] as const) {
    const s = system[name];
    ctx.say(`  ${name.padEnd(9)} ${s.url.padEnd(26)} pid ${s.pid}`);
  }
  for (const v of variants) ctx.say(`  variant ${v}: ${VARIANT_EFFECTS[v]}`);
  return `orders, inventory and payments (HTTPS) running${variants.length ? `; variants: ${variants.join(',')}` : ''}`;
}

async function trafficStage(ctx: DemoContext): Promise<string> {
  const system = ctx.system;
  if (!system) throw new Error('the demo system is not running');
  const { sessions, seed } = ctx.options;
  const step = Math.max(1, Math.ceil(sessions / 10));
  const summary = await runTraffic(system.orders.url, {
    sessions,
    seed,
    // one session at a time while recording: each downstream call belongs to exactly one request
    concurrency: ctx.capture ? 1 : 4,
    signal: ctx.signal,
    onProgress: (done, total, s) => {
      if (done % step === 0 || done === total) {
        ctx.say(`  sessions ${done}/${total}: ${s.requests} requests, ${s.errors} errors`);
      }
    },
  });
  ctx.traffic = summary;
  const stopped =
    summary.sessionsRun < summary.sessions ? ` (interrupted after ${summary.sessionsRun} sessions)` : '';
  return `${summary.requests} requests, ${summary.ordersCreated} orders, ${summary.errors} errors${stopped}`;
}

async function captureStage(ctx: DemoContext): Promise<string> {
  const system = ctx.system;
  if (!system) throw new Error('the demo system is not running');
  const writer = await createSnapshotWriter({
    dir: resolve(ctx.options.out, 'snapshots', 'orders'),
    name: 'orders',
    source: { host: hostname(), service: 'orders', filters: { pids: [system.orders.pid] } },
    discoverTokens: true,
  });
  const stop = new AbortController();
  let ready!: (session: CaptureSession) => void;
  const attached = new Promise<CaptureSession>((r) => (ready = r));
  const done = recordUntil({ pids: [system.orders.pid], service: 'orders' }, writer, stop.signal, {
    onReady: ({ session }) => ready(session),
  });
  // a recording that fails before it is attached ends the stage with its error
  const session = await Promise.race([attached, done.then(() => undefined)]);
  if (!session) throw new Error('capture ended before it started');
  ctx.capture = { writer, stop: () => stop.abort(), done };
  ctx.cleanups.push(async () => {
    if (!ctx.snapshotPath) {
      stop.abort();
      await done.catch(() => undefined);
      await writer.abort().catch(() => undefined);
    }
  });
  const tls = session.stats().tlsLibraries;
  return `eBPF capture on orders (pid ${system.orders.pid}); TLS probes on ${tls.length ? tls.join(', ') : 'nothing yet'}`;
}

async function snapshotStage(ctx: DemoContext): Promise<string> {
  const cap = ctx.capture;
  if (!cap) throw new Error('capture is not running');
  cap.stop();
  const r = await cap.done;
  ctx.captureStats = r.stats;
  ctx.recorded = { inbound: r.inbound, outbound: r.outbound };
  await cap.writer.finish({ counters: r.counters, notes: r.notes });
  ctx.snapshotPath = cap.writer.path;
  const sent = ctx.traffic?.requests ?? 0;
  ctx.say(
    `  inbound ${r.inbound} (the generator sent ${sent}), outbound ${r.outbound} (inventory + payments over TLS)`,
  );
  ctx.say(`  drops: ${r.stats.kernel.ringbufDrops} kernel records, ${r.stats.gapBytes} bytes in gaps`);
  if (r.inbound !== sent) {
    throw new Error(`captured ${r.inbound} inbound exchanges but the generator sent ${sent} requests`);
  }
  return `${r.inbound + r.outbound} exchanges → ${cap.writer.path}`;
}

/** Port orders listens on inside each replay's private namespace (nothing else is there). */
const REPLAY_PORT = 8080;

async function replayStage(ctx: DemoContext): Promise<string> {
  const system = ctx.system;
  if (!system || !ctx.snapshotPath) throw new Error('no snapshot to replay');
  const script = join(packageRoot(), 'dist', 'examples', 'demo', 'orders.js');
  // The build gets the dependency URLs it had when recorded; inside the namespace they reach the mocks.
  const env = { INVENTORY_URL: system.env.INVENTORY_URL ?? '', PAYMENTS_URL: system.env.PAYMENTS_URL ?? '' };
  const builds: Array<{ label: string; variant: string; args: string[]; runs: number }> = [
    { label: 'orders (unchanged)', variant: 'none', args: [], runs: 2 },
    {
      label: 'orders --variant all (seeded regressions)',
      variant: 'all',
      args: ['--variant', 'all'],
      runs: 1,
    },
  ];
  const secretsFile = await writeDemoSecrets(ctx.options.out);
  ctx.say(`  the client's passwords (redacted in the snapshot) come back from ${secretsFile}`);
  ctx.replays = [];
  for (const b of builds) {
    if (ctx.signal.aborted) break;
    ctx.say(`  replaying against ${b.label}`);
    const outcome = await replay({
      snapshot: ctx.snapshotPath,
      candidate: {
        command: [process.execPath, script, '--port', String(REPLAY_PORT), ...b.args].join(' '),
        port: REPLAY_PORT,
        env,
      },
      runsPerBuild: b.runs,
      readyTimeoutMs: 30_000,
      cwd: process.cwd(),
      out: resolve(ctx.options.out, 'results', b.variant),
      driver: { concurrency: 1, timeoutMs: 10_000 },
      miss: 'fail',
      secretsFile,
      signal: ctx.signal,
    });
    if (outcome.error) throw new Error(`${b.label}: ${outcome.error.message}`);
    for (const r of outcome.results.runs) {
      const answered = r.items.filter((i) => i.client.status !== undefined).length;
      const captured = r.items.filter((i) => i.live).length;
      ctx.say(
        `    ${r.label}: ${answered}/${r.items.length} answered, ${captured} captured at the build, mocks ${r.mocks.matched}/${r.mocks.calls} matched, ${r.warnings.length} warnings`,
      );
    }
    ctx.replays.push({ label: b.label, variant: b.variant, outcome });
  }
  return `${ctx.replays.length} builds replayed in ephemeral namespaces → ${resolve(ctx.options.out, 'results')}`;
}

/**
 * The passwords the demo's client logs in with are static client credentials: redaction keeps
 * them out of the snapshot and a replay gets them back from a secrets file, as a user's would.
 */
async function writeDemoSecrets(out: string): Promise<string> {
  const r = createRedactor(undefined);
  const lines = [
    "# retap demo: the demo client's passwords, placeholder → value (docs/tokens-and-transforms.md)",
  ];
  for (const p of demoPasswords()) lines.push(`${r.placeholderOf(p)}: ${JSON.stringify(p)}`);
  const file = resolve(out, 'secrets.yaml');
  await mkdir(resolve(out), { recursive: true });
  await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  return file;
}

/** Budgets the demo gate judges with (server-side latency from eBPF). */
const DEMO_BUDGETS = ['GET /orders/{id}: p95 < 100ms', 'errors < 1%', 'mocks >= 100%'];

async function verdictStage(ctx: DemoContext): Promise<string> {
  if (!ctx.replays?.length) throw new Error('nothing was replayed');
  ctx.verdicts = [];
  const unchangedRuns = ctx.replays.find((r) => r.variant === 'none')?.outcome.results.runs ?? [];
  for (const r of ctx.replays) {
    const config = withBudgets(
      { ...defaultConfig(), tokens: await readSnapshotTokens(r.outcome.results.snapshot.path) },
      DEMO_BUDGETS,
      'retap demo',
    );
    // The regressed build is judged against the unchanged one as its baseline (what --baseline-cmd
    // does): a route it fails as a whole is then its regression, not a replay that could not
    // reproduce the recording.
    const results =
      r.variant === 'none' || unchangedRuns.length === 0
        ? r.outcome.results
        : {
            ...r.outcome.results,
            runs: [
              ...r.outcome.results.runs,
              ...unchangedRuns.map((run) => ({
                ...run,
                role: 'baseline' as const,
                label: run.label.replace(/^candidate/, 'baseline'),
              })),
            ],
          };
    const g = judge(results, config);
    const verdict = g.verdict;
    const dir = resolve(ctx.options.out, 'reports', r.variant);
    await mkdir(dir, { recursive: true });
    await writeReports(dir, ['junit', 'markdown', 'html'], verdict, results);
    // one line per distinct failure: what kind, where
    const caught = new Set<string>();
    for (const item of verdict.items) {
      for (const d of item.diffs)
        if (!d.noise && d.rating === 'breaking') caught.add(`${item.route}: ${d.message}`);
    }
    for (const b of verdict.budgets)
      if (b.status === 'fail') caught.add(`budget ${b.name}: measured ${b.measured?.toFixed(1)} ${b.unit}`);
    ctx.verdicts.push({
      label: r.label,
      variant: r.variant,
      exitCode: g.exitCode,
      line: g.line,
      caught: [...caught],
      reports: dir,
    });
    ctx.say(`  ${r.label}: ${g.line}`);
    for (const c of [...caught].slice(0, 8)) ctx.say(`    ✗ ${c}`);
    if (caught.size > 8) ctx.say(`    … ${caught.size - 8} more in ${join(dir, 'report.html')}`);
  }
  const unchanged = ctx.verdicts.find((v) => v.variant === 'none');
  const regressed = ctx.verdicts.find((v) => v.variant === 'all');
  if (unchanged && unchanged.exitCode !== 0) {
    throw new Error(`the gate failed the unchanged build (a false alarm): ${unchanged.line}`);
  }
  if (regressed && regressed.exitCode === 0)
    throw new Error('the gate passed the regressed build: it missed the seeded regressions');
  return `unchanged build passed; regressed build failed the gate (exit ${regressed?.exitCode}) → JUnit, Markdown and HTML in ${resolve(ctx.options.out, 'reports')}`;
}

/** In order. Capture must be recording before the traffic starts, hence its place. */
export const STAGES: Stage[] = [
  { name: 'start', title: 'Start the demo system', run: startStage },
  { name: 'capture', title: "Capture orders' inbound and outbound traffic", run: captureStage },
  { name: 'traffic', title: 'Drive client traffic', run: trafficStage },
  { name: 'snapshot', title: 'Write the snapshot', run: snapshotStage },
  { name: 'replay', title: 'Replay against the build and its regressed variant', run: replayStage },
  { name: 'verdict', title: 'Verdict and JUnit report', run: verdictStage },
];

export function parseDemoArgs(argv: string[]): DemoCliOptions {
  const { values } = parse<{
    sessions?: string;
    seed?: string;
    variant?: string;
    keep?: boolean;
    json?: boolean;
    'port-base'?: string;
    out?: string;
  }>('demo', argv, {
    out: { type: 'string' },
    sessions: { type: 'string' },
    seed: { type: 'string' },
    variant: { type: 'string' },
    keep: { type: 'boolean' },
    json: { type: 'boolean' },
    'port-base': { type: 'string' },
  });
  let variants: Variant[];
  try {
    variants = parseVariants(values.variant);
  } catch (e) {
    throw usageError(`--variant: ${(e as Error).message}`);
  }
  return {
    sessions: values.sessions === undefined ? 5 : parseIntFlag(values.sessions, '--sessions', 1, 1000),
    seed: values.seed === undefined ? 1 : parseIntFlag(values.seed, '--seed', 0, 2 ** 31),
    variants,
    keep: values.keep ?? false,
    json: values.json ?? false,
    portBase:
      values['port-base'] === undefined
        ? undefined
        : parseIntFlag(values['port-base'], '--port-base', 1024, 65533),
    out: values.out ?? 'retap-demo',
  };
}

/** Runs the stages in order; stops at the first failure or when aborted. Never throws. */
export async function runStages(
  ctx: DemoContext,
  stages: Stage[],
): Promise<{ results: StageResult[]; error?: unknown }> {
  const results: StageResult[] = [];
  let error: unknown;
  for (const stage of stages) {
    const started = Date.now();
    const result = (status: StageStatus, detail: string): StageResult => ({
      name: stage.name,
      title: stage.title,
      status,
      detail,
      durationMs: Date.now() - started,
    });
    if (error !== undefined || ctx.signal.aborted) {
      results.push(result('skipped', error !== undefined ? 'an earlier stage failed' : 'interrupted'));
      continue;
    }
    if (!stage.run) {
      results.push(result('not-built', `not built yet in this version: ${stage.planned ?? stage.title}`));
      ctx.say(`· ${stage.title}: not built yet`);
      continue;
    }
    ctx.say(`▸ ${stage.title}`);
    try {
      const detail = await stage.run(ctx);
      results.push(result('done', detail));
      ctx.say(`✓ ${stage.title}: ${detail}`);
    } catch (e) {
      error = e;
      results.push(result('failed', e instanceof Error ? e.message : String(e)));
      ctx.say(`✗ ${stage.title}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return error === undefined ? { results } : { results, error };
}

function waitForAbort(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function printReport(options: DemoCliOptions, ctx: DemoContext, results: StageResult[]): void {
  const lines: string[] = ['', 'Traffic summary'];
  if (ctx.traffic) lines.push(...formatSummary(ctx.traffic).map((l) => `  ${l}`));
  else lines.push('  (no traffic ran)');
  if (ctx.snapshotPath)
    lines.push('', `Snapshot: ${ctx.snapshotPath} (try: retap snapshot show ${ctx.snapshotPath})`);
  lines.push('', 'Stages');
  const width = Math.max(...results.map((r) => r.name.length));
  for (const r of results) lines.push(`  ${r.name.padEnd(width)}  ${r.status.padEnd(9)}  ${r.detail}`);
  const missing = results.filter((r) => r.status === 'not-built').map((r) => r.name);
  if (missing.length) {
    lines.push(
      '',
      `Not built yet in this version: ${missing.join(', ')}. This demo starts the system, drives real`,
      'traffic and records it with eBPF into a snapshot; replaying it against the build and its',
      'regressed variant, and the verdict with a JUnit report come with the next versions.',
    );
  }
  if (options.variants.length && ctx.traffic?.errors) {
    lines.push(
      '',
      `The errors above are expected: variant(s) ${options.variants.join(',')} seed regressions.`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function runDemo(options: DemoCliOptions, stages: Stage[] = STAGES): Promise<number> {
  const controller = new AbortController();
  let interruptedBy: string | undefined;
  // Ctrl-C while kept running is the normal end; during cleanup, signals are ignored (it is bounded).
  let phase: 'stages' | 'keep' | 'ending' = 'stages';
  const onSignal = (signal: NodeJS.Signals): void => {
    if (phase === 'ending') return;
    if (phase === 'stages') interruptedBy ??= signal;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const say = (line: string): void => {
    (options.json ? process.stderr : process.stdout).write(`${line}\n`);
  };
  const ctx: DemoContext = { options, signal: controller.signal, say, cleanups: [] };
  let outcome: { results: StageResult[]; error?: unknown } = { results: [] };
  try {
    outcome = await runStages(ctx, stages);
    if (options.keep && outcome.error === undefined && ctx.system && !controller.signal.aborted) {
      say('');
      say('Demo system left running (--keep). Environment of orders:');
      for (const [k, v] of Object.entries(ctx.system.env)) say(`  ${k}=${v}`);
      say(`Try: curl -s ${ctx.system.orders.url}/health`);
      say('Press Ctrl-C to stop.');
      phase = 'keep';
      await waitForAbort(controller.signal);
    }
  } finally {
    phase = 'ending';
    for (const cleanup of ctx.cleanups.reverse()) {
      await cleanup().catch((e: unknown) =>
        say(`cleanup failed: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const unexpectedErrors = options.variants.length === 0 && (ctx.traffic?.errors ?? 0) > 0;
  const ok = outcome.error === undefined && !interruptedBy && !unexpectedErrors;
  if (options.json) {
    const s = ctx.system;
    const report = {
      ok,
      variants: options.variants,
      ...(interruptedBy ? { interruptedBy } : {}),
      services: s ? { orders: s.orders, inventory: s.inventory, payments: s.payments } : undefined,
      env: s?.env,
      traffic: ctx.traffic,
      snapshot: ctx.snapshotPath,
      verdicts: ctx.verdicts,
      capture: ctx.captureStats
        ? {
            inbound: ctx.recorded?.inbound,
            outbound: ctx.recorded?.outbound,
            drops: ctx.captureStats.kernel.ringbufDrops,
            gapBytes: ctx.captureStats.gapBytes,
          }
        : undefined,
      stages: outcome.results,
      notBuilt: outcome.results.filter((r) => r.status === 'not-built').map((r) => r.name),
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    printReport(options, ctx, outcome.results);
  }
  say(ctx.system ? 'Demo system stopped.' : 'Nothing left running.');

  if (outcome.error !== undefined) {
    process.stderr.write(`retap demo: ${formatError(outcome.error)}\n`);
    return ExitCodes.INFRASTRUCTURE;
  }
  if (interruptedBy) return interruptedBy === 'SIGINT' ? 130 : 143;
  if (unexpectedErrors) {
    say('The demo system answered with errors although no variant was set: see the summary above.');
    return ExitCodes.INFRASTRUCTURE;
  }
  return ExitCodes.OK;
}

const help = `Usage: retap demo [options]

Runs retap end to end on a built-in system: starts the demo services (orders → inventory over
HTTP, → payments over HTTPS, each its own process on 127.0.0.1), records the orders process with
eBPF (inbound requests and its outbound calls, TLS plaintext included) while realistic client
traffic runs, writes the snapshot, replays it against orders and against orders with seeded
regressions (each in an ephemeral namespace with mocked dependencies), and judges both: the
unchanged build must pass the gate and the regressed one must fail it. Writes snapshots, results
and JUnit/Markdown/HTML reports under --out. Needs root (eBPF, namespaces).

Options:
  --sessions N     client sessions to run, 1–1000 (default 5)
  --seed S         seed of the traffic mix (default 1); the same seed gives the same requests
  --variant LIST   run orders with seeded regressions: ${VARIANTS.join(', ')} or all
  --port-base P    listen on P, P+1, P+2 (inventory, payments, orders) instead of free ports
  --out DIR        where snapshots are written (default ./retap-demo)
  --keep           leave the system running after the traffic, until Ctrl-C
  --json           print a machine-readable summary on stdout (progress goes to stderr)
  -h, --help       show this help

Exit codes: 0 done (the gate passed the unchanged build and caught the regressions); 3 the demo
could not run, answered with errors without a variant, or the gate misjudged a build; 130/143
interrupted.`;

const command: Command = {
  name: 'demo',
  summary: 'Run the built-in demo end to end',
  help,
  run: (argv) => runDemo(parseDemoArgs(argv)),
};

export default command;
