/**
 * `retap ci`: one pipeline step. Reads retap.yaml, replays the snapshot against the build (and a
 * baseline build when given), judges answers and budgets, writes results.json and the reports to
 * one folder, talks to GitHub Actions when it runs there, and exits with the gate's code.
 */
import { existsSync } from 'node:fs';
import { chown, mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readSnapshotTokens } from '../../assertions/config-file.js';
import { defaultConfig, type EvaluateConfig, evaluate, parseBudget } from '../../assertions/index.js';
import { type CiConfig, type CiFormat, defaultCiConfig, loadCiConfig } from '../../ci/config.js';
import { type Annotation, githubEnv, workspacePath } from '../../ci/github.js';
import { judge, writeReports } from '../../ci/judge.js';
import { type Published, publish, type PublishOptions } from '../../ci/publish.js';
import { FORMATS } from '../../ci/reports/index.js';
import { ErrorCodes, ExitCodes, isRetapError, usageError } from '../../core/errors.js';
import { RESULTS_FORMAT, RESULTS_FORMAT_VERSION, type ReplayResults } from '../../core/results.js';
import { type BuildUnderTest, type ReplayOptions, replay } from '../../runner/replay.js';
import { resolveSnapshot, writeResults } from '../../snapshots/index.js';
import {
  many,
  parse,
  parseClient,
  parseConnections,
  parseDuration,
  parseIntFlag,
  parseProtocol,
} from '../args.js';
import type { Command } from '../command.js';
import { Progress } from '../progress.js';
import { defaultRetapImage, parseEnv } from './replay.js';
import { withProtos } from './report.js';

const help = `Usage: retap ci [--config retap.yaml] [options]

One pipeline step: replay a snapshot against the build (and a baseline build when given), judge
the answers and the budgets, write results.json and the reports (JUnit, Markdown, HTML, JSON)
to one folder, and exit with the gate's code. Settings come from retap.yaml (sections replay:,
assertions:, ci:); flags override them. Needs root (namespace, cgroup, eBPF) — or, with
replay.k8s: in retap.yaml, a cluster: the replay then runs in an ephemeral namespace per run
(docs/kubernetes.md, \`retap replay --k8s\`).

Snapshot and build:
  --config FILE          settings file (default ./retap.yaml when present)
  --snapshot S           version directory, store directory (latest version), STORE@N, a name
                         under snapshots.dir, or a version tag (vN / @N) of replay.snapshot
  --cmd "COMMAND"        how to start the build (replay.build.command)
  --port P               port the build listens on (replay.build.port)
  --ready URL            readiness URL (default: the TCP port accepts connections)
  --ready-timeout D      how long to wait for readiness (default 30s)
  --env KEY=VALUE        environment for the build; repeatable (adds to replay.build.env)
  --cwd DIR              working directory of the build
  --baseline-cmd "CMD"   also replay a baseline build (e.g. the target branch) for a three-way
  --baseline-port P      comparison; port, env and readiness default to the build's
  --runs N               replays per build, 1–10 (default 1)
  --concurrency N        lanes at once (default 1)
  --timeout D            per-request timeout (default 10s)
  --client NAME          replay driver's HTTP client: h1 (default) or undici (replay.client)
  --connections MODE     recorded (default: each recorded connection replayed on one of its own,
                         closed where it was) or pooled (replay.connections)
  --protocol P           auto (default: each exchange over the protocol it was recorded with,
                         HTTP/2 and gRPC included), h1 or h2 (replay.protocol)
  --no-reflection        do not ask a gRPC build for its schema over server reflection
                         (replay.reflection: false); .proto files (--proto) win over it anyway
  --mock-miss MODE       fail (default), closest or passthrough
  --proto DIR            .proto files of gRPC services (repeatable; assertions.proto): messages
                         compared with field names and types; without, by field number
  --secrets FILE         values of redacted static client credentials (REDACTED-…: value per
                         line; replay.secrets); RETAP_SECRET_<16 hex>=value in the environment too

Gate and reports:
  --budget EXPR          add a budget ('p95 < 250ms', 'GET /orders/{id}: p99 < +10%',
                         'errors < 1%', 'mocks >= 100%'); repeatable, adds to assertions.budgets
  --fail-on R            breaking | warning (default: assertions.failOn, else warning)
  --warn-only WHAT       assertions | budgets: report those failures without failing; repeatable
  --out DIR              folder for results.json and report.* (default ./retap-reports);
                         --reports is an alias
  --format F[,F…]        reports to write (default junit,markdown,html,json)
  --no-step-summary      do not append the Markdown summary to $GITHUB_STEP_SUMMARY
  --no-annotations       do not print ::error annotations on GitHub Actions
  --exit-zero            exit 0 whatever the verdict (reports and outputs still written)
  --json                 print the outcome as JSON on stdout
  -h, --help             this text

On GitHub Actions it appends the summary to $GITHUB_STEP_SUMMARY, writes the step outputs
verdict (pass | fail-assertions | fail-budgets | error), exit-code, junit, summary, html, json
and results to $GITHUB_OUTPUT, and prints one ::error annotation per failing route or budget.

Before judging, the replay's validity: when the reference build (the baseline, else the
candidate) did not reproduce a route of the recording — more than half its answers in another
status class, or fewer than half its recorded dependency calls made (assertions.validity) — the
verdict is an error naming the routes and the likely cause (a credential not carried, a
dependency that cannot be mocked, connection reuse…). Without a baseline a drastic regression
cannot be told from a broken replay: give --baseline-cmd.

Exit codes: 0 pass, 1 assertion failures, 2 budget failures, 3 infrastructure error (the build
did not start, capture or replay failed, or the replay did not reproduce the recording; never
softened by --warn-only), 64 bad usage.

Examples:
  retap ci                                    # everything from ./retap.yaml
  retap ci --snapshot snaps/orders@3 --cmd "node dist/server.js" --port 8080 --budget 'p95 < +10%'
  retap ci --snapshot v2 --baseline-cmd "node ../main/dist/server.js"   # v2 of replay.snapshot`;

