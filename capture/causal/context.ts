/**
 * Execution context: which inbound request each unit of execution is working for, from the order
 * of the kernel's records (one ring buffer: a thread's records arrive in the order it made them).
 *
 * A unit is a thread, or in a Go program with the runtime probes a goroutine (the thread's
 * current g comes in GO_RUN records). Reading an inbound request sets the unit's context to that
 * request; a write that starts an outbound call is linked to the writer's context.
 *  - thread: thread-per-request servers (Java, Python threads, PHP, Ruby). A thread seen reading
 *    a second request while the first was unanswered is an event loop, not a request's thread:
 *    its writes are not linked from then on (time windows decide them, honestly marked).
 *  - goroutine: a goroutine spawned by another starts in its parent's context (GO_SPAWN); a
 *    goroutine readied by another while it works for no request of its own takes the waker's
 *    context (GO_WAKE: net/http's writeLoop, worker pools fed through channels).
 *  - async-context (node): one thread runs every callback; libuv starts a callback per ready
 *    socket, so the read that starts a callback says whose callback runs, and reading an answer
 *    of an outbound call resumes the request that made it. Every callback start clears the
 *    context (LOOP turn records from capture/causal/node-loop.ts's probes), a thread-pool request
 *    (getaddrinfo) carries the context that queued it to its completion callback, and the first
 *    write of a new outbound connection belongs to the context that connected it. A node process
 *    whose loop is not probed (no symbols, probes not attached yet) has no exact context: its
 *    calls are left to time windows, labelled so.
 */
import {
  DIR_IN,
  DIR_OUT,
  LOOP_REQ_DONE,
  LOOP_REQ_START,
  LOOP_REQ_START1,
  LOOP_TURN,
  ROLE_CLIENT,
  ROLE_SERVER,
  ROLE_UNKNOWN,
} from '../events.js';
import type { LinkMethod } from '../../core/exchange.js';

/** What a unit is working for: a request read on `stream` at `atNs` (kernel time). */
export interface Context {
  stream: string;
  atNs: number;
  /** `own`: the unit read the request itself; `inherited`: spawned, readied or resumed. */
  how: 'own' | 'inherited';
}

export interface WriteContext extends Context {
  method: LinkMethod;
}

/** How a process's units are told apart. */
export type Runtime = 'threads' | 'go' | 'go-unprobed' | 'node';

/** Outbound write contexts kept per connection before the oldest go (unanswered calls). */
const WRITES_PER_STREAM = 1024;
/** Thread ids stay below 2^22 (the kernel's PID_MAX_LIMIT): tgid × 2^22 + tid names a thread exactly. */
const THREAD_SPACE = 2 ** 22;
/** Thread key strings kept (cleared and rebuilt past this; they are a cache). */
const THREAD_KEYS = 65_536;
/**
 * Protocols whose answer read resumes the request of the latest write on that connection (node).
 * HTTP/1, PostgreSQL and MySQL carry one call at a time. Redis is answered in order and node
 * clients (ioredis, node-redis) usually have one command out per request at a time, so the latest
 * write is the best owner there too: without it, a cache write made in the callback of a GET's
 * answer has no request at all (examples/shopdb). HTTP/2 multiplexes: an answer read there says
 * nothing about whose callback runs.
 */
const RESUMES_LATEST_WRITE = new Set(['http1', 'postgres', 'mysql', 'redis']);
/** node thread-pool requests in flight kept per tracker before the oldest go. */
const LOOP_REQUESTS = 65_536;

export interface StreamView {
  id: string;
  role: number;
  protocol: string;
}

export class ContextTracker {
  private readonly runtimes = new Map<number, Runtime>();
  private readonly threadKeys = new Map<number, string>();
  /** tgid:tid → the goroutine it runs (Go processes with runtime probes). */
  private readonly running = new Map<string, bigint>();
  private readonly contexts = new Map<string, Context>();
  /** Threads that served two requests at once: their writes are not linked by thread. */
  private readonly multiplexed = new Set<string>();
  /** Inbound streams: last request byte read and last answer byte written (ns). */
  private readonly inbound = new Map<string, { readNs: number; writeNs: number }>();
  /** Outbound stream → write time → the context that wrote it. */
  private readonly writes = new Map<string, Map<number, WriteContext>>();
  /** Outbound streams not written yet, with the context that opened them (node). */
  private readonly opened = new Map<string, Context>();
  /** The context of the latest write on each outbound stream (node: answers resume it). */
  private readonly lastWrite = new Map<string, Context>();
  /** node processes whose event-loop probes report (their callbacks' starts are seen). */
  private readonly loopLive = new Set<number>();
  /** node thread-pool requests in flight (tgid:req) → the context that queued them. */
  private readonly loopRequests = new Map<string, Context | undefined>();

  /** Called for every outbound write, with its context when it has one (the replay's live link feed). */
  onWrite?: (stream: string, tsNs: number, ctx: WriteContext | undefined) => void;

  setRuntime(tgid: number, rt: Runtime): void {
    this.runtimes.set(tgid, rt);
  }

