/**
 * One capture on one node, as the agent runs it for a `retap k8s capture` client: records through
 * recordUntil (the library's one way to record), with the kernel's target set kept in step with
 * the pods by a TargetTracker, into an EventLog a client reads (and re-reads after a broken
 * connection). It stops when asked, after its maximum duration, or when no client has read it
 * for `idleMs`.
 */
import { randomBytes } from 'node:crypto';
import { logger } from '../../core/log.js';
import { countersOf, recordUntil } from '../record.js';
import type { CaptureStats } from '../session.js';
import type { PodCgroups } from './cgroups.js';
import { EventLog } from './eventlog.js';
import type { NodePods } from './node-pods.js';
import { parseSelector } from './selector.js';
import { TargetTracker } from './targets.js';
import type { CaptureRequest, EndCode } from './wire.js';

const log = logger('agent');

export interface NodeCaptureDeps {
  node: string;
  agent: string;
  version: string;
  pods: NodePods;
  cgroups: PodCgroups;
  /** Ring buffer bytes (power of two). */
  ringBufferBytes?: number;
  /** Stop when no client has been reading for this long (default 60 s). */
  idleMs?: number;
}

export type CaptureState = 'starting' | 'running' | 'stopping' | 'ended';

export class NodeCapture {
  readonly id = randomBytes(6).toString('hex');
  readonly log: EventLog;
  readonly startedAt = Date.now();
  state: CaptureState = 'starting';
  endReason: string | undefined;
  endCode: EndCode | undefined;
  exchanges = 0;
  /** The capture's own figures once it has ended (TLS libraries probed, failures…). */
  finalStats: CaptureStats | undefined;
  private readonly abort = new AbortController();
  private readers = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private statsNow: (() => CaptureStats) | undefined;
  private tracker: TargetTracker;
  /** Settles when the capture has ended and its last event is in the log. */
  readonly done: Promise<void>;
  private readyWait: Promise<void>;

  constructor(
    readonly request: CaptureRequest,
    private readonly deps: NodeCaptureDeps,
  ) {
    this.log = new EventLog(request.bufferBytes ?? 64 << 20);
    const selector = request.selector ? parseSelector(request.selector) : undefined;
    this.tracker = new TargetTracker(
      {
        node: deps.node,
        ...(request.namespace !== undefined ? { namespace: request.namespace } : {}),
        ...(selector ? { selector } : {}),
        ...(request.annotated ? { annotated: true } : {}),
        ...(request.container !== undefined ? { container: request.container } : {}),
      },
      deps.pods,
      deps.cgroups,
      (ex) => this.log.push({ t: 'exchange', n: ++this.exchanges, ex }),
      (pods) => this.log.push({ t: 'targets', pods }),
    );
    let ready: () => void = () => {};
    let failed: (e: unknown) => void = () => {};
    this.readyWait = new Promise<void>((res, rej) => {
      ready = res;
      failed = rej;
    });
    this.readyWait.catch(() => undefined);
    this.done = this.run(ready, failed);
    this.armIdle();
  }

  /** Resolves once the kernel side is attached and the targets are set; rejects if it cannot start. */
  ready(): Promise<void> {
    return this.readyWait;
  }

  stop(reason = 'stopped by the client', code: EndCode = 'stopped'): void {
    if (this.state === 'ended' || this.abort.signal.aborted) return;
    this.endReason ??= reason;
    this.endCode ??= code;
    this.state = 'stopping';
    this.abort.abort();
  }

  get readerCount(): number {
    return this.readers;
  }

  /** A client started reading; returns the function to call when it stops. */
  reader(): () => void {
    this.readers++;
    clearTimeout(this.idleTimer);
    return () => {
      this.readers--;
      if (this.readers === 0) this.armIdle();
    };
  }

  status(): Record<string, unknown> {
    return {
      id: this.id,
      state: this.state,
      request: this.request,
      startedAt: new Date(this.startedAt).toISOString(),
      exchanges: this.exchanges,
      readers: this.readers,
      lastSeq: this.log.lastSeq,
      bufferedBytes: this.log.bufferedBytes,
      targets: this.tracker.summary(),
      ...(this.endReason ? { endReason: this.endReason } : {}),
    };
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    const idle = this.deps.idleMs ?? 60_000;
    this.idleTimer = setTimeout(
      () => this.stop(`no client read it for ${Math.round(idle / 1000)} s`, 'idle'),
      idle,
    );
    this.idleTimer.unref();
  }

  private counters(stats: CaptureStats | undefined): Record<string, number> {
    return { ...(stats ? countersOf(stats) : {}), ...this.tracker.counters };
  }

  private async run(ready: () => void, failed: (e: unknown) => void): Promise<void> {
    const { pods } = this.deps;
    const timers: NodeJS.Timeout[] = [];
    let unsubscribe = (): void => {};
    let error: string | undefined;
    let stats: CaptureStats | undefined;
    try {
      const result = await recordUntil(
        {
          tls: this.request.tls !== false,
          tlsDefaults: false,
          ...(this.deps.ringBufferBytes ? { ringBufferBytes: this.deps.ringBufferBytes } : {}),
        },
        { append: (ex) => this.tracker.accept(ex) },
        this.abort.signal,
        {
          durationMs: this.request.maxDurationMs,
          onReady: ({ session }) => {
            this.statsNow = () => session.stats();
            this.tracker.bind(session);
            unsubscribe = pods.onChange(() => this.tracker.sync());
            timers.push(setInterval(() => this.tracker.sync(), 250));
            timers.push(
              setInterval(() => {
                this.log.push({
                  t: 'stats',
                  exchanges: this.exchanges,
                  counters: this.counters(this.statsNow?.()),
                });
              }, 2000),
            );
            this.log.push({
              t: 'hello',
              node: this.deps.node,
              capture: this.id,
              agent: this.deps.agent,
              version: this.deps.version,
              startedUs: this.startedAt * 1000,
            });
            this.state = 'running';
            ready();
          },
        },
      );
      stats = result.stats;
      this.finalStats = stats;
      this.endReason ??= `maximum duration (${Math.round(this.request.maxDurationMs / 1000)} s) reached`;
      this.endCode ??= 'max-duration';
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      log.warn(`capture ${this.id} failed: ${error}`);
      failed(e);
    } finally {
      unsubscribe();
      for (const t of timers) clearInterval(t);
      clearTimeout(this.idleTimer);
    }
    // exchanges still waiting for a container name go out as they are
    this.tracker.flush();
    this.state = 'ended';
    this.log.push({
      t: 'end',
      code: error ? 'failed' : (this.endCode ?? 'stopped'),
      reason: error ? 'failed' : (this.endReason ?? 'ended'),
      exchanges: this.exchanges,
      counters: this.counters(stats),
      ...(error ? { error } : {}),
    });
    this.log.close();
  }
}