interface Flags {
  config?: string;
  snapshot?: string;
  cmd?: string;
  port?: string;
  ready?: string;
  'ready-timeout'?: string;
  env?: string[];
  cwd?: string;
  'baseline-cmd'?: string;
  'baseline-port'?: string;
  runs?: string;
  concurrency?: string;
  timeout?: string;
  client?: string;
  connections?: string;
  protocol?: string;
  'no-reflection'?: boolean;
  proto?: string[];
  'mock-miss'?: string;
  secrets?: string;
  budget?: string[];
  'fail-on'?: string;
  'warn-only'?: string[];
  out?: string;
  reports?: string;
  format?: string[];
  'no-step-summary'?: boolean;
  'no-annotations'?: boolean;
  'exit-zero'?: boolean;
  json?: boolean;
}

const OPTIONS = {
  config: { type: 'string' },
  snapshot: { type: 'string' },
  cmd: { type: 'string' },
  port: { type: 'string' },
  ready: { type: 'string' },
  'ready-timeout': { type: 'string' },
  env: { type: 'string', multiple: true },
  cwd: { type: 'string' },
  'baseline-cmd': { type: 'string' },
  'baseline-port': { type: 'string' },
  runs: { type: 'string' },
  concurrency: { type: 'string' },
  timeout: { type: 'string' },
  client: { type: 'string' },
  connections: { type: 'string' },
  protocol: { type: 'string' },
  'no-reflection': { type: 'boolean' },
  proto: { type: 'string', multiple: true },
  'mock-miss': { type: 'string' },
  secrets: { type: 'string' },
  budget: { type: 'string', multiple: true },
  'fail-on': { type: 'string' },
  'warn-only': { type: 'string', multiple: true },
  out: { type: 'string', short: 'o' },
  reports: { type: 'string' },
  format: { type: 'string', multiple: true },
  'no-step-summary': { type: 'boolean' },
  'no-annotations': { type: 'boolean' },
  'exit-zero': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

const VERSION_TAG = /^@?v?(\d+)$/;

/** The output folder: --out (or its alias --reports), else ci.reports, else ./retap-reports. */
function reportsDirOf(f: Flags, cfg: CiConfig, cwd: string): string {
  const flag = f.out ?? f.reports;
  return flag ? resolve(cwd, flag) : (cfg.ci.reports ?? resolve(cwd, 'retap-reports'));
}

/**
 * The snapshot to replay as a version directory. Flag values are relative to the working
 * directory, values from retap.yaml to the file's folder; a bare version tag picks that version
 * of replay.snapshot's store.
 */
export async function resolveCiSnapshot(
  flag: string | undefined,
  cfg: CiConfig,
  cwd: string,
): Promise<string> {
  const fromFile = cfg.replay.snapshot;
  let spec: string;
  let base: string;
  const tag = flag ? VERSION_TAG.exec(flag) : null;
  if (flag && tag) {
    if (!fromFile)
      throw usageError(
        `--snapshot ${flag}: a version tag needs replay.snapshot in retap.yaml to name the store`,
        'Give the store too: --snapshot snaps/orders@3.',
      );
    spec = `${fromFile.replace(/@v?\d+$/, '')}@${tag[1]}`;
    base = cfg.dir;
  } else if (flag) {
    spec = flag;
    base = cwd;
  } else if (fromFile) {
    spec = fromFile;
    base = cfg.dir;
  } else {
    throw usageError(
      'retap ci: which snapshot? Set replay.snapshot in retap.yaml or pass --snapshot',
      'Example: retap ci --snapshot .retap/snapshots/orders --cmd "node server.js" --port 8080',
    );
  }
  const at = /^(.*?)(@v?\d+)?$/.exec(spec) as RegExpExecArray;
  const name = at[1] as string;
  const version = at[2] ?? '';
  const bare = !name.includes('/') && !existsSync(resolve(base, name));
  const path = bare && cfg.snapshotsDir ? join(cfg.snapshotsDir, name) : resolve(base, name);
  return resolveSnapshot(`${path}${version}`);
}

function formatsOf(values: string[], cfg: CiConfig): CiFormat[] {
  const list = values
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) return cfg.ci.formats ?? [...FORMATS];
  for (const f of list)
    if (!(FORMATS as readonly string[]).includes(f))
      throw usageError(`--format: unknown format '${f}'`, `Use some of: ${FORMATS.join(', ')}.`);
  return [...new Set(list)] as CiFormat[];
}

