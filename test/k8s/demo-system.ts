/**
 * The demo system (examples/demo) on the test cluster, for the agent's tests and benchmarks:
 * inventory (HTTP), payments (HTTPS through node's OpenSSL), orders calling both, a second
 * copy of orders that nobody targets (`orders-canary`), and a client pod from which traffic and
 * the dependencies' /stats are run with `kubectl exec`. There is no DNS add-on: every URL is a
 * Service's cluster IP, and payments' certificate names its cluster IP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrafficSummary } from '../../examples/demo/traffic-summary.js';
import { selfSignedCert } from '../helpers/certs.js';
import { createNamespace, kubectl, until } from '../helpers/k8s.js';

export type DemoApp = 'orders' | 'orders-canary' | 'inventory' | 'payments';

export interface DemoCluster {
  ns: string;
  ip: Record<DemoApp, string>;
  /** The running (not terminating) pod of an app. */
  pod(app: DemoApp): Promise<{ name: string; uid: string; ip: string }>;
  /** Runs the demo's traffic generator in the client pod against orders or the canary. */
  traffic(app: 'orders' | 'orders-canary', sessions: number, seed: number): Promise<TrafficSummary>;
  /** Requests inventory and payments have answered, per route (their own /stats). */
  stats(): Promise<{ inventory: Record<string, number>; payments: Record<string, number> }>;
  /** Deletes an app's pod and waits for its replacement to be ready. */
  replace(app: DemoApp): Promise<{ before: string; after: string }>;
  delete(): Promise<void>;
}

const service = (app: DemoApp, port: number) => `
apiVersion: v1
kind: Service
metadata: { name: ${app} }
spec:
  selector: { app: ${app} }
  ports: [ { port: ${port}, targetPort: 8080 } ]
`;

function deployment(
  app: DemoApp,
  image: string,
  args: string[],
  env: Record<string, string>,
  tls: boolean,
): string {
  const envYaml = Object.entries(env)
    .map(([k, v]) => `        - { name: ${k}, value: ${JSON.stringify(v)} }`)
    .join('\n');
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${app} }
spec:
  replicas: 1
  selector: { matchLabels: { app: ${app} } }
  template:
    metadata: { labels: { app: ${app}, demo: retap } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: ${app === 'orders-canary' ? 'orders' : app}
        image: ${image}
        imagePullPolicy: Never
        args: ${JSON.stringify(args)}
        env:${envYaml ? `\n${envYaml}` : ' []'}
        ports: [ { containerPort: 8080 } ]
        # a TCP probe: an HTTP one would be traffic of its own in the capture
        readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 }
