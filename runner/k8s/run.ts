/**
 * `retap replay --k8s`: the replay in an ephemeral Kubernetes namespace. Same plan, sessions,
 * tokens, secrets, driver and results as the local runner (runner/replay.ts); the network
 * namespace is the build's pod:
 *
 *   namespace retap-run-<id>   labels run/snapshot/build, owner + heartbeat annotations
 *   Deployment build-<label>   pod = the build (IMAGE, readiness probe, the run's CA trusted)
 *                              + retap's run worker as a native sidecar: the mocks on loopback
 *                              addresses the pod's hostAliases give the dependency names, and
 *                              the driver sending to the build on 127.0.0.1
 *   the node agent             records the build container (answers and outbound calls)
 *
 * The snapshot's files reach the sidecar through a port-forward (streamed, any size), as do the
 * restored secrets (never in an object, never in etcd). The namespace goes on success, failure,
 * SIGINT and SIGTERM; `retap gc --k8s` removes one whose owner died (kill -9).
 */

import { randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import {
  AppsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  type KubeConfig,
  NetworkingV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { api, apiStatus, loadKubeConfig, waitFor } from '../../capture/k8s/kube.js';
import { openPortForward, podHttp, readJson } from '../../capture/k8s/portforward.js';
import { AGENT_NAMESPACE, captureFromCluster, findAgents } from '../../capture/k8s/remote.js';
import type { TargetPod } from '../../capture/k8s/wire.js';
import { ErrorCodes, RetapError } from '../../core/errors.js';
import type { Exchange } from '../../core/exchange.js';
import { logger } from '../../core/log.js';
import type { ReplayRun, RunItem } from '../../core/results.js';
import { admit, encodeExchange } from '../../snapshots/index.js';
import { bindAddrFor } from '../addresses.js';
import { lanesFor } from '../plan.js';
import {
  connectionStats,
  finishReplay,
  incompleteBodies,
  joinItems,
  type PreparedReplay,
  prepareReplay,
  type ReplayOptions,
  type ReplayOutcome,
  reopenWarnings,
  specItems,
} from '../replay.js';
import type { ConnectionMode, WorkerOutput, WorkerSpec } from '../spec.js';
import { outputReader, writeLines } from '../worker-parts.js';
import {
  BUILD_CONTAINER,
  CONTROL_PORT,
  DRIVE_IDLE_MS,
  deploymentName,
  deploymentObject,
  HEALTH_PORT,
  LABEL_LABEL,
  LABEL_SHARD,
  namespaceObject,
  networkPolicy,
  type Owner,
  RUN_PREFIX,
  type RunBuild,
  SIDECAR,
  slug,
} from './manifests.js';
import { type Shard, splitLanes } from './shards.js';

const log = logger('k8s-runner');
export const HEARTBEAT_SECONDS = 10;

export interface K8sTarget {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  /** retap's own image (the run worker, the mocks). */
  retapImage: string;
  retapPullPolicy?: string | undefined;
  /** Leave the namespace for a look (deleted by `retap gc --k8s` once this process is gone). */
  keepNamespace?: boolean | undefined;
  /** Where the node agents run (default retap-system). */
  agentNamespace?: string | undefined;
}

export interface K8sReplayOptions extends Omit<ReplayOptions, 'candidate' | 'baseline' | 'cwd'> {
  candidate: RunBuild;
  baseline?: RunBuild | undefined;
  k8s: K8sTarget;
  /** Told the namespace's name as soon as it exists (tests, the progress line). */
  onNamespace?: (name: string) => void;
  /** Run pods per replayed build, each with a share of the lanes (sessions and connections whole). */
  shards?: number | undefined;
  /** Phase times in ms, for docs/performance.md (namespace ready, pod ready, replay, teardown). */
  timings?: Record<string, number>;
}

/** This process, as the namespace's owner annotation names it. */
export function selfOwner(): Owner {
  let start = '';
  try {
    // field 22 of /proc/self/stat, after the command name in parentheses
    const stat = readFileSync('/proc/self/stat', 'utf8');
    start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    /* not Linux */
  }
  return { host: hostname(), pid: process.pid, start };
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export async function replayOnK8s(opts: K8sReplayOptions): Promise<ReplayOutcome> {
  const prep = await prepareReplay(opts.snapshot, opts.secretsFile);
  const kc = loadKubeConfig({ kubeconfig: opts.k8s.kubeconfig, context: opts.k8s.context });
  const core = kc.makeApiClient(CoreV1Api);
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const ns = `${RUN_PREFIX}${runId}`;
  const timings = opts.timings ?? {};
  const dir = await mkdtemp(join(tmpdir(), `retap-k8s-${runId}-`));
  const runs: ReplayRun[] = [];
  let error: { code: string; message: string } | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let created = false;
  const addrs = await dependencyAddrs(prep);
  // no agent, no capture: say so before anything is created
  const agentNs = opts.k8s.agentNamespace ?? AGENT_NAMESPACE;
  if ((await findAgents(kc, agentNs)).length === 0) {
    throw new RetapError(ErrorCodes.K8S_AGENT_MISSING, `no ready retap agent in namespace ${agentNs}`, {
      hint: 'The agent records how the build answers: install it with `retap k8s install` (retap k8s status checks it).',
    });
  }
  try {
    const t0 = performance.now();
    await api(`create namespace ${ns}`, () =>
      core.createNamespace({
        body: namespaceObject({
          name: ns,
          runId,
          snapshot: { name: prep.snap.manifest.name ?? '', path: prep.snap.path },
          image: opts.candidate.image,
          owner: selfOwner(),
          heartbeatSeconds: HEARTBEAT_SECONDS,
        }),
      }),
    );
    created = true;
    await bindRunRole(kc, ns);
    opts.onNamespace?.(ns);
    heartbeat = setInterval(() => {
      core
        .patchNamespace(
          {
            name: ns,
            body: { metadata: { annotations: { 'retap.dev/heartbeat': new Date().toISOString() } } },
          },
          mergePatch,
        )
        .catch((e: unknown) => log.warn(`heartbeat of ${ns}: ${(e as Error).message}`));
    }, HEARTBEAT_SECONDS * 1000);
    heartbeat.unref();
    // pods can be created once the namespace's default ServiceAccount exists (and a
    // least-privilege runner can read it once the authorizer has seen its RoleBinding)
    await waitFor(
      `namespace ${ns}'s default ServiceAccount`,
      async () =>
        (await core.readNamespacedServiceAccount({ name: 'default', namespace: ns }).catch(() => undefined))
          ? true
          : undefined,
      60_000,
      100,
    );
    await kc
      .makeApiClient(NetworkingV1Api)
      .createNamespacedNetworkPolicy({ namespace: ns, body: networkPolicy(ns) })
      .catch((e: unknown) => log.warn(`no NetworkPolicy in ${ns}: ${(e as Error).message}`));
    timings.namespaceReadyMs = Math.round(performance.now() - t0);

    const files = await writePlanFiles(dir, prep, opts);
    const builds: Array<[RunBuild, 'candidate' | 'baseline']> = [[opts.candidate, 'candidate']];
    if (opts.baseline) builds.push([opts.baseline, 'baseline']);
    for (const [build, role] of builds) {
      for (let n = 1; n <= opts.runsPerBuild; n++) {
        if (opts.signal?.aborted) break;
        const label = n === 1 ? role : `${role}#${n}`;
        const run = await runOnce({ kc, opts, prep, ns, runId, build, role, label, addrs, files, timings });
        runs.push(run);
        if (run.error) {
          error = run.error;
          break;
        }
      }
      if (error || opts.signal?.aborted) break;
    }
  } finally {
    if (heartbeat) clearInterval(heartbeat);
    await rm(dir, { recursive: true, force: true });
    if (created && !opts.k8s.keepNamespace) {
      const t1 = performance.now();
      await deleteRunNamespace(kc, ns, true).catch((e: unknown) =>
        log.warn(`cannot delete namespace ${ns}: ${(e as Error).message} (retap gc --k8s removes it later)`),
      );
      timings.namespaceGoneMs = Math.round(performance.now() - t1);
    } else if (created) {
      process.stderr.write(
        `retap replay: namespace ${ns} kept (--keep-namespace); delete it with kubectl delete namespace ${ns}\n`,
      );
    }
  }
  return finishReplay(opts, prep, runs, error, { kind: 'kubernetes', namespace: ns });
}

/** Deletes a run namespace; with `wait`, until the API server no longer has it. */
export async function deleteRunNamespace(kc: KubeConfig, ns: string, wait: boolean): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    await core.deleteNamespace({ name: ns, propagationPolicy: 'Background' });
  } catch (e) {
    if (apiStatus(e) === 404) return;
    throw e;
  }
  if (!wait) return;
  // by listing (cluster-wide right): the run's own RoleBinding goes with the namespace's content
  await waitFor(
    `namespace ${ns} to be gone`,
    async () =>
      (await core.listNamespace({ fieldSelector: `metadata.name=${ns}` })).items.length === 0
        ? true
        : undefined,
    180_000,
    250,
  );
}

/**
 * Binds the caller to the ClusterRole retap-run inside the run's namespace (deploy/k8s/
 * runner-rbac.yaml): a least-privilege runner holds rights in its own run namespaces only. An
 * identity with broader rights needs no binding; where retap-run does not exist (the RBAC file was
 * not applied) the binding is skipped and the run goes on with whatever rights the caller has.
 */
async function bindRunRole(kc: KubeConfig, ns: string): Promise<void> {
  let username: string | undefined;
  try {
    const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    username = review.status?.userInfo?.username;
  } catch (e) {
    log.debug(`who am I (SelfSubjectReview): ${(e as Error).message}`);
  }
  if (!username) return;
  await kc
    .makeApiClient(RbacAuthorizationV1Api)
    .createNamespacedRoleBinding({
      namespace: ns,
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'retap-run', namespace: ns, labels: { 'app.kubernetes.io/managed-by': 'retap' } },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'retap-run' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: username }],
      },
    })
    .catch((e: unknown) =>
      log.debug(`no RoleBinding retap-run in ${ns} (${apiStatus(e)}): ${(e as Error).message}`),
    );
}