function builds(
  f: Flags,
  cfg: CiConfig,
  cwd: string,
): { candidate: BuildUnderTest; baseline?: BuildUnderTest; cwd: string; readyTimeoutMs: number } {
  const b = cfg.replay.build;
  const k8s = cfg.replay.k8s;
  const command =
    f.cmd ??
    (b?.command || (k8s ? [k8s.image, ...(k8s.command ?? []), ...(k8s.args ?? [])].join(' ') : undefined));
  if (!command)
    throw usageError(
      'retap ci: how is the build started? Set replay.build.command in retap.yaml or pass --cmd',
    );
  const port = f.port ? parseIntFlag(f.port, '--port', 1, 65535) : b?.port;
  if (port === undefined)
    throw usageError('retap ci: which port does the build listen on? Set replay.build.port or pass --port');
  const env = { ...(b?.env ?? {}), ...parseEnv(many(f.env)) };
  const ready = f.ready ?? b?.ready;
  const candidate: BuildUnderTest = { command, port, env, ...(ready ? { ready } : {}) };
  const bl = cfg.replay.baseline;
  const baseCommand = f['baseline-cmd'] ?? bl?.command;
  let baseline: BuildUnderTest | undefined;
  if (baseCommand) {
    const basePort = f['baseline-port']
      ? parseIntFlag(f['baseline-port'], '--baseline-port', 1, 65535)
      : (bl?.port ?? port);
    const baseReady = bl?.ready ?? ready;
    baseline = {
      command: baseCommand,
      port: basePort,
      env: { ...env, ...(bl?.env ?? {}) },
      ...(baseReady ? { ready: baseReady } : {}),
    };
  }
  return {
    candidate,
    ...(baseline ? { baseline } : {}),
    cwd: f.cwd ? resolve(cwd, f.cwd) : (b?.cwd ?? cfg.dir),
    readyTimeoutMs: f['ready-timeout']
      ? parseDuration(f['ready-timeout'], '--ready-timeout')
      : (b?.readyTimeoutMs ?? (cfg.replay.k8s ? 120_000 : 30_000)),
  };
}

