/**
 * The same snapshot replayed by the local runner (network namespace, eBPF on the host) and by
 * `retap replay --k8s` on the test cluster (a namespace per run, the build's pod, the node agent),
 * arms interleaved A B A B: wall time of the whole command, and for the cluster its phases —
 * namespace create → ready (its default ServiceAccount exists), Deployment → pod Ready (sidecar
 * started, plan uploaded, mocks up, build ready), the drive, and namespace delete → gone.
 * The snapshot is the demo's (`retap demo`: orders with inventory and payments over HTTPS).
 * Needs the test cluster up (ci/k8s/up) and root for the local runner.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readResults } from '../../snapshots/results.js';
import { buildAndLoad, clusterEnv, retapArgs, root } from '../../test/helpers/k8s.js';
import { installOwnAgent, type OwnAgent } from '../../test/k8s/own-agent.js';
import type { BenchOptions, Row } from '../lib/rows.js';
import { median, range, ratios } from '../lib/stats.js';

const exec = promisify(execFile);

async function retap(args: string[], timeoutMs = 600_000): Promise<{ stdout: string; ms: number }> {
  const { file, args: argv, env } = retapArgs(args);
  const t = performance.now();
  const r = await exec(file, argv, { env, timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { stdout: r.stdout, ms: performance.now() - t };
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  const env = clusterEnv();
  if (typeof env === 'string') return [{ figure: 'replay --k8s', value: `not measured: ${env}` }];
  const tag = randomBytes(3).toString('hex');
  const work = mkdtempSync(join(tmpdir(), 'retap-bench-k8srun-'));
  const retapImage = `retap.local/retap:bench-${tag}`;
  const demoImage = `retap.local/retap-demo:bench-${tag}`;
  let agent: OwnAgent | undefined;
  try {
    const demoOut = join(work, 'demo');
    await Promise.all([
      retap(['demo', '--out', demoOut, '--json']),
      buildAndLoad('build', retapImage, join(work, 'retap.tar')),
      buildAndLoad('build-demo', demoImage, join(work, 'demo.tar')),
    ]);
    // an agent of its own: other runs on the cluster install and uninstall retap-system's
    agent = await installOwnAgent(`bench-${tag}`, retapImage);
    const agentNs = agent.namespace;
    const snapshot = join(demoOut, 'snapshots', 'orders', 'v1');
    const secrets = join(demoOut, 'secrets.yaml');
    const recorded = await readResults(join(demoOut, 'results', 'none', 'results.json'));
    const buildEnv = Object.entries(recorded.runs[0]!.build.env ?? {}).flatMap(([k, v]) => [
      '--env',
      `${k}=${v}`,
    ]);
    const local = (out: string) => [
      'replay',
      snapshot,
      '--cmd',
      `${process.execPath} ${join(root, 'dist', 'examples', 'demo', 'orders.js')} --port 8080`,
      '--port',
      '8080',
      ...buildEnv,
      '--secrets',
      secrets,
      '--out',
      out,
      '--json',
    ];
    const cluster = (out: string) => [
      'replay',
      snapshot,
      '--k8s',
      '--image',
      demoImage,
      '--retap-image',
      retapImage,
      '--pull-policy',
      'Never',
      '--agent-namespace',
      agentNs,
      '--port',
      '8080',
      ...['/app/orders.js', '--port', '8080', '--host', '0.0.0.0'].map((a) => `--arg=${a}`),
      ...buildEnv,
      '--secrets',
      secrets,
      '--out',
      out,
      '--json',
    ];
    const rounds = quick ? 1 : 3;
    const wall = { local: [] as number[], k8s: [] as number[] };
    const runMs = { local: [] as number[], k8s: [] as number[] };
    const phases: Record<string, number[]> = {};
    for (let i = 0; i < rounds; i++) {
      const a = await retap(local(join(work, `local-${i}`)));
      wall.local.push(a.ms / 1000);
      runMs.local.push((await readResults(join(work, `local-${i}`, 'results.json'))).runs[0]!.durationMs);
      const b = await retap(cluster(join(work, `k8s-${i}`)));
      wall.k8s.push(b.ms / 1000);
      runMs.k8s.push((await readResults(join(work, `k8s-${i}`, 'results.json'))).runs[0]!.durationMs);
      const t = (JSON.parse(b.stdout) as { timings: Record<string, number> }).timings;
      for (const [k, v] of Object.entries(t)) (phases[k] ??= []).push(v);
    }
    const n = recorded.recorded.length;
    const rows: Row[] = [
      {
        figure: `replay of the demo snapshot (${n} requests), whole command, cluster: s`,
        value: median(wall.k8s),
        peer: 'local runner (netns)',
        peerValue: median(wall.local),
        ratio: median(ratios(wall.k8s, wall.local)),
        spread: range(ratios(wall.k8s, wall.local)),
      },
      {
        figure: 'one run (build start → last answer → build gone), cluster: ms',
        value: median(runMs.k8s),
        peer: 'local runner (netns)',
        peerValue: median(runMs.local),
        ratio: median(ratios(runMs.k8s, runMs.local)),
        spread: range(ratios(runMs.k8s, runMs.local)),
      },
    ];
    const names: Record<string, string> = {
      namespaceReadyMs: 'namespace create → ready (default ServiceAccount): ms',
      'candidate.podReadyMs': 'Deployment → pod Ready (sidecar, upload, mocks, build probe): ms',
      'candidate.driveMs': 'drive in the pod (results streamed back): ms',
      namespaceGoneMs: 'namespace delete → gone: ms',
    };
    for (const [k, label] of Object.entries(names)) {
      const xs = phases[k] ?? [];
      if (xs.length) rows.push({ figure: label, value: median(xs), spread: range(xs) });
    }
    return rows;
  } finally {
    await agent?.remove();
    rmSync(work, { recursive: true, force: true });
  }
}