/**
 * Dependency name → loopback address of its mock (as in a local namespace). A dependency the
 * build dialled by a non-loopback IP would need that address on the pod's loopback device, which
 * takes NET_ADMIN in the pod: not offered, so such a snapshot stops here instead of replaying with
 * calls that reach no mock.
 */
async function dependencyAddrs(prep: PreparedReplay): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (prep.plan.outbound.length === 0) return out;
  const { planMocks } = await import('../mocks/index.js');
  const foreign: string[] = [];
  for (const e of planMocks(prep.plan.outbound).endpoints) {
    if (!e.literal) out[e.host] = bindAddrFor(e);
    else if (!e.addr.startsWith('127.') && e.addr !== '::1') foreign.push(`${e.addr}:${e.port}`);
  }
  if (foreign.length) {
    throw new RetapError(
      ErrorCodes.ENV_SETUP,
      `the build called ${foreign.join(', ')} by IP address when recorded; retap replay --k8s can mock only names and loopback addresses`,
      {
        hint: 'Replay this snapshot locally (without --k8s), or record the build with its dependencies named (URLs with host names).',
      },
    );
  }
  return out;
}

interface PlanFiles {
  outbound: string;
  inbound: string;
  rules: string;
}

async function writePlanFiles(
  dir: string,
  prep: PreparedReplay,
  _opts: K8sReplayOptions,
): Promise<PlanFiles> {
  const outbound = join(dir, 'outbound.jsonl');
  await writeLines(outbound, prep.plan.outbound.map(encodeExchange));
  const inbound = join(dir, 'inbound.jsonl');
  await writeLines(
    inbound,
    prep.plan.items.map((i) => encodeExchange(i.exchange)),
  );
  const rules = join(dir, 'rules.json');
  await writeFile(rules, JSON.stringify(prep.rules), { mode: 0o600 });
  return { outbound, inbound, rules };
}

