/**
 * Replay worker: runs INSIDE the run's network namespace (started by runner/replay.ts through
 * runner/netns.ts insideNetns). Serves the dependency mocks, starts the build in the run's cgroup,
 * waits until it is ready, drives the recorded requests, stops the build and writes WorkerOutput.
 *
 *   node dist/runner/worker.js SPEC.json
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { ErrorCodes } from '../core/errors.js';
import type { RunWarning, SocketUse } from '../core/results.js';
import { startBuild, tail, waitReady } from './build.js';
import { type DriverHooks, drive, toWorkerItem } from './driver.js';
import { LinkFeed } from './links.js';
import type { LiveCall } from './mocks/transport.js';
import type { ReplayRules } from './rules.js';
import { readSecretsFrom, restoreRequest } from './secrets.js';
import type { WorkerOutput, WorkerSpec } from './spec.js';
import {
  type MockHandle,
  readLines,
  reflect,
  sealOutput,
  startDependencyMocks,
  tokenHooks,
} from './worker-parts.js';

/** How long a mock waits for capture to say which request made a call (then: unscoped). */
const LINK_WAIT_MS = 2000;

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
  let feed: LinkFeed | undefined;
  let build: ReturnType<typeof startBuild> | undefined;
  let phase: 'startup' | 'replay' | 'stop' = 'startup';
  const stopping = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stopping.abort());
  try {
    // which replayed request made each call of the build: capture's links (runner/links.ts) and
    // the requests in flight, by the port each went out from
    const inflight = new Map<SocketUse, string>();
    feed = spec.linksSocket ? await LinkFeed.connect(spec.linksSocket) : undefined;
    const linkFeed = feed;
    const scopeOf = linkFeed
      ? async (call: LiveCall): Promise<string | undefined> => {
          if (!call.conn) return undefined;
          const cause = await linkFeed.causeOf(
            call.conn.remote,
            call.conn.local,
            call.conn.answeredNs,
            LINK_WAIT_MS,
          );
          if (!cause) return undefined;
          for (const [where, id] of inflight) if (where.port === cause.clientPort) return id;
          return undefined;
        }
      : undefined;
    const started = await startDependencyMocks(
      spec,
      outbound,
      rules,
      warnings,
      [...inbound.values()],
      scopeOf,
    );
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
      inflight,
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
        code: ErrorCodes.BUILD_CRASHED,
        message: `the build exited during the replay (${e.signal ?? `code ${e.code}`})\n--- last lines of its output ---\n${tail(build.log())}`,
      };
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    out.error = { code: typeof err.code === 'string' ? err.code : ErrorCodes.INTERNAL, message: err.message };
  } finally {
    phase = 'stop';
    await build?.stop();
    out.buildLog = build ? tail(build.log(), 200) : '';
    if (mocks) {
      out.mocks = mocks.stats();
      await mocks.stop().catch(() => undefined);
    }
    feed?.close();
    const fd = openSync(spec.out, 'w', 0o600);
    try {
      let chunk = '';
      for (const line of sealOutput(out, {
        enabled: spec.redact === true,
        secrets,
        rules,
        recorded: inbound,
        key: redactionKey,
        config: spec.redactionRules,
      })) {
        chunk += `${line}\n`;
        if (chunk.length >= 1 << 20) {
          writeSync(fd, chunk);
          chunk = '';
        }
      }
      writeSync(fd, chunk);
    } finally {
      closeSync(fd);
    }
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
