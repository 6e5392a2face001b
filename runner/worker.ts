/**
 * Replay worker: runs INSIDE the run's network namespace (started by runner/replay.ts through
 * runner/netns.ts insideNetns). Serves the dependency mocks, starts the build in the run's cgroup,
 * waits until it is ready, drives the recorded requests, stops the build and writes WorkerOutput.
 *
 *   node dist/runner/worker.js SPEC.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Exchange } from '../core/exchange.js';
import type { MockMiss, RunWarning } from '../core/results.js';
import { fromStored } from '../snapshots/format.js';
import { tooLarge } from '../snapshots/results.js';
import { createReplayContext } from '../snapshots/transforms/index.js';
import { bindAddrFor } from './addresses.js';
import { startBuild, tail, waitReady } from './build.js';
import { bodyToSend, type DriverHooks, drive, sendableHeaders, toWorkerItem } from './driver.js';
import { volatileFromTokens } from './mocks/index.js';
import { askReflection } from './reflection.js';
import type { ReplayRules } from './rules.js';
import { readSecretsFrom, redactWorkerOutput, restoreRequest } from './secrets.js';
import type { ConnectionMode, WorkerOutput, WorkerSpec } from './spec.js';

interface MockHandle {
  stats(): { calls: number; matched: number; misses: MockMiss[] };
  /** Names the replayed item in misses that happen while it runs. */
  setDuring(id: string | undefined): void;
  stop(): Promise<void>;
}

/** The mock server module (runner/mocks), loaded lazily: a snapshot without dependencies needs none. */
async function startDependencyMocks(
  spec: WorkerSpec,
  outbound: Exchange[],
  rules: ReplayRules,
  warnings: RunWarning[],
  inbound: Exchange[],
): Promise<{ handle?: MockHandle; caFile?: string }> {
  const { createEphemeralCa } = await import('./tls/ca.js');
  const ca = await createEphemeralCa(spec.mocks.caDir);
  if (outbound.length === 0) return { caFile: ca.caCertPath };
  const { planMocks, startMocks } = await import('./mocks/index.js');
  const plan = planMocks(outbound);
  for (const s of plan.skipped)
    warnings.push({
      code: 'mock-skipped',
      message: `recorded call ${s.id} cannot be mocked: ${s.reason}`,
      call: s.id,
    });
  const handle = await startMocks(plan, outbound, {
    ca,
    miss: spec.mocks.miss,
    bindAddr: bindAddrFor,
    transforms: rules.transforms,
    volatile: volatileFromTokens(rules.tokens),
    // database calls are scoped to the recorded request they were made for
    inbound,
  });
  return { handle, caFile: ca.caCertPath };
}

/** Token engine: values the build hands out (tokens, ids) replace the recorded ones in later requests. */
function tokenHooks(
  rules: ReplayRules,
  inbound: Map<string, Exchange>,
  warnings: RunWarning[],
  mode: ConnectionMode,
): { hooks: DriverHooks; finish(): void } {
  const ctx = createReplayContext({ transforms: rules.transforms, tokens: rules.tokens });
  const hooks: DriverHooks = {
    prepare(item, req) {
      const recorded = inbound.get(item.id);
      if (!recorded) return req;
      const { request } = ctx.prepareRequest(recorded);
      return {
        method: request.method,
        target: request.target,
        headers: sendableHeaders(request.headers, mode),
        body: bodyToSend(request.body, request.headers),
        version: req.version,
      };
    },
    observe(item, _sent, answer) {
      const recorded = inbound.get(item.id);
      if (recorded && answer)
        ctx.observeResponse(recorded, { status: answer.status, headers: answer.headers, body: answer.body });
    },
  };
  return {
    hooks,
    finish() {
      for (const w of ctx.warnings()) {
        if (w.kind === 'rule-note') continue;
        warnings.push({ code: w.kind, message: w.message, item: w.exchange });
      }
    },
  };
}

const readLines = (file: string): Exchange[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => fromStored(JSON.parse(l)));

/**
 * The build's gRPC schema over server reflection, when the recording holds gRPC and reflection is
 * on: over the settings its first gRPC exchange goes out with (h2c, or TLS with its server name).
 */
async function reflect(spec: WorkerSpec): Promise<WorkerOutput['reflection']> {
  if (spec.driver.reflection === false) return undefined;
  const grpc = spec.items.find((i) => i.h2?.messages !== undefined);
  if (!grpc?.h2) return undefined;
  const plan = grpc.h2;
  return askReflection({
    host: '127.0.0.1',
    port: spec.build.port,
    tls: plan.tls === true,
    servername: plan.authority?.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''),
    ...(plan.authority ? { authority: plan.authority } : {}),
    timeoutMs: Math.min(spec.driver.timeoutMs, 10_000),
  });
}

