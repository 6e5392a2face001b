/**
 * The JS shape of the native addon (build/Release/retap_native.node). One place describes it;
 * capture/addon.ts loads it. Event records inside batches are laid out as in bpf/retap.h.
 */

export interface NativeCaptureConfig {
  /** Our own tgid: never captured. */
  selfTgid: number;
  /** Ring buffer size in bytes (power of two, default 16 MiB; its RSS is its size). */
  ringBufferBytes?: number;
  /** Per-syscall capture cap in bytes; above it only sizes are recorded (default 1 MiB). */
  perCallCapBytes?: number;
  /** Capture every process (still filtered by ports when ports are set). Default false. */
  captureAll?: boolean;
  /** Targets in place before the programs attach (no window without the filter). */
  ports?: number[];
  tgids?: number[];
  cgroups?: bigint[];
  /** Bytes of records waiting for JS beyond this are dropped and counted (default 128 MiB). */
  maxPendingBytes?: number;
  /** How often the poller looks at the ring buffer when nothing woke it, ms (default 2). */
  pollMs?: number;
  /** Data waiting in the ring buffer above which a record wakes the poller (default 256 KiB). */
  wakeupBytes?: number;
  /**
   * Stop (SIGSTOP) a target at exec when its executable was not looked at yet, until
   * releaseExec() (Go TLS probes must be attached before a program's first TLS call). Default false.
   */
  holdExec?: boolean;
  /** TLS probes go per process (see setTlsPerProcess), from the start. Default false. */
  tlsPerProcess?: boolean;
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
  /** Go crypto/tls (*Conn).Read/Write calls of targets, and those whose socket was not found. */
  goTlsCalls: number;
  goTlsNoSocket: number;
  /** Go Reads that returned after another goroutine closed their socket (their bytes are lost). */
  goTlsLateReads: number;
  /** Target processes stopped at exec until their executable was looked at. */
  heldAtExec: number;
  /** Batches user space could not take (JS too far behind: more than maxPendingBytes waiting). */
  userDrops: number;
  batches: number;
}

export interface NativeCapture {
  addTarget(kind: TargetKind, value: number | bigint): void;
  removeTarget(kind: TargetKind, value: number | bigint): void;
  /**
   * Attach SSL_read/SSL_write(_ex) uprobes to a library or executable, for one process (`pid`: the
   * kernel puts the breakpoints into that process only) or for every process mapping the file
   * (`pid` -1 or absent); returns probes attached.
   */
  attachTls(path: string, pid?: number): number;
  /**
   * Attach OpenSSL probes at planned file offsets (capture/openssl.ts): 'enter' sites get the entry
   * program the cookie names (RETAP_SSL_* bits), 'return' sites the return probe. All or none.
   */
  attachTlsSites(path: string, sites: Array<{ offset: number; kind: string; cookie: number }>, pid?: number): number;
  /** Attach the Go crypto/tls probes at file offsets (all or none), for one process or all (-1). */
  attachGoTls(path: string, spec: NativeGoTlsSpec, pid?: number): number;
  /**
   * Attach node's event-loop probes at file offsets (all or none), for one process or all (-1):
   * kind 0 a callback begins, 1 a request starts (its 2nd argument), 2 it completes (1st), 3 a
   * request starts (1st argument).
   */
  attachLoopSites(path: string, sites: Array<{ offset: number; kind: number }>, pid?: number): number;
  /** Detach every probe attached for this process (in the background); returns how many. */
  detachPid(pid: number): number;
  /**
   * TLS probes are attached per process: report every new target process (a PROC record at fork
   * too), and when holding at exec, hold every new process at fork and exec until released.
   */
  setTlsPerProcess(on: boolean): void;
  /**
   * Continue a process held at exec (SIGCONT); with dev/ino (from its PROC record) its executable
   * is remembered as seen, so later execs of it are not held. True when it was held.
   */
  releaseExec(tgid: number, dev?: bigint, ino?: bigint): boolean;
  /** Processes held at exec that nobody continued yet: [tgid, since (CLOCK_MONOTONIC ns)]. */
  heldProcesses(): Array<[number, number]>;
  counters(): NativeCounters;
  /** Detach, drain the ring buffer, deliver the last batch, join the thread. Idempotent. */
  stop(): void;
}

/** Byte offsets the Go probes read (bpf/retap.h struct retap_go_layout). */
export interface NativeGoLayout {
  tlsConn: number;
  tcpConnFd: number;
  netFdSysfd: number;
  netFdFamily: number;
  netFdSotype: number;
  gStackLo: number;
  gStackHi: number;
}

export interface NativeGoTlsSpec {
  layout: NativeGoLayout;
  /** File offsets of the first instruction of crypto/tls.(*Conn).Read and .Write. */
  readEntry: number[];
  writeEntry: number[];
  /** File offsets of every return instruction of Read (Write's plaintext is recorded at entry). */
  readReturns: number[];
}

export interface NativeAddon {
  open(config: NativeCaptureConfig): NativeCapture;
  /** Compile-time facts of the BPF side (record sizes, limits) for the TS decoder to check. */
  layout: Record<string, number>;
  version: string;
  /**
   * Replaces this process with `file args…` (execv: same pid, fds and environment). Returns only
   * when that failed, with the errno.
   */
  execNode(file: string, args: string[]): number;
}
