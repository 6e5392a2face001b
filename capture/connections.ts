/**
 * Connection table: turns capture events into exchanges.
 *
 * A socket connection is keyed by tgid+fd and told apart from a reused fd by its generation.
 * TLS plaintext arrives keyed by the SSL object; a TLS_BIND event ties it to its socket (for
 * addresses and role), and from then on that socket's own bytes (ciphertext) are ignored.
 * Each stream is reassembled per direction, its protocol detected from the first bytes, and fed
 * to the decoder in arrival order.
 *
 * One connection's failure stays in that connection: an exception in its reassembly or decoder
 * (or a fault the decoder reports) marks it failed — counted, reported with the reason — and its
 * later bytes are only counted. All connections' decoders share one memory pool.
 */
import type { Direction, Exchange, LinkMethod } from '../core/exchange.js';
import { hostName, requestAuthority } from '../core/http.js';
import { logger } from '../core/log.js';
import type { Clock } from './clock.js';
import {
  type CloseEvent,
  type DataEvent,
  DIR_IN,
  DIR_OUT,
  F_TLS,
  type OpenEvent,
  ROLE_CLIENT,
  ROLE_SERVER,
  ROLE_UNKNOWN,
  type TlsBindEvent,
} from './events.js';
import { newPool } from './protocols/budget.js';
import { detect } from './protocols/registry.js';
import type {
  DecodedExchange,
  DecoderOptions,
  DecoderSink,
  MemoryPool,
  Side,
  StreamDecoder,
} from './protocols/types.js';
import { Reassembler } from './reassembly.js';
import { ContextTracker, type WriteContext } from './causal/context.js';
import { Linker } from './causal/linker.js';

const log = logger('capture');

/** Bytes of each direction kept while the protocol is not known yet. */
const DETECT_LIMIT = 64 * 1024;
/** Failures kept with their reason for the report (all are counted). */
const FAILURES_KEPT = 20;

export interface ConnMeta {
  tgid: number;
  fd: number;
  gen: bigint;
  role: number;
  laddr: string;
  lport: number;
  raddr: string;
  rport: number;
  comm: string;
  cgroup: bigint;
}

/** An outbound write and the request it was made for, as it happens (kernel time). */
export interface LiveLink {
  /** The call's connection as the process sees it: its own address and port, and the peer's. */
  call: { laddr: string; lport: number; raddr: string; rport: number };
  tsNs: number;
  /** The connection the request came in on (its peer is the client); absent: not linkable. */
  request?: { laddr: string; lport: number; raddr: string; rport: number };
  method?: LinkMethod;
}

export interface TableStats {
  connections: number;
  tlsConnections: number;
  exchanges: number;
  /** Connections whose protocol no decoder recognised, and the bytes seen on them (both ways). */
  unknownConnections: number;
  unknownBytes: number;
  /**
   * Bytes seen on decoded connections that the decoder could not interpret: resync after a gap or
   * garbage, upgraded tunnels, cut messages, bytes after a failure. Never declared lengths.
   */
  undecodedBytes: number;
  /** Messages cut at a limit (a head, chunk line or frame that never ends, a 1xx storm…). */
  cutMessages: number;
  /** Connections that had at least one message cut at a limit. */
  cutConnections: number;
  /** Connections whose decoding failed (exception in a decoder or the reassembly); capture went on. */
  failedConnections: number;
  /** The first failures, with the connection and the reason. */
  failures: Array<{ connection: string; reason: string }>;
  /** Exchanges kept quarantined (a request lost in a gap, a status outside 100–599…). */
  quarantined: number;
  /** Bytes lost inside streams (ring buffer drops, per-call cap, sendfile). */
  gapBytes: number;
  /** Ciphertext bytes ignored because the plaintext was captured at the TLS library. */
  ciphertextBytes: number;
  /**
   * TLS streams dropped because they were never tied to a socket while a port filter is on:
   * their socket was filtered out, so their plaintext is not wanted either.
   */
  tlsUnboundDropped: number;
}

interface Pending {
  side: Side | undefined;
  dir: number;
  bytes?: Uint8Array;
  gap?: number;
  ts: number;
}

type State = 'detecting' | 'decoding' | 'unknown' | 'ciphertext' | 'failed';

