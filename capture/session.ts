/**
 * A running capture: the addon's BPF programs plus the connection table that turns their records
 * into exchanges. Used by `retap capture`, `retap demo` and the replay runner.
 */
import { existsSync } from 'node:fs';
import { ErrorCodes, RetapError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import { logger } from '../core/log.js';
import type { NativeCapture, NativeCounters } from '../native/retap_native.js';
import { loadAddon } from './addon.js';
import { systemClock } from './clock.js';
import { runtimeOfProcess } from './causal/runtime.js';
import { ConnectionTable, type LiveLink, type TableStats } from './connections.js';
import { checkLayout, decodeBatch, EV_CLOSE, EV_DATA, EV_LOOP, EV_OPEN, EV_PROC, EV_TLS_BIND } from './events.js';
import './protocols/index.js';
import type { DecoderOptions } from './protocols/types.js';
import { type GoTlsBinary, type TlsFailure, TlsProbes } from './tls-probes.js';

const log = logger('capture');

export interface CaptureOptions {
  /** Processes to capture (their threads too; children forked later are added by the kernel side). */
  pids?: number[];
  /** cgroup v2 ids to capture (see cgroup.ts: cgroupId). */
  cgroupIds?: bigint[];
  /** Only connections with one of these local or remote ports. */
  ports?: number[];
  /** Every process on the machine (still filtered by ports). */
  all?: boolean;
  /** Per-syscall copy cap (default 1 MiB); bytes past it are recorded as sizes only. */
  perCallCapBytes?: number;
  /** Ring buffer size, power of two (default 16 MiB: resident as a whole, so it is the RSS it costs). */
  ringBufferBytes?: number;
  /**
   * How often the poll thread takes what the ring holds when no wakeup came, ms (default 2). Every
   * poll that finds records costs a wakeup of the JS thread; live consumers (replay's link feed)
   * want it short.
   */
  pollMs?: number;
  /** Attach TLS probes: OpenSSL and Go crypto/tls (default true). */
  tls?: boolean;
  /**
   * Attach the TLS probes to this machine's libssl and node at start (default true). The node
   * agent turns it off: its targets live in containers, and its own node must not trap.
   */
  tlsDefaults?: boolean;
  /** Name for `service.name` on every exchange. */
  service?: string;
  /**
   * Stop targets at exec of an executable not looked at yet, until its TLS probes are attached
   * (milliseconds). For targets retap started (a command, a replayed build): default false.
   */
  holdExec?: boolean;
  decoder?: DecoderOptions;
  /** Every outbound write linked to the request it was made for, as capture sees it (replay mocks). */
  onLink?: (link: LiveLink) => void;
}

export interface CaptureStats extends TableStats {
  kernel: NativeCounters;
  /** Records in batches that could not be decoded (should stay 0). */
  malformedBytes: number;
  tlsProbes: number;
  /** TLS probes attached per target process (other processes do not trap), or for every process. */
  tlsProbesFor: 'process' | 'all';
  /** Files with TLS probes (OpenSSL libraries and executables, Go programs). */
  tlsLibraries: string[];
  /** Go programs whose crypto/tls calls are probed. */
  goTls: GoTlsBinary[];
  /** Files whose TLS plaintext cannot be captured, with the reason (e.g. a Go build not supported). */
  tlsFailures: TlsFailure[];
  /** Sum of everything lost: ring buffer drops + batches JS could not take + in-stream gaps. */
  lost: { ringbufRecords: number; userBatches: number; gapBytes: number };
}

export class CaptureSession {
  private native: NativeCapture;
  private table: ConnectionTable;
  private tls: TlsProbes | undefined;
  private malformed = 0;
  private sweepTimer: NodeJS.Timeout;
  private drained: Promise<void>;
  private stopped: CaptureStats | undefined;
  private knownTgids = new Set<number>();
  /** Whatever ends this process, no target stays stopped at exec. */
  private readonly onExit = (): void => this.native.stop();

  private constructor(opts: CaptureOptions, onExchange: (ex: Exchange) => void) {
    const addon = loadAddon();
    checkLayout(addon.layout);
    this.table = new ConnectionTable(
      systemClock(),
      onExchange,
      opts.decoder,
      opts.service,
      (opts.ports?.length ?? 0) > 0,
      opts.onLink,
    );
    // TLS probes per target process when the targets are processes: other processes then pay
    // nothing for them. Cgroups and --all name processes the kernel cannot filter probes by.
    const perProcess = opts.tls !== false && opts.all !== true && (opts.cgroupIds?.length ?? 0) === 0;
    let resolveDrained: () => void = () => {};
    this.drained = new Promise((r) => (resolveDrained = r));
    try {
      this.native = addon.open({
        selfTgid: process.pid,
        captureAll: opts.all === true,
        ports: opts.ports ?? [],
        tgids: opts.pids ?? [],
        cgroups: opts.cgroupIds ?? [],
        ...(opts.perCallCapBytes !== undefined ? { perCallCapBytes: opts.perCallCapBytes } : {}),
        ...(opts.ringBufferBytes !== undefined ? { ringBufferBytes: opts.ringBufferBytes } : {}),
        ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}),
        // A Go program must have its probes before its first TLS call: hold targets at exec until
        // their executable was looked at. Only for processes retap started itself (opts.holdExec):
        // were retap killed with SIGKILL during a hold, nothing would continue a process it holds.
        holdExec: opts.holdExec === true && opts.tls !== false && opts.all !== true,
        tlsPerProcess: perProcess,
        onBatch: (batch) => this.onBatch(batch),
        onDrained: () => resolveDrained(),
      });
    } catch (e) {
      const err = e as Error & { errno?: number };
      throw new RetapError(ErrorCodes.CAPTURE_UNAVAILABLE, err.message.split('\n')[0] ?? 'capture failed', {
        hint: 'Run `retap doctor` to see what this machine lacks.',
        cause: e,
        details: { errno: err.errno },
      });
    }
    if (opts.tls !== false) {
      this.tls = new TlsProbes(this.native, perProcess);
      if (opts.tlsDefaults !== false) this.tls.attachDefaults();
      for (const pid of opts.pids ?? []) this.noteTgid(pid);
    }
    // Processes exit without close(): end their streams; new targets may have loaded libssl.
    this.sweepTimer = setInterval(() => this.sweep(), 1000);
    this.sweepTimer.unref();
    process.once('exit', this.onExit);
  }

  static start(opts: CaptureOptions, onExchange: (ex: Exchange) => void): CaptureSession {
    return new CaptureSession(opts, onExchange);
  }

  addPid(pid: number): void {
    this.native.addTarget('tgid', pid);
    this.noteTgid(pid, true);
  }

  addCgroup(id: bigint): void {
    this.native.addTarget('cgroup', id);
    // processes of a cgroup start without telling us: the probes go on for every process
    this.tls?.toEveryProcess();
  }

  removeCgroup(id: bigint): void {
    this.native.removeTarget('cgroup', id);
  }

  /**
   * Looks at a process of a target (for instance one found in a target cgroup) before it sends
   * anything, so its TLS library is probed before its first handshake; rescanned every second.
   */
  watchProcess(pid: number): void {
    if (this.stopped) return;
    this.noteTgid(pid);
  }

  removePid(pid: number): void {
    this.native.removeTarget('tgid', pid);
    this.tls?.forget(pid);
  }

  /** Live figures, for progress displays. */
  stats(): CaptureStats {
    return this.stopped ?? this.collect(this.native.counters());
  }

  /** Detach, drain, end every stream (pending requests become unanswered exchanges). Idempotent. */
  async stop(): Promise<CaptureStats> {
    if (this.stopped) return this.stopped;
    clearInterval(this.sweepTimer);
    process.off('exit', this.onExit);
    this.native.stop();
    await Promise.race([this.drained, new Promise((r) => setTimeout(r, 5000).unref())]);
    this.table.flushBatch();
    this.table.endAll(Number(process.hrtime.bigint()));
    this.stopped = this.collect(this.native.counters());
    if (this.stopped.kernel.ringbufDrops || this.stopped.kernel.userDrops) {
      log.warn(
        `capture lost data: ${this.stopped.kernel.ringbufDrops} ring buffer records and ${this.stopped.kernel.userDrops} batches were dropped; affected exchanges are marked truncated`,
      );
    }
    return this.stopped;
  }

  private onBatch(batch: Buffer): void {
    this.malformed += decodeBatch(batch, (ev) => {
      switch (ev.type) {
        case EV_DATA:
          if (!this.knownTgids.has(ev.tgid)) this.noteTgid(ev.tgid);
          this.table.data(ev);
          break;
        case EV_OPEN:
          if (!this.knownTgids.has(ev.tgid)) this.noteTgid(ev.tgid);
          this.table.open(ev);
          break;
        case EV_CLOSE:
          this.table.close(ev);
          break;
        case EV_TLS_BIND:
          this.table.bind(ev);
          break;
        case EV_LOOP:
          this.table.contexts.loop(ev.tgid, ev.tid, ev.kind, ev.req);
          break;
        case EV_PROC:
          this.noteTgid(ev.tgid, true);
          if (ev.held) {
            if (ev.exec) this.native.releaseExec(ev.tgid, ev.exeDev, ev.exeIno);
            else this.native.releaseExec(ev.tgid);
          }
          break;
      }
    });
    this.table.flushBatch();
  }

  private noteTgid(tgid: number, rescan = false): void {
    // how its requests run decides how its calls are linked (before its first record is seen)
    if (!this.knownTgids.has(tgid) || rescan) this.table.contexts.setRuntime(tgid, runtimeOfProcess(tgid));
    this.knownTgids.add(tgid);
    this.tls?.scanProcess(tgid, rescan);
  }

  private sweep(): void {
    // A process held at exec whose record never reached us (lost batch): look at it and let it go.
    const now = Number(process.hrtime.bigint());
    for (const [tgid, since] of this.native.heldProcesses()) {
      if (now - since < 500e6) continue;
      this.noteTgid(tgid, true);
      this.native.releaseExec(tgid);
    }
    const alive = (tgid: number): boolean => existsSync(`/proc/${tgid}`);
    for (const tgid of this.knownTgids) {
      if (!alive(tgid)) {
        this.knownTgids.delete(tgid);
        this.table.contexts.processGone(tgid);
        this.tls?.forget(tgid);
      } else this.tls?.scanProcess(tgid);
    }
    this.table.sweep(alive, Number(process.hrtime.bigint()));
  }

  private collect(kernel: NativeCounters): CaptureStats {
    return {
      ...this.table.stats,
      kernel,
      malformedBytes: this.malformed,
      tlsProbes: this.tls?.probes ?? 0,
      tlsProbesFor: this.tls?.mode ?? 'all',
      tlsLibraries: this.tls?.attached ?? [],
      goTls: this.tls?.goBinaries ?? [],
      tlsFailures: this.tls?.failures ?? [],
      lost: {
        ringbufRecords: kernel.ringbufDrops,
        userBatches: kernel.userDrops,
        gapBytes: this.table.stats.gapBytes,
      },
    };
  }
}
