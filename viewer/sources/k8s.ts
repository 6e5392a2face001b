/**
 * The cluster as a viewer source: every node's retap agent records the selected pods and streams
 * its exchanges back through the API server (capture/k8s/remote.ts, what `retap k8s capture`
 * uses). Exchanges are redacted (unless asked not to), spooled and indexed as they arrive, from
 * every node at once. Capture health is per node: the agent's own counters (ring buffer drops,
 * batches user space could not take, bytes missing inside streams), exchanges that never arrived,
 * stream resumes, and windows in which a node recorded nothing (its agent was replaced).
 */
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { AgentTransport, ClusterCaptureResult, ClusterProgress } from '../../capture/k8s/remote.js';
import type { Exchange } from '../../core/exchange.js';
import { logger } from '../../core/log.js';
import { createRedactor, createSnapshotWriter, fromStored, type Redactor, snapshotRoot, toStored } from '../../snapshots/index.js';
import type { Store } from '../store.js';
import { Spool } from './spool.js';
import type { NodeHealth, SaveRequest, SaveResult, SourceHealth, SourceInfo, TrafficSource } from './types.js';

const log = logger('view');
/** Notices kept for the warnings line (the newest; older ones are counted). */
const MAX_NOTICES = 20;

export interface K8sOptions {
  kc: KubeConfig;
  /** The pods' namespace (required unless `annotated`). */
  namespace?: string;
  selector?: string;
  annotated?: boolean;
  container?: string;
  tls: boolean;
  /** Keep secrets as captured (default: redacted, as snapshots are). */
  redact: boolean;
  /** Snapshot name for saved selections (default: the selector's app label, else `cluster`). */
  name?: string;
  agentNamespace?: string;
  /** How to reach the agents (default: port-forward through the API server). */
  transport?: AgentTransport;
}

export class K8sSource implements TrafficSource {
  private spool = new Spool();
  readonly file = this.spool.path;
  private redactor: Redactor;
  private store: Store | undefined;
  private readonly stopper = new AbortController();
  private running: Promise<void> | undefined;
  private progress: ClusterProgress | undefined;
  private result: ClusterCaptureResult | undefined;
  private ready: string[] = [];
  private notices: string[] = [];
  private noticeCount = 0;
  private failure: string | undefined;
  private pending = false;

  constructor(private readonly opts: K8sOptions) {
    this.redactor = createRedactor(opts.redact ? undefined : false);
  }

  private context(): string {
    return this.opts.kc.getCurrentContext() || 'in-cluster';
  }

  private what(): string {
    const o = this.opts;
    return [o.namespace ? `namespace ${o.namespace}` : 'all namespaces', o.selector ? `pods ${o.selector}` : '', o.annotated ? 'annotated pods' : '', o.container ? `container ${o.container}` : '']
      .filter(Boolean)
      .join(', ');
  }

  info(): SourceInfo {
    return {
      kind: 'k8s',
      label: `cluster ${this.context()}: ${this.what()}`,
      newestFirst: true,
      live: this.result === undefined && this.failure === undefined,
      save: { available: true, how: 'a new snapshot (redacted, tokens discovered) as retap k8s capture writes it' },
    };
  }

  /** Resolves once every node's agent is recording (or rejects when none could start). */
  async start(store: Store): Promise<void> {
    this.store = store;
    const { captureFromCluster } = await import('../../capture/k8s/remote.js');
    const o = this.opts;
    await new Promise<void>((resolve, reject) => {
      let attached = false;
      this.running = captureFromCluster(
        {
          kc: o.kc,
          ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
          ...(o.selector ? { selector: o.selector } : {}),
          ...(o.container !== undefined ? { container: o.container } : {}),
          ...(o.annotated ? { annotated: true } : {}),
          ...(o.agentNamespace ? { agentNamespace: o.agentNamespace } : {}),
          ...(o.transport ? { transport: o.transport } : {}),
          tls: o.tls,
          stop: this.stopper.signal,
          onReady: (nodes) => {
            this.ready = nodes;
            attached = true;
            resolve();
            store.changed();
          },
          onProgress: (p) => {
            this.progress = p;
          },
          onNotice: (text) => {
            this.noticeCount++;
            this.notices.push(text);
            if (this.notices.length > MAX_NOTICES) this.notices.shift();
            log.warn(text);
          },
        },
        { append: (ex) => this.onExchange(ex) },
      ).then(
        (r) => {
          this.result = r;
          store.changed();
        },
        (e: unknown) => {
          const msg = e instanceof Error ? e.message : String(e);
          if (!attached) reject(e);
          else {
            // the traffic already here stays; the page says why no more comes
            this.failure = `the cluster capture stopped: ${msg}`;
            store.changed();
          }
        },
      );
    });
  }

  private onExchange(ex: Exchange): void {
    const store = this.store!;
    try {
      const stored = toStored(this.redactor.redact(ex));
      const at = this.spool.append(JSON.stringify(stored));
      store.add(stored, at.offset, at.length);
    } catch (e) {
      store.addBroken(`exchange ${ex.id}`, (e as Error).message);
    }
    if (!this.pending) {
      this.pending = true;
      setImmediate(() => {
        this.pending = false;
        store.changed();
      });
    }
  }