/** Results standing for a replay that could not run at all, so the reports still say why. */
function failedResults(snapshot: string, command: string, port: number, e: unknown): ReplayResults {
  const err = isRetapError(e)
    ? { code: e.code, message: e.hint ? `${e.message} (${e.hint})` : e.message }
    : { code: ErrorCodes.INTERNAL, message: e instanceof Error ? e.message : String(e) };
  const now = new Date().toISOString();
  return {
    format: RESULTS_FORMAT,
    formatVersion: RESULTS_FORMAT_VERSION,
    createdAt: now,
    snapshot: { path: snapshot, name: '', version: 0, hash: '' },
    environment: { kind: 'local' },
    options: {},
    recorded: [],
    runs: [
      {
        label: 'candidate',
        role: 'candidate',
        build: { command, port },
        startedAt: now,
        durationMs: 0,
        items: [],
        mocks: { calls: 0, matched: 0, misses: [] },
        capture: { exchanges: 0, ringbufDrops: 0, userBatchDrops: 0, gapBytes: 0 },
        warnings: [],
        error: err,
      },
    ],
  };
}

/** Files made as root under sudo go back to the invoking user, so later steps can read and clean them. */
async function giveBack(dir: string): Promise<void> {
  const uid = Number(process.env.SUDO_UID);
  const gid = Number(process.env.SUDO_GID);
  if (process.getuid?.() !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0) return;
  await chown(dir, uid, gid).catch(() => undefined);
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []))
    await chown(join(e.parentPath, e.name), uid, gid).catch(() => undefined);
}

/** What publishing may do here: retap.yaml's `ci:` settings, less what the flags turn off. */
function publishOptions(cfg: CiConfig, f: Flags): PublishOptions {
  return {
    stepSummary: cfg.ci.stepSummary && !f['no-step-summary'],
    annotations: cfg.ci.annotations && !f['no-annotations'],
    maxAnnotations: cfg.ci.maxAnnotations,
    configFile: cfg.file,
  };
}