${tls ? '        volumeMounts: [ { name: tls, mountPath: /tls, readOnly: true } ]\n      volumes: [ { name: tls, secret: { secretName: payments-tls } } ]' : ''}
`;
}

export async function deployDemo(ns: string, image: string): Promise<DemoCluster> {
  await createNamespace(ns);
  const apply = (yaml: string) => kubectl(['-n', ns, 'apply', '-f', '-'], yaml);
  await apply(
    [
      service('inventory', 80),
      service('payments', 443),
      service('orders', 80),
      service('orders-canary', 80),
    ].join('---\n'),
  );
  const ip = {} as Record<DemoApp, string>;
  for (const app of ['orders', 'orders-canary', 'inventory', 'payments'] as const) {
    ip[app] = (await kubectl(['-n', ns, 'get', 'service', app, '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  }
  // payments' certificate names its cluster IP (orders trusts it through NODE_EXTRA_CA_CERTS)
  const dir = mkdtempSync(join(tmpdir(), 'retap-demo-tls-'));
  try {
    const { cert, key } = selfSignedCert(dir, `IP:${ip.payments},DNS:payments`);
    await kubectl([
      '-n',
      ns,
      'create',
      'secret',
      'generic',
      'payments-tls',
      `--from-file=cert.pem=${cert}`,
      `--from-file=key.pem=${key}`,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const listen = ['--host', '0.0.0.0', '--port', '8080'];
  const deps = {
    INVENTORY_URL: `http://${ip.inventory}:80`,
    PAYMENTS_URL: `https://${ip.payments}:443`,
    NODE_EXTRA_CA_CERTS: '/tls/cert.pem',
  };
  await apply(
    [
      deployment('inventory', image, ['/app/inventory.js', ...listen], {}, false),
      deployment(
        'payments',
        image,
        ['/app/payments.js', ...listen, '--cert', '/tls/cert.pem', '--key', '/tls/key.pem'],
        {},
        true,
      ),
      deployment('orders', image, ['/app/orders.js', ...listen], deps, true),
      deployment('orders-canary', image, ['/app/orders.js', ...listen], deps, true),
      `
apiVersion: v1
kind: Pod
metadata: { name: client, labels: { demo: retap } }
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: client
    image: ${image}
    imagePullPolicy: Never
    args: ["-e", "setInterval(() => {}, 1 << 30)"]
    env: [ { name: NODE_EXTRA_CA_CERTS, value: /tls/cert.pem } ]
    volumeMounts: [ { name: tls, mountPath: /tls, readOnly: true } ]
  volumes: [ { name: tls, secret: { secretName: payments-tls } } ]
`,
    ].join('---\n'),
  );
  for (const app of ['inventory', 'payments', 'orders', 'orders-canary']) {
    await kubectl(['-n', ns, 'rollout', 'status', `deployment/${app}`, '--timeout=120s']);
  }
  await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'pod/client', '--timeout=120s']);

  const pod = async (app: DemoApp) => {
    const items = JSON.parse(await kubectl(['-n', ns, 'get', 'pods', '-l', `app=${app}`, '-o', 'json']))
      .items as Array<{
      metadata: { name: string; uid: string; deletionTimestamp?: string };
      status: { podIP?: string; conditions?: Array<{ type: string; status: string }> };
    }>;
    const live = items.find(
      (p) =>
        !p.metadata.deletionTimestamp &&
        p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    if (!live) throw new Error(`no ready pod of ${app} in ${ns}`);
    return { name: live.metadata.name, uid: live.metadata.uid, ip: live.status.podIP ?? '' };
  };
  return {
    ns,
    ip,
    pod,
    async traffic(app, sessions, seed) {
      const out = await kubectl(
        [
          '-n',
          ns,
          'exec',
          'client',
          '--',
          '/usr/local/bin/node',
          '/app/traffic.js',
          '--url',
          `http://${ip[app]}:80`,
          '--sessions',
          String(sessions),
          '--seed',
          String(seed),
          '--json',
        ],
        undefined,
        300_000,
      ).catch((e: Error) => {
        // traffic.js exits 1 when an answer was unexpected; its summary still says which
        const m = /\{"url".*\}/.exec(e.message);
        if (!m) throw e;
        return m[0];
      });
      return JSON.parse(out.trim().split('\n').pop()!) as TrafficSummary;
    },
    async stats() {
      const script = `Promise.all([fetch('http://${ip.inventory}:80/stats'), fetch('https://${ip.payments}:443/stats')]
        .map((p) => p.then((r) => r.json()))).then(([i, p]) => console.log(JSON.stringify({ inventory: i.requests, payments: p.requests })))`;
      return JSON.parse(
        await kubectl(['-n', ns, 'exec', 'client', '--', '/usr/local/bin/node', '-e', script]),
      ) as {
        inventory: Record<string, number>;
        payments: Record<string, number>;
      };
    },
    async replace(app) {
      const before = (await pod(app)).name;
      await kubectl(['-n', ns, 'delete', 'pod', before, '--wait=false']);
      const after = await until(
        `a new ${app} pod`,
        async () => {
          const p = await pod(app).catch(() => undefined);
          return p && p.name !== before ? p.name : undefined;
        },
        120_000,
        250,
      );
      return { before, after };
    },
    async delete() {
      await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=120s']);
    },
  };
}

/** Requests per route in a dependency's /stats minus an earlier reading. */
export function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d) out[k] = d;
  }
  return out;
}

/** The traffic summary's answered requests per route (what orders must show as inbound). */
export function answered(s: TrafficSummary): number {
  let n = 0;
  for (const statuses of Object.values(s.byRoute))
    for (const [status, c] of Object.entries(statuses)) if (status !== '0') n += c;
  return n;
}
