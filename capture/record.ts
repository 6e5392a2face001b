/**
 * Recording as one call: capture a target until a stop condition, handing every exchange to a
 * sink in order. `retap capture`, `retap demo` and the replay's own capture all record through
 * here, so they stop, drain and count the same way. The sink is anything with `append` — the
 * snapshot writer fits (capture/ imports nothing of snapshots/), so does an array push.
 *
 *   const writer = await createSnapshotWriter(…);
 *   const r = await recordUntil({ pids: [pid] }, writer, stopSignal);
 *   await writer.finish({ counters: r.counters });
 */
import { constants } from 'node:os';
import { ErrorCodes, RetapError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import { type Cgroup, createCgroup, spawnInCgroup } from './cgroup.js';
import { type CaptureOptions, CaptureSession, type CaptureStats } from './session.js';

const osSignals = constants.signals as Record<string, number>;

/** What to record: CaptureSession's targets, or a command started in a fresh cgroup (and its children). */
export interface RecordTarget extends CaptureOptions {
  command?: string[];
}

/** Where exchanges go, in the order capture completes them. A slow sink slows nothing else down. */
export interface ExchangeSink {
  append(ex: Exchange): Promise<void> | void;
}

/** When to stop, besides `stop`: any of these that is set. */
export interface RecordOptions {
  durationMs?: number | undefined;
  /** Stop on SIGINT/SIGTERM (the CLI's Ctrl-C); default false for library callers. */
  signals?: boolean;
  /** Once capture is attached and the command (if any) is running. Awaited before waiting to stop. */
  onReady?: (info: { commandPid?: number; session: CaptureSession }) => void | Promise<void>;
  /** Called about four times a second while recording. */
  onProgress?: (p: RecordProgress) => void;
}

export interface RecordProgress {
  inbound: number;
  outbound: number;
  stats: CaptureStats;
}

export interface RecordResult {
  inbound: number;
  outbound: number;
  stats: CaptureStats;
  /** The manifest counters, the same for every kind of recording. */
  counters: Record<string, number>;
  /** What the snapshot cannot hold, for its manifest notes (e.g. TLS programs the probes could not reach). */
  notes: string[];
  /** Exit code of the command target (128+signal when killed), when there was one. */
  commandExit?: number;
}

/**
 * Records `target` into `sink` until `stop` settles (a promise or an abort signal), the duration
 * passes, a signal comes (with `signals`), or the command target exits. Stopping drains the ring
 * buffer, so answers still in flight are kept. A failing sink ends the recording with its error.
 */
export async function recordUntil(
  target: RecordTarget,
  sink: ExchangeSink,
  stop?: Promise<unknown> | AbortSignal,
  options: RecordOptions = {},
): Promise<RecordResult> {
  const { command = [], ...captureOptions } = target;
  let inbound = 0;
  let outbound = 0;
  let sinkError: unknown;
  let writing: Promise<void> = Promise.resolve();
  const onExchange = (ex: Exchange): void => {
    if (ex.direction === 'inbound') inbound++;
    else outbound++;
    writing = writing.then(() => sink.append(ex)).catch((e: unknown) => void (sinkError ??= e));
  };
  const cleanups: Array<() => void> = [];
  let session: CaptureSession | undefined;
  let cgroup: Cgroup | undefined;
  try {
    // a command is retap's own child: it may be held at exec until its TLS probes are on
    session = CaptureSession.start({ holdExec: command.length > 0, ...captureOptions }, onExchange);
    const waits: Array<Promise<unknown>> = [];
    let commandExit: number | undefined;
    let commandPid: number | undefined;
    let exited: Promise<void> = Promise.resolve();
    if (command.length) {
      cgroup = createCgroup(`capture-${process.pid}-${Date.now().toString(36)}`);
      session.addCgroup(cgroup.id);
      const child = spawnInCgroup(cgroup.dir, command);
      commandPid = child.pid;
      exited = new Promise<void>((resolve, reject) => {
        child.on('error', (e) =>
          reject(new RetapError(ErrorCodes.USAGE, `cannot start ${command[0]}: ${e.message}`, { cause: e })),
        );
        child.on('exit', (code, signal) => {
          commandExit = code ?? (signal ? 128 + (osSignals[signal] ?? 0) : 0);
          resolve();
        });
      });
      waits.push(exited);
    }
    if (stop instanceof Promise) waits.push(stop);
    else if (stop) waits.push(aborted(stop));
    if (options.signals) {
      waits.push(
        new Promise<void>((resolve) => {
          for (const sig of ['SIGINT', 'SIGTERM'] as const) {
            const h = (): void => resolve();
            process.once(sig, h);
            cleanups.push(() => process.off(sig, h));
          }
        }),
      );
    }
    if (options.durationMs !== undefined) {
      waits.push(
        new Promise<void>((r) => {
          const t = setTimeout(r, options.durationMs);
          cleanups.push(() => clearTimeout(t));
        }),
      );
    }
    await options.onReady?.({ session, ...(commandPid === undefined ? {} : { commandPid }) });
    const live = session;
    const ticker = options.onProgress
      ? setInterval(() => options.onProgress?.({ inbound, outbound, stats: live.stats() }), 250)
      : undefined;
    if (ticker) cleanups.push(() => clearInterval(ticker));
    await Promise.race(waits);
    if (cgroup && commandExit === undefined) {
      // stopped by signal, duration or caller: let the command shut down (its goodbyes are captured too)
      commandExit = await terminate(cgroup, exited, () => commandExit);
    }
    // the last answers may still be in the ring buffer: stop() drains it
    const stats = await session.stop();
    await writing;
    if (sinkError) throw sinkError;
    return {
      inbound,
      outbound,
      stats,
      counters: countersOf(stats),
      notes: notesOf(stats),
      ...(commandExit !== undefined ? { commandExit } : {}),
    };
  } finally {
    for (const c of cleanups) c();
    await session?.stop().catch(() => undefined);
    cgroup?.destroy();
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }));
}

