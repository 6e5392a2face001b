/**
 * `retap replay --k8s` on the real test cluster (ci/k8s): the demo's snapshot, recorded and
 * judged by the local runner (`retap demo`: eBPF capture, network-namespace replay), is replayed
 * in a namespace per run against the demo's image — the unchanged orders and the one with every
 * seeded regression — and `retap report` must give the same verdict, the same failed assertions
 * and budgets, as it gave the local runs; `retap ci` with `replay.k8s` in retap.yaml gives the same
 * gate, with JUnit, step summary and outputs. Then the failure paths: a build that never becomes
 * ready (exit 3, its pod's events and output); a run pod hurt mid-replay — retap's worker (driver
 * and mocks) killed, the pod deleted, the build killed — exit 3 naming what died, never a verdict,
 * no namespace left; SIGINT (exit 130, partial results, namespace gone); and `kill -9` of the
 * runner followed by `retap gc --k8s` (no namespace left) — by the owner's pid on this host, and
 * by the heartbeat that stopped for an owner on another machine.
 *
 * Runs when the cluster is up (RETAP_K8S=1 makes a missing cluster a failure). The node agent is
 * this test's own (./own-agent.ts, `--agent-namespace`), so other tests that install and
 * uninstall retap-system's agent on the same cluster do not pull it away mid-run.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { readResults } from '../../snapshots/results.js';
import { buildAndLoad, hostPids, kubectl, retapArgs, root, skipCluster, until } from '../helpers/k8s.js';
import { installOwnAgent, type OwnAgent } from './own-agent.js';

const exec = promisify(execFile);

async function retap(
  args: string[],
  timeoutMs = 300_000,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { file, args: argv, env } = retapArgs(args);
  try {
    const r = await exec(file, argv, {
      env: { ...env, ...opts.env },
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string; message: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const BUDGETS = ['GET /orders/{id}: p95 < 100ms', 'errors < 1%', 'mocks >= 100%'];

interface Judged {
  exitCode: number;
  /** Every breaking difference (route: message) and every budget's status. */
  failed: string[];
  line: string;
}

/** `retap report` with the demo's budgets: exit code, what failed, the summary line. */
async function judge(results: string, dir: string): Promise<Judged> {
  const out = join(dir, `report-${randomBytes(3).toString('hex')}.json`);
  const r = await retap([
    'report',
    results,
    '--format',
    'json',
    '-o',
    out,
    '--no-step-summary',
    ...BUDGETS.flatMap((b) => ['--budget', b]),
  ]);
  const v = JSON.parse(readFileSync(out, 'utf8')) as {
    items: Array<{ route: string; diffs: Array<{ noise?: boolean; rating: string; message: string }> }>;
    budgets: Array<{ name: string; status: string }>;
  };
  const failed = new Set<string>();
  for (const i of v.items)
    for (const d of i.diffs) if (!d.noise && d.rating === 'breaking') failed.add(`${i.route}: ${d.message}`);
  for (const b of v.budgets) failed.add(`budget ${b.name}: ${b.status}`);
  return { exitCode: r.code, failed: [...failed].sort(), line: r.stderr.trim().split('\n').pop() ?? '' };
}

async function namespaceExists(ns: string): Promise<boolean> {
  return (await kubectl(['get', 'namespace', ns, '--ignore-not-found', '-o', 'name'])).trim() !== '';
}