async function run(argv: string[]): Promise<number> {
  const { values: f, positionals } = parse<Flags>('ci', argv, OPTIONS, true);
  if (positionals.length > 0)
    throw usageError(
      `retap ci: unexpected argument '${positionals[0]}'`,
      'Give the snapshot with --snapshot.',
    );
  const cwd = process.cwd();
  const gh = githubEnv();
  const cfg = await loadCiConfig(f.config, cwd);
  const formats = formatsOf(many(f.format), cfg);
  const failOn = f['fail-on'] ?? cfg.ci.failOn;
  if (failOn !== undefined && failOn !== 'breaking' && failOn !== 'warning')
    throw usageError(`--fail-on: '${failOn}' must be breaking or warning`);
  const warnOnly = [...new Set([...(cfg.ci.warnOnly ?? []), ...many(f['warn-only'])])];
  for (const w of warnOnly)
    if (w !== 'assertions' && w !== 'budgets')
      throw usageError(`--warn-only: '${w}' must be assertions or budgets`);
  const flagBudgets = many(f.budget).map((b) => {
    try {
      return parseBudget(b, '--budget');
    } catch (e) {
      throw isRetapError(e) ? usageError(e.message, e.hint) : e;
    }
  });
  const miss = f['mock-miss'] ?? cfg.replay.mockMiss ?? 'fail';
  if (miss !== 'fail' && miss !== 'closest' && miss !== 'passthrough')
    throw usageError(`--mock-miss ${miss}: expected fail, closest or passthrough`);
  const timeoutMs = f.timeout ? parseDuration(f.timeout, '--timeout') : (cfg.replay.timeoutMs ?? 10_000);
  const b = builds(f, cfg, cwd);
  const reportsDir = reportsDirOf(f, cfg, cwd);
  await mkdir(reportsDir, { recursive: true });
  const assertionsConfig: EvaluateConfig = cfg.assertions;
  // .proto folders are read before the replay: a bad one stops the gate before it starts
  withProtos(assertionsConfig, many(f.proto));

  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const progress = f.json ? undefined : new Progress('ci');
  let results: ReplayResults;
  let resultsPath: string;
  let snapshot = f.snapshot ?? cfg.replay.snapshot ?? '';
  try {
    try {
      snapshot = await resolveCiSnapshot(f.snapshot, cfg, cwd);
      process.stderr.write(`retap ci: replaying ${snapshot} against: ${b.candidate.command}\n`);
      const common: Omit<ReplayOptions, 'candidate' | 'baseline' | 'cwd'> = {
        snapshot,
        runsPerBuild: f.runs ? parseIntFlag(f.runs, '--runs', 1, 10) : (cfg.replay.runs ?? 1),
        readyTimeoutMs: b.readyTimeoutMs,
        out: reportsDir,
        driver: {
          concurrency: f.concurrency
            ? parseIntFlag(f.concurrency, '--concurrency', 1, 1024)
            : (cfg.replay.concurrency ?? 1),
          rate: cfg.replay.rate,
          speed: cfg.replay.speed,
          timeoutMs,
          client: parseClient(f.client) ?? cfg.replay.client,
          connections: parseConnections(f.connections) ?? cfg.replay.connections,
          protocol: parseProtocol(f.protocol) ?? cfg.replay.protocol,
          // .proto files given win: the build is not asked
          ...(f['no-reflection'] || cfg.replay.reflection === false || assertionsConfig.protos
            ? { reflection: false }
            : {}),
        },
        miss,
        secretsFile: f.secrets ? resolve(cwd, f.secrets) : cfg.replay.secrets,
        onProgress: (label, done, total, errors) =>
          progress?.update(`${label} ${done}/${total}${errors ? ` · ${errors} errors` : ''}`),
        signal: controller.signal,
      };
      const k8s = cfg.replay.k8s;
      let outcome: Awaited<ReturnType<typeof replay>>;
      if (k8s) {
        const { replayOnK8s } = await import('../../runner/k8s/run.js');
        const build = {
          image: k8s.image,
          port: b.candidate.port,
          ready: b.candidate.ready,
          env: b.candidate.env,
          command: k8s.command,
          args: k8s.args,
          resources: k8s.resources,
          imagePullPolicy: k8s.pullPolicy,
        };
        outcome = await replayOnK8s({
          ...common,
          candidate: build,
          baseline: k8s.baselineImage
            ? { ...build, image: k8s.baselineImage, ...(k8s.baselineArgs ? { args: k8s.baselineArgs } : {}) }
            : undefined,
          shards: k8s.shards ?? 1,
          k8s: {
            kubeconfig: k8s.kubeconfig,
            context: k8s.context,
            retapImage: k8s.retapImage ?? (await defaultRetapImage(k8s.kubeconfig, k8s.context)),
            retapPullPolicy: k8s.pullPolicy,
            keepNamespace: k8s.keepNamespace,
            agentNamespace: k8s.agentNamespace,
          },
          onNamespace: (ns) => process.stderr.write(`retap ci: Kubernetes namespace ${ns}\n`),
        });
      } else {
        outcome = await replay({ ...common, candidate: b.candidate, baseline: b.baseline, cwd: b.cwd });
      }
      results = outcome.results;
      resultsPath = outcome.path;
      if (outcome.error) process.stderr.write(`retap ci: ${outcome.error.code}: ${outcome.error.message}\n`);
    } catch (e) {
      if (isRetapError(e) && e.code === ErrorCodes.USAGE) throw e;
      process.stderr.write(
        `retap ci: the replay could not run: ${e instanceof Error ? e.message : String(e)}${isRetapError(e) ? ` [${e.code}]${e.hint ? `\n  → ${e.hint}` : ''}` : ''}\n`,
      );
      results = failedResults(snapshot, b.candidate.command, b.candidate.port, e);
      resultsPath = await writeResults(reportsDir, results);
    }
  } finally {
    progress?.done();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }

  const config: EvaluateConfig = {
    ...assertionsConfig,
    budgets: [...assertionsConfig.budgets, ...flagBudgets],
  };
  if (failOn) config.failOn = failOn as EvaluateConfig['failOn'];
  if (results.recorded.length > 0)
    config.tokens = [...config.tokens, ...(await readSnapshotTokens(results.snapshot.path))];
  const g = judge(results, config, { warnOnly: warnOnly as Array<'assertions' | 'budgets'> });
  const verdict = g.verdict;
  const outcome: Published = {
    verdict,
    exitCode: g.exitCode,
    status: g.status,
    reports: await writeReports(reportsDir, formats, verdict, results),
    results: resultsPath,
  };
  await publish(outcome, gh, publishOptions(cfg, f));
  await giveBack(reportsDir);

  if (f.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          verdict: outcome.status,
          exitCode: outcome.exitCode,
          summary: verdict.summary,
          reports: outcome.reports,
          results: outcome.results,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    for (const [fmt, path] of Object.entries(outcome.reports))
      process.stderr.write(`retap ci: ${fmt} → ${path}\n`);
  }
  process.stderr.write(`${g.line}\n`);
  if (controller.signal.aborted) return 130;
  return f['exit-zero'] ? ExitCodes.OK : outcome.exitCode;
}