class Stream {
  readonly dirs: [Reassembler, Reassembler];
  state: State = 'detecting';
  role: number;
  decoder: StreamDecoder | undefined;
  protocol = '';
  order = 0;
  private pending: Pending[] = [];
  private pendingBytes = [0, 0];
  private first: [Uint8Array[], Uint8Array[]] = [[], []];
  /** Exchanges decoded before the stream's socket was known (TLS before its bind). */
  held: DecodedExchange[] = [];
  /** TLS: a TLS_BIND tied this stream to a socket (the kernel binds only sockets it keeps). */
  bound = false;
  lastTs = 0;
  /** A message of this connection was cut at a limit (counted once per connection). */
  cut = false;
  /** A fault the decoder reported from inside a call; acted on once the call returns. */
  private faulted: string | undefined;

  constructor(
    readonly table: ConnectionTable,
    readonly id: string,
    public meta: ConnMeta | undefined,
    readonly tls: boolean,
    role: number,
    /** Socket generation (or SSL object generation) this stream belongs to. */
    readonly gen: bigint,
  ) {
    this.role = role;
    table.byId.set(id, this);
    this.dirs = [
      new Reassembler({
        data: (b, ts) => this.onBytes(DIR_IN, b, ts),
        gap: (n, ts) => this.onGap(DIR_IN, n, ts),
      }),
      new Reassembler({
        data: (b, ts) => this.onBytes(DIR_OUT, b, ts),
        gap: (n, ts) => this.onGap(DIR_OUT, n, ts),
      }),
    ];
  }

  private sideOf(dir: number): Side | undefined {
    if (this.role === ROLE_SERVER) return dir === DIR_IN ? 'client' : 'server';
    if (this.role === ROLE_CLIENT) return dir === DIR_OUT ? 'client' : 'server';
    return undefined;
  }

  private onBytes(dir: number, bytes: Uint8Array, ts: number): void {
    this.lastTs = ts;
    if (this.state === 'decoding') {
      this.decoder!.push(this.sideOf(dir)!, bytes, ts);
      if (this.faulted !== undefined) this.table.fail(this, this.faulted, ts);
      return;
    }
    if (this.state === 'unknown') {
      this.table.stats.unknownBytes += bytes.length;
      return;
    }
    if (this.state === 'failed') {
      this.table.stats.undecodedBytes += bytes.length;
      return;
    }
    if (this.state === 'ciphertext') {
      this.table.stats.ciphertextBytes += bytes.length;
      return;
    }
    const copy = bytes.slice();
    this.pending.push({ side: undefined, dir, bytes: copy, ts });
    this.pendingBytes[dir] = (this.pendingBytes[dir] ?? 0) + copy.length;
    const firsts = this.first[dir as 0 | 1];
    if (firsts.reduce((n, b) => n + b.length, 0) < 512) firsts.push(copy);
    this.tryDetect();
  }

  private onGap(dir: number, n: number, ts: number): void {
    this.table.stats.gapBytes += n;
    if (this.state === 'decoding') {
      this.decoder!.gap(this.sideOf(dir)!, n, ts);
      if (this.faulted !== undefined) this.table.fail(this, this.faulted, ts);
    } else if (this.state === 'detecting') this.pending.push({ side: undefined, dir, gap: n, ts });
  }

  private tryDetect(): void {
    const heads = this.first.map((parts) => Buffer.concat(parts)) as [Buffer, Buffer];
    // TLS records on a socket whose plaintext we do not (yet) have: never decode ciphertext.
    for (const h of heads) {
      if (h.length >= 3 && h[0] === 0x16 && h[1] === 0x03 && (h[2] ?? 9) <= 0x04) {
        this.becomeCiphertext();
        return;
      }
    }
    let more = false;
    // Which direction carries client bytes: known from accept/connect, else whoever sends a request.
    const candidates: Array<[number, Side, number]> = [];
    if (this.role === ROLE_SERVER)
      candidates.push([DIR_IN, 'client', ROLE_SERVER], [DIR_OUT, 'server', ROLE_SERVER]);
    else if (this.role === ROLE_CLIENT)
      candidates.push([DIR_OUT, 'client', ROLE_CLIENT], [DIR_IN, 'server', ROLE_CLIENT]);
    else
      candidates.push(
        [DIR_IN, 'client', ROLE_SERVER],
        [DIR_OUT, 'client', ROLE_CLIENT],
        [DIR_IN, 'server', ROLE_CLIENT],
        [DIR_OUT, 'server', ROLE_SERVER],
      );
    for (const [dir, side, role] of candidates) {
      const head = heads[dir as 0 | 1];
      if (head.length === 0) continue;
      const r = detect(head, side);
      if (r === 'more') {
        more = true;
        continue;
      }
      if (r === 'unknown') continue;
      this.role = role;
      this.protocol = r.decoder.name;
      const stats = this.table.stats;
      const sink: DecoderSink = {
        exchange: (ex) => this.onExchange(ex),
        raw: (_s, n) => (stats.undecodedBytes += n),
        cut: () => {
          stats.cutMessages++;
          if (!this.cut) {
            this.cut = true;
            stats.cutConnections++;
          }
        },
        fault: (_s, reason) => (this.faulted ??= reason),
      };
      this.decoder = r.decoder.create(sink, this.table.decoderOptions);
      this.state = 'decoding';
      this.replayPending();
      return;
    }
    const stuck = (this.pendingBytes[0] ?? 0) > DETECT_LIMIT || (this.pendingBytes[1] ?? 0) > DETECT_LIMIT;
    if (!more || stuck) {
      if (heads[0].length + heads[1].length >= 16 || stuck) this.becomeUnknown();
    }
  }

