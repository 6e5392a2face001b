/**
 * `retap k8s capture` from outside the cluster: asks every node's agent to record the target pods
 * and reads their event streams back through the API server (port-forward), into one sink.
 *
 * Each node's stream is numbered. A stream that breaks is read again from the last event seen;
 * what the agent no longer had is counted exactly (exchanges are numbered too). If the agent
 * itself went (its pod restarted), a new capture starts on its successor and the time window in
 * which that node recorded nothing is reported. Nodes' exchanges interleave in the sink; the
 * snapshot writer orders them by start time.
 */
import type { IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { ErrorCodes, RetapError } from '../../core/errors.js';
import type { Exchange, K8sRef } from '../../core/exchange.js';
import type { ExchangeSink } from '../record.js';
import { api, apiStatus } from './kube.js';
import { podRef } from './pods.js';
import { podHttp, readJson } from './portforward.js';
import { parseSelector } from './selector.js';
import { AGENT_API_PORT, type CaptureRequest, decodeEvent, type TargetPod, type WireEvent } from './wire.js';

export const AGENT_NAMESPACE = 'retap-system';
export const AGENT_LABEL = 'app.kubernetes.io/name=retap-agent';
/** How long a broken stream is retried before its node is given up. */
const RESUME_WINDOW_MS = 60_000;
/** How long to wait for a node's last events after asking it to stop. */
const END_TIMEOUT_MS = 30_000;

export interface ClusterCaptureOptions {
  kc: KubeConfig;
  namespace?: string;
  selector?: string;
  container?: string;
  annotated?: boolean;
  /** Stop after this long (else only `stop`). */
  durationMs?: number;
  stop?: AbortSignal;
  tls?: boolean;
  agentNamespace?: string;
  /** Called about twice a second. */
  onProgress?: (p: ClusterProgress) => void;
  /** Warnings and notices for people (a stream resumed, a node lost). */
  onNotice?: (text: string) => void;
  /** Once every agent has attached (the capture is live). */
  onReady?: (nodes: string[]) => void;
  /** How to reach the agents (default: port-forward through the API server). */
  transport?: AgentTransport;
}

export interface ClusterProgress {
  exchanges: number;
  inbound: number;
  outbound: number;
  nodes: Array<{ node: string; exchanges: number; drops: number; state: string }>;
  targets: TargetPod[];
}

export interface NodeReport {
  node: string;
  agentPod: string;
  exchanges: number;
  /** The agent's counters at the end (the capture's and the tracker's). */
  counters: Record<string, number>;
  /** Times the stream was read again after it broke. */
  resumes: number;
  /** Exchanges the agent made that never arrived (gaps in their numbering). */
  lostExchanges: number;
  /** Windows in which this node recorded nothing (its agent was replaced), wall-clock µs. */
  gaps: Array<{ fromUs: number; toUs: number; reason: string }>;
  endReason: string;
  error?: string;
}

export interface ClusterCaptureResult {
  inbound: number;
  outbound: number;
  nodes: NodeReport[];
  /** Every pod that was a target at some point. */
  targets: TargetPod[];
  /** Nodes that ran target pods but had no ready agent. */
  uncovered: string[];
  /** Summed counters, plus `nodes/<node>/<counter>` for each node. */
  counters: Record<string, number>;
  notes: string[];
  /** ms from the call to the first exchange received, if any. */
  firstExchangeMs?: number;
  /** ms from the call until every agent had attached. */
  readyMs: number;
  /** When the call began (ms since the epoch), to measure from outside. */
  startedAt: number;
}

export interface AgentPod {
  name: string;
  node: string;
}

/** Ready agent pods, one per node. */
export async function findAgents(kc: KubeConfig, namespace = AGENT_NAMESPACE): Promise<AgentPod[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await api(`list the retap agents (pods ${AGENT_LABEL} in namespace ${namespace})`, () =>
    core.listNamespacedPod({ namespace, labelSelector: AGENT_LABEL }),
  );
  const byNode = new Map<string, AgentPod>();
  for (const p of list.items) {
    const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    const node = p.spec?.nodeName;
    if (!ready || !node || p.metadata?.deletionTimestamp) continue;
    byNode.set(node, { name: p.metadata!.name!, node });
  }
  return [...byNode.values()].sort((a, b) => a.node.localeCompare(b.node));
}

/** Pods the capture targets right now (for the nodes they run on and the first display). */
async function targetPods(kc: KubeConfig, o: ClusterCaptureOptions): Promise<V1Pod[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const labelSelector = o.selector || undefined;
  const where = o.namespace ? `namespace ${o.namespace}` : 'all namespaces';
  const list = await api(`list pods in ${where}`, () =>
    o.namespace
      ? core.listNamespacedPod({ namespace: o.namespace, ...(labelSelector ? { labelSelector } : {}) })
      : core.listPodForAllNamespaces({ ...(labelSelector ? { labelSelector } : {}) }),
  );
  return list.items.filter((p) => !o.annotated || p.metadata?.annotations?.['retap.dev/capture'] === 'true');
}

/** Names the peers the agents could not: Services (by cluster IP) and pods on other nodes. */
class PeerNames {
  private byIp = new Map<string, K8sRef>();
  private last = 0;
  private denied = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string | undefined,
  ) {}

  async refresh(): Promise<void> {
    if (this.denied || Date.now() - this.last < 5000) return;
    this.last = Date.now();
    const core = this.kc.makeApiClient(CoreV1Api);
    const ns = this.namespace;
    try {
      const [svcs, pods] = await Promise.all([
        ns ? core.listNamespacedService({ namespace: ns }) : core.listServiceForAllNamespaces(),
        ns ? core.listNamespacedPod({ namespace: ns }) : core.listPodForAllNamespaces(),
      ]);
      const next = new Map<string, K8sRef>();
      for (const p of pods.items) {
        if (p.spec?.hostNetwork) continue;
        for (const a of p.status?.podIPs ?? (p.status?.podIP ? [{ ip: p.status.podIP }] : [])) {
          next.set(a.ip, podRef(p, p.spec?.nodeName));
        }
      }
      for (const s of svcs.items) {
        for (const ip of s.spec?.clusterIPs ?? (s.spec?.clusterIP ? [s.spec.clusterIP] : [])) {
          if (ip && ip !== 'None')
            next.set(ip, { namespace: s.metadata?.namespace ?? '', service: s.metadata?.name ?? '' });
        }
      }
      this.byIp = next;
    } catch (e) {
      // naming peers is a courtesy: without the right to list services it is skipped
      if (apiStatus(e) === 403) this.denied = true;
    }
  }

  label(ex: Exchange): void {
    if (ex.peer.k8s) return;
    const ref = this.byIp.get(ex.peer.addr);
    if (ref) ex.peer.k8s = ref;
  }
}