interface RunContext {
  kc: KubeConfig;
  opts: K8sReplayOptions;
  prep: PreparedReplay;
  ns: string;
  runId: string;
  build: RunBuild;
  role: 'candidate' | 'baseline';
  label: string;
  addrs: Record<string, string>;
  files: PlanFiles;
  timings: Record<string, number>;
}

/**
 * Streams a local file into the run pod (PUT over a port-forward). `idleMs` bounds the forward's
 * opening and any silence after it: a stalled forward fails instead of holding the run.
 */
function upload(
  kc: KubeConfig,
  ns: string,
  pod: string,
  name: string,
  file: string,
  idleMs = 60_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method: 'PUT',
        path: `/v1/files/${name}`,
        host: 'retap-run',
        headers: { connection: 'close', 'content-type': 'application/octet-stream' },
        createConnection: ((_o: unknown, done: (err: Error | null, s?: Duplex) => void) => {
          openPortForward(kc, ns, pod, CONTROL_PORT, idleMs).then(
            (s) => done(null, s),
            (e: Error) => done(e),
          );
          return undefined;
        }) as never,
      },
      (res) => readJson(res).then(() => resolve(), reject),
    );
    req.on('error', reject);
    // an idle bound (bytes either way count): a stalled forward, not a big file
    req.setTimeout(idleMs, () =>
      req.destroy(
        new RetapError(
          ErrorCodes.K8S_UNREACHABLE,
          `the upload of ${name} to ${ns}/${pod} stalled: nothing moved for ${idleMs / 1000} s`,
        ),
      ),
    );
    createReadStream(file).on('error', reject).pipe(req);
  });
}

