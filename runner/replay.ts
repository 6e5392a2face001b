/**
 * Replay orchestration (outside the namespace): plan from the snapshot, create the ephemeral
 * environment (network namespace + hosts, cgroup), capture the build's cgroup with eBPF while a
 * worker inside the namespace serves mocks, starts the build and drives the requests; then join
 * what the client saw with what capture saw at the build's socket, and write results.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream, mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type Cgroup, createCgroup } from '../capture/cgroup.js';
import { recordUntil } from '../capture/record.js';
import { ErrorCodes, RetapError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import { logger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import {
  RESULTS_FORMAT,
  RESULTS_FORMAT_VERSION,
  type ReplayResults,
  type ReplayRun,
  type RunItem,
  type RunWarning,
} from '../core/results.js';
import {
  admit,
  createReplayContext,
  encodeExchange,
  linkCalls,
  markOpeningCalls,
  openSnapshot,
  type RedactionRules,
  writeResults,
} from '../snapshots/index.js';
import { bindAddrFor } from './addresses.js';
import { bodyToSend } from './driver.js';
import { planH2 } from './h2.js';
import { joinByConnection } from './join.js';
import { serveLinks } from './links.js';
import { addLoopbackAddr, createNetns, deleteNetns, insideNetns, writeHosts } from './netns.js';
import { connectionPlan, lanesFor, planReplay, type ReplayPlan } from './plan.js';
import { register, unregister } from './registry.js';
import { rulesFor } from './rules.js';
import { encodeSecrets, redactRuns, secretsForReplay, withoutSecretEnv } from './secrets.js';
import type { ConnectionMode, DriverOptions, SpecItem, WorkerOutput, WorkerSpec } from './spec.js';
import { outputReader, writeLines } from './worker-parts.js';

const log = logger('runner');

export interface BuildUnderTest {
  command: string;
  port: number;
  ready?: string | undefined;
  env: Record<string, string>;
}

export interface ReplayOptions {
  snapshot: string;
  candidate: BuildUnderTest;
  /** Optional baseline build for three-way comparison. */
  baseline?: BuildUnderTest | undefined;
  /** Replays per build (2+ lets assertions learn which fields are noise). */
  runsPerBuild: number;
  readyTimeoutMs: number;
  cwd: string;
  out: string;
  driver: DriverOptions;
  miss: 'fail' | 'closest' | 'passthrough';
  /** Secrets file (placeholder → value) for static client credentials; RETAP_SECRET_* add to it. */
  secretsFile?: string | undefined;
  onProgress?: (label: string, done: number, total: number, errors: number) => void;
  signal?: AbortSignal;
}

export interface ReplayOutcome {
  results: ReplayResults;
  path: string;
  /** Set when a run ended on an infrastructure failure (results are still written). */
  error?: { code: string; message: string };
}

export interface PreparedReplay {
  snap: Awaited<ReturnType<typeof openSnapshot>>;
  rules: Awaited<ReturnType<typeof rulesFor>>;
  plan: ReplayPlan;
  secrets: Awaited<ReturnType<typeof secretsForReplay>>['secrets'];
  redact: boolean;
  /** The snapshot's own redaction rules: the results are redacted with them too. */
  redactionRules?: RedactionRules;
}

/**
 * What every runner (local namespace, Kubernetes) does before anything runs: the plan from the
 * snapshot, its rules, and every placeholder the requests carry either given a token flow or a value.
 */
export async function prepareReplay(
  snapshot: string,
  secretsFile: string | undefined,
): Promise<PreparedReplay> {
  const snap = await openSnapshot(snapshot);
  const all: Exchange[] = [];
  for await (const ex of snap.exchanges()) all.push(ex);
  const rules = await rulesFor(snap, all);
  // sessions follow credential chains (tokens.yaml), so a login's token stays with its requests
  const sessions = createReplayContext({ transforms: rules.transforms, tokens: rules.tokens });
  const plan = planReplay(all, (ex) => sessions.sessionOf(ex));
  if (plan.quarantined > 0)
    log.warn(
      `${plan.quarantined} quarantined exchange(s) in ${snap.path} are not replayed (see \`retap snapshot show\`)`,
    );
  if (plan.items.length === 0) {
    throw new RetapError(
      ErrorCodes.SNAPSHOT_INVALID,
      `snapshot ${snap.path} has no inbound exchanges to replay`,
      {
        hint: 'Capture the service under test (its inbound traffic) — `retap snapshot show` lists what a snapshot holds.',
      },
    );
  }
  // before anything is sent: every placeholder the requests carry has a token flow or a value
  const { secrets } = await secretsForReplay(
    plan.items.map((i) => i.exchange),
    rules,
    { file: secretsFile, snapshot },
  );
  const redactionRules = snap.manifest.redaction?.config;
  return {
    snap,
    rules,
    plan,
    secrets,
    redact: snap.manifest.redaction?.enabled !== false,
    ...(redactionRules ? { redactionRules } : {}),
  };
}