type NodeState = 'starting' | 'live' | 'resuming' | 'stopping' | 'ended' | 'failed';

/** How the client reaches agents: port-forward through the API server (tests may substitute). */
export interface AgentTransport {
  /** One HTTP request to an agent's API; the answer may stream. */
  request(
    agent: AgentPod,
    r: { method: string; path: string; body?: unknown; timeoutMs?: number },
  ): Promise<IncomingMessage>;
  /** The ready agents now (to find the successor of one that went). */
  agents(): Promise<AgentPod[]>;
  /** Where a person reads an agent's log, for messages. */
  logHint(agent: AgentPod): string;
}

export function portForwardTransport(kc: KubeConfig, namespace = AGENT_NAMESPACE): AgentTransport {
  return {
    request: (agent, r) => podHttp(kc, { namespace, pod: agent.name, port: AGENT_API_PORT }, r),
    agents: () => findAgents(kc, namespace),
    logHint: (agent) => `kubectl -n ${namespace} logs ${agent.name}`,
  };
}

/** One node's capture and its stream; reads again after a break, starts again on a new agent. */
export class NodeStream {
  report: NodeReport;
  state: NodeState = 'starting';
  targets: TargetPod[] = [];
  private capture = '';
  private lastSeq = 0;
  private lastN = 0;
  private lastEventUs = Date.now() * 1000;
  private ended: Extract<WireEvent, { t: 'end' }> | undefined;
  /** The agent ended the capture because it was going away: its successor takes over. */
  private agentLeft = false;
  private stopping = false;
  private current: IncomingMessage | undefined;
  private stopAsked: Promise<void> | undefined;