  private replayPending(): void {
    const pending = this.pending;
    this.pending = [];
    this.first = [[], []];
    for (const [i, p] of pending.entries()) {
      if (this.state !== 'decoding') {
        // failed while replaying: the rest is only counted
        for (const q of pending.slice(i)) if (q.bytes) this.table.stats.undecodedBytes += q.bytes.length;
        return;
      }
      const side = this.sideOf(p.dir)!;
      if (p.bytes) this.decoder!.push(side, p.bytes, p.ts);
      else if (p.gap) this.decoder!.gap(side, p.gap, p.ts);
      if (this.faulted !== undefined) this.table.fail(this, this.faulted, p.ts);
    }
  }

  /**
   * Decoding this connection failed: keep what the decoder can still give (best effort, its
   * state is suspect and admission quarantines anything invalid), then only count bytes.
   */
  abandon(ts: number): void {
    const d = this.decoder;
    this.state = 'failed';
    this.decoder = undefined;
    for (const p of this.pending) if (p.bytes) this.table.stats.undecodedBytes += p.bytes.length;
    this.pending = [];
    this.first = [[], []];
    try {
      d?.end(ts);
    } catch {
      // nothing more to keep
    }
  }

  private becomeUnknown(): void {
    this.state = 'unknown';
    this.table.stats.unknownConnections++;
    for (const p of this.pending) if (p.bytes) this.table.stats.unknownBytes += p.bytes.length;
    this.pending = [];
    this.first = [[], []];
    log.debug('unknown protocol', { stream: this.id });
  }

  becomeCiphertext(): void {
    if (this.state === 'ciphertext') return;
    this.state = 'ciphertext';
    for (const p of this.pending) if (p.bytes) this.table.stats.ciphertextBytes += p.bytes.length;
    this.pending = [];
    this.first = [[], []];
    this.decoder = undefined;
  }

  private onExchange(ex: DecodedExchange): void {
    if (this.tls && !this.meta) {
      this.held.push(ex);
      return;
    }
    this.table.emit(this, ex);
  }

  releaseHeld(): void {
    const held = this.held;
    this.held = [];
    for (const ex of held) this.table.emit(this, ex);
  }

  flush(): void {
    this.dirs[0].flush();
    this.dirs[1].flush();
  }

  /** Bytes the kernel counted past what arrived are a gap at the end of each direction. */
  finalPositions(bytesIn: number, bytesOut: number, ts: number): void {
    // ciphertext is suppressed in the kernel on purpose once the socket is known to carry TLS
    if (this.state === 'ciphertext' || this.tls) return;
    this.flush();
    this.dirs[0].endAt(bytesIn, ts);
    this.dirs[1].endAt(bytesOut, ts);
  }

  end(ts: number): void {
    this.flush();
    if (this.state === 'detecting' && this.pending.some((p) => p.bytes)) this.becomeUnknown();
    if (this.state === 'decoding') {
      this.decoder!.end(ts);
      if (this.faulted !== undefined) this.table.fail(this, this.faulted, ts);
    }
    if (this.tls && !this.bound && this.table.tlsNeedsSocket) {
      // Plaintext arrives before the socket is known (memory BIOs); a stream that never got one
      // belonged to a socket the port filter left out.
      this.held = [];
      this.table.stats.tlsUnboundDropped++;
      return;
    }
    this.releaseHeld();
  }
}

