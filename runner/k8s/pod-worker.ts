/**
 * The run pod's worker (`retap replay --k8s`): a sidecar beside the build under test, in the
 * build's own pod, started from retap's image. The pod is the run's network namespace: the mocks
 * listen on loopback addresses that the pod's hostAliases give the recorded dependency names, and
 * the driver sends to the build on 127.0.0.1 — as runner/worker.ts does inside a local namespace.
 *
 * The runner reaches it only through a port-forward (the control listener is on 127.0.0.1):
 *   PUT  /v1/files/NAME   spec.json, outbound.jsonl, inbound.jsonl, rules.json (streamed to disk,
 *                         so a snapshot of any size arrives; nothing goes through etcd)
 *   POST /v1/start        { secrets, redactionKey } → the CA (its certificate copied to the
 *                         volume the build reads), the mocks; then /started answers 200 and the
 *                         kubelet starts the build container (a native sidecar's startup probe)
 *   POST /v1/drive        NDJSON: {"t":"progress",…}… then the output's lines; {"t":"alive"}
 *                         every 5 s throughout, so a silent stream is a stalled one
 *   POST /v1/stop         ends a drive early (the runner's SIGINT/SIGTERM); its output still comes
 * The health listener (all addresses, for the kubelet) says nothing but whether it started.
 *
 *   node dist/runner/k8s/pod-worker.js --control 19450 --health 19451 --work DIR --ca-out DIR
 */

import { once } from 'node:events';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { ErrorCodes } from '../../core/errors.js';
import type { RunWarning } from '../../core/results.js';
import { type DriverHooks, drive, toWorkerItem } from '../driver.js';
import type { ReplayRules } from '../rules.js';
import { restoreRequest } from '../secrets.js';
import type { WorkerOutput, WorkerSpec } from '../spec.js';
import {
  type MockHandle,
  readLines,
  reflect,
  sealOutput,
  startDependencyMocks,
  tokenHooks,
} from '../worker-parts.js';
import { WORKER_ALIVE_EVERY_MS } from './manifests.js';

export const POD_FILES = ['spec.json', 'outbound.jsonl', 'inbound.jsonl', 'rules.json'] as const;
/** The CA certificate's name in the volume shared with the build container. */
export const CA_FILE = 'ca.pem';

