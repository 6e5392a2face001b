/**
 * What a pod object tells the agent: its workload (without reading ReplicaSets or Jobs, so the
 * agent needs no RBAC beyond pods), which container an id is, and whether a capture wants it.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { K8sRef } from '../../core/exchange.js';
import { containerIdOf } from './cgroups.js';
import type { LabelSelector } from './selector.js';

/** The annotation that opts a pod into `retap k8s capture --annotated`. */
export const CAPTURE_ANNOTATION = 'retap.dev/capture';

/**
 * The controller users name: a ReplicaSet `<deployment>-<pod-template-hash>` is its Deployment;
 * StatefulSet, DaemonSet, Job and others are themselves; a bare pod has none.
 */
export function workloadOf(pod: V1Pod): { kind: string; name: string } | undefined {
  const owner =
    pod.metadata?.ownerReferences?.find((o) => o.controller) ?? pod.metadata?.ownerReferences?.[0];
  if (!owner) return undefined;
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) {
    return { kind: 'Deployment', name: owner.name.slice(0, -hash.length - 1) };
  }
  return { kind: owner.kind, name: owner.name };
}

/** Container id (64 hex) → container name, over regular, init and ephemeral containers. */
export function containerNames(pod: V1Pod): Map<string, string> {
  const out = new Map<string, string>();
  const s = pod.status;
  for (const list of [s?.containerStatuses, s?.initContainerStatuses, s?.ephemeralContainerStatuses]) {
    for (const c of list ?? []) {
      const id = containerIdOf(c.containerID);
      if (id) out.set(id, c.name);
      // a restarted container's previous id stays nameable while its last exchanges drain
      const last = containerIdOf(c.lastState?.terminated?.containerID);
      if (last && !out.has(last)) out.set(last, c.name);
    }
  }
  return out;
}

/** The label for an endpoint in this pod. */
export function podRef(pod: V1Pod, node: string | undefined, container?: string): K8sRef {
  const workload = workloadOf(pod);
  return {
    namespace: pod.metadata?.namespace ?? 'default',
    pod: pod.metadata?.name ?? '',
    ...(container ? { container } : {}),
    ...(workload ? { workload } : {}),
    ...(node ? { node } : {}),
  };
}

/** Which pods a capture targets. */
export interface PodFilter {
  /** Only pods of this namespace (all namespaces when absent). */
  namespace?: string;
  selector?: LabelSelector;
  /** Only pods annotated `retap.dev/capture: "true"`. */
  annotated?: boolean;
}

export function podMatches(pod: V1Pod, f: PodFilter): boolean {
  const meta = pod.metadata;
  if (!meta?.uid) return false;
  if (f.namespace !== undefined && meta.namespace !== f.namespace) return false;
  if (f.selector && !f.selector.matches(meta.labels)) return false;
  if (f.annotated && meta.annotations?.[CAPTURE_ANNOTATION] !== 'true') return false;
  const phase = pod.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed';
}
