/**
 * The JS shape of the native addon (build/Release/retap_native.node). One place describes it;
 * capture/addon.ts loads it. Event records inside batches are laid out as in bpf/retap.h.
 */

export interface NativeCaptureConfig {
  /** Our own tgid: never captured. */
  selfTgid: number;
  /** Ring buffer size in bytes (power of two, default 64 MiB). */
  ringBufferBytes?: number;
  /** Per-syscall capture cap in bytes; above it only sizes are recorded (default 1 MiB). */
  perCallCapBytes?: number;
  /** Capture every process (still filtered by ports when ports are set). Default false. */
  captureAll?: boolean;
  /** Bytes of records waiting for JS beyond this are dropped and counted (default 128 MiB). */
  maxPendingBytes?: number;
  /** How often the poller looks at the ring buffer when nothing woke it, ms (default 2). */
  pollMs?: number;
  /** Data waiting in the ring buffer above which a record wakes the poller (default 256 KiB). */
  wakeupBytes?: number;
  /** One Buffer per poll with many records: see bpf/retap.h for the layout. */
  onBatch(batch: Buffer): void;
  /** Called once after stop(), when every batch has been delivered. */
  onDrained?(): void;
}

export type TargetKind = 'tgid' | 'cgroup' | 'port';

export interface NativeCounters {
  /** Kernel side, summed over CPUs. */
  events: number;
  bytes: number;
  ringbufDrops: number;
  truncations: number;
  sendfileCalls: number;
  mmsgCalls: number;
  connections: number;
  tlsCalls: number;
  iovTruncations: number;
  /** Batches user space could not take (JS too far behind: more than maxPendingBytes waiting). */
  userDrops: number;
  batches: number;
}

export interface NativeCapture {
  addTarget(kind: TargetKind, value: number | bigint): void;
  removeTarget(kind: TargetKind, value: number | bigint): void;
  /** Attach SSL_read/SSL_write(_ex) uprobes to a library or executable; returns probes attached. */
  attachTls(path: string): number;
  counters(): NativeCounters;
  /** Detach, drain the ring buffer, deliver the last batch, join the thread. Idempotent. */
  stop(): void;
}

export interface NativeAddon {
  open(config: NativeCaptureConfig): NativeCapture;
  /** Compile-time facts of the BPF side (record sizes, limits) for the TS decoder to check. */
  layout: Record<string, number>;
  version: string;
}