  constructor(
    private readonly transport: AgentTransport,
    private agent: AgentPod,
    private readonly request: CaptureRequest,
    private readonly deliver: (ex: Exchange, node: string) => Promise<void>,
    private readonly notice: (text: string) => void,
    private readonly resumeWindowMs = RESUME_WINDOW_MS,
  ) {
    this.report = {
      node: agent.node,
      agentPod: agent.name,
      exchanges: 0,
      counters: {},
      resumes: 0,
      lostExchanges: 0,
      gaps: [],
      endReason: '',
    };
  }

  /** Starts the capture on the agent; resolves once it is attached. */
  async start(): Promise<void> {
    const res = await this.transport.request(this.agent, {
      method: 'POST',
      path: '/v1/captures',
      body: this.request,
      timeoutMs: 60_000,
    });
    const body = await readJson<{ id: string }>(res).catch((e: Error) => {
      throw new RetapError(
        ErrorCodes.CAPTURE_FAILED,
        `the agent on node ${this.agent.node} could not start: ${e.message}`,
        {
          hint: `Its log: ${this.transport.logHint(this.agent)}`,
          cause: e,
        },
      );
    });
    this.capture = body.id;
    this.lastSeq = 0;
    this.lastN = 0;
    this.agentLeft = false;
    this.state = 'live';
  }

  /** Reads events until the capture ends, resuming broken streams. */
  async run(): Promise<void> {
    let brokeAt = 0;
    while (!this.ended) {
      try {
        await this.read();
        if (this.ended) break;
        throw new Error(this.agentLeft ? 'the agent went away' : 'the stream ended before the capture did');
      } catch (e) {
        if (this.ended) break;
        const why = e instanceof Error ? e.message : String(e);
        brokeAt ||= Date.now();
        if (Date.now() - brokeAt > this.resumeWindowMs) {
          this.state = 'failed';
          this.report.error = `stream lost for ${Math.round(this.resumeWindowMs / 1000)} s: ${why}`;
          this.report.gaps.push({
            fromUs: this.lastEventUs,
            toUs: Date.now() * 1000,
            reason: this.report.error,
          });
          this.notice(
            `node ${this.agent.node}: giving up after ${Math.round(this.resumeWindowMs / 1000)} s (${why}); nothing it recorded after ${new Date(this.lastEventUs / 1000).toISOString()} is in the snapshot`,
          );
          return;
        }
        this.state = 'resuming';
        await new Promise((r) => setTimeout(r, 500));
        if (await this.recover(why)) brokeAt = 0;
      }
    }
    this.state = 'ended';
    const end = this.ended;
    if (end) {
      this.report.counters = end.counters;
      this.report.endReason = end.reason;
      if (end.error) this.report.error = end.error;
      if (end.exchanges > this.lastN) this.report.lostExchanges += end.exchanges - this.lastN;
    }
  }