export class ConnectionTable {
  readonly stats: TableStats = {
    connections: 0,
    tlsConnections: 0,
    exchanges: 0,
    unknownConnections: 0,
    unknownBytes: 0,
    undecodedBytes: 0,
    cutMessages: 0,
    cutConnections: 0,
    failedConnections: 0,
    failures: [],
    quarantined: 0,
    gapBytes: 0,
    ciphertextBytes: 0,
    tlsUnboundDropped: 0,
  };
  /** tgid:fd → socket stream (current generation). */
  private sockets = new Map<number, Stream>();
  /** tgid:ssl → TLS plaintext stream. */
  private tls = new Map<string, Stream>();
  /** Every live stream by id (live links name streams by id). */
  readonly byId = new Map<string, Stream>();
  /** Live links waiting for a TLS stream's socket (its addresses). */
  private linksWaiting = new Map<string, Array<() => boolean>>();
  private touched = new Set<Stream>();
  /** Memory every decoder of this table shares (DecoderOptions.pool, or one of the default size). */
  readonly pool: MemoryPool;
  readonly decoderOptions: DecoderOptions;
  /** Who works for which request (threads, goroutines, event-loop callbacks): capture/causal. */
  readonly contexts = new ContextTracker();
  /** Outbound exchanges wait here for the inbound exchange that caused them. */
  readonly linker: Linker;

  constructor(
    private readonly clock: Clock,
    onExchange: (ex: Exchange) => void,
    decoderOptions: DecoderOptions = {},
    private readonly serviceName?: string,
    /** A port filter is on: TLS streams count only once tied to a socket that passed it. */
    readonly tlsNeedsSocket = false,
    /** Called for every outbound write linked to a request (the replay's live link feed). */
    onLink?: (l: LiveLink) => void,
  ) {
    this.pool = decoderOptions.pool ?? newPool();
    this.decoderOptions = { ...decoderOptions, pool: this.pool };
    this.linker = new Linker(this.contexts, onExchange);
    if (onLink) this.contexts.onWrite = (stream, tsNs, ctx) => this.liveLink(onLink, stream, tsNs, ctx);
  }

  /** A linked outbound write, with the addresses of both connections, once they are known. */
  private liveLink(
    onLink: (l: LiveLink) => void,
    stream: string,
    tsNs: number,
    ctx: WriteContext | undefined,
  ): void {
    const send = (): boolean => {
      const call = this.byId.get(stream)?.meta;
      const request = ctx ? this.byId.get(ctx.stream)?.meta : undefined;
      if (!call || (ctx && !request)) return false;
      const link: LiveLink = {
        call: { laddr: call.laddr, lport: call.lport, raddr: call.raddr, rport: call.rport },
        tsNs,
      };
      if (ctx && request) {
        link.request = {
          laddr: request.laddr,
          lport: request.lport,
          raddr: request.raddr,
          rport: request.rport,
        };
        link.method = ctx.method;
      }
      onLink(link);
      return true;
    };
    if (send()) return;
    // TLS plaintext before its TLS_BIND: the addresses come with the bind
    for (const id of ctx ? [stream, ctx.stream] : [stream]) {
      if (this.byId.get(id)?.meta) continue;
      const list = this.linksWaiting.get(id) ?? [];
      if (list.length < 64) list.push(send);
      this.linksWaiting.set(id, list);
    }
  }