interface StartBody {
  secrets?: Record<string, string | null>;
  redactionKey?: string;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      control: { type: 'string' },
      health: { type: 'string' },
      work: { type: 'string' },
      'ca-out': { type: 'string' },
    },
  });
  const work = values.work ?? '/retap/work';
  const caOut = values['ca-out'] ?? '/retap/ca';
  mkdirSync(work, { recursive: true, mode: 0o700 });
  mkdirSync(caOut, { recursive: true });
  const warnings: RunWarning[] = [];
  let spec: WorkerSpec | undefined;
  let rules: ReplayRules | undefined;
  let inbound = new Map<string, ReturnType<typeof readLines>[number]>();
  let secrets = new Map<string, string | null>();
  let redactionKey: string | undefined;
  let mocks: MockHandle | undefined;
  let started = false;
  let driving = false;
  /** Set when the drive's answer has been written (or could not be). */
  let driveEnded: Promise<void> = Promise.resolve();
  const stopping = new AbortController();
  /** The kubelet's SIGTERM (the pod deleted, evicted, drained), as opposed to the runner's /v1/stop. */
  let terminated: string | undefined;

  const start = async (body: StartBody): Promise<void> => {
    spec = JSON.parse(readFileSync(join(work, 'spec.json'), 'utf8')) as WorkerSpec;
    spec.mocks.outboundFile = join(work, 'outbound.jsonl');
    spec.inboundFile = join(work, 'inbound.jsonl');
    spec.rulesFile = join(work, 'rules.json');
    spec.mocks.caDir = join(work, 'ca');
    const outbound = readLines(spec.mocks.outboundFile);
    inbound = new Map(readLines(spec.inboundFile).map((e) => [e.id, e]));
    rules = JSON.parse(readFileSync(spec.rulesFile, 'utf8')) as ReplayRules;
    secrets = new Map(Object.entries(body.secrets ?? {}));
    redactionKey = body.redactionKey;
    const s = await startDependencyMocks(spec, outbound, rules, warnings, [...inbound.values()]);
    mocks = s.handle;
    // only the certificate reaches the build's volume; the CA's key stays here
    // (readable by the build's user, whichever it is)
    if (s.caFile) writeFileSync(join(caOut, CA_FILE), readFileSync(s.caFile), { mode: 0o644 });
    started = true;
  };

  const runDrive = async (res: ServerResponse, abort: AbortSignal): Promise<void> => {
    if (!spec || !rules) throw new Error('not started');
    const out: WorkerOutput = {
      items: [],
      mocks: { calls: 0, matched: 0, misses: [] },
      warnings,
      buildLog: '',
    };
    const line = (v: unknown): void => void res.write(`${JSON.stringify(v)}\n`);
    try {
      // the kubelet found it ready; the driver's own path (loopback) must see it too
      const deadline = Date.now() + 10_000;
      while (!(await tcpOpen(spec.build.port))) {
        if (Date.now() > deadline)
          throw new Error(
            `the build is Ready but 127.0.0.1:${spec.build.port} refuses connections in its pod`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
      // names for gRPC fields from the build itself, as the local worker asks them
      const reflected = await reflect(spec);
      if (reflected) out.reflection = reflected;
      const tokens = tokenHooks(rules, inbound, warnings, spec.driver.connections ?? 'recorded');
      const hooks: DriverHooks = {
        prepare: (item, req) => {
          mocks?.setDuring(item.id);
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
          const now = Date.now();
          if (now - last > 250 || p.done === p.total) {
            last = now;
            line({ t: 'progress', done: p.done, total: p.total, errors: p.errors });
          }
        },
        AbortSignal.any([abort, stopping.signal]),
      );
      out.items = driven.map(toWorkerItem);
      tokens.finish();
      if (terminated)
        throw Object.assign(
          new Error(
            `retap's run worker got ${terminated} during the replay (its pod is being deleted or evicted): ${driven.filter((d) => d.answer).length} of ${spec.items.length} requests answered`,
          ),
          { code: ErrorCodes.K8S_RUN_POD_LOST },
        );
      // calls the build makes right after its last answer still count
      await new Promise((r) => setTimeout(r, 200));
    } catch (e) {
      const err = e as Error & { code?: string };
      out.error = {
        code: typeof err.code === 'string' ? err.code : ErrorCodes.INTERNAL,
        message: err.message,
      };
    }
    if (mocks) out.mocks = mocks.stats();
    // the output's lines, at the pace the runner reads them
    for (const l of sealOutput(out, {
      enabled: spec.redact === true,
      secrets,
      rules,
      recorded: inbound,
      key: redactionKey,
      config: spec.redactionRules,
    })) {
      if (res.destroyed) break; // the runner went away: nothing to send to
      if (!res.write(`${l}\n`)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
    res.end();
  };

  const control = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://pod');
    const file = /^\/v1\/files\/([a-z.]+)$/.exec(url.pathname)?.[1];
    if (req.method === 'PUT' && file) {
      if (!(POD_FILES as readonly string[]).includes(file) || started)
        return send(res, 400, { error: `cannot take ${file}` });
      pipeline(req, createWriteStream(join(work, file), { mode: 0o600 })).then(
        () => send(res, 200, { file }),
        (e: Error) => send(res, 500, { error: e.message }),
      );
      return;
    }
    if (req.method === 'POST' && url.pathname === '/v1/start') {
      if (started) return send(res, 409, { error: 'already started' });
      readBody(req)
        .then((b) => start(JSON.parse(b || '{}') as StartBody))
        .then(
          () => send(res, 200, { started: true }),
          (e: Error) => send(res, 500, { error: e.message }),
        );
      return;
    }
    if (req.method === 'POST' && url.pathname === '/v1/drive') {
      if (!started || driving) return send(res, 409, { error: started ? 'already driving' : 'not started' });
      driving = true;
      const abort = new AbortController();
      // the runner went away (SIGINT, lost forward): stop sending
      res.on('close', () => abort.abort());
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      // a line every few seconds, whatever the drive does (a slow start, a slow build), so the
      // runner tells a stalled forward from a worker at work (runner/k8s/run.ts DRIVE_IDLE_MS)
      const beat = setInterval(() => {
        if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify({ t: 'alive' })}\n`);
      }, WORKER_ALIVE_EVERY_MS);
      driveEnded = runDrive(res, abort.signal)
        .catch((e: Error) => {
          res.end(`${JSON.stringify({ t: 'error', error: e.message })}\n`);
        })
        .finally(() => clearInterval(beat));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/v1/stop') {
      // the runner was interrupted: the drive ends and its answer carries what was sent so far
      stopping.abort();
      return send(res, 200, { stopping: true });
    }
    send(res, 404, { error: 'no such endpoint' });
  });
  const health = createServer((req, res) => {
    if (req.url === '/started') return send(res, started ? 200 : 503, { started });
    send(res, 404, { error: 'no such endpoint' });
  });
  await new Promise<void>((r) => control.listen(Number(values.control ?? 19450), '127.0.0.1', r));
  await new Promise<void>((r) => health.listen(Number(values.health ?? 19451), r));
  process.stdout.write(
    `retap run pod worker: control 127.0.0.1:${values.control ?? 19450}, health :${values.health ?? 19451}\n`,
  );
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const)
      process.once(sig, () => {
        terminated = sig;
        stopping.abort();
        resolve();
      });
  });
  // a drive under way writes its answer (what was sent, marked as cut short) before the worker
  // goes: within the pod's grace period (5 s)
  if (driving) await Promise.race([driveEnded, new Promise((r) => setTimeout(r, 3000).unref())]);
  control.close();
  health.close();
  await mocks?.stop().catch(() => undefined);
}

if (process.argv[1]?.endsWith('pod-worker.js')) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`retap run pod worker: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(3);
    },
  );
}
