/**
 * The node agent on the test cluster against `retap capture` on the host, recording the same
 * process under the same load (the demo's orders pod, driven by the demo's traffic generator in a
 * client pod), arms interleaved A B A B:
 *   - CPU per captured exchange of the recorder (the agent's node process; the host's
 *     `retap capture --pid`), and its resident memory while recording;
 *   - time from starting the command to the first exchange on record (both with a request every
 *     100 ms running), from the first exchange's own kernel timestamp;
 *   - the test cluster's warm start and teardown, when the cluster was down at the start (the
 *     bench then brings it up and down itself); its cold build is measured once per machine by
 *     ci/k8s/build and documented in docs/kubernetes.md.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openSnapshot } from '../../../snapshots/index.js';
import { agentPids, buildAndLoad, clusterEnv, hostPids, kubectl, retapArgs, root, until } from '../../../test/helpers/k8s.js';
import { type DemoCluster, deployDemo } from '../../../test/k8s/demo-system.js';
import { cpuTicksSeconds } from '../../lib/procstat.js';
import type { BenchOptions, Row } from '../../lib/rows.js';
import { median, range, ratios } from '../../lib/stats.js';

const exec = promisify(execFile);

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Largest RSS of `pid` seen while `work` runs (sampled every 50 ms). */
async function peakRssDuring<T>(pid: () => number | undefined, work: Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = 0;
  const t = setInterval(() => {
    const p = pid();
    if (p) peak = Math.max(peak, rssMiB(p) || 0);
  }, 50);
  try {
    return { value: await work, peak };
  } finally {
    clearInterval(t);
  }
}

interface Running {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<number>;
}

function startRetap(args: string[]): Running {
  const { file, args: argv, env } = retapArgs(args);
  const child = spawn(file, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited: new Promise((r) => child.on('exit', (code) => r(code ?? -1))),
  };
}

/** One recorder arm under one traffic run: CPU s of the recorder, its peak RSS, exchanges recorded. */
async function arm(
  kind: 'k8s' | 'host',
  demo: DemoCluster,
  ordersPid: number,
  work: string,
  sessions: number,
  seed: number,
): Promise<{ cpu: number; rss: number; exchanges: number; clientCpu: number }> {
  const out = join(work, `${kind}-${seed}`);
  const r =
    kind === 'k8s'
      ? startRetap(['k8s', 'capture', '--namespace', demo.ns, '--selector', 'app=orders', '--out', out, '--json'])
      : startRetap(['capture', '--pid', String(ordersPid), '--out', out, '--json', '--verbose']);
  try {
    await until(`${kind} capture to start`, async () => (/recording/.test(r.stderr()) ? true : undefined), 120_000, 50);
    const agentPid = kind === 'k8s' ? (await agentPids())[0] : undefined;
    const recorder = (): number | undefined => (kind === 'k8s' ? agentPid : r.child.pid);
    const pid = recorder()!;
    const cpu0 = cpuTicksSeconds(pid);
    const client0 = cpuTicksSeconds(r.child.pid!);
    const { peak } = await peakRssDuring(recorder, demo.traffic('orders', sessions, seed));
    // let the last answers reach the recorder before reading its CPU
    await new Promise((res) => setTimeout(res, 1500));
    const cpu = cpuTicksSeconds(pid) - cpu0;
    const clientCpu = cpuTicksSeconds(r.child.pid!) - client0;
    r.child.kill('SIGINT');
    const code = await r.exited;
    if (code !== 0) throw new Error(`${kind} capture exited ${code}: ${r.stderr().slice(-500)}`);
    const summary = JSON.parse(r.stdout()) as { exchanges: number };
    return { cpu, rss: peak, exchanges: summary.exchanges, clientCpu };
  } finally {
    if (r.child.exitCode === null) r.child.kill('SIGKILL');
  }
}