export async function replay(opts: ReplayOptions): Promise<ReplayOutcome> {
  const prep = await prepareReplay(opts.snapshot, opts.secretsFile);
  const { snap, rules, plan, secrets, redact, redactionRules } = prep;
  const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  const ns = `retap-${runId}`;
  const dir = mkdtempSync(join(tmpdir(), `retap-run-${runId}-`));
  let cgroup: Cgroup | undefined;
  const cleanup = async (): Promise<void> => {
    cgroup?.destroy();
    await deleteNetns(ns).catch((e: unknown) =>
      log.warn(`cannot delete namespace ${ns}: ${(e as Error).message}`),
    );
    await rm(dir, { recursive: true, force: true });
    await unregister(runId);
  };
  await register({
    id: runId,
    pid: process.pid,
    createdAt: new Date().toISOString(),
    netns: ns,
    dirs: [dir],
  });
  const runs: ReplayRun[] = [];
  let error: { code: string; message: string } | undefined;
  try {
    await createNetns(ns);
    const addrs = await dependencyAddrs(plan.outbound, ns);
    const hostsFile = await writeHosts(
      ns,
      Object.entries(addrs).map(([host, addr]) => ({ host, addr })),
    );
    cgroup = createCgroup(`replay-${runId}`);
    await register({
      id: runId,
      pid: process.pid,
      createdAt: new Date().toISOString(),
      netns: ns,
      cgroup: cgroup.dir,
      dirs: [dir],
    });
    const outboundFile = join(dir, 'outbound.jsonl');
    await writeLines(outboundFile, plan.outbound.map(encodeExchange));
    const inboundFile = join(dir, 'inbound.jsonl');
    await writeLines(
      inboundFile,
      plan.items.map((i) => encodeExchange(i.exchange)),
    );
    const rulesFile = join(dir, 'rules.json');
    await writeFile(rulesFile, JSON.stringify(rules), { mode: 0o600 });
    const builds: Array<[BuildUnderTest, 'candidate' | 'baseline']> = [[opts.candidate, 'candidate']];
    if (opts.baseline) builds.push([opts.baseline, 'baseline']);
    for (const [build, role] of builds) {
      for (let n = 1; n <= opts.runsPerBuild; n++) {
        if (opts.signal?.aborted) break;
        const label = n === 1 ? role : `${role}#${n}`;
        const run = await runOnce({
          opts,
          plan,
          build,
          role,
          label,
          ns,
          hostsFile,
          dir,
          cgroup,
          outboundFile,
          inboundFile,
          rulesFile,
          addrs,
          snapshotPath: snap.path,
          runId,
          secrets: encodeSecrets(secrets),
          redact,
          redactionRules,
        });
        runs.push(run);
        if (run.error) {
          error = run.error;
          break;
        }
      }
      if (error) break;
    }
  } finally {
    await cleanup();
  }
  return finishReplay(opts, prep, runs, error, {
    kind: 'local',
    namespace: ns,
  });
}

/** Redacts the runs and writes results.json — the same form whichever runner ran them. */
export async function finishReplay(
  opts: Pick<ReplayOptions, 'driver' | 'miss' | 'runsPerBuild' | 'out'>,
  prep: PreparedReplay,
  runs: ReplayRun[],
  error: { code: string; message: string } | undefined,
  environment: ReplayResults['environment'],
): Promise<ReplayOutcome> {
  const { snap, rules, plan, secrets, redact, redactionRules } = prep;
  redactRuns(runs, {
    enabled: redact,
    config: redactionRules,
    secrets,
    rules,
    recorded: new Map(plan.items.map((i) => [i.id, i.exchange])),
  });
  // the message shown and returned is the redacted one (a build's log may quote a token)
  if (error) error = runs.find((r) => r.error)?.error ?? error;
  const results: ReplayResults = {
    format: RESULTS_FORMAT,
    formatVersion: RESULTS_FORMAT_VERSION,
    createdAt: new Date().toISOString(),
    snapshot: {
      path: snap.path,
      name: snap.manifest.name,
      version: snap.manifest.version,
      hash: snap.manifest.hash,
    },
    environment,
    options: {
      concurrency: opts.driver.concurrency,
      rate: opts.driver.rate,
      speed: opts.driver.speed,
      timeoutMs: opts.driver.timeoutMs,
      client: opts.driver.client ?? 'h1',
      protocol: opts.driver.protocol ?? 'auto',
      connections: opts.driver.connections ?? 'recorded',
      mockMiss: opts.miss,
      runsPerBuild: opts.runsPerBuild,
      rules: rules.source,
    },
    recorded: plan.items,
    runs,
  };
  const path = await writeResults(opts.out, results);
  return { results, path, ...(error ? { error } : {}) };
}