  /**
   * After a broken stream: read the same capture again if the agent still has it, else start a
   * new one on the node's (new) agent and note the window nothing was recorded in. True when
   * reading can go on.
   */
  private async recover(why: string): Promise<boolean> {
    if (!this.agentLeft && (await this.captureExists())) {
      this.report.resumes++;
      this.notice(
        `node ${this.agent.node}: stream broke (${why}); reading again after event ${this.lastSeq}`,
      );
      return true;
    }
    const agents = await this.transport.agents().catch(() => []);
    const next = agents.find((a) => a.node === this.agent.node);
    if (!next) return false; // not ready yet: the next round tries again
    const from = this.lastEventUs;
    if (this.stopping) {
      this.ended = {
        t: 'end',
        seq: 0,
        code: 'shutdown',
        reason: `the agent went while stopping (${why})`,
        exchanges: this.lastN,
        counters: this.report.counters,
      };
      return true;
    }
    const previous = this.agent;
    this.agent = next;
    try {
      await this.start();
    } catch {
      this.agent = previous.name === next.name ? previous : next;
      return false; // the successor is not ready to record yet
    }
    const to = Date.now() * 1000;
    this.report.agentPod = next.name;
    this.report.gaps.push({ fromUs: from, toUs: to, reason: `the agent was replaced (${why})` });
    this.report.resumes++;
    this.notice(
      `node ${this.agent.node}: the agent was replaced (${why}); recording again on ${next.name}; nothing recorded from ${new Date(from / 1000).toISOString()} to ${new Date(to / 1000).toISOString()}`,
    );
    return true;
  }

  private async captureExists(): Promise<boolean> {
    try {
      const res = await this.transport.request(this.agent, {
        method: 'GET',
        path: `/v1/captures/${this.capture}`,
        timeoutMs: 10_000,
      });
      // ended or not, it is there: its log still holds what we have not read
      await readJson(res);
      return true;
    } catch {
      // 404 (the agent restarted) or no way to reach it (its pod is gone)
      return false;
    }
  }

