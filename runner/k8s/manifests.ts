/**
 * The objects of one `retap replay --k8s` run: its namespace (labels name the run, snapshot and
 * build; annotations carry the owner and its heartbeat, which `retap gc --k8s` reads), and per
 * replayed build a Deployment whose one pod holds the build under test and retap's run worker as
 * a native sidecar (runner/k8s/pod-worker.ts). Pure functions: unit-tested without a cluster.
 */
import type { V1Deployment, V1Namespace, V1NetworkPolicy } from '@kubernetes/client-node';

export const RUN_PREFIX = 'retap-run-';
export const LABEL_RUN = 'retap.dev/run';
export const LABEL_SNAPSHOT = 'retap.dev/snapshot';
export const LABEL_BUILD = 'retap.dev/build';
export const LABEL_ROLE = 'retap.dev/role';
export const LABEL_LABEL = 'retap.dev/run-label';
export const LABEL_SHARD = 'retap.dev/shard';
export const ANN_OWNER = 'retap.dev/owner';
export const ANN_HEARTBEAT = 'retap.dev/heartbeat';
export const ANN_HEARTBEAT_SECONDS = 'retap.dev/heartbeat-seconds';
export const ANN_SNAPSHOT = 'retap.dev/snapshot-path';
export const ANN_IMAGE = 'retap.dev/build-image';
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'retap' };

/** Ports of the run worker inside the pod (control on 127.0.0.1 only; health for the kubelet). */
export const CONTROL_PORT = 19450;
export const HEALTH_PORT = 19451;
/**
 * The drive's stream (POST /v1/drive) carries a line at least this often while the worker lives,
 * and the runner gives up on a stream silent for DRIVE_IDLE_MS: a forward that stalled, not a
 * slow build.
 */
export const WORKER_ALIVE_EVERY_MS = 5_000;
export const DRIVE_IDLE_MS = 60_000;
export const SIDECAR = 'retap-run';
export const BUILD_CONTAINER = 'build';
/** Where the build finds the run's CA certificate. */
export const CA_DIR = '/retap/ca';
export const CA_PATH = `${CA_DIR}/ca.pem`;

/** A label value from any text: at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric. */
export function labelValue(text: string): string {
  const v = text
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .slice(-63)
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/[^A-Za-z0-9]+$/, '');
  return v || 'none';
}

/** `candidate#2` → `candidate-2` (object names are DNS labels). */
export const slug = (label: string): string => label.replace(/[^a-z0-9-]+/g, '-');

export interface Owner {
  host: string;
  pid: number;
  /** The process's start time (clock ticks since boot, /proc/PID/stat): a reused pid is not the owner. */
  start: string;
}

export const formatOwner = (o: Owner): string => `${o.host}/${o.pid}/${o.start}`;

export function parseOwner(text: string | undefined): Owner | undefined {
  const m = /^(.+)\/(\d+)\/(\d*)$/.exec(text ?? '');
  return m ? { host: m[1]!, pid: Number(m[2]), start: m[3]! } : undefined;
}

export interface RunNamespace {
  name: string;
  runId: string;
  snapshot: { name: string; path: string };
  image: string;
  owner: Owner;
  heartbeatSeconds: number;
}

export function namespaceObject(r: RunNamespace, now = new Date()): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: r.name,
      labels: {
        ...MANAGED_BY,
        [LABEL_RUN]: r.runId,
        [LABEL_SNAPSHOT]: labelValue(r.snapshot.name),
        [LABEL_BUILD]: labelValue(r.image),
      },
      annotations: {
        [ANN_OWNER]: formatOwner(r.owner),
        [ANN_HEARTBEAT]: now.toISOString(),
        [ANN_HEARTBEAT_SECONDS]: String(r.heartbeatSeconds),
        [ANN_SNAPSHOT]: r.snapshot.path,
        [ANN_IMAGE]: r.image,
      },
    },
  };
}

/**
 * Egress of the run's pods stays in the pod (loopback is not subject to policies): a build's
 * call that no mock serves fails instead of reaching a real service, where the cluster's network
 * plugin enforces NetworkPolicy. Ingress only from the pod itself and the kubelet's probes.
 */
export function networkPolicy(namespace: string): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'retap-run-isolation', namespace, labels: { ...MANAGED_BY } },
    spec: { podSelector: {}, policyTypes: ['Egress'], egress: [] },
  };
}