const containerOf = (pod: V1Pod, name: string) =>
  [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])].find(
    (c) => c.name === name,
  );

async function currentPod(core: CoreV1Api, ns: string, label: string, shard = 0): Promise<V1Pod | undefined> {
  const list = await api(`list pods in ${ns}`, () =>
    core.listNamespacedPod({
      namespace: ns,
      labelSelector: `${LABEL_LABEL}=${slug(label)},${LABEL_SHARD}=${shard}`,
    }),
  );
  return list.items.find((p) => !p.metadata?.deletionTimestamp);
}

/** What a person needs when the build did not come up: the pod's events and the build's last lines. */
async function diagnose(
  core: CoreV1Api,
  ns: string,
  pod: V1Pod | undefined,
  container = BUILD_CONTAINER,
): Promise<string> {
  if (!pod?.metadata?.name) return '(no pod was created: kubectl -n NS describe deployment)';
  const name = pod.metadata.name;
  const parts: string[] = [];
  const events = await core
    .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })
    .catch(() => undefined);
  const evs = (events?.items ?? [])
    .sort((a, b) =>
      String(a.lastTimestamp ?? a.eventTime ?? '').localeCompare(
        String(b.lastTimestamp ?? b.eventTime ?? ''),
      ),
    )
    .slice(-12)
    .map(
      (e) =>
        `  ${e.type ?? ''} ${e.reason ?? ''}: ${e.message ?? ''}${(e.count ?? 1) > 1 ? ` (×${e.count})` : ''}`,
    );
  parts.push(`--- events of pod ${name} ---\n${evs.join('\n') || '  (none)'}`);
  const st = containerOf(pod, container);
  const logText = async (previous: boolean): Promise<string> =>
    String(
      await core
        .readNamespacedPodLog({ name, namespace: ns, container, tailLines: 20, previous })
        .catch(() => ''),
    );
  let text = await logText(false);
  if (!text.trim() && (st?.restartCount ?? 0) > 0) text = await logText(true);
  parts.push(`--- last lines of its output (${container}) ---\n${text.trimEnd() || '(no output)'}`);
  return parts.join('\n');
}

async function readPod(core: CoreV1Api, ns: string, name: string): Promise<V1Pod | undefined> {
  try {
    return await core.readNamespacedPod({ name, namespace: ns });
  } catch (e) {
    if (apiStatus(e) === 404) return undefined;
    throw e;
  }
}

/**
 * Why the run pod that drives can no longer be trusted, if it cannot: gone, replaced, being
 * deleted, evicted, or retap's worker in it (the driver and the mocks) ended or restarted.
 */
export async function runPodLoss(
  core: CoreV1Api,
  ns: string,
  name: string,
  uid: string,
): Promise<string | undefined> {
  const p = await readPod(core, ns, name);
  const where = `the run pod ${ns}/${name}`;
  if (!p) return `${where} was deleted during the replay`;
  if (uid && p.metadata?.uid !== uid) return `${where} was deleted and replaced during the replay`;
  if (p.status?.phase === 'Failed')
    return `${where} failed during the replay (${p.status.reason ?? 'Failed'}${p.status.message ? `: ${p.status.message}` : ''})`;
  if (p.metadata?.deletionTimestamp)
    return `${where} was deleted during the replay (deletion asked at ${new Date(p.metadata.deletionTimestamp).toISOString()}; evicted, drained, or deleted by someone)`;
  const side = containerOf(p, SIDECAR);
  if (side && ((side.restartCount ?? 0) > 0 || side.state?.terminated)) {
    const term = side.state?.terminated ?? side.lastState?.terminated;
    const how = term
      ? `${term.reason ?? 'ended'}, exit code ${term.exitCode}${term.signal ? `, signal ${term.signal}` : ''}`
      : 'ended';
    return `retap's run worker in ${where} (container ${SIDECAR}: the replay driver and the mocks) died during the replay (${how})${side.restartCount ? `; the kubelet restarted it ${side.restartCount}×, without its plan` : ''}`;
  }
  return undefined;
}