/**
 * Each dependency host gets its own loopback address (127.0.0.1 for localhost names). Hosts the
 * build dialled by IP keep that IP: it is added to the namespace's loopback device, so the call
 * reaches the mock there and never leaves the namespace.
 */
async function dependencyAddrs(outbound: Exchange[], ns: string): Promise<Record<string, string>> {
  if (outbound.length === 0) return {};
  const { planMocks } = await import('./mocks/index.js');
  const out: Record<string, string> = {};
  for (const e of planMocks(outbound).endpoints) {
    if (!e.literal) out[e.host] = bindAddrFor(e);
    else if (!e.addr.startsWith('127.') && e.addr !== '::1') await addLoopbackAddr(ns, e.addr);
  }
  return out;
}

interface RunContext {
  opts: ReplayOptions;
  plan: ReplayPlan;
  build: BuildUnderTest;
  role: 'candidate' | 'baseline';
  label: string;
  ns: string;
  hostsFile: string;
  dir: string;
  cgroup: Cgroup;
  outboundFile: string;
  inboundFile: string;
  rulesFile: string;
  addrs: Record<string, string>;
  snapshotPath: string;
  runId: string;
  /** JSON placeholder → value for the worker's stdin ('{}' when none). */
  secrets: string;
  redact: boolean;
  redactionRules: RedactionRules | undefined;
}

