/**
 * What the replay worker (runner/worker.ts, inside a network namespace) and the Kubernetes run
 * pod's worker (runner/k8s/pod-worker.ts, beside the build in its pod) share: the dependency
 * mocks with their ephemeral CA, the token engine's driver hooks, and reading the plan's files.
 */
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { ErrorCodes } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import type { MockMiss, RunWarning } from '../core/results.js';
import { createReplayContext, fromStored, tooLarge } from '../snapshots/replay.js';
import { bindAddrFor } from './addresses.js';
import { bodyToSend, type DriverHooks, sendableHeaders } from './driver.js';
import { volatileFromTokens } from './mocks/index.js';
import type { LiveCall } from './mocks/transport.js';
import { askReflection } from './reflection.js';
import type { ReplayRules } from './rules.js';
import { redactWorkerOutput } from './secrets.js';
import type { ConnectionMode, WorkerOutput, WorkerSpec } from './spec.js';

/**
 * The build's gRPC schema over server reflection, when the recording holds gRPC and reflection is
 * on: over the settings its first gRPC exchange goes out with (h2c, or TLS with its server name).
 */
export async function reflect(spec: WorkerSpec): Promise<WorkerOutput['reflection']> {
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

export interface MockHandle {
  stats(): { calls: number; matched: number; misses: MockMiss[] };
  /** Names the replayed item in misses that happen while it runs. */
  setDuring(id: string | undefined): void;
  stop(): Promise<void>;
}

/** The mock server module (runner/mocks), loaded lazily: a snapshot without dependencies needs none. */
export async function startDependencyMocks(
  spec: WorkerSpec,
  outbound: Exchange[],
  rules: ReplayRules,
  warnings: RunWarning[],
  inbound: Exchange[],
  scopeOf?: (call: LiveCall) => Promise<string | undefined>,
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
    ...(scopeOf ? { scopeOf } : {}),
  });
  return { handle, caFile: ca.caCertPath };
}

/** Token engine: values the build hands out (tokens, ids) replace the recorded ones in later requests. */
export function tokenHooks(
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

/** A JSON Lines file of exchanges, line by line: never the whole file as one string (512 MiB). */
export function readLines(file: string): Exchange[] {
  const buf = readFileSync(file);
  const out: Exchange[] = [];
  for (let at = 0; at < buf.length; ) {
    let end = buf.indexOf(10, at);
    if (end === -1) end = buf.length;
    if (end > at) out.push(fromStored(JSON.parse(buf.toString('utf8', at, end))));
    at = end + 1;
  }
  return out;
}

/** Writes one line per value (JSON Lines) in chunks: never the whole file as one string. */
export async function writeLines(file: string, lines: Iterable<string>): Promise<void> {
  const fh = await open(file, 'w', 0o600);
  try {
    let chunk = '';
    for (const l of lines) {
      chunk += `${l}\n`;
      if (chunk.length >= 1 << 20) {
        await fh.write(chunk);
        chunk = '';
      }
    }
    if (chunk) await fh.write(chunk);
  } finally {
    await fh.close();
  }
}

/**
 * The worker's output as JSON Lines, the way it leaves the worker (to a file locally, on the drive
 * stream from a run pod): the answers redacted like a snapshot — live tokens and restored secrets
 * never reach the disk — one `{"t":"output-item"}` line per item, then one `{"t":"output"}` line
 * with the rest and the item count (the reader's check that nothing was lost). Never one string:
 * a run of any size leaves (the old single document stopped near 80,000 requests). What cannot be
 * redacted leaves no answers, only the error; an item that cannot be serialised ends the output
 * with the error, so the orchestrator still learns why and tears down.
 */
export function* sealOutput(
  out: WorkerOutput,
  redaction: Parameters<typeof redactWorkerOutput>[1],
): Generator<string> {
  try {
    redactWorkerOutput(out, redaction);
  } catch (e) {
    out.items = [];
    out.error = {
      code: ErrorCodes.INTERNAL,
      message: `cannot redact the replay's answers: ${(e as Error).message}`,
    };
  }
  const { items, ...rest } = out;
  let n = 0;
  for (const item of items) {
    let line: string;
    try {
      line = JSON.stringify({ t: 'output-item', item });
    } catch (e) {
      const err = tooLarge(e, 1) as Error & { code?: string; hint?: string };
      rest.error = {
        code: err.code ?? ErrorCodes.INTERNAL,
        message: `request ${item.id} (${item.method} ${item.target}): ${err.message}${err.hint ? `. ${err.hint}` : ''}`,
      };
      break;
    }
    n++;
    yield line;
  }
  yield JSON.stringify({ t: 'output', items: n, output: { ...rest, items: [] } });
}

/**
 * Reads the lines sealOutput wrote (other lines are left to the caller: `false`). `result()` is
 * the output once its last line arrived with as many items as it counts; else undefined.
 */
export function outputReader(): {
  line(ev: { t?: unknown; item?: unknown; items?: unknown; output?: unknown }): boolean;
  result(): WorkerOutput | undefined;
} {
  const items: WorkerOutput['items'] = [];
  let output: WorkerOutput | undefined;
  return {
    line(ev) {
      if (ev.t === 'output-item') {
        items.push(ev.item as WorkerOutput['items'][number]);
        return true;
      }
      if (ev.t !== 'output') return false;
      const o = ev.output as WorkerOutput;
      if (ev.items !== items.length)
        throw new Error(
          `the replay worker's output counts ${String(ev.items)} answers but ${items.length} arrived: answers were lost`,
        );
      output = { ...o, items };
      return true;
    },
    result: () => output,
  };
}