async function main(specPath: string): Promise<void> {
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as WorkerSpec;
  const warnings: RunWarning[] = [];
  const out: WorkerOutput = {
    items: [],
    mocks: { calls: 0, matched: 0, misses: [] },
    warnings,
    buildLog: '',
  };
  const outbound = readLines(spec.mocks.outboundFile);
  const inbound = new Map(readLines(spec.inboundFile).map((e) => [e.id, e]));
  const rules = JSON.parse(readFileSync(spec.rulesFile, 'utf8')) as ReplayRules;
  const secrets = spec.secrets ? await readSecretsFrom(process.stdin) : new Map<string, string | null>();
  // the redaction key is for this process's output, not for the build it starts
  const redactionKey = process.env.RETAP_REDACTION_KEY;
  delete process.env.RETAP_REDACTION_KEY;
  let mocks: MockHandle | undefined;
  let build: ReturnType<typeof startBuild> | undefined;
  let phase: 'startup' | 'replay' | 'stop' = 'startup';
  const stopping = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stopping.abort());
  try {
    const started = await startDependencyMocks(spec, outbound, rules, warnings, [...inbound.values()]);
    mocks = started.handle;
    const caEnv: Record<string, string> = started.caFile
      ? {
          SSL_CERT_FILE: started.caFile,
          NODE_EXTRA_CA_CERTS: started.caFile,
          REQUESTS_CA_BUNDLE: started.caFile,
          CURL_CA_BUNDLE: started.caFile,
        }
      : {};
    const buildOpts = { ...spec.build, env: { ...spec.build.env, ...caEnv } };
    build = startBuild(buildOpts);
    build.onExit((code, signal) => {
      out.buildExit = { code, signal, during: phase };
      if (phase === 'replay') stopping.abort();
    });
    await waitReady(build, buildOpts);
    phase = 'replay';
    const reflected = await reflect(spec);
    if (reflected) out.reflection = reflected;
    const tokens = tokenHooks(rules, inbound, warnings, spec.driver.connections ?? 'recorded');
    const hooks: DriverHooks = {
      prepare: (item, req) => {
        mocks?.setDuring(item.id);
        // static client credentials (placeholders no token flow replaced) go in last
        return restoreRequest(tokens.hooks.prepare ? tokens.hooks.prepare(item, req) : req, secrets);
      },
      observe: (item, sent, answer) => tokens.hooks.observe?.(item, sent, answer),
    };
    let last = 0;
    const driven = await drive(
      `http://127.0.0.1:${spec.build.port}`,
      spec.items,
      spec.lanes,
      spec.driver,
      hooks,
      (p) => {
        // progress for the orchestrator, at most ~10 lines a second
        const now = Date.now();
        if (now - last > 100 || p.done === p.total) {
          last = now;
          process.stdout.write(`RETAP_PROGRESS ${p.done} ${p.total} ${p.errors}\n`);
        }
      },
      stopping.signal,
    );
    out.items = driven.map(toWorkerItem);
    tokens.finish();
    // Transport errors: give a dying build a moment to be seen as exited (not as "refused").
    if (out.items.some((i) => i.error) && !build.exited()) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, 1000);
        build?.onExit(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    if (build.exited()) {
      const e = build.exited()!;
      out.buildExit = { code: e.code, signal: e.signal, during: 'replay' };
      out.error = {
        code: 'RETAP_BUILD_CRASHED',
        message: `the build exited during the replay (${e.signal ?? `code ${e.code}`})\n--- last lines of its output ---\n${tail(build.log())}`,
      };
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    out.error = { code: typeof err.code === 'string' ? err.code : 'RETAP_INTERNAL', message: err.message };
  } finally {
    phase = 'stop';
    await build?.stop();
    out.buildLog = build ? tail(build.log(), 200) : '';
    if (mocks) {
      out.mocks = mocks.stats();
      await mocks.stop().catch(() => undefined);
    }
    // live tokens and restored secrets never reach the disk: redacted like a snapshot
    try {
      redactWorkerOutput(out, {
        enabled: spec.redact === true,
        secrets,
        rules,
        recorded: inbound,
        key: redactionKey,
      });
    } catch (e) {
      out.items = [];
      out.error = {
        code: 'RETAP_INTERNAL',
        message: `cannot redact the replay's answers: ${(e as Error).message}`,
      };
    }
    let text: string;
    try {
      text = JSON.stringify(out);
    } catch (e) {
      const err = tooLarge(e, out.items.length) as Error & { code?: string; hint?: string };
      // what reached the build is gone, but the orchestrator still learns why and tears down
      text = JSON.stringify({
        ...out,
        items: [],
        error: {
          code: err.code ?? 'RETAP_INTERNAL',
          message: `${err.message}${err.hint ? `. ${err.hint}` : ''}`,
        },
      });
    }
    writeFileSync(spec.out, text);
  }
}

const specPath = process.argv[2];
if (!specPath) {
  process.stderr.write('usage: worker.js SPEC.json (started by retap replay)\n');
  process.exit(64);
}
main(specPath).then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`retap replay worker: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(3);
  },
);