/**
 * A failure before any verdict exists (bad input, a bad retap.yaml, a runner retap cannot run
 * on): the same reports, step outputs and summary as a replay that failed, so a workflow reads
 * one shape whatever happened. Never throws: what cannot be written is said on stderr.
 */
export async function reportFailure(argv: string[], e: unknown): Promise<number> {
  const exitCode = isRetapError(e) ? e.exitCode : ExitCodes.INFRASTRUCTURE;
  const cwd = process.cwd();
  const gh = githubEnv();
  let f: Flags = {};
  try {
    f = parse<Flags>('ci', argv, OPTIONS, true).values;
  } catch {
    // the flags are what failed: report with the defaults
  }
  let cfg: CiConfig = defaultCiConfig(cwd);
  try {
    cfg = await loadCiConfig(f.config, cwd);
  } catch {
    // retap.yaml is what failed
  }
  let formats: CiFormat[] = [...FORMATS];
  try {
    formats = formatsOf(many(f.format), cfg);
  } catch {
    // --format is what failed
  }
  const reportsDir = reportsDirOf(f, cfg, cwd);
  const b = cfg.replay.build;
  const snapshot = f.snapshot ?? cfg.replay.snapshot ?? '';
  const results = failedResults(snapshot, f.cmd ?? b?.command ?? '', Number(f.port ?? b?.port ?? 0) || 0, e);
  // no budgets: over a replay that never ran, every one would hold vacuously
  const verdict = evaluate(results, { ...defaultConfig(), budgets: [] });
  // the gate's code is the one the step exits with (64 for bad usage, else 3)
  verdict.exitCode = exitCode;
  const outcome: Published = { verdict, exitCode, status: 'error', reports: {}, results: '' };
  try {
    outcome.results = await writeResults(reportsDir, results);
    await writeReports(reportsDir, formats, verdict, results, outcome.reports);
    await giveBack(reportsDir);
  } catch (err) {
    process.stderr.write(
      `retap ci: could not write the reports to ${reportsDir}: ${err instanceof Error ? err.message : String(err)}\n`,
    );
  }
  const details = isRetapError(e) ? e.details : undefined;
  const file =
    typeof details?.file === 'string'
      ? details.file
      : cfg.file
        ? workspacePath(cfg.file, gh.workspace)
        : undefined;
  const line = typeof details?.line === 'number' ? details.line : undefined;
  const message = e instanceof Error ? e.message : String(e);
  const hint = isRetapError(e) && e.hint ? `\n${e.hint}` : '';
  const annotation: Annotation = {
    level: 'error',
    title: 'retap ci',
    message: `${message}${hint}`,
    ...(file ? { file } : {}),
    ...(line !== undefined ? { line } : {}),
  };
  try {
    await publish(outcome, gh, publishOptions(cfg, f), [annotation]);
  } catch (err) {
    process.stderr.write(
      `retap ci: could not write the step outputs or summary: ${err instanceof Error ? err.message : String(err)}\n`,
    );
  }
  return exitCode;
}

/** Errors before any verdict exists (bad retap.yaml, missing flag) still reach the workflow. */
async function runReporting(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (e) {
    await reportFailure(argv, e);
    throw e;
  }
}

const command: Command = {
  name: 'ci',
  summary: 'Replay, assert and report in one pipeline step',
  help,
  run: runReporting,
};
export default command;
