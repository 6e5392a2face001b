/**
 * `retap k8s install|uninstall|status`: the objects of deploy/k8s (the same files
 * `kubectl apply -k deploy/k8s` takes), applied with server-side apply as field manager `retap`,
 * deleted in reverse order, and the DaemonSet's state read back.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  type V1DaemonSet,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { ErrorCodes, RetapError } from '../../core/errors.js';
import { api, apiError, apiStatus, waitFor } from './kube.js';
import { AGENT_LABEL, AGENT_NAMESPACE } from './remote.js';

export const FIELD_MANAGER = 'retap';
export const AGENT_NAME = 'retap-agent';

/** deploy/k8s of this installation (beside dist/ in the package and in retap's image; beside the sources in a checkout). */
export function manifestsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (
      existsSync(join(dir, 'package.json')) &&
      existsSync(join(dir, 'deploy', 'k8s', 'kustomization.yaml'))
    ) {
      return join(dir, 'deploy', 'k8s');
    }
    dir = dirname(dir);
  }
  throw new RetapError(
    ErrorCodes.INTERNAL,
    `deploy/k8s was not found above ${fileURLToPath(import.meta.url)}`,
    {
      hint: 'The retap installation is incomplete: reinstall it.',
    },
  );
}

/** The objects of deploy/k8s in the order its kustomization lists them. */
export function loadManifests(dir = manifestsDir()): KubernetesObject[] {
  let kustomization: { resources?: string[] };
  try {
    kustomization = parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]?.toJS() ?? {};
  } catch (e) {
    throw new RetapError(
      ErrorCodes.INTERNAL,
      `cannot read ${dir}/kustomization.yaml: ${(e as Error).message}`,
      {
        hint: 'The retap installation is incomplete: reinstall it.',
        cause: e,
      },
    );
  }
  const out: KubernetesObject[] = [];
  for (const file of kustomization.resources ?? []) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const obj = doc.toJS() as KubernetesObject | null;
      if (obj?.kind) out.push(obj);
    }
  }
  return out;
}

export interface InstallOptions {
  kc: KubeConfig;
  /** Agent image (default: the manifests' own, retap.local/retap:<version>). */
  image?: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Wait until every node's agent is ready (default true). */
  wait?: boolean;
  timeoutMs?: number;
  dryRun?: boolean;
  onStep?: (text: string) => void;
}

/** The objects as install applies them (image and pull policy set). */
export function renderManifests(o: Pick<InstallOptions, 'image' | 'imagePullPolicy'>): KubernetesObject[] {
  const objects = loadManifests();
  for (const obj of objects) {
    if (obj.kind !== 'DaemonSet') continue;
    const c = (obj as V1DaemonSet).spec?.template.spec?.containers.find((x) => x.name === 'agent');
    if (!c)
      throw new RetapError(ErrorCodes.INTERNAL, 'deploy/k8s/daemonset.yaml has no container named agent');
    if (o.image) c.image = o.image;
    if (o.imagePullPolicy) c.imagePullPolicy = o.imagePullPolicy;
  }
  return objects;
}