async function runOnce(c: RunContext): Promise<ReplayRun> {
  const { opts, plan } = c;
  const mode: ConnectionMode = opts.driver.connections ?? 'recorded';
  const items = specItems(plan, opts.driver);
  const spec: WorkerSpec = {
    runId: c.runId,
    label: c.label,
    build: {
      command: c.build.command,
      port: c.build.port,
      ready: c.build.ready,
      readyTimeoutMs: opts.readyTimeoutMs,
      env: c.build.env,
      cwd: opts.cwd,
      cgroupProcs: join(c.cgroup.dir, 'cgroup.procs'),
    },
    items,
    lanes: lanesFor(plan, mode),
    mocks: {
      outboundFile: c.outboundFile,
      miss: opts.miss,
      caDir: join(c.dir, `ca-${c.label.replace('#', '-')}`),
      addrs: c.addrs,
    },
    snapshotPath: c.snapshotPath,
    rulesFile: c.rulesFile,
    inboundFile: c.inboundFile,
    driver: { ...opts.driver, connections: mode },
    secrets: c.secrets !== '{}',
    redact: c.redact,
    ...(c.redactionRules ? { redactionRules: c.redactionRules } : {}),
    out: join(c.dir, `worker-${c.label.replace('#', '-')}.json`),
    linksSocket: join(c.dir, `links-${c.label.replace('#', '-')}.sock`),
  };
  const specPath = join(c.dir, `spec-${c.label.replace('#', '-')}.json`);
  await writeFile(specPath, JSON.stringify(spec), { mode: 0o600 });

  const captured: Exchange[] = [];
  const finished = new AbortController();
  let attached!: () => void;
  const ready = new Promise<void>((r) => (attached = r));
  // the links capture sees as the build works go to the mocks (runner/links.ts)
  const feed = await serveLinks(spec.linksSocket!);
  const recording = recordUntil(
    { cgroupIds: [c.cgroup.id], service: c.label, holdExec: true, onLink: (l) => feed.push(l) },
    // the same admission as a snapshot write: what would not validate is kept quarantined
    { append: (ex) => void captured.push(admit(ex)) },
    finished.signal,
    { onReady: () => attached() },
  );
  await Promise.race([ready, recording]).catch(async (e: unknown) => {
    await feed.close();
    throw e;
  }); // capture that cannot start fails the run here
  const started = new Date();
  const t0 = performance.now();
  let output: WorkerOutput | undefined;
  let workerError: string | undefined;
  try {
    const worker = spawn(
      insideNetns(c.ns, c.hostsFile)[0]!,
      [
        ...insideNetns(c.ns, c.hostsFile).slice(1),
        process.execPath,
        join(packageRoot(), 'dist', 'runner', 'worker.js'),
        specPath,
      ],
      {
        stdio: [spec.secrets ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        env: withoutSecretEnv(process.env),
      },
    );
    // restored secrets travel through the pipe, never through a file
    if (spec.secrets) worker.stdin?.end(c.secrets);
    workerError = await superviseWorker(worker, c.label, opts);
    output = await readWorkerOutput(spec.out);
  } catch (e) {
    workerError ??= (e as Error).message;
  } finally {
    // the build is stopped by the worker; anything it left in its cgroup goes now
    for (const pid of c.cgroup.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  finished.abort();
  const { stats } = await recording.finally(() => feed.close());
  const run: ReplayRun = {
    label: c.label,
    role: c.role,
    build: {
      command: c.build.command,
      port: c.build.port,
      ...(Object.keys(c.build.env).length ? { env: c.build.env } : {}),
    },
    startedAt: started.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    items: joinItems(plan, output, captured),
    mocks: output?.mocks ?? { calls: 0, matched: 0, misses: [] },
    capture: {
      exchanges: captured.length,
      ringbufDrops: stats.kernel.ringbufDrops,
      userBatchDrops: stats.kernel.userDrops,
      gapBytes: stats.gapBytes,
    },
    warnings: [...(output?.warnings ?? []), ...reopenWarnings(output), ...incompleteBodies(plan)],
    connections: connectionStats(mode, output),
    ...(output?.reflection ? { reflection: output.reflection } : {}),
  };
  if (output?.error) run.error = output.error;
  else if (workerError) run.error = { code: ErrorCodes.INTERNAL, message: workerError };
  return run;
}

/** The worker's output file (JSON Lines, runner/worker-parts.ts sealOutput), read line by line. */
export async function readWorkerOutput(path: string): Promise<WorkerOutput> {
  const reader = outputReader();
  let n = 0;
  for await (const line of createInterface({
    input: createReadStream(path, { encoding: 'utf8' }),
    crlfDelay: Number.POSITIVE_INFINITY,
  })) {
    n++;
    if (line && !reader.line(JSON.parse(line)))
      throw new Error(`${path}:${n}: not a line of the worker's output`);
  }
  const out = reader.result();
  if (!out)
    throw new Error(
      `the replay worker's output ${path} ends without its last line (the worker was cut short)`,
    );
  return out;
}

/** The requests as the worker sends them (bodies base64, connections and HTTP/2 plans). */
export function specItems(plan: ReplayPlan, driver: DriverOptions): SpecItem[] {
  const conns = connectionPlan(plan.items);
  const protocol = driver.protocol ?? 'auto';
  return plan.items.map((it, i) => {
    const h2 = planH2(it.exchange, protocol);
    return {
      id: it.id,
      session: it.session,
      method: it.exchange.request.method,
      target: it.exchange.request.target,
      headers: it.exchange.request.headers,
      body: Buffer.from(bodyToSend(it.exchange.request.body, it.exchange.request.headers)).toString('base64'),
      startUs: it.exchange.timing.startUs,
      connection: conns[i]!.connection,
      closeAfter: conns[i]!.closeAfter,
      ...(it.exchange.request.version === 'HTTP/1.0' ? { version: 'HTTP/1.0' } : {}),
      ...(h2 ? { h2, endUs: endUs(it.exchange) } : {}),
    };
  });
}

/** Relays progress, forwards a stop request, and returns an error text when the worker failed. */
async function superviseWorker(
  worker: ChildProcess,
  label: string,
  opts: ReplayOptions,
): Promise<string | undefined> {
  let stderr = '';
  worker.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 16384) stderr = stderr.slice(-16384);
  });
  if (worker.stdout) {
    createInterface({ input: worker.stdout }).on('line', (line) => {
      const m = /^RETAP_PROGRESS (\d+) (\d+) (\d+)$/.exec(line);
      if (m) opts.onProgress?.(label, Number(m[1]), Number(m[2]), Number(m[3]));
    });
  }
  const onAbort = (): void => void worker.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const code = await new Promise<number | null>((resolve) => {
    worker.once('exit', (c) => resolve(c));
    worker.once('error', () => resolve(-1));
  });
  opts.signal?.removeEventListener('abort', onAbort);
  if (code === 0) return undefined;
  return `the replay worker failed (exit ${code}): ${stderr.trim().split('\n').slice(-8).join('\n')}`;
}

/**
 * Recorded mode: every request that went out on a new connection because the build had closed
 * the one the recording kept open. The replay is still valid, but the build saw a connection the
 * recording did not have — worth knowing when answers differ.
 */
