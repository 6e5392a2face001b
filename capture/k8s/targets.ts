/**
 * One capture's targets on one node: which containers' cgroups the kernel filter holds, kept in
 * step with the pods as they come, restart and go, and the Kubernetes labels of every exchange.
 *
 * A target pod's containers are targeted as soon as their cgroup directories exist — before the
 * kubelet reports their ids in the pod's status — so a container's first requests are captured.
 * Its processes are looked at right away too, so its TLS library is probed before its first
 * handshake. An exchange whose container is not named by the pod's status yet waits (up to
 * `labelWaitMs`) for the status that names it.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Exchange, K8sRef } from '../../core/exchange.js';
import { cgroupPids, type PodCgroups, processContainer } from './cgroups.js';
import { containerNames, type PodFilter, podMatches, podRef } from './pods.js';
import type { TargetPod } from './wire.js';

/** The pods of this node, as the agent's watch knows them. */
export interface PodSource {
  list(): readonly V1Pod[];
  byUid(uid: string): V1Pod | undefined;
  /** A pod with its own network namespace whose address this is. */
  byIp(ip: string): V1Pod | undefined;
}

/** What the tracker changes in a running capture (CaptureSession has these). */
export interface TargetSession {
  addCgroup(id: bigint): void;
  removeCgroup(id: bigint): void;
  watchProcess(pid: number): void;
}

export interface TrackerOptions extends PodFilter {
  /** Only this container of each pod. */
  container?: string;
  node: string;
  /** How long an exchange may wait for its container to be named (default 10 s). */
  labelWaitMs?: number;
}

interface Target {
  podUid: string;
  cgroupId: bigint;
  dir: string;
  /** The pod as last seen (kept after it is deleted, to label the last exchanges). */
  pod: V1Pod;
}

export interface TrackerCounters {
  /** Exchanges whose process could not be tied to a container (exited before it was seen). */
  unattributed: number;
  /** Exchanges of another container of a target pod (`--container`), dropped. */
  otherContainer: number;
  /** Containers targeted over the capture (restarts count again). */
  containersTargeted: number;
}

const RETIRED_KEEP_MS = 60_000;
const MAX_PIDS = 1 << 16;

export class TargetTracker {
  private session: TargetSession | undefined;
  private targets = new Map<string, Target>(); // container id → target
  private retired = new Map<string, Target & { until: number }>();
  private pids = new Map<number, string>(); // host pid → container id
  private waiting: Array<{ ex: Exchange; since: number }> = [];
  private lastSummary = '';
  readonly counters: TrackerCounters = { unattributed: 0, otherContainer: 0, containersTargeted: 0 };

  constructor(
    private readonly opts: TrackerOptions,
    private readonly pods: PodSource,
    private readonly cgroups: PodCgroups,
    private readonly emit: (ex: Exchange) => void,
    private readonly onTargets?: (pods: TargetPod[]) => void,
  ) {}

  /** Starts filling the session's target set. */
  bind(session: TargetSession): void {
    this.session = session;
    this.sync();
  }

  /** Brings the kernel's target set in line with the pods; call on every pod event and tick. */
  sync(now = Date.now()): void {
    const session = this.session;
    if (!session) return;
    const wanted = new Map<string, Target>();
    for (const pod of this.pods.list()) {
      if (!podMatches(pod, this.opts)) continue;
      const uid = pod.metadata!.uid!;
      const names = containerNames(pod);
      for (const cg of this.cgroups.containers(uid)) {
        const name = names.get(cg.id);
        if (this.opts.container !== undefined && name !== undefined && name !== this.opts.container) continue;
        wanted.set(cg.id, { podUid: uid, cgroupId: cg.cgroupId, dir: cg.dir, pod });
      }
    }
    for (const [id, t] of this.targets) {
      if (wanted.has(id)) continue;
      session.removeCgroup(t.cgroupId);
      this.targets.delete(id);
      this.retired.set(id, { ...t, until: now + RETIRED_KEEP_MS });
    }
    for (const [id, t] of wanted) {
      const had = this.targets.get(id);
      if (had && had.cgroupId === t.cgroupId) {
        had.pod = t.pod;
        continue;
      }
      if (had) session.removeCgroup(had.cgroupId);
      session.addCgroup(t.cgroupId);
      this.targets.set(id, t);
      this.retired.delete(id);
      this.counters.containersTargeted++;
    }
    for (const [id, t] of this.targets) {
      for (const pid of cgroupPids(t.dir)) {
        if (this.pids.get(pid) === id) continue;
        this.pids.set(pid, id);
        session.watchProcess(pid);
      }
    }
    for (const [id, r] of this.retired) if (r.until < now) this.retired.delete(id);
    if (this.pids.size > MAX_PIDS) this.prunePids();
    this.report();
    this.flushWaiting(now);
  }