describe.skipIf(skipCluster())('retap replay --k8s on the test cluster', () => {
  const tag = randomBytes(4).toString('hex');
  const retapImage = `retap.local/retap:k8srun-${tag}`;
  const demoImage = `retap.local/retap-demo:k8srun-${tag}`;
  let work: string;
  let agent: OwnAgent | undefined;
  let agentNs = '';
  let snapshot: string;
  let secrets: string;
  let buildEnv: Record<string, string>;
  const local: Record<'none' | 'all', Judged> = {} as never;

  /** The demo's orders from its image, listening where the local replay had it. */
  const k8sArgs = (variant: string[], extra: string[] = []): string[] => [
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
    ...['/app/orders.js', '--port', '8080', '--host', '0.0.0.0', ...variant].map((a) => `--arg=${a}`),
    // a regressed build is judged against the unchanged one, as the local demo judges it: without
    // a baseline a route failing as a whole cannot be told from a replay that did not reproduce it
    ...(variant.length
      ? [
          '--baseline-image',
          demoImage,
          ...['/app/orders.js', '--port', '8080', '--host', '0.0.0.0'].map((a) => `--baseline-arg=${a}`),
        ]
      : []),
    ...Object.entries(buildEnv).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
    '--secrets',
    secrets,
    ...extra,
  ];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'retap-k8srun-test-'));
    const demoOut = join(work, 'demo');
    // the local runner's side: the demo records orders with eBPF, replays the unchanged and the
    // regressed build in network namespaces; its results are judged here like the cluster's
    const [demo] = await Promise.all([
      retap(['demo', '--out', demoOut, '--json'], 600_000),
      buildAndLoad('build', retapImage, join(work, 'retap.tar')),
      buildAndLoad('build-demo', demoImage, join(work, 'demo.tar')),
    ]);
    expect(demo.code, demo.stderr.slice(-2000)).toBe(0);
    snapshot = join(demoOut, 'snapshots', 'orders', 'v1');
    secrets = join(demoOut, 'secrets.yaml');
    const none = await readResults(join(demoOut, 'results', 'none', 'results.json'));
    buildEnv = none.runs[0]!.build.env ?? {};
    local.none = await judge(join(demoOut, 'results', 'none'), work);
    // the regressed build judged against the unchanged one (as the demo does, and as the cluster
    // run below is): a local replay of both in network namespaces
    const orders = `${process.execPath} ${join(root, 'dist', 'examples', 'demo', 'orders.js')} --port 8080`;
    const localAll = join(work, 'local-all');
    const rep = await retap([
      'replay',
      snapshot,
      '--cmd',
      `${orders} --variant all`,
      '--baseline-cmd',
      orders,
      '--port',
      '8080',
      ...Object.entries(buildEnv).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      '--secrets',
      secrets,
      '--out',
      localAll,
    ]);
    expect(rep.code, rep.stderr.slice(-2000)).toBe(0);
    local.all = await judge(localAll, work);
    agent = await installOwnAgent(`k8srun-${tag}`, retapImage);
    agentNs = agent.namespace;
  }, 900_000);

  afterAll(async () => {
    await agent?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 300_000);

  for (const [variant, args] of [
    ['none', []],
    ['all', ['--variant', 'all']],
  ] as const) {
    it(`gives the local runner's verdict for the demo's ${variant === 'none' ? 'unchanged' : 'regressed'} build`, async () => {
      const out = join(work, `k8s-${variant}`);
      const r = await retap([...k8sArgs([...args], ['--out', out, '--json'])]);
      expect(r.code, r.stderr).toBe(0);
      const ns = /namespace (retap-run-[a-z0-9]+)/.exec(r.stderr)?.[1];
      expect(ns).toBeDefined();
      expect(await namespaceExists(ns!)).toBe(false);
      const results = await readResults(join(out, 'results.json'));
      expect(results.environment).toEqual({ kind: 'kubernetes', namespace: ns });
      const run = results.runs[0]!;
      // every request answered and seen by the agent at the build's socket; every call mocked
      expect(run.items.filter((i) => i.client.status !== undefined)).toHaveLength(results.recorded.length);
      expect(run.items.filter((i) => i.live)).toHaveLength(results.recorded.length);
      expect(run.mocks.misses).toEqual([]);
      expect(run.items.some((i) => i.outbound.length > 0)).toBe(true);
      const k8s = await judge(out, work);
      console.info(`local: ${local[variant].line}\ncluster: ${k8s.line}`);
      expect(k8s.exitCode).toBe(variant === 'none' ? 0 : 1);
      expect(k8s.exitCode).toBe(local[variant].exitCode);
      expect(k8s.failed).toEqual(local[variant].failed);
    }, 300_000);
  }

  it('two shards give the verdict of one: the regressed build, its sessions split over two run pods', async () => {
    const out = join(work, 'k8s-shards');
    // the demo's client sent everything on one connection: one lane when connections are kept as
    // recorded; pooled, its six login sessions are the lanes to deal
    const r = await retap([
      ...k8sArgs(['--variant', 'all'], ['--out', out, '--shards', '2', '--connections', 'pooled', '--json']),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { timings: Record<string, number>; namespace: string };
    // two run pods, each ready and driven
    expect(Object.keys(summary.timings).filter((k) => /^candidate\/s[01]\.driveMs$/.test(k))).toHaveLength(2);
    expect(await namespaceExists(summary.namespace)).toBe(false);
    const results = await readResults(join(out, 'results.json'));
    // the candidate's shards merged into one run, beside the baseline's
    expect(results.runs.map((r) => r.role)).toEqual(['candidate', 'baseline']);
    expect(results.runs[0]!.items.map((i) => i.id)).toEqual(results.recorded.map((i) => i.id));
    expect(results.runs[0]!.items.filter((i) => i.live)).toHaveLength(results.recorded.length);
    const k8s = await judge(out, work);
    expect(k8s.exitCode).toBe(local.all.exitCode);
    expect(k8s.failed).toEqual(local.all.failed);
  }, 300_000);

  /** `retap ci` in a folder of its own, with replay.k8s in its retap.yaml; GitHub Actions' files set. */
  async function ciOnCluster(name: string, variant: string[]) {
    const dir = join(work, name);
    mkdirSync(dir);
    const app = ['/app/orders.js', '--port', '8080', '--host', '0.0.0.0'];
    writeFileSync(
      join(dir, 'retap.yaml'),
      stringify({
        version: 1,
        replay: {
          snapshot,
          secrets,
          build: { port: 8080, env: buildEnv },
          k8s: {
            image: demoImage,
            args: [...app, ...variant],
            ...(variant.length ? { baselineImage: demoImage, baselineArgs: app } : {}),
            retapImage,
            pullPolicy: 'Never',
            agentNamespace: agentNs,
          },
        },
        assertions: { budgets: BUDGETS },
        ci: { reports: 'reports' },
      }),
    );
    const summary = join(dir, 'step-summary.md');
    const outputs = join(dir, 'outputs.txt');
    writeFileSync(summary, '');
    writeFileSync(outputs, '');
    const r = await retap(['ci', '--json'], 300_000, {
      cwd: dir,
      env: { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary, GITHUB_OUTPUT: outputs },
    });
    const ns = /Kubernetes namespace (retap-run-[a-z0-9]+)/.exec(r.stderr)?.[1];
    expect(ns, r.stderr).toBeDefined();
    expect(await namespaceExists(ns!)).toBe(false);
    const reports = join(dir, 'reports');
    for (const f of ['results.json', 'report.junit.xml', 'report.md', 'report.json'])
      expect(existsSync(join(reports, f)), f).toBe(true);
    const results = await readResults(join(reports, 'results.json'));
    expect(results.environment).toEqual({ kind: 'kubernetes', namespace: ns });
    const k8s = await judge(reports, work);
    return {
      ...r,
      k8s,
      junit: readFileSync(join(reports, 'report.junit.xml'), 'utf8'),
      summary: readFileSync(summary, 'utf8'),
      outputs: readFileSync(outputs, 'utf8'),
    };
  }

  it('retap ci with replay.k8s: the unchanged build passes (exit 0) with JUnit and the step summary', async () => {
    const r = await ciOnCluster('ci-none', []);
    expect(r.code, r.stderr).toBe(0);
    expect(r.outputs).toMatch(/^verdict=pass$/m);
    expect(r.outputs).toMatch(/^exit-code=0$/m);
    const tests = Number(/<testsuites[^>]* tests="(\d+)"/.exec(r.junit)?.[1]);
    expect(tests).toBeGreaterThan(0);
    expect(r.junit).not.toContain('<failure');
    expect(r.summary).toMatch(/retap/i);
    expect(r.summary.length).toBeGreaterThan(100);
    expect(r.k8s.failed).toEqual(local.none.failed);
  }, 300_000);

  it('retap ci with replay.k8s: the regressed build judged against a baseline image fails (exit 1) as locally', async () => {
    const r = await ciOnCluster('ci-all', ['--variant', 'all']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.outputs).toMatch(/^verdict=fail-assertions$/m);
    expect(r.outputs).toMatch(/^exit-code=1$/m);
    const failures = (r.junit.match(/<failure/g) ?? []).length;
    expect(failures).toBeGreaterThan(0);
    expect(r.summary).toMatch(/fail/i);
    expect(r.k8s.exitCode).toBe(local.all.exitCode);
    expect(r.k8s.failed).toEqual(local.all.failed);
  }, 300_000);

  it('runs with exactly the documented rights: a ServiceAccount bound to retap-runner (and the capture Role)', async () => {
    const sa = `retap-runner-${tag}`;
    const home = `retap-k8srun-${tag}`;
    const hadRoles = (
      await kubectl(['get', 'clusterrole', 'retap-runner', 'retap-run', '--ignore-not-found', '-o', 'name'])
    ).trim();
    try {
      await kubectl(['apply', '-f', join(root, 'deploy', 'k8s', 'runner-rbac.yaml')]);
      await kubectl(['create', 'namespace', home]);
      await kubectl(['-n', home, 'create', 'serviceaccount', sa]);
      const who = `system:serviceaccount:${home}:${sa}`;
      await kubectl([
        'create',
        'clusterrolebinding',
        sa,
        '--clusterrole',
        'retap-runner',
        '--serviceaccount',
        `${home}:${sa}`,
      ]);
      await kubectl([
        '-n',
        agentNs,
        'create',
        'rolebinding',
        sa,
        '--role',
        'retap-capture',
        '--serviceaccount',
        `${home}:${sa}`,
      ]);
      // nothing beyond: no deployments, pods or port-forwards outside its own run namespaces
      for (const [verb, what, ns] of [
        ['create', 'deployments', 'default'],
        ['list', 'pods', 'default'],
        ['create', 'pods/portforward', 'kube-system'],
        ['delete', 'namespace/default', ''],
        ['list', 'secrets', 'retap-system'],
      ] as const) {
        // can-i answers on stdout and exits 1 for "no"
        const out = await exec(join(root, 'ci', 'k8s', 'kubectl'), [
          'auth',
          'can-i',
          verb,
          what,
          ...(ns ? ['-n', ns] : []),
          '--as',
          who,
        ]).then(
          (x) => x.stdout,
          (e: { stdout?: string; message: string }) => e.stdout ?? e.message,
        );
        expect(out.trim(), `${verb} ${what} ${ns}`).toMatch(/no$/);
      }
      // a kubeconfig with the service account's token and nothing else
      const admin = await kubectl(['config', 'view', '--raw', '--minify', '-o', 'json']);
      const cluster = (JSON.parse(admin) as { clusters: Array<{ cluster: Record<string, string> }> })
        .clusters[0]!.cluster;
      const token = (await kubectl(['-n', home, 'create', 'token', sa, '--duration', '30m'])).trim();
      const kubeconfig = join(work, 'runner.kubeconfig');
      writeFileSync(
        kubeconfig,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'c', cluster }],
          users: [{ name: sa, user: { token } }],
          contexts: [{ name: 'runner', context: { cluster: 'c', user: sa } }],
          'current-context': 'runner',
        }),
        { mode: 0o600 },
      );
      const out = join(work, 'k8s-runner-sa');
      const r = await retap([...k8sArgs([], ['--out', out, '--kubeconfig', kubeconfig])]);
      expect(r.code, r.stderr).toBe(0);
      const ns = /namespace (retap-run-[a-z0-9]+)/.exec(r.stderr)![1]!;
      expect(await namespaceExists(ns)).toBe(false);
      const k8s = await judge(out, work);
      expect(k8s.exitCode).toBe(local.none.exitCode);
      expect(k8s.failed).toEqual(local.none.failed);
      const results = await readResults(join(out, 'results.json'));
      expect(results.runs[0]!.items.filter((i) => i.live)).toHaveLength(results.recorded.length);
      // gc --k8s works with the same rights (it lists; it deletes only through a run's own binding)
      const gc = await retap(['gc', '--k8s', '--dry-run', '--kubeconfig', kubeconfig, '--json']);
      expect(gc.code, gc.stderr).toBe(0);
    } finally {
      await kubectl(['delete', 'clusterrolebinding', sa, '--ignore-not-found']).catch(() => undefined);
      await kubectl(['-n', agentNs, 'delete', 'rolebinding', sa, '--ignore-not-found']).catch(
        () => undefined,
      );
      await kubectl(['delete', 'namespace', home, '--ignore-not-found', '--wait=false']).catch(
        () => undefined,
      );
      if (!hadRoles)
        await kubectl(['delete', 'clusterrole', 'retap-runner', 'retap-run', '--ignore-not-found']).catch(
          () => undefined,
        );
    }
  }, 300_000);

  it('fails a build that never becomes ready: exit 3, its events and output, no namespace left', async () => {
    // the build listens on 8080, the probe asks 8081
    const args = k8sArgs([]);
    args[args.indexOf('--port') + 1] = '8081';
    const r = await retap([...args, '--ready-timeout', '6s', '--out', join(work, 'never')]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain('RETAP_BUILD_NOT_READY');
    expect(r.stderr).toMatch(/not ready after 6 s \(TCP port 8081\)/);
    expect(r.stderr).toMatch(/Readiness probe failed: .*8081/);
    expect(r.stderr).toContain('RETAP_DEMO_READY'); // the build's own output
    const ns = /namespace (retap-run-[a-z0-9]+)/.exec(r.stderr)![1]!;
    expect(await namespaceExists(ns)).toBe(false);
  }, 300_000);

  /** Starts a slow replay (2 requests/s) and resolves once it is sending, with its namespace. */
  async function slowReplay(out: string) {
    const { file, args, env } = retapArgs(k8sArgs([], ['--rate', '2', '--out', out]));
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((r) =>
      child.once('exit', (code, sig) => r(code ?? (sig ? -1 : null))),
    );
    let ended: number | null | undefined;
    void exited.then((c) => {
      ended = c;
    });
    const namespace = () => /namespace (retap-run-[a-z0-9]+)/.exec(stderr)?.[1];
    try {
      const ns = await until(
        'the replay to start sending',
        async () => {
          if (ended !== undefined) throw new Error(`the replay exited (${ended}) before it sent anything`);
          const ns = namespace();
          return ns && /candidate [1-9]\d*\/\d+/.test(stderr) ? ns : undefined;
        },
        180_000,
        200,
      );
      return { child, ns, exited, stderr: () => stderr };
    } catch (e) {
      // what it said and where it stood, and nothing left running behind the failure
      const ns = namespace();
      const pods = ns ? await kubectl(['-n', ns, 'get', 'pods', '-o', 'wide']).catch(() => '') : '';
      if (ended === undefined) child.kill('SIGINT');
      const code = await Promise.race([
        exited,
        new Promise((r) => setTimeout(() => r('hung'), 60_000).unref()),
      ]);
      if (code === 'hung') child.kill('SIGKILL');
      if (ns)
        await kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']).catch(
          () => undefined,
        );
      throw new Error(`${(e as Error).message}\n${pods}\nretap's stderr:\n${stderr.slice(-4000)}`);
    }
  }

  /** The running (not terminating) run pod of a namespace: name and uid. */
  async function runPod(ns: string): Promise<{ name: string; uid: string }> {
    const items = JSON.parse(await kubectl(['-n', ns, 'get', 'pods', '-o', 'json'])).items as Array<{
      metadata: { name: string; uid: string; deletionTimestamp?: string };
    }>;
    const p = items.find((x) => !x.metadata.deletionTimestamp);
    if (!p) throw new Error(`no run pod in ${ns}`);
    return { name: p.metadata.name, uid: p.metadata.uid };
  }

  /**
   * A replay whose run pod is hurt while it sends: it must end with exit 3 and the code given, name
   * what died, write no verdict a report would take as a whole replay, and leave no namespace.
   */
  const leftBehind: string[] = [];
  async function hurtMidReplay(
    name: string,
    hurt: (ns: string, pod: { name: string; uid: string }) => Promise<void>,
  ) {
    const out = join(work, name);
    const run = await slowReplay(out);
    try {
      await hurt(run.ns, await runPod(run.ns));
      // bounded: the run's own watch aborts a dead forward; the rest is the namespace's deletion
      const code = await Promise.race([
        run.exited,
        new Promise<string>((r) => setTimeout(() => r('still running after 180 s'), 180_000).unref()),
      ]);
      expect(code, run.stderr()).toBe(3);
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.exited;
      const left = await namespaceExists(run.ns).catch(() => false);
      // cleaned up even when the test fails; asserted below
      if (left) await kubectl(['delete', 'namespace', run.ns, '--wait=false']).catch(() => undefined);
      if (left) leftBehind.push(run.ns);
    }
    expect(leftBehind, 'namespaces left behind').not.toContain(run.ns);
    const results = await readResults(join(out, 'results.json'));
    const candidate = results.runs[0]!;
    // the judge refuses it: an error, not a pass and not a verdict on part of the replay
    const report = await retap([
      'report',
      out,
      '--no-step-summary',
      '--format',
      'json',
      '-o',
      join(work, `${name}.json`),
    ]);
    expect(report.code, report.stderr).toBe(3);
    return { stderr: run.stderr(), candidate, recorded: results.recorded.length };
  }

  it("a run pod whose driver is killed mid-replay: exit 3 naming retap's worker and how it died, no namespace left", async () => {
    const r = await hurtMidReplay('driver-killed', async (_ns, pod) => {
      // retap's worker in the pod (driver and mocks), killed on the node as the OOM killer would
      const pids = hostPids(`pod${pod.uid}`, 'pod-worker.js');
      expect(pids.length, `pod-worker.js of pod ${pod.uid} on the host`).toBeGreaterThan(0);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
    });
    expect(r.stderr).toContain('RETAP_K8S_RUN_POD_LOST');
    expect(r.stderr).toMatch(
      /retap's run worker in the run pod retap-run-[a-z0-9]+\/\S+ \(container retap-run: the replay driver and the mocks\) died during the replay \([^)]*exit code 137/,
    );
    expect(r.candidate.error?.code).toBe('RETAP_K8S_RUN_POD_LOST');
    expect(r.stderr).toMatch(
      /\d+ of \d+ requests had been answered — not a replay to judge|its results were lost — not a replay to judge/,
    );
  }, 300_000);

  it('a run pod deleted mid-replay: exit 3, "was deleted during the replay", what was sent kept under the error', async () => {
    const r = await hurtMidReplay('pod-deleted', async (ns, pod) => {
      await kubectl(['-n', ns, 'delete', 'pod', pod.name, '--wait=false']);
    });
    expect(r.stderr).toContain('RETAP_K8S_RUN_POD_LOST');
    expect(r.stderr).toMatch(
      /the run pod retap-run-[a-z0-9]+\/\S+ was deleted (and replaced )?during the replay/,
    );
    expect(r.candidate.error?.code).toBe('RETAP_K8S_RUN_POD_LOST');
    const answered = r.candidate.items.filter((i) => i.client.status !== undefined).length;
    expect(answered).toBeLessThan(r.recorded);
  }, 300_000);

  it('a build that crashes mid-replay: exit 3 RETAP_BUILD_CRASHED with how it ended, no namespace left', async () => {
    const r = await hurtMidReplay('build-crashed', async (_ns, pod) => {
      const pids = hostPids(`pod${pod.uid}`, 'orders.js');
      expect(pids.length, `orders.js of pod ${pod.uid} on the host`).toBeGreaterThan(0);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
    });
    expect(r.stderr).toContain('RETAP_BUILD_CRASHED');
    expect(r.stderr).toMatch(/the build exited during the replay \(\S* ?code 137\)/);
    expect(r.candidate.error?.code).toBe('RETAP_BUILD_CRASHED');
  }, 300_000);

  it('SIGINT: exit 130, what was sent is in the results, the namespace is deleted', async () => {
    const out = join(work, 'sigint');
    const run = await slowReplay(out);
    // a live run's namespace is never gc's
    const gc = await retap(['gc', '--k8s', '--dry-run', '--json']);
    const entry = (JSON.parse(gc.stdout).namespaces as Array<{ namespace: string; action: string }>).find(
      (e) => e.namespace === run.ns,
    );
    expect(entry?.action).toBe('kept');
    run.child.kill('SIGINT');
    expect(await run.exited, run.stderr()).toBe(130);
    expect(await namespaceExists(run.ns)).toBe(false);
    const results = await readResults(join(out, 'results.json'));
    const answered = results.runs[0]!.items.filter((i) => i.client.status !== undefined).length;
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(results.recorded.length);
  }, 300_000);

  it('kill -9 of the runner, then retap gc --k8s: no namespace left', async () => {
    const run = await slowReplay(join(work, 'kill9'));
    run.child.kill('SIGKILL');
    await run.exited;
    // nothing cleaned up behind a killed process: the namespace is still there, owner gone
    expect(await namespaceExists(run.ns)).toBe(true);
    const dry = await retap(['gc', '--k8s', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const listed = JSON.parse(dry.stdout).namespaces as Array<{
      namespace: string;
      action: string;
      reason: string;
    }>;
    expect(listed.find((e) => e.namespace === run.ns)).toMatchObject({ action: 'would-delete' });
    expect(listed.find((e) => e.namespace === run.ns)!.reason).toMatch(
      /owner \(pid \d+ on this host\) is gone/,
    );
    const r = await retap(['gc', '--k8s', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const entries = JSON.parse(r.stdout).namespaces as Array<{ namespace: string; action: string }>;
    expect(entries.find((e) => e.namespace === run.ns)?.action).toBe('deleted');
    expect(await namespaceExists(run.ns)).toBe(false);
  }, 300_000);

  it('kill -9 of a runner on another machine: its heartbeat stops, and gc --k8s reclaims the namespace once it is stale', async () => {
    const run = await slowReplay(join(work, 'kill9-elsewhere'));
    run.child.kill('SIGKILL');
    await run.exited;
    try {
      // the owner as a runner on another host would have written it: this host cannot look up
      // its process, only its heartbeat tells
      await kubectl([
        'annotate',
        'namespace',
        run.ns,
        '--overwrite',
        `retap.dev/owner=ci-runner-elsewhere-${tag}/4242/1`,
      ]);
      const entry = async () => {
        const dry = await retap(['gc', '--k8s', '--dry-run', '--json']);
        expect(dry.code, dry.stderr).toBe(0);
        return (
          JSON.parse(dry.stdout).namespaces as Array<{ namespace: string; action: string; reason?: string }>
        ).find((e) => e.namespace === run.ns);
      };
      const beat = async () =>
        Date.parse(
          (
            await kubectl([
              'get',
              'namespace',
              run.ns,
              '-o',
              'jsonpath={.metadata.annotations.retap\\.dev/heartbeat}',
            ])
          ).trim(),
        );
      const last = await beat();
      // fresh: kept (a live runner elsewhere looks exactly like this)
      if (Date.now() - last < 25_000) expect((await entry())?.action).toBe('kept');
      // nobody refreshes it any more: stale after three periods (30 s), then deleted by gc
      const stale = await until(
        `namespace ${run.ns}'s heartbeat to go stale`,
        async () => {
          const e = await entry();
          return e?.action === 'would-delete' ? e : undefined;
        },
        60_000,
        2_000,
      );
      expect(await beat()).toBe(last);
      expect(stale.reason).toMatch(/heartbeat is \d+ s old \(owner ci-runner-elsewhere-[0-9a-f]+ pid 4242\)/);
      const r = await retap(['gc', '--k8s', '--wait', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(
        (JSON.parse(r.stdout).namespaces as Array<{ namespace: string; action: string }>).find(
          (e) => e.namespace === run.ns,
        )?.action,
      ).toBe('deleted');
      expect(await namespaceExists(run.ns)).toBe(false);
    } finally {
      await kubectl(['delete', 'namespace', run.ns, '--ignore-not-found', '--wait=false']).catch(
        () => undefined,
      );
    }
  }, 300_000);
});
