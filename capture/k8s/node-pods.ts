/**
 * The pods of one node, watched through the API server (list + watch with the field selector
 * `spec.nodeName=<node>`), indexed by uid and address. The watch restarts by itself after errors.
 */
import { CoreV1Api, type KubeConfig, ListWatch, type V1Pod, Watch } from '@kubernetes/client-node';
import { logger } from '../../core/log.js';
import type { PodSource } from './targets.js';

const log = logger('agent');

export class NodePods implements PodSource {
  private informer: ListWatch<V1Pod>;
  private listeners = new Set<() => void>();
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private synced = false;
  /** Last watch error, for the agent's status. */
  lastError: string | undefined;

  constructor(
    kc: KubeConfig,
    readonly node: string,
  ) {
    const api = kc.makeApiClient(CoreV1Api);
    const fieldSelector = `spec.nodeName=${node}`;
    this.informer = new ListWatch<V1Pod>(
      '/api/v1/pods',
      new Watch(kc),
      () => api.listPodForAllNamespaces({ fieldSelector }),
      false,
      undefined,
      fieldSelector,
    );
    const changed = (): void => {
      for (const f of this.listeners) f();
    };
    this.informer.on('add', changed);
    this.informer.on('update', changed);
    this.informer.on('delete', changed);
    this.informer.on('connect', () => {
      this.lastError = undefined;
    });
    this.informer.on('error', (err: unknown) => {
      this.lastError = err instanceof Error ? err.message : String(err);
      if (this.stopped) return;
      log.warn(`watching the pods of node ${node} failed (${this.lastError}); again in 2 s`);
      this.retry = setTimeout(() => void this.informer.start().catch(() => undefined), 2000);
    });
  }

  /** Lists the node's pods and keeps watching; resolves after the first list. */
  async start(): Promise<void> {
    await this.informer.start();
    if (this.lastError) throw new Error(this.lastError);
    this.synced = true;
  }

  get ready(): boolean {
    return this.synced && this.lastError === undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.informer.stop();
  }

  /** Called after every add, update or delete. Returns the unsubscribe function. */
  onChange(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  list(): readonly V1Pod[] {
    return this.informer.list();
  }

  byUid(uid: string): V1Pod | undefined {
    return this.informer.list().find((p) => p.metadata?.uid === uid);
  }

  byIp(ip: string): V1Pod | undefined {
    return this.informer
      .list()
      .find(
        (p) => !p.spec?.hostNetwork && (p.status?.podIP === ip || p.status?.podIPs?.some((a) => a.ip === ip)),
      );
  }
}