  private async read(): Promise<void> {
    const res = await this.transport.request(this.agent, {
      method: 'GET',
      path: `/v1/captures/${this.capture}/events?after=${this.lastSeq}`,
      timeoutMs: 60_000,
    });
    if (res.statusCode !== 200) await readJson(res);
    this.current = res;
    res.socket?.setTimeout?.(0);
    // lines arrive at least every 2 s (stats): a silent stream is a dead one
    let idle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => res.destroy(new Error('no event for 20 s')), 20_000);
    };
    arm();
    try {
      for await (const line of createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY })) {
        arm();
        if (!line) continue;
        const ev = decodeEvent(line);
        await this.handle(ev);
        if (ev.seq > this.lastSeq) this.lastSeq = ev.seq;
        if (ev.t === 'end') break;
      }
    } finally {
      clearTimeout(idle);
      this.current = undefined;
    }
  }

  private async handle(ev: WireEvent): Promise<void> {
    switch (ev.t) {
      case 'exchange':
        if (ev.n <= this.lastN) return; // seen before a resume
        if (ev.n > this.lastN + 1) this.report.lostExchanges += ev.n - this.lastN - 1;
        this.lastN = ev.n;
        this.lastEventUs = Date.now() * 1000;
        this.report.exchanges++;
        await this.deliver(ev.ex, this.agent.node);
        return;
      case 'targets':
        this.targets = ev.pods;
        return;
      case 'stats':
        this.report.counters = ev.counters;
        this.lastEventUs = Date.now() * 1000;
        return;
      case 'lost':
        this.notice(
          `node ${this.agent.node}: the agent no longer had events ${ev.fromSeq}–${ev.toSeq} (its buffer is bounded); the exchanges among them are counted as lost`,
        );
        return;
      case 'end':
        if (ev.exchanges > this.lastN) this.report.lostExchanges += ev.exchanges - this.lastN;
        this.lastN = Math.max(this.lastN, ev.exchanges);
        this.report.counters = ev.counters;
        this.lastEventUs = Date.now() * 1000;
        // an agent that goes away hands its node to its successor, unless we are stopping anyway
        if (ev.code === 'shutdown' && !this.stopping) this.agentLeft = true;
        else this.ended = ev;
        return;
      case 'hello':
        return;
    }
  }

  /** Asks the agent to stop; its last events still arrive on the stream. */
  stop(): Promise<void> {
    if (this.stopAsked) return this.stopAsked;
    this.stopping = true;
    if (this.state !== 'failed' && this.state !== 'ended') this.state = 'stopping';
    this.stopAsked = (async () => {
      for (let attempt = 0; attempt < 3 && !this.ended; attempt++) {
        try {
          const res = await this.transport.request(this.agent, {
            method: 'DELETE',
            path: `/v1/captures/${this.capture}`,
            timeoutMs: 15_000,
          });
          await readJson(res);
          return;
        } catch (e) {
          if ((e as { status?: number }).status === 404) return;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    })();
    return this.stopAsked;
  }

  /** Gives up waiting for the end (deadline passed). */
  abandon(): void {
    if (this.ended) return;
    this.ended = {
      t: 'end',
      seq: 0,
      code: 'failed',
      reason: 'no end from the agent in time',
      exchanges: this.lastN,
      counters: this.report.counters,
    };
    this.report.error = `the agent did not finish within ${END_TIMEOUT_MS / 1000} s of being asked to stop`;
    this.current?.destroy();
  }
}

/** Records the target pods on every node into `sink` until the duration passes or `stop` fires. */
export async function captureFromCluster(
  o: ClusterCaptureOptions,
  sink: ExchangeSink,
): Promise<ClusterCaptureResult> {
  const t0 = Date.now();
  if (!o.selector && !o.annotated)
    throw new RetapError(ErrorCodes.USAGE, 'give --selector or --annotated', {
      hint: 'A capture of every pod is not offered.',
    });
  if (o.selector) parseSelector(o.selector);
  const agentNamespace = o.agentNamespace ?? AGENT_NAMESPACE;
  const notice = o.onNotice ?? (() => {});
  const [agents, pods] = await Promise.all([findAgents(o.kc, agentNamespace), targetPods(o.kc, o)]);
  if (!agents.length) {
    throw new RetapError(
      ErrorCodes.K8S_AGENT_MISSING,
      `no ready retap agent in namespace ${agentNamespace}`,
      {
        hint: 'Install it with `retap k8s install` (and check `retap k8s status`).',
      },
    );
  }
  const covered = new Set(agents.map((a) => a.node));
  const uncovered = [
    ...new Set(pods.map((p) => p.spec?.nodeName).filter((n): n is string => !!n && !covered.has(n))),
  ];
  const notes: string[] = [];
  for (const n of uncovered) {
    const text = `node ${n} runs target pods but has no ready retap agent: its traffic is not in this snapshot`;
    notes.push(text);
    notice(text);
  }
  if (!pods.length) notice('no pod matches yet; the agents will pick up matching pods as they start');

  const request: CaptureRequest = {
    ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
    ...(o.selector ? { selector: o.selector } : {}),
    ...(o.container !== undefined ? { container: o.container } : {}),
    ...(o.annotated ? { annotated: true } : {}),
    // the agents stop on their own a little after the client would have, should it vanish
    maxDurationMs: Math.min((o.durationMs ?? 6 * 3600_000) + 120_000, 24 * 3600_000),
    ...(o.tls === false ? { tls: false } : {}),
  };

  const peers = new PeerNames(o.kc, o.namespace);
  await peers.refresh();
  let inbound = 0;
  let outbound = 0;
  let firstExchangeMs: number | undefined;
  let sinkError: unknown;
  let writing: Promise<void> = Promise.resolve();
  const deliver = (ex: Exchange): Promise<void> => {
    firstExchangeMs ??= Date.now() - t0;
    if (ex.direction === 'inbound') inbound++;
    else outbound++;
    peers.label(ex);
    writing = writing.then(() => sink.append(ex)).catch((e: unknown) => void (sinkError ??= e));
    // backpressure: a stream waits while the sink is behind
    return writing;
  };
  const transport = o.transport ?? portForwardTransport(o.kc, agentNamespace);
  const streams = agents.map((a) => new NodeStream(transport, a, request, deliver, notice));
  const started = await Promise.allSettled(streams.map((s) => s.start()));
  const failed = started.flatMap((r, i) =>
    r.status === 'rejected' ? [{ node: agents[i]!.node, reason: r.reason }] : [],
  );
  if (failed.length === streams.length) {
    throw failed[0]!.reason instanceof RetapError
      ? failed[0]!.reason
      : new RetapError(ErrorCodes.CAPTURE_FAILED, `no agent could start: ${String(failed[0]!.reason)}`);
  }
  for (const f of failed) {
    const text = `node ${f.node}: the capture did not start (${f.reason instanceof Error ? f.reason.message : String(f.reason)}); its traffic is not in this snapshot`;
    notes.push(text);
    notice(text);
  }
  const live = streams.filter((_s, i) => started[i]!.status === 'fulfilled');
  const readyMs = Date.now() - t0;
  o.onReady?.(live.map((s) => s.report.node));

  const runs = live.map((s) => s.run());
  const progress = setInterval(() => {
    void peers.refresh();
    o.onProgress?.({
      exchanges: inbound + outbound,
      inbound,
      outbound,
      nodes: live.map((s) => ({
        node: s.report.node,
        exchanges: s.report.exchanges,
        drops:
          (s.report.counters.ringbufDrops ?? 0) +
          (s.report.counters.userBatchDrops ?? 0) +
          s.report.lostExchanges,
        state: s.state,
      })),
      targets: live.flatMap((s) => s.targets),
    });
  }, 500);
  const allTargets = new Map<string, TargetPod>();
  const noteTargets = setInterval(() => {
    for (const s of live) for (const t of s.targets) allTargets.set(t.uid, t);
  }, 250);
  try {
    const waits: Array<Promise<unknown>> = [Promise.all(runs)];
    if (o.durationMs !== undefined) waits.push(new Promise((r) => setTimeout(r, o.durationMs).unref()));
    if (o.stop)
      waits.push(
        o.stop.aborted
          ? Promise.resolve()
          : new Promise((r) => o.stop!.addEventListener('abort', r, { once: true })),
      );
    await Promise.race(waits);
    await Promise.all(live.map((s) => s.stop()));
    const deadline = setTimeout(() => {
      for (const s of live) s.abandon();
    }, END_TIMEOUT_MS);
    await Promise.all(runs);
    clearTimeout(deadline);
    await writing;
  } finally {
    clearInterval(progress);
    clearInterval(noteTargets);
    for (const s of live) void s.stop().catch(() => undefined);
  }
  for (const s of live) for (const t of s.targets) allTargets.set(t.uid, t);
  if (sinkError) throw sinkError;

  const counters: Record<string, number> = {};
  for (const s of live) {
    const r = s.report;
    const own: Record<string, number> = {
      ...r.counters,
      streamLostExchanges: r.lostExchanges,
      streamResumes: r.resumes,
      streamGaps: r.gaps.length,
    };
    for (const [k, v] of Object.entries(own)) {
      if (!Number.isFinite(v) || v < 0) continue;
      counters[k] = (counters[k] ?? 0) + v;
      counters[`nodes/${r.node}/${k}`] = v;
    }
    if (r.lostExchanges)
      notes.push(`node ${r.node}: ${r.lostExchanges} exchanges recorded by the agent never arrived`);
    for (const g of r.gaps) {
      notes.push(
        `node ${r.node}: nothing recorded from ${new Date(g.fromUs / 1000).toISOString()} to ${new Date(g.toUs / 1000).toISOString()} (${g.reason})`,
      );
    }
    if (r.error && !r.gaps.length) notes.push(`node ${r.node}: ${r.error}`);
  }
  return {
    inbound,
    outbound,
    nodes: [
      ...live.map((s) => s.report),
      ...failed.map((f) => ({
        node: f.node,
        agentPod: '',
        exchanges: 0,
        counters: {},
        resumes: 0,
        lostExchanges: 0,
        gaps: [],
        endReason: 'failed to start',
        error: String(f.reason instanceof Error ? f.reason.message : f.reason),
      })),
    ],
    targets: [...allTargets.values()],
    uncovered,
    counters,
    notes,
    ...(firstExchangeMs !== undefined ? { firstExchangeMs } : {}),
    readyMs,
    startedAt: t0,
  };
}