  /**
   * Marks a connection failed (an exception in its reassembly or decoder, or a fault its decoder
   * reported): counted, the reason kept for the report, its later bytes only counted.
   */
  fail(s: Stream, reason: unknown, ts: number): void {
    if (s.state === 'failed') return;
    const text = reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason);
    this.stats.failedConnections++;
    if (this.stats.failures.length < FAILURES_KEPT) {
      this.stats.failures.push({ connection: s.id, reason: text });
      log.warn(
        `decoding connection ${s.id} (${s.protocol || 'detecting'}) failed, it is only counted from here: ${text}`,
      );
    }
    s.abandon(ts);
  }

  /** Runs one step of one connection; an exception there fails that connection only. */
  private guarded(s: Stream, ts: number, step: () => void): void {
    try {
      step();
    } catch (e) {
      this.fail(s, e, ts);
    }
  }

  open(ev: OpenEvent): void {
    const key = socketKey(ev.tgid, ev.fd);
    const old = this.sockets.get(key);
    if (old) this.endStream(old, ev.ts);
    const meta: ConnMeta = {
      tgid: ev.tgid,
      fd: ev.fd,
      gen: ev.gen,
      role: ev.role,
      laddr: ev.laddr,
      lport: ev.lport,
      raddr: ev.raddr,
      rport: ev.rport,
      comm: ev.comm,
      cgroup: ev.cgroup,
    };
    const id = `${ev.tgid}-${ev.fd}-${ev.gen}`;
    this.sockets.set(key, new Stream(this, id, meta, false, ev.role, ev.gen));
    this.stats.connections++;
    this.contexts.open(ev.tgid, ev.tid, ev.role, id);
  }

  data(ev: DataEvent): void {
    let s: Stream | undefined;
    if (ev.flags & F_TLS) {
      const key = `${ev.tgid}:${ev.key}`;
      s = this.tls.get(key);
      if (s && s.gen !== ev.gen) {
        // the SSL object's address was reused by a new connection
        this.tls.delete(key);
        this.endStream(s, ev.ts);
        s = undefined;
      }
      if (!s) {
        s = new Stream(
          this,
          `${ev.tgid}-ssl${ev.key.toString(16)}-${ev.gen}`,
          undefined,
          true,
          ROLE_UNKNOWN,
          ev.gen,
        );
        this.tls.set(key, s);
        this.stats.tlsConnections++;
      }
    } else {
      const key = socketKey(ev.tgid, Number(ev.key));
      s = this.sockets.get(key);
      // Data before our OPEN record means the record was dropped; track it without addresses.
      if (!s || s.gen !== ev.gen) {
        if (s) this.endStream(s, ev.ts);
        s = new Stream(this, `${ev.tgid}-${ev.key}-${ev.gen}`, undefined, false, ROLE_UNKNOWN, ev.gen);
        this.sockets.set(key, s);
        this.stats.connections++;
      }
    }
    if (s.state === 'failed') {
      this.stats.undecodedBytes += ev.payload.length;
      return;
    }
    // guarded() inlined: this runs for every record
    try {
      s.dirs[ev.dir === DIR_OUT ? 1 : 0].push(ev.pos, ev.size, ev.payload, ev.ts);
    } catch (e) {
      this.fail(s, e, ev.ts);
    }
    this.touched.add(s);
    // ciphertext of a socket whose plaintext comes from the TLS library says nothing about who wrote it
    if (s.state !== 'ciphertext') this.contexts.data(ev.tgid, ev.tid, ev.dir, ev.ts, s);
    else this.contexts.ciphertext(ev.tgid, ev.tid, ev.dir, s);
  }

  bind(ev: TlsBindEvent): void {
    const socket = this.sockets.get(socketKey(ev.tgid, ev.fd));
    if (socket) {
      socket.becomeCiphertext();
      this.contexts.tlsBound(socket.id);
    }
    const key = `${ev.tgid}:${ev.ssl}`;
    let s = this.tls.get(key);
    if (!s) {
      s = new Stream(
        this,
        `${ev.tgid}-ssl${ev.ssl.toString(16)}-${ev.sslGen}`,
        undefined,
        true,
        ROLE_UNKNOWN,
        ev.sslGen,
      );
      this.tls.set(key, s);
      this.stats.tlsConnections++;
    }
    s.bound = true;
    if (socket?.meta) {
      s.meta = socket.meta;
      const waiting = this.linksWaiting.get(s.id);
      if (waiting) {
        this.linksWaiting.delete(s.id);
        for (const send of waiting) send();
      }
      if (s.role === ROLE_UNKNOWN && socket.meta.role !== ROLE_UNKNOWN) s.role = socket.meta.role;
      const stream = s;
      this.guarded(s, ev.ts, () => stream.releaseHeld());
    }
  }

  close(ev: CloseEvent): void {
    const key = socketKey(ev.tgid, ev.fd);
    const s = this.sockets.get(key);
    if (!s) return;
    this.sockets.delete(key);
    // The kernel's final byte counts tell about records lost after the last one that arrived.
    if (s.gen === ev.gen) s.finalPositions(ev.bytesIn, ev.bytesOut, ev.ts);
    this.endStream(s, ev.ts);
    for (const [k, t] of this.tls) {
      if (t.meta && t.meta.tgid === ev.tgid && t.meta.fd === ev.fd && t.meta.gen === ev.gen) {
        this.tls.delete(k);
        this.endStream(t, ev.ts);
      }
    }
  }

  /** End of a batch: holes still open become gaps. */
  flushBatch(): void {
    for (const s of this.touched) this.guarded(s, s.lastTs, () => s.flush());
    this.touched.clear();
  }

  /** Ends streams of processes that are gone (exit closes fds without close()). */
  sweep(alive: (tgid: number) => boolean, nowNs: number): void {
    for (const [k, s] of this.sockets) {
      if (!alive(Math.floor(k / FD_SPACE))) {
        this.sockets.delete(k);
        this.endStream(s, Math.max(s.lastTs, nowNs));
      }
    }
    for (const [k, s] of this.tls) {
      if (!alive(Number(k.slice(0, k.indexOf(':'))))) {
        this.tls.delete(k);
        this.endStream(s, Math.max(s.lastTs, nowNs));
      }
    }
  }

  /** Capture stopped: every stream ends; pending requests are emitted as unanswered. */
  endAll(nowNs: number): void {
    for (const s of this.tls.values()) this.endStream(s, Math.max(s.lastTs, nowNs));
    this.tls.clear();
    for (const s of this.sockets.values()) this.endStream(s, Math.max(s.lastTs, nowNs));
    this.sockets.clear();
    this.linker.flush();
  }

  get size(): number {
    return this.sockets.size + this.tls.size;
  }

  private endStream(s: Stream, ts: number): void {
    this.touched.delete(s);
    this.byId.delete(s.id);
    this.linksWaiting.delete(s.id);
    this.guarded(s, ts, () => s.end(ts));
    // a stream that failed while ending still hands over what it holds
    if (s.state === 'failed') this.guarded(s, ts, () => s.releaseHeld());
    this.linker.streamEnded(s.id);
  }

  emit(s: Stream, d: DecodedExchange): void {
    const meta = s.meta;
    const direction: Direction = s.role === ROLE_CLIENT ? 'outbound' : 'inbound';
    const start = d.requestStartNs;
    const host = d.quarantine === undefined ? hostOf(d) : undefined;
    // offsets after the request's first byte; never negative, whatever order a decoder saw
    // (built by assignment, not spreads: one exchange per request, and the key order stays)
    const service: Exchange['service'] = { addr: meta?.laddr ?? '', port: meta?.lport ?? 0 };
    if (meta) {
      service.pid = meta.tgid;
      service.comm = meta.comm;
    }
    if (this.serviceName) service.name = this.serviceName;
    const peer: Exchange['peer'] = { addr: meta?.raddr ?? '', port: meta?.rport ?? 0 };
    if (host) peer.host = host;
    const timing: Exchange['timing'] = {
      startUs: this.clock.wallUs(start),
      requestEndNs: Math.max(0, d.requestEndNs - start),
    };
    if (d.responseStartNs !== undefined) timing.responseStartNs = Math.max(0, d.responseStartNs - start);
    if (d.responseEndNs !== undefined) timing.responseEndNs = Math.max(0, d.responseEndNs - start);
    const ex: Exchange = {
      id: `${s.id}#${s.order}`,
      protocol: d.quarantine === undefined ? d.protocol : 'unknown',
      direction,
      tls: s.tls,
      service,
      peer,
      connection: { id: s.id, order: s.order++ },
      request: d.request,
      timing,
    };
    if (d.response) ex.response = d.response;
    if (d.notes?.length) ex.notes = d.notes;
    if (d.extras) ex.extras = d.extras;
    if (d.quarantine !== undefined) {
      ex.quarantine = { protocol: d.protocol, reason: d.quarantine };
      this.stats.quarantined++;
    }
    if (!meta) ex.notes = [...(ex.notes ?? []), 'socket-unknown'];
    this.stats.exchanges++;
    this.linker.admit(s.id, d, ex);
  }
}

/**
 * A socket by process and fd as one number (tgid < 2^22, fd < 2^31: exact below 2^53); a string
 * key would be built and hashed again for every record.
 */
const FD_SPACE = 2 ** 31;
function socketKey(tgid: number, fd: number): number {
  return tgid * FD_SPACE + fd;
}

/** Host name the client asked for: Host (HTTP/1), or :authority (HTTP/2, kept in extras.pseudo). */
function hostOf(d: DecodedExchange): string | undefined {
  const authority = requestAuthority(d.request.headers, d.extras);
  return authority === undefined ? undefined : hostName(authority);
}