/** SIGTERM everything in the group, wait up to 3 s; the cgroup is killed by destroy() afterwards. */
async function terminate(
  cgroup: Cgroup,
  exited: Promise<void>,
  code: () => number | undefined,
): Promise<number | undefined> {
  for (const pid of cgroup.pids()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  await Promise.race([exited.catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
  const c = code();
  // a command ended by our own SIGTERM stopped as asked: not a failure
  return c === 128 + 15 ? 0 : c;
}

/** The counters a snapshot manifest records for a capture. */
export function countersOf(s: CaptureStats): Record<string, number> {
  return {
    kernelEvents: s.kernel.events,
    kernelBytes: s.kernel.bytes,
    ringbufDrops: s.kernel.ringbufDrops,
    userBatchDrops: s.kernel.userDrops,
    truncations: s.kernel.truncations,
    sendfileCalls: s.kernel.sendfileCalls,
    mmsgCalls: s.kernel.mmsgCalls,
    connections: s.connections,
    tlsConnections: s.tlsConnections,
    unknownConnections: s.unknownConnections,
    unknownBytes: s.unknownBytes,
    undecodedBytes: s.undecodedBytes,
    cutMessages: s.cutMessages,
    cutConnections: s.cutConnections,
    failedConnections: s.failedConnections,
    gapBytes: s.gapBytes,
    ciphertextBytes: s.ciphertextBytes,
    goTlsCalls: s.kernel.goTlsCalls,
    goTlsNoSocket: s.kernel.goTlsNoSocket,
    goTlsLateReads: s.kernel.goTlsLateReads,
    tlsUnsupported: s.tlsFailures.length,
    tlsUnboundDropped: s.tlsUnboundDropped,
    malformedBytes: s.malformedBytes,
  };
}

/**
 * Manifest notes for what a recording could not hold: plaintext of programs the probes could not
 * reach, and connections whose decoding failed (the first few with the reason; all are counted).
 */
export function notesOf(s: CaptureStats): string[] {
  const notes = s.tlsFailures.map(
    (f) => `TLS plaintext of ${f.path}${f.goVersion ? ` (${f.goVersion})` : ''} not captured: ${f.reason}`,
  );
  for (const f of s.failures) notes.push(`decoding failed on connection ${f.connection}: ${f.reason}`);
  if (s.failedConnections > s.failures.length)
    notes.push(`decoding failed on ${s.failedConnections - s.failures.length} more connections`);
  return notes;
}
