/**
 * retap's node agent on the real test cluster (ci/k8s): installed by `retap k8s install` from
 * retap's image, it records the demo system (three Node services from their own image, payments
 * over HTTPS through node's OpenSSL) for `retap k8s capture`, which streams the exchanges back
 * through the API server. Checked against what the traffic generator sent and what the
 * dependencies counted: every inbound and outbound exchange, TLS included, nothing of the
 * untargeted copy beside it, a replaced pod followed. Then least privilege: the agent's
 * ServiceAccount is refused what its RBAC does not grant, and each of its capabilities is
 * removed in turn to see what breaks. Last, `retap k8s uninstall` leaves nothing.
 *
 * Runs when the cluster is up (RETAP_K8S=1 makes a missing cluster a failure).
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig, type V1DaemonSet } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { api } from '../../capture/k8s/kube.js';
import { openPortForward, podHttp } from '../../capture/k8s/portforward.js';
import type { Exchange } from '../../core/exchange.js';
import { openSnapshot } from '../../snapshots/index.js';
import {
  agentPids,
  buildAndLoad,
  KUBECONFIG,
  kubectl,
  procIdentity,
  procSummary,
  retapArgs,
  root,
  skipCluster,
  until,
} from '../helpers/k8s.js';
import { answered, type DemoCluster, delta, deployDemo } from './demo-system.js';

const exec = promisify(execFile);

async function retap(
  args: string[],
  timeoutMs = 240_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { file, args: argv, env } = retapArgs(args);
  try {
    const r = await exec(file, argv, { env, timeout: timeoutMs, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string; message: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** `GET /stock/abc` → `GET /stock/:sku`, as the demo's /stats name routes. */
function route(ex: Exchange): string {
  const path = ex.request.target.split('?')[0]!;
  return `${ex.request.method} ${path.replace(/^\/stock\/[^/]+$/, '/stock/:sku')}`;
}

function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
  return out;
}

