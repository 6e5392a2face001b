/**
 * `retap replay --k8s --shards N` for N = 1, 2, 4 on the test cluster against the local runner
 * (network namespace, eBPF on the host) replaying the same snapshot in the same run, arms
 * interleaved per round (local, 1, 2, 4): wall time of the whole command, and for the cluster the
 * slowest shard's pod start (Deployment → pod Ready) and drive.
 *
 * The snapshot is the demo's (`retap demo`), replayed with `--connections pooled` by every arm:
 * its client kept one connection, so with connections as recorded it is one lane and nothing to
 * deal; pooled, its six login sessions are the lanes the shards share. Needs the test cluster up
 * (ci/k8s/up) and root for the local runner.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readResults } from '../../snapshots/results.js';
import { buildAndLoad, clusterEnv, retapArgs, root } from '../../test/helpers/k8s.js';
import { installOwnAgent, type OwnAgent } from '../../test/k8s/own-agent.js';
import type { BenchOptions, Row } from '../lib/rows.js';
import { median, range, ratios } from '../lib/stats.js';

const exec = promisify(execFile);
const SHARDS = [1, 2, 4] as const;

async function retap(args: string[], timeoutMs = 600_000): Promise<{ stdout: string; ms: number }> {
  const { file, args: argv, env } = retapArgs(args);
  const t = performance.now();
  const r = await exec(file, argv, { env, timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { stdout: r.stdout, ms: performance.now() - t };
}

/** The largest of a phase over a run's shards (`candidate/s0.driveMs`…, or `candidate.driveMs`). */
function slowest(timings: Record<string, number>, phase: string): number {
  let max = 0;
  for (const [k, v] of Object.entries(timings))
    if (k === `candidate.${phase}` || new RegExp(`^candidate/s\\d+\\.${phase}$`).test(k))
      max = Math.max(max, v);
  return max;
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  const env = clusterEnv();
  if (typeof env === 'string') return [{ figure: 'replay --k8s --shards', value: `not measured: ${env}` }];
  const tag = randomBytes(3).toString('hex');
  const work = mkdtempSync(join(tmpdir(), 'retap-bench-k8sshards-'));
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
    agent = await installOwnAgent(`bench-${tag}`, retapImage);
    const snapshot = join(demoOut, 'snapshots', 'orders', 'v1');
    const secrets = join(demoOut, 'secrets.yaml');
    const recorded = await readResults(join(demoOut, 'results', 'none', 'results.json'));
    const common = [
      '--port',
      '8080',
      ...Object.entries(recorded.runs[0]!.build.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      '--secrets',
      secrets,
      '--connections',
      'pooled',
      '--json',
    ];
    const local = (out: string) => [
      'replay',
      snapshot,
      '--cmd',
      `${process.execPath} ${join(root, 'dist', 'examples', 'demo', 'orders.js')} --port 8080`,
      ...common,
      '--out',
      out,
    ];
    const cluster = (shards: number, out: string) => [
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
      agent!.namespace,
      ...['/app/orders.js', '--port', '8080', '--host', '0.0.0.0'].map((a) => `--arg=${a}`),
      '--shards',
      String(shards),
      ...common,
      '--out',
      out,
    ];
    const rounds = quick ? 1 : 3;
    const wallLocal: number[] = [];
    const wall: Record<number, number[]> = { 1: [], 2: [], 4: [] };
    const podReady: Record<number, number[]> = { 1: [], 2: [], 4: [] };
    const drive: Record<number, number[]> = { 1: [], 2: [], 4: [] };
    for (let i = 0; i < rounds; i++) {
      wallLocal.push((await retap(local(join(work, `local-${i}`)))).ms / 1000);
      for (const n of SHARDS) {
        const out = join(work, `k8s-${n}-${i}`);
        const r = await retap(cluster(n, out));
        const t = (JSON.parse(r.stdout) as { timings: Record<string, number> }).timings;
        // every shard's requests answered, or the row would time a part of the replay
        const res = await readResults(join(out, 'results.json'));
        const answered = res.runs[0]!.items.filter((x) => x.client.status !== undefined).length;
        if (answered !== res.recorded.length)
          throw new Error(`--shards ${n}: ${answered} of ${res.recorded.length} requests answered`);
        wall[n]!.push(r.ms / 1000);
        podReady[n]!.push(slowest(t, 'podReadyMs'));
        drive[n]!.push(slowest(t, 'driveMs'));
      }
    }
    const n = recorded.recorded.length;
    const rows: Row[] = [
      {
        figure: `local runner (netns), demo snapshot (${n} requests, 6 sessions, pooled), whole command: s`,
        value: median(wallLocal),
        spread: range(wallLocal),
      },
    ];
    for (const k of SHARDS) {
      rows.push({
        figure: `--k8s --shards ${k}, whole command: s`,
        value: median(wall[k]!),
        peer: 'local runner (netns)',
        peerValue: median(wallLocal),
        ratio: median(ratios(wall[k]!, wallLocal)),
        spread: range(ratios(wall[k]!, wallLocal)),
      });
    }
    // one pod is the reference for the phases: its own figures, no ratio to itself
    const phase = (figure: string, xs: number[], ref: number[], k: number): Row =>
      k === 1
        ? { figure, value: median(xs), spread: range(xs) }
        : {
            figure,
            value: median(xs),
            peer: '--shards 1',
            peerValue: median(ref),
            ratio: median(ratios(xs, ref)),
            spread: range(ratios(xs, ref)),
          };
    for (const k of SHARDS) {
      rows.push(
        phase(`--shards ${k}: slowest shard's Deployment → pod Ready: ms`, podReady[k]!, podReady[1]!, k),
      );
      rows.push(phase(`--shards ${k}: slowest shard's drive: ms`, drive[k]!, drive[1]!, k));
    }
    return rows;
  } finally {
    await agent?.remove();
    rmSync(work, { recursive: true, force: true });
  }
}