  runtimeOf(tgid: number): Runtime {
    return this.runtimes.get(tgid) ?? 'threads';
  }

  /**
   * `t<tgid>:<tid>`, built once per thread: every data record asks for it, and a fresh string
   * would be hashed (flattened, allocated) on every Map lookup.
   */
  private threadKey(tgid: number, tid: number): string {
    const n = tgid * THREAD_SPACE + tid;
    let key = this.threadKeys.get(n);
    if (key === undefined) {
      if (this.threadKeys.size >= THREAD_KEYS) this.threadKeys.clear();
      key = `t${tgid}:${tid}`;
      this.threadKeys.set(n, key);
    }
    return key;
  }

  private unit(tgid: number, tid: number): { key: string; method: LinkMethod | undefined } {
    const rt = this.runtimeOf(tgid);
    if (rt === 'go') {
      const g = this.running.get(`${tgid}:${tid}`);
      if (g !== undefined) return { key: `g${tgid}:${g}`, method: 'goroutine' };
      return { key: this.threadKey(tgid, tid), method: undefined };
    }
    const key = this.threadKey(tgid, tid);
    if (rt === 'node') return { key, method: this.loopLive.has(tgid) ? 'async-context' : undefined };
    if (rt === 'go-unprobed' || this.multiplexed.has(key)) return { key, method: undefined };
    return { key, method: 'thread' };
  }

  /** A data record of stream `s` (after reassembly took it, so its role is known when it can be). */
  data(tgid: number, tid: number, dir: number, tsNs: number, s: StreamView): void {
    const u = this.unit(tgid, tid);
    if (s.role === ROLE_SERVER) {
      let st = this.inbound.get(s.id);
      if (!st) this.inbound.set(s.id, (st = { readNs: 0, writeNs: 0 }));
      const ctx = this.contexts.get(u.key);
      if (dir === DIR_IN) {
        // a thread holding an unanswered request of another connection multiplexes
        if (u.key[0] === 't' && ctx?.how === 'own' && ctx.stream !== s.id) {
          const other = this.inbound.get(ctx.stream);
          if (other && other.readNs > other.writeNs && this.runtimeOf(tgid) === 'threads')
            this.multiplexed.add(u.key);
        }
        st.readNs = tsNs;
        this.contexts.set(u.key, { stream: s.id, atNs: tsNs, how: 'own' });
      } else if (dir === DIR_OUT) {
        st.writeNs = tsNs;
        // the answer is going out: this unit is done with the request (a later call is not its)
        if (ctx && ctx.stream === s.id) this.contexts.delete(u.key);
      }
      return;
    }
    // a TLS stream's role comes with its socket (TLS_BIND), which node's memory BIOs may only tell
    // after the first request was written: a write of a stream of no known role may start a call
    if (s.role !== ROLE_CLIENT && !(s.role === ROLE_UNKNOWN && dir === DIR_OUT)) return;
    if (dir === DIR_OUT) {
      let ctx = u.method ? this.contexts.get(u.key) : undefined;
      const rt = this.runtimeOf(tgid);
      const first = this.opened.get(s.id);
      if (first) {
        this.opened.delete(s.id);
        // node: a new connection is written from its connect callback, not the request's
        if (rt === 'node') ctx = first;
      }
      if (!ctx || !u.method) {
        this.onWrite?.(s.id, tsNs, undefined);
        return;
      }
      const w: WriteContext = { ...ctx, method: u.method };
      let m = this.writes.get(s.id);
      if (!m) this.writes.set(s.id, (m = new Map()));
      m.set(tsNs, w);
      if (m.size > WRITES_PER_STREAM) m.delete(m.keys().next().value!);
      if (rt === 'node') this.lastWrite.set(s.id, ctx);
      this.onWrite?.(s.id, tsNs, w);
    } else if (dir === DIR_IN && this.runtimeOf(tgid) === 'node') {
      // node: the callback reading an answer resumes the request that made the call
      const made = RESUMES_LATEST_WRITE.has(s.protocol) ? this.lastWrite.get(s.id) : undefined;
      if (made) this.contexts.set(u.key, { stream: made.stream, atNs: made.atNs, how: 'inherited' });
      else this.contexts.delete(u.key);
    }
  }

  /**
   * A record of a socket whose plaintext comes from the TLS library (node): it writes no call of
   * its own, but the handshake is read in callbacks of its own, and the one that completes it
   * writes the first request — so the socket's reads resume the context that opened it, as an
   * answer's read resumes the request that made the call.
   */
  ciphertext(tgid: number, tid: number, dir: number, s: StreamView): void {
    if (s.role !== ROLE_CLIENT || this.runtimeOf(tgid) !== 'node') return;
    const key = `t${tgid}:${tid}`;
    if (dir === DIR_OUT) {
      // the ClientHello, from the connect callback: the handshake works for the opener
      const first = this.opened.get(s.id);
      this.opened.delete(s.id);
      if (first) this.lastWrite.set(s.id, first);
    } else if (dir === DIR_IN) {
      const made = this.lastWrite.get(s.id);
      if (made) this.contexts.set(key, { stream: made.stream, atNs: made.atNs, how: 'inherited' });
      else this.contexts.delete(key);
    }
  }