describe.skipIf(skipCluster())('retap node agent on the test cluster', () => {
  const tag = randomBytes(4).toString('hex');
  const retapImage = `retap.local/retap:agent-${tag}`;
  const demoImage = `retap.local/retap-demo:agent-${tag}`;
  const ns = `retap-agent-${tag}`;
  let work: string;
  let demo: DemoCluster | undefined;
  let installed = false;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'retap-agent-test-'));
    await Promise.all([
      buildAndLoad('build', retapImage, join(work, 'retap.tar')),
      buildAndLoad('build-demo', demoImage, join(work, 'demo.tar')),
    ]);
    const [r, d] = await Promise.all([
      retap(['k8s', 'install', '--image', retapImage, '--json']),
      deployDemo(ns, demoImage),
    ]);
    demo = d;
    installed = r.code === 0;
    if (r.code !== 0) throw new Error(`retap k8s install failed (${r.code}): ${r.stderr}`);
  }, 600_000);

  afterAll(async () => {
    await demo?.delete().catch((e: Error) => console.warn(`could not delete namespace ${ns}: ${e.message}`));
    await kubectl(['-n', 'retap-system', 'delete', 'jobs', '-l', `retap-test=${tag}`, '--wait=false']).catch(
      () => '',
    );
    if (installed) await retap(['k8s', 'uninstall']).catch(() => undefined);
    if (work) rmSync(work, { recursive: true, force: true });
  }, 300_000);

  it('installs with server-side apply: every node has a ready agent, the objects belong to field manager retap', async () => {
    const status = await retap(['k8s', 'status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as {
      ready: boolean;
      daemonSet: { image: string };
      agents: Array<{ ready: boolean }>;
    };
    expect(s.ready).toBe(true);
    expect(s.daemonSet.image).toBe(retapImage);
    expect(s.agents.every((a) => a.ready)).toBe(true);
    const ds = JSON.parse(
      await kubectl([
        '-n',
        'retap-system',
        'get',
        'daemonset',
        'retap-agent',
        '-o',
        'json',
        '--show-managed-fields',
      ]),
    ) as V1DaemonSet;
    expect(ds.metadata?.managedFields?.some((m) => m.manager === 'retap' && m.operation === 'Apply')).toBe(
      true,
    );
    // running it again is an update, not an error
    const again = await retap(['k8s', 'install', '--image', retapImage, '--no-wait']);
    expect(again.code, again.stderr).toBe(0);
  }, 120_000);

  it('captures every inbound and outbound exchange of the selected pods, TLS included, nothing of the pod beside them, and follows a replaced pod', async () => {
    const d = demo!;
    const out = join(work, 'snap');
    const { file, args, env } = retapArgs([
      'k8s',
      'capture',
      '--namespace',
      ns,
      '--selector',
      'app=orders',
      '--out',
      out,
      '--json',
    ]);
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
    try {
      await until(
        'the capture to start',
        async () => (stderr.includes('recording on') ? true : undefined),
        90_000,
      );
      const canaryPod = await d.pod('orders-canary');
      const s0 = await d.stats();
      const a = await d.traffic('orders', 3, 11);
      const s1 = await d.stats();
      // the untargeted copy, same image, same dependencies, same node: none of it may show up
      const b = await d.traffic('orders-canary', 2, 12);
      const { before, after } = await d.replace('orders');
      const s2 = await d.stats();
      const c = await d.traffic('orders', 3, 13);
      const s3 = await d.stats();
      expect(
        a.errors + b.errors + c.errors,
        JSON.stringify([a.errorSamples, b.errorSamples, c.errorSamples]),
      ).toBe(0);

      child.kill('SIGINT');
      expect(await exited, stderr).toBe(0);
      const summary = JSON.parse(stdout) as {
        path: string;
        nodes: Array<{ lostExchanges: number; counters: Record<string, number> }>;
      };
      const snap = await openSnapshot(summary.path);
      const all: Exchange[] = [];
      for await (const ex of snap.exchanges()) all.push(ex);

      // only orders' own pods, never the canary, inventory or payments
      expect(new Set(all.map((e) => e.service.k8s?.workload?.name))).toEqual(new Set(['orders']));
      expect(all.some((e) => e.service.k8s?.pod === canaryPod.name || e.service.addr === canaryPod.ip)).toBe(
        false,
      );
      const of = (pod: string, dir: string) =>
        all.filter((e) => e.service.k8s?.pod === pod && e.direction === dir);

      // inbound: exactly what the traffic generator got answers to, on the pod that answered it
      expect(of(before, 'inbound')).toHaveLength(answered(a));
      expect(of(after, 'inbound')).toHaveLength(answered(c));
      // outbound: exactly what inventory and payments counted, per route; the HTTPS calls in plaintext
      const want = (
        x: { inventory: Record<string, number>; payments: Record<string, number> },
        y: typeof x,
      ) => ({
        ...delta(x.inventory, y.inventory),
        ...delta(x.payments, y.payments),
      });
      expect(countBy(of(before, 'outbound'), route)).toEqual(want(s1, s0));
      expect(countBy(of(after, 'outbound'), route)).toEqual(want(s3, s2));
      const charges = all.filter((e) => route(e) === 'POST /charges');
      expect(charges.length).toBeGreaterThan(0);
      expect(
        charges.every((e) => e.tls && e.response?.status === 201 && e.peer.k8s?.service === 'payments'),
      ).toBe(true);
      // every exchange is labelled, and ids stay unique once nodes are merged
      for (const e of all) {
        expect(e.service.k8s).toMatchObject({
          namespace: ns,
          container: 'orders',
          workload: { kind: 'Deployment', name: 'orders' },
        });
      }
      expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
      // nothing lost between the agent and here, and the manifest says so per node
      expect(summary.nodes.every((n) => n.lostExchanges === 0 && (n.counters.ringbufDrops ?? 0) === 0)).toBe(
        true,
      );
      expect(snap.manifest.counters.streamLostExchanges).toBe(0);
      expect(Object.keys(snap.manifest.counters).some((k) => k.startsWith('nodes/'))).toBe(true);
      expect(snap.manifest.source.filters).toMatchObject({
        kubernetes: { namespace: ns, selector: 'app=orders' },
      });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 420_000);

  it('goes on when the agent is replaced mid-capture, and names the window nothing was recorded in', async () => {
    const d = demo!;
    const out = join(work, 'snap-replaced');
    const { file, args, env } = retapArgs([
      'k8s',
      'capture',
      '--namespace',
      ns,
      '--selector',
      'app=orders',
      '--out',
      out,
      '--json',
    ]);
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
    try {
      await until(
        'the capture to start',
        async () => (stderr.includes('recording on') ? true : undefined),
        90_000,
      );
      const a = await d.traffic('orders', 2, 21);
      await kubectl([
        '-n',
        'retap-system',
        'delete',
        'pod',
        '-l',
        'app.kubernetes.io/name=retap-agent',
        '--wait=false',
      ]);
      await until(
        'the capture to move to the new agent',
        async () => (stderr.includes('recording again on') ? true : undefined),
        180_000,
        500,
      );
      const c = await d.traffic('orders', 2, 22);
      child.kill('SIGINT');
      expect(await exited, stderr).toBe(0);
      const summary = JSON.parse(stdout) as {
        path: string;
        nodes: Array<{ gaps: unknown[]; lostExchanges: number }>;
      };
      const snap = await openSnapshot(summary.path);
      let inbound = 0;
      for await (const ex of snap.exchanges()) if (ex.direction === 'inbound') inbound++;
      // the old agent drained before it went: nothing of either batch is missing
      expect(inbound).toBe(answered(a) + answered(c));
      expect(summary.nodes[0]!.gaps).toHaveLength(1);
      expect(summary.nodes[0]!.lostExchanges).toBe(0);
      expect(snap.manifest.counters.streamGaps).toBe(1);
      expect(snap.manifest.notes.join('\n')).toMatch(
        /node retap-node: nothing recorded from \S+ to \S+ \(the agent was replaced/,
      );
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 420_000);

  it('captures the pods annotated retap.dev/capture: "true", and only them', async () => {
    const d = demo!;
    const canary = await d.pod('orders-canary');
    await kubectl(['-n', ns, 'annotate', 'pod', canary.name, 'retap.dev/capture=true']);
    const out = join(work, 'snap-annotated');
    const { file, args, env } = retapArgs(['k8s', 'capture', '--annotated', '--namespace', ns, '--out', out, '--json']);
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
    try {
      await until('the capture to start', async () => (stderr.includes('recording on') ? true : undefined), 90_000);
      const toCanary = await d.traffic('orders-canary', 1, 31);
      await d.traffic('orders', 1, 32); // not annotated: must not appear
      child.kill('SIGINT');
      expect(await exited, stderr).toBe(0);
      const snap = await openSnapshot((JSON.parse(stdout) as { path: string }).path);
      const all: Exchange[] = [];
      for await (const ex of snap.exchanges()) all.push(ex);
      expect(new Set(all.map((e) => e.service.k8s?.pod))).toEqual(new Set([canary.name]));
      expect(all.filter((e) => e.direction === 'inbound')).toHaveLength(answered(toCanary));
      expect(snap.manifest.name).toBe('snap-annotated');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 300_000);

  it("refuses the agent's ServiceAccount everything its RBAC does not grant", async () => {
    const token = (
      await kubectl(['-n', 'retap-system', 'create', 'token', 'retap-agent', '--duration=10m'])
    ).trim();
    const admin = new KubeConfig();
    admin.loadFromFile(KUBECONFIG);
    const cluster = admin.getCurrentCluster()!;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'test',
          server: cluster.server,
          caData: cluster.caData,
          caFile: cluster.caFile,
          skipTLSVerify: false,
        },
      ],
      users: [{ name: 'agent', token }],
      contexts: [{ name: 'agent', cluster: 'test', user: 'agent' }],
      currentContext: 'agent',
    });
    const core = kc.makeApiClient(CoreV1Api);
    // what it needs: the pods of its node
    const pods = await api('list pods', () =>
      core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=retap-node' }),
    );
    expect(pods.items.length).toBeGreaterThan(0);
    // what it must not do
    const refused = async (what: string, call: () => Promise<unknown>) => {
      const e = await api(what, call).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e, `${what} was allowed`).toMatchObject({ code: 'RETAP_K8S_FORBIDDEN' });
      expect((e as Error).message).toContain(what);
    };
    await refused('list secrets', () => core.listSecretForAllNamespaces());
    await refused('list services', () => core.listServiceForAllNamespaces());
    await refused('list nodes', () => core.listNode());
    await refused('create a pod', () =>
      core.createNamespacedPod({
        namespace: ns,
        body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: demoImage }] } },
      }),
    );
    await refused('delete a pod', () => core.deleteNamespacedPod({ name: 'client', namespace: ns }));
    // and no way into other pods
    const forward = await openPortForward(kc, ns, 'client', 8080).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(forward).toMatchObject({ code: 'RETAP_K8S_FORBIDDEN' });
  }, 60_000);

  it('a port-forward that goes silent ends at its idle timeout; one that keeps talking does not', async () => {
    // in the client pod: /silent takes the request and never answers, /drip answers a line every
    // 300 ms for 3 s, /stall answers one line and then nothing. The server ends when its stdin closes (this test's kubectl exec -i ends), or
    // after 90 s whatever happens to this test.
    const server = `require('node:http').createServer((q, s) => {
      if (q.url === '/stall') {
        s.writeHead(200);
        s.write('line 0\\n');
        return;
      }
      if (q.url !== '/drip') return;
      let n = 0;
      s.writeHead(200);
      const t = setInterval(() => { s.write('line ' + n + '\\n'); if (++n === 10) { clearInterval(t); s.end(); } }, 300);
    }).listen(9099);
    process.stdin.on('end', () => process.exit(0)).resume();
    setTimeout(() => process.exit(0), 90000);`;
    const session = spawn(
      join(root, 'ci', 'k8s', 'kubectl'),
      ['-n', ns, 'exec', '-i', 'client', '--', '/usr/local/bin/node', '-e', server],
      { stdio: ['pipe', 'ignore', 'ignore'] },
    );
    const kc = new KubeConfig();
    kc.loadFromFile(KUBECONFIG);
    const target = { namespace: ns, pod: 'client', port: 9099 };
    try {
      await until(
        'the server in the client pod',
        () =>
          podHttp(kc, target, { method: 'GET', path: '/drip' }).then(
            (r) => {
              r.resume();
              return true;
            },
            () => undefined,
          ),
        30_000,
        500,
      );
      const silent = await podHttp(kc, target, { method: 'GET', path: '/silent', timeoutMs: 1500 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(silent).toMatchObject({ code: 'RETAP_K8S_UNREACHABLE' });
      expect((silent as Error).message).toMatch(/nothing from .*client:9099 for 1\.5 s/);
      // 3 s of answer, never 1.5 s silent: the whole answer arrives
      const drip = await podHttp(kc, target, { method: 'GET', path: '/drip', timeoutMs: 1500 });
      let body = '';
      for await (const c of drip) body += String(c);
      expect(body.trim().split('\n')).toHaveLength(10);
      // an answer that stops half-way: its reader gets the same error, after what did arrive
      const stall = await podHttp(kc, target, { method: 'GET', path: '/stall', timeoutMs: 1500 });
      let got = '';
      const cut = await (async () => {
        for await (const c of stall) got += String(c);
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(got).toBe('line 0\n');
      expect(cut).toMatchObject({ code: 'RETAP_K8S_UNREACHABLE' });
    } finally {
      session.stdin.end();
      const ended = new Promise((r) => session.once('exit', r));
      if (session.exitCode === null && session.signalCode === null)
        await Promise.race([ended, new Promise((r) => setTimeout(r, 10_000).unref())]);
      session.kill('SIGKILL');
    }
  }, 90_000);

  it('needs each of its capabilities: without any one of them, TLS traffic is not captured', async () => {
    const d = demo!;
    const ds = parseAllDocuments(
      readFileSync(join(root, 'deploy', 'k8s', 'daemonset.yaml'), 'utf8'),
    )[0]!.toJS() as V1DaemonSet;
    const caps = ds.spec!.template.spec!.containers[0]!.securityContext!.capabilities!.add!;
    // the DaemonSet's own pod, run once: `retap agent --once` records the target for a while
    const job = (name: string, add: string[]) => {
      const spec = structuredClone(ds.spec!.template.spec!);
      const c = spec.containers[0]!;
      c.image = retapImage;
      c.args = [
        'agent',
        '--once',
        '--namespace',
        ns,
        '--selector',
        'app=orders',
        '--duration',
        '12s',
        '--json',
      ];
      delete c.readinessProbe;
      delete c.livenessProbe;
      delete c.ports;
      c.securityContext!.capabilities!.add = add;
      spec.restartPolicy = 'Never';
      return JSON.stringify({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name, namespace: 'retap-system', labels: { 'retap-test': tag } },
        spec: {
          backoffLimit: 0,
          ttlSecondsAfterFinished: 600,
          template: { metadata: { labels: { 'retap-test': tag } }, spec },
        },
      });
    };
    // each one removed; the fine-grained BPF and PERFMON given instead, so a removal is not
    // "failed" merely because bpf() itself was refused
    const variants: Array<[string, string[]]> = [
      ['all', caps],
      ...caps.map((c): [string, string[]] => [
        `no-${c.toLowerCase().replaceAll('_', '-')}`,
        [...caps.filter((x) => x !== c), 'BPF', 'PERFMON'],
      ]),
    ];
    const names = variants.map(([v]) => `caps-${tag}-${v}`);
    for (const [i, [, add]] of variants.entries()) await kubectl(['apply', '-f', '-'], job(names[i]!, add));
    // traffic (TLS calls included) until every run has finished
    const finished = async () => {
      const jobs = JSON.parse(
        await kubectl(['-n', 'retap-system', 'get', 'jobs', '-l', `retap-test=${tag}`, '-o', 'json']),
      ).items as Array<{
        status: { succeeded?: number; failed?: number };
      }>;
      return (
        jobs.length === names.length &&
        jobs.every((j) => (j.status.succeeded ?? 0) + (j.status.failed ?? 0) > 0)
      );
    };
    const deadline = Date.now() + 240_000;
    for (let seed = 100; !(await finished()); seed++) {
      if (Date.now() > deadline)
        throw new Error(
          `the capability runs did not finish:\n${await kubectl(['-n', 'retap-system', 'describe', 'pods', '-l', `retap-test=${tag}`])}`,
        );
      await d.traffic('orders', 2, seed);
    }
    const results: Record<
      string,
      { exchanges: number; inbound?: number; outbound?: number; tls?: number; error?: string }
    > = {};
    for (const [i, [v]] of variants.entries()) {
      const log = await kubectl(['-n', 'retap-system', 'logs', `job/${names[i]}`]);
      const line = log.split('\n').find((l) => l.startsWith('{'));
      results[v] = line
        ? JSON.parse(line)
        : { exchanges: 0, error: log.trim().split('\n').slice(-3).join(' | ') };
    }
    // with all of them: inbound, outbound and TLS exchanges
    expect(results.all!.error, JSON.stringify(results)).toBeUndefined();
    expect(results.all!.inbound, JSON.stringify(results)).toBeGreaterThan(0);
    expect(results.all!.outbound, JSON.stringify(results)).toBeGreaterThan(0);
    expect(results.all!.tls, JSON.stringify(results)).toBeGreaterThan(0);
    // without any one: it fails, or sees no TLS plaintext
    for (const [v] of variants.slice(1)) {
      const r = results[v]!;
      expect(Boolean(r.error) || !r.tls, `${v} still captured TLS: ${JSON.stringify(r)}`).toBe(true);
    }
    console.info(`capability runs: ${JSON.stringify(results)}`);
  }, 420_000);

  it('uninstall leaves nothing: no namespace, no cluster roles, no agent process', async () => {
    // retap-system's agents only: other test files run agents of their own on this node meanwhile
    const agents = (await agentPids()).map((p) => [p, procIdentity(p)] as const);
    expect(agents.length).toBeGreaterThan(0);
    const r = await retap(['k8s', 'uninstall', '--json']);
    expect(r.code, r.stderr).toBe(0);
    installed = false;
    expect(JSON.parse(r.stdout).deleted).toContain('DaemonSet retap-system/retap-agent');
    expect(await kubectl(['get', 'namespace', 'retap-system', '--ignore-not-found'])).toBe('');
    for (const kind of ['clusterrole', 'clusterrolebinding']) {
      const names = (await kubectl(['get', kind, '-o', 'name'])).split('\n');
      expect(
        names.filter((n) => /\/retap-(agent|capture)$/.test(n)),
        kind,
      ).toEqual([]);
    }
    // the agent processes (and with them their BPF programs: nothing is pinned) are gone
    await until(
      'the agent processes to exit',
      async () => (agents.every(([p, id]) => procIdentity(p) !== id) ? true : undefined),
      60_000,
    ).catch((e: Error) => {
      const left = agents.filter(([p, id]) => procIdentity(p) === id).map(([p]) => procSummary(p));
      throw new Error(`${e.message}; still running:\n${left.join('\n')}`);
    });
    const status = await retap(['k8s', 'status']);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('not installed');
  }, 300_000);
});
