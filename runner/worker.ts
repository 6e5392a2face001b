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
import { startBuild, tail, waitReady } from './build.js';
import { type DriverHooks, drive } from './driver.js';
import { bindAddrFor } from './addresses.js';
import type { WorkerOutput, WorkerSpec } from './spec.js';

interface MockHandle {
  stats(): { calls: number; matched: number; misses: MockMiss[] };
  stop(): Promise<void>;
}

/** The mock server module (runner/mocks), loaded lazily: a snapshot without dependencies needs none. */
async function startDependencyMocks(
  spec: WorkerSpec,
  outbound: Exchange[],
  warnings: RunWarning[],
): Promise<{ handle?: MockHandle; caFile?: string }> {
  const { createEphemeralCa } = await import('./tls/ca.js');
  const ca = await createEphemeralCa(spec.mocks.caDir);
  if (outbound.length === 0) return { caFile: ca.caCertPath };
  const { planMocks, startMocks } = await import('./mocks/index.js');
  const plan = planMocks(outbound);
  for (const s of plan.skipped) warnings.push({ code: 'mock-skipped', message: `recorded call ${s.id} cannot be mocked: ${s.reason}` });
  const handle = await startMocks(plan, outbound, { ca, miss: spec.mocks.miss, bindAddr: bindAddrFor });
  return { handle, caFile: ca.caCertPath };
}

async function loadHooks(spec: WorkerSpec, warnings: RunWarning[]): Promise<DriverHooks> {
  // The token engine (snapshots/transforms) substitutes values the build hands out (tokens, ids).
  try {
    const hooksModule = '../snapshots/transforms/replay-hooks.js';
    const mod = (await import(hooksModule)) as {
      createReplayHooks?: (snapshotPath: string, warn: (w: RunWarning) => void) => Promise<DriverHooks>;
    };
    if (mod.createReplayHooks) return await mod.createReplayHooks(spec.snapshotPath, (w) => warnings.push(w));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
  }
  return {};
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
  const outbound = readFileSync(spec.mocks.outboundFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => fromStored(JSON.parse(l)));
  let mocks: MockHandle | undefined;
  let build: ReturnType<typeof startBuild> | undefined;
  let phase: 'startup' | 'replay' | 'stop' = 'startup';
  const stopping = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stopping.abort());
  try {
    const started = await startDependencyMocks(spec, outbound, warnings);
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
    const hooks = await loadHooks(spec, warnings);
    let last = 0;
    out.items = await drive(
      `http://127.0.0.1:${spec.build.port}`,
      spec.items,
      spec.sessions,
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
    writeFileSync(spec.out, JSON.stringify(out));
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