/** Seconds from starting the command to the start of the first exchange it recorded. */
async function timeToFirst(kind: 'k8s' | 'host', demo: DemoCluster, ordersPid: number, work: string, i: number): Promise<number> {
  const out = join(work, `first-${kind}-${i}`);
  const t0 = Date.now();
  const r =
    kind === 'k8s'
      ? startRetap(['k8s', 'capture', '--namespace', demo.ns, '--selector', 'app=orders', '--out', out, '--json', '--duration', '12s'])
      : startRetap(['capture', '--pid', String(ordersPid), '--out', out, '--json', '--duration', '12s']);
  const code = await r.exited;
  if (code !== 0) throw new Error(`${kind} capture exited ${code}: ${r.stderr().slice(-500)}`);
  const snap = await openSnapshot(join(out, 'v1'));
  const first = snap.manifest.timeRange?.firstStartUs;
  if (first === undefined) throw new Error(`${kind}: nothing recorded in 12 s`);
  return first / 1e6 - t0 / 1e3;
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const tag = randomBytes(3).toString('hex');
  let broughtUp = false;
  if (typeof clusterEnv() === 'string') {
    const t = Date.now();
    await exec(join(root, 'ci', 'k8s', 'up'), [], { timeout: 1800_000, maxBuffer: 16 << 20 });
    rows.push({ figure: 'test cluster warm start (ci/k8s/up, binaries cached): s', value: (Date.now() - t) / 1000 });
    broughtUp = true;
  } else {
    rows.push({ figure: 'test cluster warm start: s', value: 'not measured: the cluster was already up' });
  }
  let demo: DemoCluster | undefined;
  let installed = false;
  const work = mkdtempSync(join(tmpdir(), 'retap-bench-k8s-'));
  try {
    const retapImage = `retap.local/retap:bench-${tag}`;
    await Promise.all([
      buildAndLoad('build', retapImage, join(work, 'retap.tar')),
      buildAndLoad('build-demo', `retap.local/retap-demo:bench-${tag}`, join(work, 'demo.tar')),
    ]);
    const { file, args, env } = retapArgs(['k8s', 'install', '--image', retapImage]);
    await exec(file, args, { env, timeout: 300_000 });
    installed = true;
    demo = await deployDemo(`retap-bench-${tag}`, `retap.local/retap-demo:bench-${tag}`);
    const orders = await demo.pod('orders');
    const ordersPid = hostPids(`pod${orders.uid}`, 'orders.js')[0];
    if (!ordersPid) throw new Error('the orders process was not found on the host');
    const idleAgentRss = rssMiB((await agentPids())[0]!);

    // time to the first exchange, with a request every 100 ms
    const ticker = `const u='http://${demo.ip.orders}/health';const end=Date.now()+${quick ? 90_000 : 240_000};(function t(){if(Date.now()>end)return;fetch(u).then(r=>r.arrayBuffer()).catch(()=>0).finally(()=>setTimeout(t,100))})()`;
    const tick = kubectl(['-n', demo.ns, 'exec', 'client', '--', '/usr/local/bin/node', '-e', ticker], undefined, 300_000).catch(() => '');
    const firstK8s: number[] = [];
    const firstHost: number[] = [];
    for (let i = 0; i < (quick ? 2 : 4); i++) {
      firstK8s.push(await timeToFirst('k8s', demo, ordersPid, work, i));
      firstHost.push(await timeToFirst('host', demo, ordersPid, work, i));
    }
    rows.push({
      figure: 'k8s: from `retap k8s capture` to the first exchange: s',
      value: median(firstK8s),
      peer: '`retap capture --pid` on the host',
      peerValue: median(firstHost),
      ratio: median(ratios(firstK8s, firstHost)),
      spread: range(ratios(firstK8s, firstHost)),
    });
    await tick;

    // CPU and memory per exchange, same load, interleaved
    const sessions = quick ? 15 : 40;
    const k8s: Array<Awaited<ReturnType<typeof arm>>> = [];
    const host: Array<Awaited<ReturnType<typeof arm>>> = [];
    for (let i = 0; i < (quick ? 2 : 5); i++) {
      k8s.push(await arm('k8s', demo, ordersPid, work, sessions, 1000 + i));
      host.push(await arm('host', demo, ordersPid, work, sessions, 1000 + i));
    }
    const perEx = (a: typeof k8s) => a.map((x) => (x.cpu / x.exchanges) * 1e6);
    rows.push({
      figure: 'k8s: agent CPU per captured exchange: µs',
      value: median(perEx(k8s)),
      peer: '`retap capture --pid` on the host',
      peerValue: median(perEx(host)),
      ratio: median(ratios(perEx(k8s), perEx(host))),
      spread: range(ratios(perEx(k8s), perEx(host))),
    });
    rows.push({
      figure: 'k8s: agent RSS while recording: MiB',
      value: median(k8s.map((x) => x.rss)),
      peer: '`retap capture --pid` on the host',
      peerValue: median(host.map((x) => x.rss)),
      ratio: median(ratios(k8s.map((x) => x.rss), host.map((x) => x.rss))),
      spread: range(ratios(k8s.map((x) => x.rss), host.map((x) => x.rss))),
    });
    rows.push({ figure: 'k8s: agent RSS idle (no capture): MiB', value: idleAgentRss });
    rows.push({
      figure: 'k8s: `retap k8s capture` (the client: stream, redaction, snapshot) CPU per exchange: µs',
      value: median(k8s.map((x) => (x.clientCpu / x.exchanges) * 1e6)),
    });
    rows.push({
      figure: 'k8s: exchanges recorded per run (same load)',
      value: median(k8s.map((x) => x.exchanges)),
      peer: '`retap capture --pid` on the host',
      peerValue: median(host.map((x) => x.exchanges)),
    });
  } finally {
    await demo?.delete().catch(() => undefined);
    if (installed) {
      const { file, args, env } = retapArgs(['k8s', 'uninstall']);
      await exec(file, args, { env, timeout: 300_000 }).catch(() => undefined);
    }
    rmSync(work, { recursive: true, force: true });
    if (broughtUp) {
      const t = Date.now();
      await exec(join(root, 'ci', 'k8s', 'down'), [], { timeout: 600_000, maxBuffer: 16 << 20 });
      rows.push({ figure: 'test cluster teardown (ci/k8s/down): s', value: (Date.now() - t) / 1000 });
    }
  }
  return rows;
}