  /** The TLS library took over socket `stream` (TLS_BIND): its later reads resume nobody. */
  tlsBound(stream: string): void {
    this.lastWrite.delete(stream);
    this.opened.delete(stream);
  }

  /** A connection opened by `tid` (connect): node writes its first request from another callback. */
  open(tgid: number, tid: number, role: number, stream: string): void {
    if (role !== ROLE_CLIENT || this.runtimeOf(tgid) !== 'node') return;
    const ctx = this.contexts.get(this.unit(tgid, tid).key);
    if (ctx) this.opened.set(stream, ctx);
  }

  /** The context of the write at `tsNs` on outbound `stream` (an exchange's first request byte). */
  writeContext(stream: string, tsNs: number): WriteContext | undefined {
    return this.writes.get(stream)?.get(tsNs);
  }

  /** HTTP/1 (one request at a time): writes up to this request's start are of no further use. */
  forgetWritesUpTo(stream: string, tsNs: number): void {
    const m = this.writes.get(stream);
    if (!m) return;
    for (const k of m.keys()) {
      if (k > tsNs) break;
      m.delete(k);
    }
  }

  forgetWrite(stream: string, tsNs: number): void {
    this.writes.get(stream)?.delete(tsNs);
  }

  streamEnded(stream: string): void {
    this.writes.delete(stream);
    this.opened.delete(stream);
    this.lastWrite.delete(stream);
    this.inbound.delete(stream);
  }

  /** GO_RUN: thread `tid` now runs goroutine `g`. */
  goRun(tgid: number, tid: number, g: bigint): void {
    this.running.set(`${tgid}:${tid}`, g);
  }

  /** GO_SPAWN: `parent` created `child` (a g is reused after its goroutine exits: start afresh). */
  goSpawn(tgid: number, parent: bigint, child: bigint): void {
    const ctx = this.contexts.get(`g${tgid}:${parent}`);
    const key = `g${tgid}:${child}`;
    if (ctx) this.contexts.set(key, { stream: ctx.stream, atNs: ctx.atNs, how: 'inherited' });
    else this.contexts.delete(key);
  }

  /** GO_WAKE: `waker` made `wakee` runnable; a wakee serving no request of its own takes over. */
  goWake(tgid: number, waker: bigint, wakee: bigint): void {
    const ctx = this.contexts.get(`g${tgid}:${waker}`);
    if (!ctx) return;
    const key = `g${tgid}:${wakee}`;
    if (this.contexts.get(key)?.how === 'own') return;
    this.contexts.set(key, { stream: ctx.stream, atNs: ctx.atNs, how: 'inherited' });
  }

  /**
   * LOOP (node): a callback begins on `tid` (TURN: nobody's context until a read says whose), a
   * libuv request `req` starts (REQ_START: getaddrinfo, connect; it carries the thread's context)
   * or its completion callback begins (REQ_DONE: the context that started it resumes).
   */
  loop(tgid: number, tid: number, kind: number, req: bigint): void {
    const key = `t${tgid}:${tid}`;
    if (!this.loopLive.has(tgid)) {
      // the probes just went live: contexts set before could be any callback's
      this.loopLive.add(tgid);
      for (const k of this.contexts.keys()) if (k.startsWith(`t${tgid}:`)) this.contexts.delete(k);
    }
    if (kind === LOOP_TURN) {
      this.contexts.delete(key);
    } else if (kind === LOOP_REQ_START || kind === LOOP_REQ_START1) {
      const r = `${tgid}:${req}`;
      this.loopRequests.delete(r);
      this.loopRequests.set(r, this.contexts.get(key));
      if (this.loopRequests.size > LOOP_REQUESTS)
        this.loopRequests.delete(this.loopRequests.keys().next().value!);
    } else if (kind === LOOP_REQ_DONE) {
      const r = `${tgid}:${req}`;
      const ctx = this.loopRequests.get(r);
      this.loopRequests.delete(r);
      if (ctx) this.contexts.set(key, { stream: ctx.stream, atNs: ctx.atNs, how: 'inherited' });
      else this.contexts.delete(key);
    }
  }

  /** A process is gone: forget its units. */
  processGone(tgid: number): void {
    this.runtimes.delete(tgid);
    for (const n of this.threadKeys.keys()) if (Math.floor(n / THREAD_SPACE) === tgid) this.threadKeys.delete(n);
    for (const k of this.running.keys()) if (k.startsWith(`${tgid}:`)) this.running.delete(k);
    for (const k of this.contexts.keys())
      if (k.startsWith(`t${tgid}:`) || k.startsWith(`g${tgid}:`)) this.contexts.delete(k);
    for (const k of this.multiplexed) if (k.startsWith(`t${tgid}:`)) this.multiplexed.delete(k);
    this.loopLive.delete(tgid);
    for (const k of this.loopRequests.keys()) if (k.startsWith(`${tgid}:`)) this.loopRequests.delete(k);
  }

  /** Threads seen serving several requests at once (their calls were left to time windows). */
  get multiplexedThreads(): number {
    return this.multiplexed.size;
  }
}