export function reopenWarnings(output: WorkerOutput | undefined): RunWarning[] {
  const out: RunWarning[] = [];
  for (const w of output?.items ?? []) {
    if (!w.reopened) continue;
    out.push({
      code: 'connection-reopened',
      message: `${w.method} ${w.target} went out on a new connection: the recording kept its connection open, but ${w.reopened}`,
      item: w.id,
    });
  }
  return out;
}

/** Recorded request bodies capture did not see whole, sent at their declared length (driver.ts bodyToSend). */
export function incompleteBodies(plan: ReplayPlan): RunWarning[] {
  const out: RunWarning[] = [];
  for (const it of plan.items) {
    const req = it.exchange.request;
    if (!req.body.truncated) continue;
    const sent = bodyToSend(req.body, req.headers).length;
    out.push({
      code: 'request-body-incomplete',
      message:
        sent > req.body.data.length
          ? `${req.method} ${req.target}: the recording holds ${req.body.data.length} of its ${sent} body bytes (the recorded server never read the rest, or capture lost them); the rest went out as zeros`
          : `${req.method} ${req.target}: the recording holds ${req.body.data.length} body bytes of an unknown length; sent as they are`,
      item: it.id,
    });
  }
  return out;
}

export function connectionStats(
  mode: ConnectionMode,
  output: WorkerOutput | undefined,
): ReplayRun['connections'] {
  const sockets = new Set<string>();
  let reopened = 0;
  for (const w of output?.items ?? []) {
    if (w.socket) sockets.add(`${w.socket.port}/${w.socket.openedUs}`);
    if (w.reopened) reopened++;
  }
  return { mode, opened: sockets.size, reopened };
}

export const endUs = (e: Exchange): number =>
  e.timing.startUs + (e.timing.responseEndNs ?? e.timing.responseStartNs ?? e.timing.requestEndNs) / 1000;

/**
 * Client views + captured answers (joined by connection and order, runner/join.ts) + the outbound
 * calls each answer caused (linked as in the recording: snapshots/links.ts).
 */
export function joinItems(
  plan: ReplayPlan,
  output: WorkerOutput | undefined,
  captured: Exchange[],
): RunItem[] {
  const sent = output?.items ?? [];
  const joined = joinByConnection(
    sent.map((w, index) => ({ index, method: w.method, target: w.target, socket: w.socket })),
    captured,
  );
  const live = new Map<string, Exchange>();
  for (const [index, ex] of joined) live.set(sent[index]!.id, ex);
  // the build's calls, each with the live request that caused it (snapshots/links.ts)
  const callsOf = new Map<string, Exchange[]>();
  const links = linkCalls(captured);
  markOpeningCalls(captured);
  for (const o of captured
    .filter((e) => e.direction === 'outbound')
    .sort((a, b) => a.timing.startUs - b.timing.startUs)) {
    const link = links.get(o.id);
    if (!link) continue;
    o.cause = { exchange: link.inbound.id, method: link.method };
    const list = callsOf.get(link.inbound.id);
    if (list) list.push(o);
    else callsOf.set(link.inbound.id, [o]);
  }
  const byId = new Map(sent.map((w) => [w.id, w]));
  return plan.items.map((rec) => {
    const w = byId.get(rec.id);
    const l = live.get(rec.id);
    const item: RunItem = {
      id: rec.id,
      client: w
        ? {
            method: w.method,
            target: w.target,
            headers: w.headers,
            ...(w.body ? { body: new Uint8Array(Buffer.from(w.body, 'base64')) } : {}),
            ...(w.status !== undefined ? { status: w.status } : {}),
            ...(w.responseHeaders ? { responseHeaders: w.responseHeaders } : {}),
            ...(w.responseBody !== undefined
              ? { responseBody: new Uint8Array(Buffer.from(w.responseBody, 'base64')) }
              : {}),
            ...(w.responseTrailers ? { responseTrailers: w.responseTrailers } : {}),
            ...(w.deadline ? { deadline: w.deadline } : {}),
            ...(w.error ? { error: w.error } : {}),
            durationMs: Math.round(w.durationMs * 1000) / 1000,
            ...(w.socket ? { socket: w.socket } : {}),
          }
        : {
            method: rec.exchange.request.method,
            target: rec.exchange.request.target,
            headers: [],
            error: 'not sent',
            durationMs: 0,
          },
      outbound: l ? (callsOf.get(l.id) ?? []) : [],
    };
    if (l) item.live = l;
    return item;
  });
}