function notReadyReason(pod: V1Pod): string | undefined {
  const st = containerOf(pod, BUILD_CONTAINER);
  const side = containerOf(pod, SIDECAR);
  const waiting = st?.state?.waiting?.reason;
  if (waiting && /ErrImage|ImagePull|InvalidImageName|CreateContainer/.test(waiting))
    return `the build's container cannot start: ${waiting}${st?.state?.waiting?.message ? ` (${st.state.waiting.message})` : ''}`;
  const term = st?.state?.terminated ?? st?.lastState?.terminated;
  if (term) return `the build exited before it was ready (${term.reason ?? ''} code ${term.exitCode})`;
  const sw = side?.state?.waiting?.reason;
  if (sw && /ErrImage|ImagePull|InvalidImageName|CreateContainer/.test(sw))
    return `retap's run worker cannot start: ${sw} (is --retap-image loaded in the cluster?)`;
  return undefined;
}

/**
 * One replay of one build: its lanes dealt to `shards` run pods (runner/k8s/shards.ts) that run
 * at once; each pod's answers are joined with what the agent saw at that pod's build (the driver's
 * ports are per pod), and the shards merge into one run — the form of an unsharded one.
 */
async function runOnce(c: RunContext): Promise<ReplayRun> {
  const { opts, prep } = c;
  const mode: ConnectionMode = opts.driver.connections ?? 'recorded';
  const started = new Date();
  const t0 = performance.now();
  const split = splitLanes(lanesFor(prep.plan, mode), opts.shards ?? 1);
  const outcomes = await Promise.all(
    split.map((sh, index) => runShard(c, { ...sh, index, count: split.length })),
  );
  const byId = new Map<string, RunItem>();
  for (const [k, o] of outcomes.entries()) {
    const sub = { ...prep.plan, items: split[k]!.items.map((i) => prep.plan.items[i]!) };
    for (const it of joinItems(sub, o.output, o.captured)) byId.set(it.id, it);
  }
  const outputs = outcomes.map((o) => o.output).filter((o): o is WorkerOutput => o !== undefined);
  const conns = outcomes.map((o) => connectionStats(mode, o.output));
  const buildDesc = [c.build.image, ...(c.build.command ?? []), ...(c.build.args ?? [])].join(' ');
  const run: ReplayRun = {
    label: c.label,
    role: c.role,
    build: {
      command: buildDesc,
      port: c.build.port,
      ...(Object.keys(c.build.env).length ? { env: c.build.env } : {}),
    },
    startedAt: started.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    items: prep.plan.items.map((rec) => byId.get(rec.id)!),
    mocks: {
      calls: outputs.reduce((n, o) => n + o.mocks.calls, 0),
      matched: outputs.reduce((n, o) => n + o.mocks.matched, 0),
      misses: outputs.flatMap((o) => o.mocks.misses),
    },
    capture: {
      exchanges: outcomes.reduce((n, o) => n + o.captured.length, 0),
      ringbufDrops: outcomes.reduce((n, o) => n + (o.counters.ringbufDrops ?? 0), 0),
      userBatchDrops: outcomes.reduce((n, o) => n + (o.counters.userBatchDrops ?? 0), 0),
      gapBytes: outcomes.reduce((n, o) => n + (o.counters.gapBytes ?? 0), 0),
    },
    warnings: [
      ...outputs.flatMap((o) => [...o.warnings, ...reopenWarnings(o)]),
      ...incompleteBodies(prep.plan),
    ],
    connections: {
      mode,
      opened: conns.reduce((n, x) => n + (x?.opened ?? 0), 0),
      reopened: conns.reduce((n, x) => n + (x?.reopened ?? 0), 0),
    },
  };
  // every shard asks the same build; the first answer names the fields
  const reflection = outputs.find((o) => o.reflection)?.reflection;
  if (reflection) run.reflection = reflection;
  const failed = outcomes.find((o) => o.output?.error ?? o.error);
  if (failed) run.error = failed.output?.error ?? failed.error;
  return run;
}

interface ShardOutcome {
  output?: WorkerOutput | undefined;
  captured: Exchange[];
  counters: Record<string, number>;
  error?: { code: string; message: string } | undefined;
}