  /** Labels an exchange and hands it on, now or once its container is named. */
  accept(ex: Exchange, now = Date.now()): void {
    if (this.tryLabel(ex, false)) return;
    this.waiting.push({ ex, since: now });
  }

  /** Hands on every waiting exchange as it stands (capture is over). */
  flush(): void {
    this.flushWaiting(Number.POSITIVE_INFINITY, true);
  }

  /** The pods targeted now, for the live display. */
  summary(): TargetPod[] {
    const byPod = new Map<string, TargetPod>();
    for (const [id, t] of this.targets) {
      const meta = t.pod.metadata!;
      let p = byPod.get(t.podUid);
      if (!p) {
        p = { namespace: meta.namespace ?? '', pod: meta.name ?? '', uid: t.podUid, containers: [] };
        byPod.set(t.podUid, p);
      }
      const name = containerNames(t.pod).get(id);
      // the sandbox (pause) is never named by the status: leave it out of what people read
      if (name) p.containers.push(name);
    }
    return [...byPod.values()].sort((a, b) =>
      `${a.namespace}/${a.pod}`.localeCompare(`${b.namespace}/${b.pod}`),
    );
  }

  private report(): void {
    if (!this.onTargets) return;
    const s = this.summary();
    const key = JSON.stringify(s);
    if (key === this.lastSummary) return;
    this.lastSummary = key;
    this.onTargets(s);
  }

  private flushWaiting(now: number, final = false): void {
    if (!this.waiting.length) return;
    const still: Array<{ ex: Exchange; since: number }> = [];
    for (const w of this.waiting) {
      const expired = final || now - w.since >= (this.opts.labelWaitMs ?? 10_000);
      if (!this.tryLabel(w.ex, expired)) still.push(w);
    }
    this.waiting = still;
  }

  /** True when the exchange was emitted or dropped; false to wait for the pod's status. */
  private tryLabel(ex: Exchange, giveUp: boolean): boolean {
    const target = this.targetOf(ex.service.pid);
    if (!target) {
      this.counters.unattributed++;
      this.send(ex, undefined);
      return true;
    }
    const name = containerNames(target.pod).get(target.id);
    if (name === undefined && !giveUp) return false;
    if (this.opts.container !== undefined && name !== this.opts.container) {
      if (name === undefined) this.counters.unattributed++;
      else this.counters.otherContainer++;
      return true;
    }
    this.send(ex, podRef(target.pod, this.opts.node, name));
    return true;
  }

  /** Ids made unique across nodes, labels set, handed on. */
  private send(ex: Exchange, ref: K8sRef | undefined): void {
    const node = this.opts.node;
    ex.id = `${node}/${ex.id}`;
    ex.connection.id = `${node}/${ex.connection.id}`;
    if (ref) {
      ex.service.k8s = ref;
      ex.service.name ??= ref.workload?.name ?? ref.pod;
    }
    this.labelPeer(ex);
    this.emit(ex);
  }

  private targetOf(pid: number | undefined): (Target & { id: string }) | undefined {
    if (pid === undefined) return undefined;
    let id = this.pids.get(pid);
    let found: ReturnType<typeof processContainer>;
    if (id === undefined) {
      found = processContainer(pid);
      if (!found) return undefined;
      id = found.containerId;
      this.pids.set(pid, id);
    }
    const t = this.targets.get(id) ?? this.retired.get(id);
    if (t) return { ...t, id };
    // a container whose cgroup appeared after the last sync: name its pod from the process
    found ??= processContainer(pid);
    const pod = found && this.pods.byUid(found.podUid);
    if (!found || !pod || !podMatches(pod, this.opts)) return undefined;
    return { podUid: found.podUid, cgroupId: 0n, dir: '', pod, id };
  }

  private labelPeer(ex: Exchange): void {
    if (ex.peer.k8s) return;
    const pod = this.pods.byIp(ex.peer.addr);
    if (pod) ex.peer.k8s = podRef(pod, this.opts.node);
  }

  private prunePids(): void {
    for (const pid of this.pids.keys()) {
      try {
        process.kill(pid, 0);
      } catch {
        this.pids.delete(pid);
      }
    }
  }
}
