/**
 * `retap gc --k8s`: deletes the run namespaces (retap-run-*, labelled retap.dev/run) whose owner
 * is gone. A live `retap replay --k8s` refreshes its namespace's heartbeat annotation every
 * HEARTBEAT_SECONDS; a namespace is stale when
 *   - its owner ran on this host and that process is gone (pid absent, or reused by another
 *     process: the start time differs) — known at once, e.g. right after kill -9; or
 *   - its heartbeat is older than three periods (at least 30 s) — an owner on another machine.
 * Namespaces already terminating are listed, not touched.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { api } from '../../capture/k8s/kube.js';
import {
  ANN_HEARTBEAT,
  ANN_HEARTBEAT_SECONDS,
  ANN_OWNER,
  LABEL_RUN,
  parseOwner,
  RUN_PREFIX,
} from './manifests.js';
import { deleteRunNamespace } from './run.js';

export interface GcEntry {
  namespace: string;
  owner: string;
  heartbeatAgeS: number | null;
  action: 'deleted' | 'would-delete' | 'kept' | 'terminating';
  reason: string;
}

function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Why a run namespace is stale, or undefined while its owner lives. */
export function staleReason(
  annotations: Record<string, string>,
  now: number,
  here = hostname(),
  startOf: (pid: number) => string | undefined = processStart,
): string | undefined {
  const owner = parseOwner(annotations[ANN_OWNER]);
  const beat = Date.parse(annotations[ANN_HEARTBEAT] ?? '');
  const period = Number(annotations[ANN_HEARTBEAT_SECONDS] ?? '10') || 10;
  if (owner && owner.host === here) {
    const start = startOf(owner.pid);
    if (start === undefined) return `its owner (pid ${owner.pid} on this host) is gone`;
    if (owner.start && start !== owner.start)
      return `its owner's pid ${owner.pid} now belongs to another process`;
    return undefined;
  }
  if (Number.isNaN(beat)) return 'it has no heartbeat';
  const age = now - beat;
  if (age > Math.max(3 * period * 1000, 30_000))
    return `its heartbeat is ${Math.round(age / 1000)} s old (owner ${owner ? `${owner.host} pid ${owner.pid}` : 'unknown'})`;
  return undefined;
}

export async function gcRunNamespaces(
  kc: KubeConfig,
  o: { dryRun?: boolean; wait?: boolean; now?: number } = {},
): Promise<GcEntry[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await api(`list namespaces labelled ${LABEL_RUN}`, () =>
    core.listNamespace({ labelSelector: LABEL_RUN }),
  );
  const now = o.now ?? Date.now();
  const out: GcEntry[] = [];
  const deletions: Array<Promise<void>> = [];
  for (const ns of list.items) {
    const name = ns.metadata?.name ?? '';
    if (!name.startsWith(RUN_PREFIX)) continue;
    const ann = ns.metadata?.annotations ?? {};
    const beat = Date.parse(ann[ANN_HEARTBEAT] ?? '');
    const entry = {
      namespace: name,
      owner: ann[ANN_OWNER] ?? '',
      heartbeatAgeS: Number.isNaN(beat) ? null : Math.round((now - beat) / 1000),
    };
    if (ns.status?.phase === 'Terminating') {
      out.push({ ...entry, action: 'terminating', reason: 'already being deleted' });
      continue;
    }
    const reason = staleReason(ann, now);
    if (!reason) {
      out.push({ ...entry, action: 'kept', reason: 'its owner is alive' });
      continue;
    }
    out.push({ ...entry, action: o.dryRun ? 'would-delete' : 'deleted', reason });
    if (!o.dryRun) deletions.push(deleteRunNamespace(kc, name, o.wait === true));
  }
  await Promise.all(deletions);
  return out;
}