async function runShard(c: RunContext, sh: Shard & { index: number; count: number }): Promise<ShardOutcome> {
  const { kc, opts, prep, ns } = c;
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const mode: ConnectionMode = opts.driver.connections ?? 'recorded';
  const tag = sh.count > 1 ? `${c.label}/s${sh.index}` : c.label;
  const allItems = specItems(prep.plan, opts.driver);
  const captured: Exchange[] = [];
  const stopCapture = new AbortController();
  let output: WorkerOutput | undefined;
  let runError: { code: string; message: string } | undefined;
  let pod: V1Pod | undefined;
  let captureRun: ReturnType<typeof captureFromCluster> | undefined;
  let targets: TargetPod[] = [];
  const buildDesc = [c.build.image, ...(c.build.command ?? []), ...(c.build.args ?? [])].join(' ');
  try {
    // the agents record the build container of this run's pod from its first packet
    let captureReady!: () => void;
    const attached = new Promise<void>((r) => (captureReady = r));
    captureRun = captureFromCluster(
      {
        kc,
        namespace: ns,
        selector: `${LABEL_LABEL}=${slug(c.label)},${LABEL_SHARD}=${sh.index}`,
        container: BUILD_CONTAINER,
        stop: stopCapture.signal,
        ...(c.opts.k8s.agentNamespace ? { agentNamespace: c.opts.k8s.agentNamespace } : {}),
        onReady: () => captureReady(),
        onProgress: (p) => {
          targets = p.targets;
        },
        onNotice: (t) => {
          if (!/no pod matches yet/.test(t)) log.warn(t);
        },
      },
      { append: (ex) => void captured.push(admit(ex)) },
    );
    await Promise.race([attached, captureRun]);

    const tDeploy = performance.now();
    await api(`create the build's Deployment in ${ns}`, () =>
      apps.createNamespacedDeployment({
        namespace: ns,
        body: deploymentObject({
          namespace: ns,
          runId: c.runId,
          label: c.label,
          build: c.build,
          retapImage: opts.k8s.retapImage,
          retapPullPolicy: opts.k8s.retapPullPolicy,
          hostAliases: c.addrs,
          shard: sh.index,
          shards: sh.count,
        }),
      }),
    );
    // 1. the sidecar runs: hand it the plan
    pod = await waitFor(
      `the run pod's retap worker to start in ${ns}`,
      async () => {
        const p = await currentPod(core, ns, c.label, sh.index);
        if (p) {
          const why = notReadyReason(p);
          if (why) throw new RetapError(ErrorCodes.ENV_SETUP, why);
        }
        return p && containerOf(p, SIDECAR)?.state?.running ? p : undefined;
      },
      120_000,
      100,
    );
    const podName = pod.metadata!.name!;
    const spec: WorkerSpec = {
      runId: c.runId,
      label: c.label,
      build: {
        command: buildDesc,
        port: c.build.port,
        ready: c.build.ready,
        readyTimeoutMs: opts.readyTimeoutMs,
        env: c.build.env,
        cwd: '/',
        cgroupProcs: '',
      },
      items: sh.items.map((i) => allItems[i]!),
      lanes: sh.lanes,
      mocks: { outboundFile: '', miss: opts.miss, caDir: '', addrs: c.addrs },
      snapshotPath: prep.snap.path,
      rulesFile: '',
      inboundFile: '',
      driver: { ...opts.driver, connections: mode },
      secrets: prep.secrets.size > 0,
      redact: prep.redact,
      ...(prep.redactionRules ? { redactionRules: prep.redactionRules } : {}),
      out: '',
    };
    const specFile = join(c.files.outbound, '..', `spec-${slug(c.label)}-${sh.index}.json`);
    await writeFile(specFile, JSON.stringify(spec), { mode: 0o600 });
    await waitFor(
      `the run worker's control port in ${ns}/${podName}`,
      async () =>
        // each try bounded on its own: one stalled forward must not use up the wait
        (await upload(kc, ns, podName, 'spec.json', specFile, 10_000).then(
          () => true,
          () => undefined,
        )) ?? undefined,
      30_000,
      200,
    );
    await upload(kc, ns, podName, 'outbound.jsonl', c.files.outbound);
    await upload(kc, ns, podName, 'inbound.jsonl', c.files.inbound);
    await upload(kc, ns, podName, 'rules.json', c.files.rules);
    await readJson(
      await podHttp(
        kc,
        { namespace: ns, pod: podName, port: CONTROL_PORT },
        {
          method: 'POST',
          path: '/v1/start',
          // restored secrets and the redaction key travel over the forward only
          body: {
            secrets: Object.fromEntries(prep.secrets),
            ...(process.env.RETAP_REDACTION_KEY ? { redactionKey: process.env.RETAP_REDACTION_KEY } : {}),
          },
          timeoutMs: 60_000,
        },
      ),
    );
    // 2. the build starts after the sidecar's startup probe; wait for its readiness probe
    const deadline = Date.now() + opts.readyTimeoutMs;
    for (;;) {
      if (opts.signal?.aborted) throw new RetapError(ErrorCodes.INTERNAL, 'interrupted');
      const p: V1Pod = (await currentPod(core, ns, c.label, sh.index)) ?? pod;
      pod = p;
      if (p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')) break;
      const why = notReadyReason(p);
      if (why || Date.now() > deadline) {
        throw new RetapError(
          ErrorCodes.BUILD_NOT_READY,
          `${why ?? `the build was not ready after ${opts.readyTimeoutMs / 1000} s (${c.build.ready ? `GET ${c.build.ready}` : `TCP port ${c.build.port}`})`}: ${buildDesc}\n${await diagnose(core, ns, p)}`,
          {
            hint: 'Is --port the port the build listens on (in its pod, on 0.0.0.0)? Raise --ready-timeout for slow starts; kubectl describe pod tells more with --keep-namespace.',
          },
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    c.timings[`${tag}.podReadyMs`] = Math.round(performance.now() - tDeploy);
    // nothing is sent before the agent records the build container: an exchange it missed at the
    // start of a connection would shift the join of every later one on it
    const podUid = pod.metadata?.uid;
    await waitFor(
      `the node agent to record the build container of ${ns}/${podName}`,
      async () => (targets.some((t) => t.uid === podUid && t.containers.length > 0) ? true : undefined),
      60_000,
      100,
    ).catch((e: unknown) => {
      throw new RetapError(ErrorCodes.CAPTURE_FAILED, (e as Error).message, {
        hint: `Is the agent on the pod's node ready (retap k8s status; kubectl -n ${opts.k8s.agentNamespace ?? AGENT_NAMESPACE} logs)?`,
      });
    });
    // 3. drive (in the pod, to 127.0.0.1), progress streamed back
    const tDrive = performance.now();
    const abort = new AbortController();
    // interrupted: the worker is asked to stop and still answers with what it sent; a worker
    // that cannot be reached loses its forward after 15 s
    const onAbort = (): void => {
      podHttp(
        kc,
        { namespace: ns, pod: podName, port: CONTROL_PORT },
        { method: 'POST', path: '/v1/stop', timeoutMs: 10_000 },
      )
        .then(readJson)
        .catch(() => abort.abort());
      setTimeout(() => abort.abort(), 15_000).unref();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // the run pod watched while it drives: deleted, evicted, or its worker dead. A worker that got
    // SIGTERM still answers with what it sent (marked as an error); one that cannot answer loses
    // its forward 10 s after the loss is seen, so a dead pod never leaves the drive waiting
    let lost: string | undefined;
    let watching = false;
    const watch = setInterval(() => {
      if (watching || lost) return;
      watching = true;
      runPodLoss(core, ns, podName, podUid ?? '')
        .then((why) => {
          if (why && !lost) {
            lost = why;
            setTimeout(() => abort.abort(), 10_000).unref();
          }
        })
        .catch((e: unknown) => log.debug(`watching ${ns}/${podName}: ${(e as Error).message}`))
        .finally(() => {
          watching = false;
        });
    }, 1000);
    let streamError: Error | undefined;
    const reader = outputReader();
    try {
      if (opts.signal?.aborted) throw new RetapError(ErrorCodes.INTERNAL, 'interrupted');
      const res = await podHttp(
        kc,
        { namespace: ns, pod: podName, port: CONTROL_PORT },
        // the worker writes a line every few seconds: silence is a stalled forward, not a slow build
        { method: 'POST', path: '/v1/drive', signal: abort.signal, timeoutMs: DRIVE_IDLE_MS },
      );
      if ((res.statusCode ?? 0) >= 300) await readJson(res);
      // progress, then the output's lines (runner/worker-parts.ts sealOutput), or an error
      for await (const line of createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY })) {
        if (!line) continue;
        const ev = JSON.parse(line) as
          | { t: 'progress'; done: number; total: number; errors: number }
          | { t: 'alive' }
          | { t: 'output' | 'output-item' }
          | { t: 'error'; error: string };
        if (ev.t === 'alive') continue;
        if (ev.t === 'progress') opts.onProgress?.(tag, ev.done, ev.total, ev.errors);
        else if (ev.t === 'error')
          throw new RetapError(ErrorCodes.INTERNAL, `the run worker failed: ${ev.error}`);
        else if (!reader.line(ev))
          throw new RetapError(ErrorCodes.INTERNAL, `the run worker sent a line of kind ${String(ev.t)}`);
      }
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      streamError = e as Error;
    } finally {
      // the output, when its last line arrived (a stream that broke after it loses nothing)
      output = reader.result();
      clearInterval(watch);
      opts.signal?.removeEventListener('abort', onAbort);
    }
    c.timings[`${tag}.driveMs`] = Math.round(performance.now() - tDrive);
    // the drive ended: did the run pod live through it? A worker killed mid-drive shows in the
    // pod's status a moment after its stream ends, so an ending without results waits for it
    if (!lost && !opts.signal?.aborted) {
      const until = Date.now() + (output && !streamError ? 0 : 15_000);
      for (;;) {
        lost = await runPodLoss(core, ns, podName, podUid ?? '').catch(() => undefined);
        if (lost || Date.now() >= until) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    if (lost && !opts.signal?.aborted) {
      const done = output?.items.filter((i) => i.status !== undefined).length ?? 0;
      const detail = await diagnose(core, ns, (await readPod(core, ns, podName)) ?? pod, SIDECAR);
      throw Object.assign(
        new RetapError(
          ErrorCodes.K8S_RUN_POD_LOST,
          `${lost}; ${output ? `${done} of ${sh.items.length} requests had been answered` : 'its results were lost'} — not a replay to judge\n${detail}`,
          {
            hint: `Rerun; if it happens again, look at the node's pressure and the pod's events (--keep-namespace keeps ${ns}).`,
          },
        ),
        { partial: output },
      );
    }
    if (streamError) throw streamError;
    if (!output)
      throw new RetapError(
        ErrorCodes.INTERNAL,
        `the run worker's stream from ${ns}/${podName} ended without its results (the pod looks alive)`,
      );
    // a worker's answer covers every request it was given, or says why not: never a part shown as the whole
    if (!output.error && !opts.signal?.aborted && output.items.length < sh.items.length)
      output.error = {
        code: ErrorCodes.INTERNAL,
        message: `the run worker answered for ${output.items.length} of the ${sh.items.length} requests it was given`,
      };
    // 4. did the build survive the replay?
    const after = await readPod(core, ns, podName);
    const st = after ? containerOf(after, BUILD_CONTAINER) : undefined;
    if (!output.error && st && ((st.restartCount ?? 0) > 0 || st.state?.terminated)) {
      const term = st.state?.terminated ?? st.lastState?.terminated;
      output.buildExit = {
        code: term?.exitCode ?? null,
        signal: term?.signal ? String(term.signal) : null,
        during: 'replay',
      };
      output.error = {
        code: ErrorCodes.BUILD_CRASHED,
        message: `the build exited during the replay (${term?.reason ?? ''} code ${term?.exitCode})\n${await diagnose(core, ns, after)}`,
      };
    }
    output.buildLog = String(
      await core
        .readNamespacedPodLog({ name: podName, namespace: ns, container: BUILD_CONTAINER, tailLines: 200 })
        .catch(() => ''),
    );
  } catch (e) {
    const err = e as Error & { code?: string; partial?: WorkerOutput };
    // what a lost pod's worker sent before it went stays in the results, under the run's error
    if (err.partial) {
      output = err.partial;
      // the runner's account (which pod, how it went, its events) is the run's error
      delete output.error;
    }
    if (!opts.signal?.aborted)
      runError = {
        code: typeof err.code === 'string' && err.code.startsWith('RETAP_') ? err.code : ErrorCodes.INTERNAL,
        message: err.message,
      };
  } finally {
    stopCapture.abort();
  }
  let counters: Record<string, number> = {};
  if (captureRun) {
    try {
      counters = (await captureRun).counters;
    } catch (e) {
      runError ??= {
        code: e instanceof RetapError ? e.code : ErrorCodes.CAPTURE_FAILED,
        message: `capture through the node agents failed: ${(e as Error).message}`,
      };
    }
  }
  // the next run's pod gets the port and the node to itself
  await apps
    .deleteNamespacedDeployment({
      name: deploymentName(c.label, sh.index, sh.count),
      namespace: ns,
      propagationPolicy: 'Foreground',
    })
    .catch(() => undefined);
  return { output, captured, counters, error: runError };
}

export { HEALTH_PORT };
