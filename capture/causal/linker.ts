/**
 * Links each outbound exchange to the inbound exchange that caused it, as exchanges complete.
 *
 * An outbound call usually completes before the request that made it (which waits for its
 * answer), so a call whose cause is not out yet waits here until it is: the inbound exchange of
 * the writer's context is the one whose request bytes hold the read that set that context, and
 * the one carrying the call's trace id (traceparent / B3) when the application propagates one.
 * Nothing waits for ever: a call is released without a link when its request's connection ends,
 * after a minute of kernel time, past a count bound, and when capture stops.
 */
import type { DecodedExchange } from '../protocols/types.js';
import type { Exchange, LinkMethod } from '../../core/exchange.js';
import { traceIdOf } from '../../core/trace.js';
import type { ContextTracker, WriteContext } from './context.js';

/** Inbound request spans kept per connection (at least), and connections kept after they end. */
const SPANS_PER_STREAM = 64;
const ENDED_STREAMS = 4096;
/** Calls waiting for their request at most. */
const MAX_WAITING = 20_000;
const WAIT_NS = 60e9;
const TRACES = 50_000;

interface Span {
  id: string;
  startNs: number;
  endNs: number;
  trace?: string;
}

interface Waiting {
  ex: Exchange;
  ctx?: WriteContext;
  trace?: string;
  sinceNs: number;
}

export interface LinkStats {
  /** Outbound exchanges linked, per method. */
  linked: Record<string, number>;
  /** Outbound exchanges released without a link (their request never showed, or no context). */
  unlinked: number;
}

export class Linker {
  private readonly spans = new Map<string, Span[]>();
  private readonly ended: string[] = [];
  private readonly traces = new Map<string, string | null>();
  private readonly waiting = new Set<Waiting>();
  private readonly byStream = new Map<string, Set<Waiting>>();
  private readonly byTrace = new Map<string, Set<Waiting>>();
  private latestNs = 0;
  readonly stats: LinkStats = { linked: {}, unlinked: 0 };

  constructor(
    private readonly contexts: ContextTracker,
    private readonly emit: (ex: Exchange) => void,
  ) {}

  /** An exchange of stream `stream` completed (decoded `d`, built `ex`). */
  admit(stream: string, d: DecodedExchange, ex: Exchange): void {
    if (d.requestStartNs > this.latestNs) this.latestNs = d.requestStartNs;
    if (ex.quarantine !== undefined) {
      this.emit(ex);
      return;
    }
    if (ex.direction === 'inbound') {
      this.inbound(stream, d, ex);
      return;
    }
    const ctx = this.contexts.writeContext(stream, d.requestStartNs);
    if (ctx) {
      if (d.protocol === 'http1') this.contexts.forgetWritesUpTo(stream, d.requestStartNs);
      else this.contexts.forgetWrite(stream, d.requestStartNs);
    }
    const trace = traceIdOf(ex.request.headers);
    const w: Waiting = { ex, sinceNs: d.requestStartNs };
    if (ctx) w.ctx = ctx;
    if (trace) w.trace = trace;
    if (this.tryLink(w)) return;
    if (!ctx && !trace) {
      this.release(w);
      return;
    }
    this.wait(w);
    this.expire();
  }

  private inbound(stream: string, d: DecodedExchange, ex: Exchange): void {
    const span: Span = { id: ex.id, startNs: d.requestStartNs, endNs: Math.max(d.requestStartNs, d.requestEndNs) };
    const trace = traceIdOf(ex.request.headers);
    if (trace) {
      span.trace = trace;
      this.traces.set(trace, this.traces.has(trace) ? null : ex.id);
      if (this.traces.size > TRACES) this.traces.delete(this.traces.keys().next().value!);
    }
    let list = this.spans.get(stream);
    if (!list) this.spans.set(stream, (list = []));
    list.push(span);
    // keep the latest SPANS_PER_STREAM or more: trimmed in halves, not one shift per exchange
    if (list.length >= 2 * SPANS_PER_STREAM) list.splice(0, list.length - SPANS_PER_STREAM);
    this.emit(ex);
    // calls that waited for this request (most servers make none: nothing to copy then)
    const byStream = this.byStream.get(stream);
    const byTrace = trace ? this.byTrace.get(trace) : undefined;
    if (!byStream && !byTrace) return;
    for (const w of [...(byStream ?? []), ...(byTrace ?? [])]) if (this.waiting.has(w)) this.tryLink(w);
  }

  /** Links `w` when its request is known; true when it went out. */
  private tryLink(w: Waiting): boolean {
    if (w.trace) {
      const id = this.traces.get(w.trace);
      if (id) {
        this.release(w, id, 'traceparent');
        return true;
      }
    }
    if (w.ctx) {
      const span = this.spans.get(w.ctx.stream)?.find((s) => s.startNs <= w.ctx!.atNs && w.ctx!.atNs <= s.endNs);
      if (span) {
        // the request's trace id on the call makes the link certain whatever the context said
        this.release(w, span.id, w.trace !== undefined && span.trace === w.trace ? 'traceparent' : w.ctx.method);
        return true;
      }
    }
    return false;
  }

  private wait(w: Waiting): void {
    if (this.waiting.size >= MAX_WAITING) this.release(this.waiting.values().next().value!);
    this.waiting.add(w);
    if (w.ctx) add(this.byStream, w.ctx.stream, w);
    if (w.trace) add(this.byTrace, w.trace, w);
  }

  private release(w: Waiting, inbound?: string, method?: LinkMethod): void {
    if (this.waiting.delete(w)) {
      if (w.ctx) remove(this.byStream, w.ctx.stream, w);
      if (w.trace) remove(this.byTrace, w.trace, w);
    }
    if (inbound && method) {
      w.ex.cause = { exchange: inbound, method };
      this.stats.linked[method] = (this.stats.linked[method] ?? 0) + 1;
    } else this.stats.unlinked++;
    this.emit(w.ex);
  }

  /** Calls waiting longer than a minute of kernel time are not going to find their request. */
  private expire(): void {
    for (const w of this.waiting) {
      if (this.latestNs - w.sinceNs < WAIT_NS) break; // insertion order is (roughly) time order
      this.release(w);
    }
  }

  /** Stream `stream` ended (its exchanges were admitted): calls waiting for its requests are done. */
  streamEnded(stream: string): void {
    this.contexts.streamEnded(stream);
    const waiting = this.byStream.get(stream);
    if (waiting) {
      for (const w of [...waiting]) if (!w.trace || !this.tryLink(w)) this.release(w);
    }
    if (this.spans.has(stream)) {
      this.ended.push(stream);
      if (this.ended.length > ENDED_STREAMS) this.spans.delete(this.ended.shift()!);
    }
  }

  /** Capture stopped: everything still waiting goes out (linked when it can be). */
  flush(): void {
    for (const w of [...this.waiting]) if (!this.tryLink(w)) this.release(w);
  }
}

function add<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function remove<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}