  health(): SourceHealth {
    const warnings: string[] = [];
    if (this.failure) warnings.push(this.failure);
    const r = this.result;
    if (r) for (const n of r.notes) warnings.push(n);
    else {
      if (this.noticeCount > this.notices.length) warnings.push(`${this.noticeCount - this.notices.length} earlier notice(s) not shown (the server's log has them)`);
      warnings.push(...this.notices);
    }
    const store = this.store;
    if (store && store.brokenCount > 0) warnings.push(`${store.brokenCount} exchange(s) could not be shown (first: ${store.broken[0]!.message})`);
    let nodes: NodeHealth[];
    if (r) {
      nodes = r.nodes.map((n) => nodeHealth(n.node, n.counters, n.lostExchanges, n.resumes, n.gaps.length, n.exchanges, n.error ? 'failed' : 'ended', n.error));
    } else if (this.progress) {
      nodes = this.progress.nodes.map((n) => nodeHealth(n.node, n.counters, n.lostExchanges, n.resumes, n.gaps.length, n.exchanges, n.state, n.error));
    } else {
      // attached, no progress yet: each node is live with nothing counted
      nodes = this.ready.map((node) => nodeHealth(node, {}, 0, 0, 0, 0, 'live'));
    }
    return { nodes, warnings, indexed: store?.count ?? 0, done: r !== undefined || this.failure !== undefined };
  }

  /** The capture's counters as the snapshot manifest keeps them: sums, and `nodes/<node>/<name>`. */
  private counters(): Record<string, number> {
    if (this.result) return this.result.counters;
    const out: Record<string, number> = {};
    for (const n of this.progress?.nodes ?? []) {
      const own: Record<string, number> = { ...n.counters, streamLostExchanges: n.lostExchanges, streamResumes: n.resumes, streamGaps: n.gaps.length };
      for (const [k, v] of Object.entries(own)) {
        if (!Number.isFinite(v) || v < 0) continue;
        out[k] = (out[k] ?? 0) + v;
        out[`nodes/${n.node}/${k}`] = v;
      }
    }
    return out;
  }

  async save(req: SaveRequest): Promise<SaveResult> {
    const o = this.opts;
    const app = o.selector ? /(?:^|,)\s*(?:[\w.-]+\/)?(?:app|name)\s*==?\s*([\w.-]+)/.exec(o.selector)?.[1] : undefined;
    const name = req.name ?? o.name ?? app ?? 'cluster';
    const { clusterName } = await import('../../capture/k8s/kube.js');
    const w = await createSnapshotWriter({
      dir: req.out ?? join(snapshotRoot(), name),
      name,
      source: {
        host: `k8s:${this.context()}`,
        service: name,
        filters: {
          kubernetes: {
            cluster: clusterName(o.kc),
            ...(o.namespace ? { namespace: o.namespace } : {}),
            ...(o.selector ? { selector: o.selector } : {}),
            ...(o.annotated ? { annotated: true } : {}),
            ...(o.container ? { container: o.container } : {}),
          },
        },
      },
      // already redacted when spooled; the record of what was removed comes along
      redaction: false,
      inheritedRedaction: [this.redactor.summary()],
      discoverTokens: true,
    });
    let written = 0;
    try {
      for await (const v of req.lines()) {
        await w.append(fromStored(v));
        written++;
      }
      const notes = [`selected in retap view from a cluster capture (${this.what()}): ${req.query || '(everything)'}`];
      if (this.result) notes.push(...this.result.notes);
      else for (const n of this.progress?.nodes ?? []) for (const g of n.gaps) notes.push(`node ${n.node}: nothing recorded from ${new Date(g.fromUs / 1000).toISOString()} to ${new Date(g.toUs / 1000).toISOString()} (${g.reason})`);
      const m = await w.finish({ counters: this.counters(), notes });
      return { path: w.path, name: m.name, version: m.version, hash: m.hash, written };
    } catch (e) {
      await w.abort();
      throw e;
    }
  }

  async close(): Promise<void> {
    this.stopper.abort();
    // the agents are asked to stop and their last events drained (bounded inside the capture)
    await this.running?.catch(() => undefined);
    this.spool.close();
  }
}

function nodeHealth(node: string, c: Record<string, number>, lost: number, resumes: number, gaps: number, exchanges: number, state: string, error?: string): NodeHealth {
  return {
    node,
    ringbufDrops: c.ringbufDrops ?? 0,
    userBatchDrops: c.userBatchDrops ?? 0,
    gapBytes: c.gapBytes ?? 0,
    ...(c.connections !== undefined ? { connections: c.connections } : {}),
    ...(c.unknownConnections !== undefined ? { unknownConnections: c.unknownConnections } : {}),
    ...(c.kernelEvents !== undefined ? { events: c.kernelEvents } : {}),
    running: state === 'live' || state === 'resuming' || state === 'starting',
    state,
    exchanges,
    lostExchanges: lost,
    resumes,
    silentWindows: gaps,
    ...(error ? { error } : {}),
  };
}
