/**
 * The few things every retap piece that talks to a cluster needs (`retap k8s`, the agent, the
 * Kubernetes runner): a kubeconfig chosen the way kubectl chooses it, API failures turned into
 * RetapErrors that say what was refused and what to do, and small waits.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { ErrorCodes, RetapError } from '../../core/errors.js';

export interface KubeTarget {
  /** A kubeconfig file (else $KUBECONFIG, ~/.kube/config, or the pod's service account). */
  kubeconfig?: string | undefined;
  /** A context of that kubeconfig (else its current context). */
  context?: string | undefined;
}

/** The cluster and credentials to use, as kubectl would pick them. */
export function loadKubeConfig(t: KubeTarget = {}): KubeConfig {
  const kc = new KubeConfig();
  const file = t.kubeconfig ?? process.env.KUBECONFIG?.split(':').find((f) => f && existsSync(f));
  const home = join(homedir(), '.kube', 'config');
  try {
    if (file) kc.loadFromFile(file);
    else if (existsSync(home)) kc.loadFromFile(home);
    else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else {
      throw new RetapError(ErrorCodes.K8S_UNREACHABLE, 'no kubeconfig found', {
        hint: 'Pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config (inside a pod, its service account is used).',
      });
    }
  } catch (e) {
    if (e instanceof RetapError) throw e;
    throw new RetapError(
      ErrorCodes.K8S_UNREACHABLE,
      `cannot read kubeconfig ${file ?? home}: ${(e as Error).message}`,
      {
        hint: 'Check the file (kubectl config view --kubeconfig FILE).',
        cause: e,
      },
    );
  }
  if (t.context !== undefined) {
    if (!kc.getContexts().some((c) => c.name === t.context)) {
      throw new RetapError(ErrorCodes.USAGE, `--context ${t.context}: no such context in the kubeconfig`, {
        hint: `Known contexts: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(', ') || 'none'
        }.`,
      });
    }
    kc.setCurrentContext(t.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new RetapError(ErrorCodes.K8S_UNREACHABLE, 'the kubeconfig has no current cluster', {
      hint: 'Pick one with --context NAME.',
    });
  }
  return kc;
}

/** A short name for where calls go, for messages (`context (https://…)`). */
export function clusterName(kc: KubeConfig): string {
  return `${kc.getCurrentContext() || 'in-cluster'} (${kc.getCurrentCluster()?.server ?? '?'})`;
}

/** Status code of a failed API call, if it was an answer from the API server. */
export function apiStatus(e: unknown): number | undefined {
  if (e instanceof ApiException) return e.code;
  const code = (e as { code?: unknown; statusCode?: unknown })?.statusCode ?? (e as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's own words for a failed call (the Status object's message). */
export function apiMessage(e: unknown): string {
  if (e instanceof ApiException) {
    const body = e.body as unknown;
    try {
      const status = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: string };
      if (status?.message) return status.message;
    } catch {
      /* not JSON */
    }
    return typeof body === 'string' && body ? body.slice(0, 300) : `HTTP ${e.code}`;
  }
  return e instanceof Error ? e.message : String(e);
}

/**
 * Runs one API call; a failure becomes a RetapError naming `what` (e.g. "list pods in
 * namespace shop"), with the RBAC hint when it was refused.
 */
export async function api<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw apiError(what, e);
  }
}

export function apiError(what: string, e: unknown): RetapError {
  if (e instanceof RetapError) return e;
  const status = apiStatus(e);
  const message = apiMessage(e);
  if (status === 401 || status === 403) {
    return new RetapError(ErrorCodes.K8S_FORBIDDEN, `cannot ${what}: ${message}`, {
      hint:
        status === 401
          ? 'The credentials were refused: refresh them (kubectl get pods tells the same).'
          : 'Your user or service account lacks this permission; docs/kubernetes.md lists the RBAC retap needs.',
      cause: e,
      details: { status },
    });
  }
  if (status === undefined) {
    return new RetapError(ErrorCodes.K8S_UNREACHABLE, `cannot ${what}: ${message}`, {
      hint: 'Is the cluster reachable with this kubeconfig? (kubectl cluster-info)',
      cause: e,
    });
  }
  return new RetapError(ErrorCodes.K8S_API, `cannot ${what}: ${message}`, {
    hint:
      status === 404 ? 'It does not exist (any more).' : 'The API server refused it; its message says why.',
    cause: e,
    details: { status },
  });
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws at the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      throw new RetapError(
        ErrorCodes.K8S_API,
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`,
        {
          hint: 'Look at the pods and their events (kubectl describe) for the reason.',
        },
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