export interface RunBuild {
  image: string;
  port: number;
  /** Readiness: an HTTP path (or a URL whose path is used); else the TCP port. */
  ready?: string | undefined;
  env: Record<string, string>;
  /** Replaces the image's entrypoint. */
  command?: string[] | undefined;
  /** Replaces the image's arguments. */
  args?: string[] | undefined;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> } | undefined;
  imagePullPolicy?: string | undefined;
}

export interface RunDeployment {
  namespace: string;
  runId: string;
  label: string;
  build: RunBuild;
  retapImage: string;
  retapPullPolicy?: string | undefined;
  /** Dependency host name → the loopback address its mock listens on. */
  hostAliases: Record<string, string>;
  /** Which of the run's shards (--shards N) this pod replays; 0 when unsharded. */
  shard?: number | undefined;
  shards?: number | undefined;
}

/** The Deployment's name: build-<label>, with -s<k> per shard when there are several. */
export const deploymentName = (label: string, shard = 0, shards = 1): string =>
  `build-${slug(label)}${shards > 1 ? `-s${shard}` : ''}`;

/** The readiness probe's HTTP path, if `ready` asks for one. */
export function readyPath(ready: string | undefined): string | undefined {
  if (!ready) return undefined;
  if (/^https?:\/\//.test(ready)) {
    const u = new URL(ready);
    return `${u.pathname}${u.search}`;
  }
  return ready.startsWith('/') ? ready : `/${ready}`;
}

export function deploymentObject(d: RunDeployment): V1Deployment {
  const name = deploymentName(d.label, d.shard, d.shards);
  const shard = String(d.shard ?? 0);
  const labels = {
    ...MANAGED_BY,
    [LABEL_RUN]: d.runId,
    [LABEL_ROLE]: 'build',
    [LABEL_LABEL]: slug(d.label),
    [LABEL_SHARD]: shard,
  };
  const byAddr = new Map<string, string[]>();
  for (const [host, addr] of Object.entries(d.hostAliases)) {
    if (host === 'localhost') continue;
    byAddr.set(addr, [...(byAddr.get(addr) ?? []), host]);
  }
  const path = readyPath(d.build.ready);
  const caEnv = ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'].map((n) => ({
    name: n,
    value: CA_PATH,
  }));
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: d.namespace, labels },
    spec: {
      replicas: 1,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: { [LABEL_RUN]: d.runId, [LABEL_LABEL]: slug(d.label), [LABEL_SHARD]: shard } },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 5,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          hostAliases: [...byAddr].map(([ip, hostnames]) => ({ ip, hostnames: hostnames.sort() })),
          // mocks of recorded ports below 1024 (80, 443) bind without a capability
          securityContext: { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] },
          initContainers: [
            {
              name: SIDECAR,
              image: d.retapImage,
              imagePullPolicy: d.retapPullPolicy ?? 'IfNotPresent',
              // a native sidecar: the build starts once its startup probe passes (mocks up, CA written)
              restartPolicy: 'Always',
              command: ['/usr/local/bin/node', '/opt/retap/dist/runner/k8s/pod-worker.js'],
              args: [
                '--control',
                String(CONTROL_PORT),
                '--health',
                String(HEALTH_PORT),
                '--work',
                '/retap/work',
                '--ca-out',
                CA_DIR,
              ],
              startupProbe: {
                httpGet: { path: '/started', port: HEALTH_PORT },
                periodSeconds: 1,
                failureThreshold: 3600,
              },
              securityContext: {
                runAsUser: 65534,
                runAsGroup: 65534,
                runAsNonRoot: true,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'work', mountPath: '/retap/work' },
                { name: 'ca', mountPath: CA_DIR },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          containers: [
            {
              name: BUILD_CONTAINER,
              image: d.build.image,
              imagePullPolicy: d.build.imagePullPolicy ?? 'IfNotPresent',
              ...(d.build.command ? { command: d.build.command } : {}),
              ...(d.build.args ? { args: d.build.args } : {}),
              env: [...Object.entries(d.build.env).map(([k, v]) => ({ name: k, value: v })), ...caEnv],
              ports: [{ containerPort: d.build.port }],
              readinessProbe: path
                ? { httpGet: { path, port: d.build.port }, periodSeconds: 1, failureThreshold: 1 }
                : { tcpSocket: { port: d.build.port }, periodSeconds: 1, failureThreshold: 1 },
              ...(d.build.resources ? { resources: d.build.resources } : {}),
              volumeMounts: [{ name: 'ca', mountPath: CA_DIR, readOnly: true }],
            },
          ],
          volumes: [
            { name: 'work', emptyDir: {} },
            { name: 'ca', emptyDir: {} },
            { name: 'tmp', emptyDir: {} },
          ],
        },
      },
    },
  };
}