const describeObj = (o: KubernetesObject): string =>
  `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;

export async function install(o: InstallOptions): Promise<{ applied: string[]; ready?: DaemonSetState }> {
  const objects = renderManifests(o);
  const client = KubernetesObjectApi.makeApiClient(o.kc);
  const applied: string[] = [];
  for (const obj of objects) {
    await api(`apply ${describeObj(obj)}`, () =>
      client.patch(
        obj,
        undefined,
        o.dryRun ? 'All' : undefined,
        FIELD_MANAGER,
        true,
        PatchStrategy.ServerSideApply,
      ),
    );
    applied.push(describeObj(obj));
    o.onStep?.(`applied ${describeObj(obj)}`);
  }
  if (o.dryRun || o.wait === false) return { applied };
  const ready = await waitFor(
    `the ${AGENT_NAME} DaemonSet to be ready on every node`,
    async () => {
      const s = await daemonSetState(o.kc);
      return s?.rolledOut ? s : undefined;
    },
    o.timeoutMs ?? 180_000,
    500,
  ).catch(async (e: unknown) => {
    const pods = await agentPods(o.kc).catch(() => []);
    const why = pods
      .map((p) => `${p.name} on ${p.node}: ${p.phase}${p.reason ? ` (${p.reason})` : ''}`)
      .join('; ');
    throw new RetapError(ErrorCodes.K8S_API, `${(e as Error).message}${why ? ` — ${why}` : ''}`, {
      hint: `kubectl -n ${AGENT_NAMESPACE} describe pods -l ${AGENT_LABEL}`,
      cause: e,
    });
  });
  return { applied, ready };
}

export async function uninstall(o: {
  kc: KubeConfig;
  wait?: boolean;
  timeoutMs?: number;
  onStep?: (t: string) => void;
}): Promise<string[]> {
  const objects = loadManifests().reverse();
  const client = KubernetesObjectApi.makeApiClient(o.kc);
  const deleted: string[] = [];
  for (const obj of objects) {
    try {
      await client.delete(obj, undefined, undefined, undefined, undefined, 'Foreground');
      deleted.push(describeObj(obj));
      o.onStep?.(`deleted ${describeObj(obj)}`);
    } catch (e) {
      if (apiStatus(e) === 404) continue;
      throw apiError(`delete ${describeObj(obj)}`, e);
    }
  }
  if (o.wait !== false) {
    const core = o.kc.makeApiClient(CoreV1Api);
    await waitFor(
      `namespace ${AGENT_NAMESPACE} to be gone`,
      async () => {
        try {
          await core.readNamespace({ name: AGENT_NAMESPACE });
          return undefined;
        } catch (e) {
          if (apiStatus(e) === 404) return true;
          throw apiError(`read namespace ${AGENT_NAMESPACE}`, e);
        }
      },
      o.timeoutMs ?? 180_000,
      500,
    );
  }
  return deleted;
}

export interface DaemonSetState {
  image: string;
  desired: number;
  ready: number;
  updated: number;
  available: number;
  rolledOut: boolean;
}

export async function daemonSetState(kc: KubeConfig): Promise<DaemonSetState | undefined> {
  const apps = kc.makeApiClient(AppsV1Api);
  let ds: V1DaemonSet;
  try {
    ds = await apps.readNamespacedDaemonSet({ name: AGENT_NAME, namespace: AGENT_NAMESPACE });
  } catch (e) {
    if (apiStatus(e) === 404) return undefined;
    throw apiError(`read DaemonSet ${AGENT_NAMESPACE}/${AGENT_NAME}`, e);
  }
  const s = ds.status;
  const desired = s?.desiredNumberScheduled ?? 0;
  const ready = s?.numberReady ?? 0;
  const updated = s?.updatedNumberScheduled ?? 0;
  return {
    image: ds.spec?.template.spec?.containers[0]?.image ?? '',
    desired,
    ready,
    updated,
    available: s?.numberAvailable ?? 0,
    rolledOut:
      (s?.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 1) &&
      desired > 0 &&
      ready === desired &&
      updated === desired,
  };
}

export interface AgentPodState {
  name: string;
  node: string;
  phase: string;
  ready: boolean;
  restarts: number;
  reason?: string;
}

export async function agentPods(kc: KubeConfig): Promise<AgentPodState[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await api(`list pods in ${AGENT_NAMESPACE}`, () =>
    core.listNamespacedPod({ namespace: AGENT_NAMESPACE, labelSelector: AGENT_LABEL }),
  );
  return list.items.map((p) => {
    const cs = p.status?.containerStatuses?.[0];
    const waiting = cs?.state?.waiting;
    const terminated = cs?.lastState?.terminated;
    const reason = waiting
      ? `${waiting.reason ?? 'waiting'}: ${waiting.message ?? ''}`.trim()
      : terminated?.reason;
    return {
      name: p.metadata?.name ?? '',
      node: p.spec?.nodeName ?? '',
      phase: p.status?.phase ?? 'Unknown',
      ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      restarts: cs?.restartCount ?? 0,
      ...(reason ? { reason } : {}),
    };
  });
}
