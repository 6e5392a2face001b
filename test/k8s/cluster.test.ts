/**
 * The real single-node test cluster (ci/k8s/up): retap's own image runs as Jobs, a Deployment of
 * an HTTP server answers through its Service, pods' traffic stays inside the pod and service
 * ranges with addresses unrewritten, and RBAC is real (a ServiceAccount without grants is refused
 * with 403 from inside a pod, and allowed once a Role grants it).
 *
 * Runs when the cluster is up. `.ci/run` brings it up and sets RETAP_K8S=1: then a cluster that is
 * not up fails this file instead of skipping it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const ENV_FILE = '/var/lib/retap-k8s/env';
const expected = process.env.RETAP_K8S === '1';

/** The facts ci/k8s/up wrote, or why the cluster cannot be used. */
function clusterEnv(): Record<string, string> | string {
  if (!existsSync(ENV_FILE)) return `the test cluster is not up (no ${ENV_FILE}; run ci/k8s/up)`;
  const env: Record<string, string> = {};
  for (const line of readFileSync(ENV_FILE, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

function skipCluster(): boolean {
  const env = clusterEnv();
  if (typeof env !== 'string') return false;
  if (expected) throw new Error(`RETAP_K8S=1 but ${env}`);
  console.warn(`skipping the Kubernetes tests: ${env}`);
  return true;
}

/**
 * A shell pipeline that sends an HTTP/1.0 GET with busybox nc (busybox-static's wget crashes on
 * Debian: static glibc and name-service lookups do not mix).
 */
const httpGet = (host: string, path: string, timeoutS: number) =>
  `printf 'GET ${path} HTTP/1.0\\r\\n\\r\\n' | nc -w ${timeoutS} ${host} 80`;

const inRange = (ip: string, cidr: string): boolean => {
  const [base, bits] = cidr.split('/');
  const n = (a: string) => a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  return Math.floor(n(ip) / size) === Math.floor(n(base!) / size);
};

describe.skipIf(skipCluster())('test cluster (ci/k8s)', () => {
  const env = clusterEnv() as Record<string, string>;
  const ns = `retap-test-${randomBytes(3).toString('hex')}`;
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;
  const retapImage = `retap.local/retap:test-${randomBytes(4).toString('hex')}`;
  let work: string;

  async function kubectl(args: string[], input?: string): Promise<string> {
    const child = exec(join(root, 'ci', 'k8s', 'kubectl'), args, {
      maxBuffer: 16 << 20,
      timeout: 120_000,
    });
    if (input !== undefined) child.child.stdin?.end(input);
    try {
      return (await child).stdout;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`kubectl ${args.join(' ')}: ${err.stderr || err.message}`);
    }
  }
  const apply = (yaml: string) => kubectl(['-n', ns, 'apply', '-f', '-'], yaml);
  /** Waits until a Job's pod has finished (bounded), and says whether it succeeded. */
  async function jobFinished(name: string): Promise<'succeeded' | 'failed'> {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const [ok, ko] = (
        await kubectl(['-n', ns, 'get', `job/${name}`, '-o', 'jsonpath={.status.succeeded} {.status.failed}'])
      ).split(' ');
      if (Number(ok) > 0) return 'succeeded';
      if (Number(ko) > 0) return 'failed';
      if (Date.now() > deadline) {
        const pods = await kubectl(['-n', ns, 'describe', 'pods', '-l', `job-name=${name}`]).catch(() => '');
        throw new Error(`job ${name} did not finish in 90 s\n${pods}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  /** The log of a Job that must succeed. */
  async function jobLog(name: string): Promise<string> {
    const how = await jobFinished(name);
    const log = await kubectl(['-n', ns, 'logs', `job/${name}`]);
    if (how !== 'succeeded') throw new Error(`job ${name} failed; its log:\n${log}`);
    return log;
  }
  const job = (name: string, image: string, command: string[], extra = '') => `
apiVersion: batch/v1
kind: Job
metadata: { name: ${name} }
spec:
  backoffLimit: 0
  ttlSecondsAfterFinished: 300
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 0
${extra}
      containers:
      - name: main
        image: ${image}
        imagePullPolicy: Never
        command: ${JSON.stringify(command)}
`;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'retap-k8s-test-'));
    // retap's image from this tree, loaded into the cluster's containerd (no registry).
    const tar = join(work, 'retap.tar');
    await exec(join(root, 'deploy', 'image', 'build'), ['--out', tar, '--tag', retapImage], { cwd: root });
    await exec(join(root, 'ci', 'k8s', 'load'), [tar]);
    await kubectl(['create', 'namespace', ns]);
    // Pods need the namespace's default ServiceAccount, which the controller-manager makes.
    const deadline = Date.now() + 30_000;
    while (!(await kubectl(['-n', ns, 'get', 'serviceaccount', 'default']).catch(() => ''))) {
      if (Date.now() > deadline) throw new Error(`namespace ${ns} got no default ServiceAccount in 30 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 240_000);

  afterAll(async () => {
    await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=90s']).catch((e: Error) =>
      console.warn(`could not delete namespace ${ns}: ${e.message}`),
    );
    if (work) rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it("runs retap's own image: --version and doctor --json as Jobs", async () => {
    await apply(
      job('retap-version', retapImage, ['/usr/local/bin/node', '/opt/retap/bin/retap.js', '--version']),
    );
    await apply(
      job('retap-doctor', retapImage, ['/usr/local/bin/node', '/opt/retap/bin/retap.js', 'doctor', '--json']),
    );
    expect((await jobLog('retap-version')).trim()).toBe(version);
    // doctor exits 1 in an unprivileged pod (it cannot capture there): the Job fails, yet its pod
    // ran retap, and what matters is the JSON it printed.
    await jobFinished('retap-doctor');
    const doctor = JSON.parse(await kubectl(['-n', ns, 'logs', 'job/retap-doctor'])) as {
      ok: boolean;
      checks: Array<{ name: string; status: string }>;
    };
    expect(doctor.checks.find((c) => c.name === 'addon')?.status).toBe('ok');
    expect(doctor.checks.find((c) => c.name === 'kernel')?.status).toBe('ok');
  }, 180_000);

  it('serves a Deployment through its Service with every address inside the ranges, unrewritten', async () => {
    await apply(`
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: httpd
        image: retap.local/busybox:1
        imagePullPolicy: Never
        command: ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]
        ports: [ { containerPort: 8080 } ]
        readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 }
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports: [ { port: 80, targetPort: 8080 } ]
`);
    await kubectl(['-n', ns, 'rollout', 'status', 'deployment/web', '--timeout=90s']);
    const clusterIP = (
      await kubectl(['-n', ns, 'get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}'])
    ).trim();
    const serverIP = (
      await kubectl(['-n', ns, 'get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].status.podIP}'])
    ).trim();
    expect(inRange(clusterIP, env.RETAP_K8S_SERVICE_CIDR!), clusterIP).toBe(true);
    expect(inRange(serverIP, env.RETAP_K8S_POD_CIDR!), serverIP).toBe(true);

    // The client asks through the Service; the server's CGI answers the peer address it saw.
    await apply(
      job('client', 'retap.local/busybox:1', [
        '/bin/sh',
        '-c',
        `echo "me $(hostname -i)"; echo "seen $(${httpGet(clusterIP, '/cgi-bin/peer', 10)} | tail -n 1)"`,
      ]),
    );
    const out = await jobLog('client');
    const me = /^me (\S+)/m.exec(out)?.[1];
    // busybox httpd listens on IPv6 and writes IPv4 peers as [::ffff:a.b.c.d].
    const seen = /^seen \[?(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)\]? /m.exec(out)?.[1];
    expect(me && inRange(me, env.RETAP_K8S_POD_CIDR!), out).toBe(true);
    // No masquerade: the server saw the client pod's own address.
    expect(seen, out).toBe(me);
  }, 180_000);

  it('keeps pods inside the machine: a packet to an unused service address is dropped here', async () => {
    const rules = async () => (await exec('nft', ['-j', 'list', 'table', 'inet', 'retap-k8s'])).stdout;
    const dropped = (json: string) => {
      const rule = (JSON.parse(json).nftables as Array<Record<string, { comment?: string; expr: unknown[] }>>)
        .map((o) => o.rule)
        .find((r) => r?.comment?.startsWith('pods reach nothing past'));
      const counter = rule?.expr.find((e) => (e as { counter?: unknown }).counter) as
        | { counter: { packets: number } }
        | undefined;
      if (!counter) throw new Error(`the pods' drop rule is missing from table inet retap-k8s:\n${json}`);
      return counter.counter.packets;
    };
    // The service range is routed into the empty bridge, never toward the default route.
    const route = (await exec('ip', ['route', 'get', '198.19.255.254'])).stdout;
    expect(route).toContain(`dev ${env.RETAP_K8S_SERVICE_BRIDGE}`);
    const before = dropped(await rules());
    // 198.19.255.254 is in the service range but no Service has it: nothing proxies it, so the
    // packet is routed, and our forward rule must drop it (the client times out).
    await apply(
      job('stray', 'retap.local/busybox:1', [
        '/bin/sh',
        '-c',
        `if ${httpGet('198.19.255.254', '/', 2)} | grep -q HTTP; then echo reached; else echo blocked; fi`,
      ]),
    );
    // Timed out, not refused: the packet went nowhere.
    // (nc's stderr and the shell's stdout reach the log in either order)
    expect((await jobLog('stray')).trim().split('\n').sort()).toEqual(['blocked', 'nc: timed out']);
    expect(dropped(await rules())).toBeGreaterThan(before);
  }, 180_000);

  it('enforces RBAC: a ServiceAccount without grants gets 403 from inside a pod, 200 once a Role allows it', async () => {
    // node from retap's image calls the API through the kubernetes Service with the pod's token.
    const probe = `
const fs = require('node:fs'), https = require('node:https');
const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
const ns = fs.readFileSync(dir + '/namespace', 'utf8');
const get = (path) => new Promise((ok, ko) => https.get({
  host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT, path,
  ca: fs.readFileSync(dir + '/ca.crt'), headers: { authorization: 'Bearer ' + fs.readFileSync(dir + '/token', 'utf8') },
}, (res) => { res.resume(); res.on('end', () => ok(res.statusCode)); }).on('error', ko));
(async () => {
  console.log('secrets', await get('/api/v1/namespaces/kube-system/secrets'));
  console.log('pods', await get('/api/v1/namespaces/' + ns + '/pods'));
})().catch((e) => { console.error(e); process.exit(1); });`;
    await apply(`
apiVersion: v1
kind: ServiceAccount
metadata: { name: nobody }
`);
    const sa = '      serviceAccountName: nobody';
    await apply(job('rbac-denied', retapImage, ['/usr/local/bin/node', '-e', probe], sa));
    expect(await jobLog('rbac-denied')).toBe('secrets 403\npods 403\n');
    // The same token is allowed what a Role grants, and still nothing more.
    await apply(`
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: pod-reader }
rules: [ { apiGroups: [""], resources: [pods], verbs: [list] } ]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: nobody-reads-pods }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader }
subjects: [ { kind: ServiceAccount, name: nobody, namespace: ${ns} } ]
`);
    await apply(job('rbac-granted', retapImage, ['/usr/local/bin/node', '-e', probe], sa));
    expect(await jobLog('rbac-granted')).toBe('secrets 403\npods 200\n');
  }, 180_000);
});
