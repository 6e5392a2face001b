/**
 * Replay driver: sends the recorded inbound requests to the build. Lanes run `concurrency` at a
 * time; requests inside a lane keep their recorded order. Optional global rate limit and recorded
 * pacing (`speed`). Retries are off: a failure is a result.
 *
 * Connections (`connections`): `recorded` (default) gives every recorded connection a driver
 * connection of its own, carrying its requests in recorded order and closed where the recording
 * closed it; `pooled` shares keep-alive connections. Either way nothing is added to a request:
 * each one reports the socket it went out on and its position there (`SocketUse`), and capture at
 * the build, which sees the same connection from the other end, is joined to it by that
 * (runner/join.ts).
 *
 * Two clients: `h1` (runner/h1.ts, the default for plain-HTTP origins) and undici (`client:
 * 'undici'`, and always for https origins). h1 sends the recorded request as it was (header order
 * and case, HTTP/1.0 request lines, `Connection` headers in recorded mode); undici writes its own
 * `host` first and its own `connection` header, and always HTTP/1.1.
 */
import diagnostics from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { buildConnector, type Dispatcher, Client as UndiciClient } from 'undici';
import { parseContentLength } from '../core/http1.js';
import type { Body, HeaderList } from '../core/exchange.js';
import { HOP_BY_HOP } from '../core/http.js';
import type { SocketUse } from '../core/results.js';
import { type H1Connection, H1Pool } from './h1.js';
import { H2Client } from './h2.js';
import type { ConnectionMode, DriverOptions, Lane, SpecItem, WorkerItem } from './spec.js';

/**
 * A WorkerItem before encoding: request body as bytes, the answer as the client returned it
 * (headers and body become WorkerItem fields only when the results are written).
 */
export type DrivenItem = Omit<
  WorkerItem,
  'body' | 'responseBody' | 'responseHeaders' | 'responseTrailers'
> & {
  body?: Uint8Array;
  answer?: LiveAnswer;
};

const base64 = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

export function toWorkerItem(d: DrivenItem): WorkerItem {
  const { body, answer, ...rest } = d;
  return {
    ...rest,
    ...(body ? { body: base64(body) } : {}),
    ...(answer ? { responseHeaders: answer.headers, responseBody: base64(answer.body) } : {}),
    ...(answer?.trailers ? { responseTrailers: answer.trailers } : {}),
    ...(answer?.deadline ? { deadline: answer.deadline } : {}),
  };
}

/** Request as sent, after the token engine and transforms had their say. */
export interface OutgoingRequest {
  method: string;
  target: string;
  headers: HeaderList;
  body: Uint8Array;
  /** `HTTP/1.0` when recorded so (recorded mode, h1); HTTP/1.1 otherwise. */
  version?: string | undefined;
}

export interface LiveAnswer {
  readonly status: number;
  readonly headers: HeaderList;
  readonly body: Uint8Array;
  /** HTTP/2 trailers (gRPC status), when the build sent some. */
  readonly trailers?: HeaderList | undefined;
  /** gRPC: DEADLINE_EXCEEDED as the client saw it when the build reset the call at its deadline (H2Answer). */
  readonly deadline?: string | undefined;
}

/** Token engine / transforms hook points (identity when absent). */
export interface DriverHooks {
  prepare?(item: SpecItem, req: OutgoingRequest): OutgoingRequest;
  observe?(item: SpecItem, sent: OutgoingRequest, answer: LiveAnswer | undefined): void;
  /**
   * Requests in flight: filled while each is sent and answered, keyed by where it goes out (its
   * `port` is set as soon as the request is written), so the mocks can tell which request made a
   * call (runner/links.ts).
   */
  inflight?: Map<SocketUse, string>;
}

/**
 * What a pooled replay drops: the hop-by-hop fields (it manages its own connections), the body's
 * framing (it sends Content-Length of the body it sends) and `trailer`: it never sends trailers,
 * so announcing them would be false. (A mock keeps `trailer`: it serves the recorded trailers.)
 */
const POOLED_DROPS = new Set([...HOP_BY_HOP, 'content-length', 'trailer']);
/**
 * What a recorded replay drops: the body's framing (the driver frames the body it sends with
 * Content-Length, in the recorded header's place when there was one) and protocol switches it
 * cannot follow. The connection's own headers stay: the connection is the recorded one.
 */
const FRAMING = new Set(['transfer-encoding', 'upgrade']);
const MAX_BODY = 32 << 20;

const NO_BODY = new Uint8Array(0);
const pooledSendable = ([n]: [string, string]): boolean =>
  !POOLED_DROPS.has(n.toLowerCase()) && !n.startsWith(':');
const recordedSendable = ([n]: [string, string]): boolean =>
  !FRAMING.has(n.toLowerCase()) && !n.startsWith(':');

/**
 * The body to send for a recorded request body. A body capture did not see whole — typically one
 * the recorded server never read, because it answered first — is sent at its declared length
 * (Content-Length), the missing bytes as zeros: the build sees the same framing, and a connection
 * carries the same unread bytes, as when it was recorded. Returns the recorded bytes otherwise.
 */
export function bodyToSend(body: Body, headers: HeaderList): Uint8Array {
  if (!body.truncated) return body.data;
  let declared = -1;
  for (const [n, v] of headers)
    if (n.length === 14 && n.toLowerCase() === 'content-length')
      declared = parseContentLength(v.trim(), declared);
  if (!(declared > body.data.length) || declared > MAX_BODY) return body.data;
  const out = new Uint8Array(declared);
  out.set(body.data);
  return out;
}

/** The recorded headers a replay in `mode` sends (the same list when nothing is dropped). */
export function sendableHeaders(headers: HeaderList, mode: ConnectionMode): HeaderList {
  const keep = mode === 'pooled' ? pooledSendable : recordedSendable;
  return headers.every(keep) ? headers : headers.filter(keep);
}

function toRequest(item: SpecItem, mode: ConnectionMode): OutgoingRequest {
  return {
    method: item.method,
    target: item.target,
    // the recorded list itself when nothing is dropped (the common case): no copy per request
    headers: sendableHeaders(item.headers, mode),
    body: item.body ? new Uint8Array(Buffer.from(item.body, 'base64')) : NO_BODY,
    ...(mode === 'recorded' && item.version === 'HTTP/1.0' ? { version: item.version } : {}),
  };
}

function headerList(raw: Record<string, string | string[] | undefined>): HeaderList {
  const out: HeaderList = [];
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push([k, one]);
  }
  return out;
}

/**
 * One request through undici's dispatch API: no stream objects per answer (the request() API
 * costs a Readable per call), the body gathered in chunks up to MAX_BODY.
 */
function send(
  pool: Dispatcher,
  opts: Dispatcher.DispatchOptions & { signal?: AbortSignal },
): Promise<LiveAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let status = 0;
    let headers: HeaderList = [];
    const { signal, ...dispatchOpts } = opts;
    let settled = false;
    const fail = (e: Error): void => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    };
    let controllerRef: Dispatcher.DispatchController | undefined;
    const onAbort = (): void => controllerRef?.abort(new Error('replay interrupted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    pool.dispatch(dispatchOpts, {
      onRequestStart(controller) {
        controllerRef = controller;
      },
      onResponseStart(_c, statusCode, raw) {
        status = statusCode;
        headers = headerList(raw as Record<string, string | string[] | undefined>);
      },
      onResponseData(controller, chunk) {
        size += chunk.length;
        if (size > MAX_BODY)
          controller.abort(new Error(`answer over the ${MAX_BODY >> 20} MiB the driver keeps`));
        else chunks.push(chunk);
      },
      onResponseEnd() {
        signal?.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        resolve({ status, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
      },
      onResponseError(_c, err) {
        signal?.removeEventListener('abort', onAbort);
        fail(err);
      },
    });
  });
}

export interface DriveProgress {
  done: number;
  total: number;
  errors: number;
}

/** Wall clock in µs since epoch, sub-millisecond. */
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

/** Where requests go out: one connection of its own, or a share of a pool. */
interface Channel {
  /** Sends one request; `where` is filled with the socket it went out on (when it reached one). */
  send(req: OutgoingRequest, where: SocketUse, signal?: AbortSignal, item?: SpecItem): Promise<LiveAnswer>;
  /**
   * After a send settles: set when the channel had carried requests before and this one needed a
   * new socket (why, in words). Only meaningful for a channel of its own.
   */
  readonly reopened: string | undefined;
  close(): void;
}

interface Client {
  /** A connection of its own (recorded mode). */
  own(): Channel;
  /** The lane's share of the keep-alive pool (pooled mode). */
  shared(): Channel;
  close(): Promise<void>;
}

function h1Client(origin: URL, opts: DriverOptions, signal?: AbortSignal): Client {
  const pool = new H1Pool(origin.hostname.replace(/^\[|\]$/g, ''), Number(origin.port || 80), {
    connections: Math.max(1, opts.concurrency),
    timeoutMs: opts.timeoutMs,
    maxBody: MAX_BODY,
  });
  signal?.addEventListener('abort', () => pool.abort('replay interrupted'), { once: true });
  const shared: Channel = {
    send: (req, where) => pool.request(req, where),
    reopened: undefined,
    close() {},
  };
  return {
    own(): Channel {
      const conn: H1Connection = pool.connection();
      return {
        send: (req, where) => conn.request(req, where),
        get reopened() {
          return conn.reopened;
        },
        close: () => conn.close(),
      };
    },
    shared: () => shared,
    close: () => pool.close(),
  };
}

/**
 * undici: one `Client` (one connection at a time, one request in flight) per channel. Its sockets
 * come from a connector that notes when each was opened; undici's `undici:client:sendHeaders`
 * diagnostics message names the socket each request is written on, which gives its position.
 */
interface Tracked {
  channel: UndiciChannel;
  openedUs: number;
  seq: number;
}
const tracked = new WeakMap<object, Tracked>();
let subscribers = 0;
const onSendHeaders = (message: unknown): void => {
  const socket = (message as { socket?: Socket }).socket;
  const t = socket ? tracked.get(socket) : undefined;
  if (!t || !socket) return;
  t.channel.current = { port: socket.localPort ?? 0, openedUs: t.openedUs, seq: t.seq++, sentUs: nowUs() };
  if (t.channel.where) t.channel.where.port = t.channel.current.port;
};

class UndiciChannel implements Channel {
  /** Socket of the request in flight, set when its head is written. */
  current: SocketUse | undefined;
  /** Where the request in flight goes out: its port is filled in as soon as it is known. */
  where: SocketUse | undefined;
  reopened: string | undefined;
  private client: UndiciClient | undefined;
  private sockets = 0;
  /** Why the last socket ended, when it did. */
  private ended: string | undefined;
  private readonly connect: buildConnector.connector;

  constructor(
    private readonly origin: string,
    private readonly opts: DriverOptions,
    /** A channel of its own keeps its connection however long it idles (the recording did). */
    private readonly own: boolean,
    private readonly closing: Array<Promise<void>>,
  ) {
    const base = buildConnector({ timeout: opts.timeoutMs });
    this.connect = (options, callback) => {
      const openedUs = nowUs();
      base(options, (err, socket) => {
        if (socket) {
          if (this.sockets++ > 0) this.reopened = this.ended ?? 'the previous connection was closed';
          this.ended = undefined;
          tracked.set(socket, { channel: this, openedUs, seq: 0 });
          socket.once('end', () => {
            this.ended ??= 'the build closed the connection';
          });
        }
        // biome-ignore lint/suspicious/noExplicitAny: undici's callback overloads (error | socket)
        (callback as any)(err, socket);
      });
    };
  }

  send(req: OutgoingRequest, where: SocketUse, signal?: AbortSignal): Promise<LiveAnswer> {
    this.client ??= new UndiciClient(this.origin, {
      pipelining: 1,
      headersTimeout: this.opts.timeoutMs,
      bodyTimeout: this.opts.timeoutMs,
      connect: this.connect,
      ...(this.own ? { keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000 } : {}),
    });
    this.current = undefined;
    this.where = where;
    this.reopened = undefined;
    // undici takes a flat [name, value, …] array: order and duplicates kept, no object building.
    // It frames the body and writes its own Connection header (it reads `close` from ours).
    const headers: string[] = [];
    for (const [n, v] of req.headers) {
      const l = n.toLowerCase();
      if (l !== 'keep-alive' && l !== 'content-length' && l !== 'expect' && l !== 'proxy-connection')
        headers.push(n, v);
    }
    const done = (): void => {
      if (this.current) Object.assign(where, this.current);
    };
    return send(this.client, {
      method: req.method,
      path: req.target,
      headers,
      body: req.body.length || !['GET', 'HEAD'].includes(req.method) ? Buffer.from(req.body) : null,
      ...(signal ? { signal } : {}),
    }).then(
      (a) => {
        done();
        return a;
      },
      (e: unknown) => {
        done();
        throw e;
      },
    );
  }

  close(): void {
    const c = this.client;
    this.client = undefined;
    if (c) this.closing.push(c.close().catch(() => undefined));
  }
}

function undiciClient(origin: string, opts: DriverOptions, signal?: AbortSignal): Client {
  if (subscribers++ === 0) diagnostics.subscribe('undici:client:sendHeaders', onSendHeaders);
  const channels = new Set<UndiciChannel>();
  const closing: Array<Promise<void>> = [];
  const make = (own: boolean): Channel => {
    const ch = new UndiciChannel(origin, opts, own, closing);
    channels.add(ch);
    return ch;
  };
  const abort = (): void => {
    for (const ch of channels) ch.close();
  };
  signal?.addEventListener('abort', abort, { once: true });
  let closed = false;
  return {
    own: () => make(true),
    shared: () => make(false),
    async close() {
      if (closed) return;
      closed = true;
      signal?.removeEventListener('abort', abort);
      for (const ch of channels) ch.close();
      await Promise.all(closing);
      if (--subscribers === 0) diagnostics.unsubscribe('undici:client:sendHeaders', onSendHeaders);
    },
  };
}

/**
 * HTTP/2 (runner/h2.ts): one session per recorded connection (recorded mode) or per lane runner
 * (pooled); TLS when the recorded connection was.
 */
function h2Client(origin: URL, opts: DriverOptions, signal?: AbortSignal) {
  const client = new H2Client(origin.hostname.replace(/^\[|\]$/g, ''), Number(origin.port || 80), {
    timeoutMs: opts.timeoutMs,
    maxBody: MAX_BODY,
    speed: opts.speed,
  });
  signal?.addEventListener('abort', () => void client.close(), { once: true });
  return {
    own(item: SpecItem): Channel {
      const plan = item.h2!;
      const host = plan.authority?.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      const conn = client.connection(plan.tls === true, host);
      return {
        send: (req, where, sig, it) => conn.request(req, it?.h2 ?? plan, where, sig),
        get reopened() {
          return conn.reopened;
        },
        close: () => conn.close(),
      };
    },
    close: () => client.close(),
  };
}

/** The client a run uses: h1 unless undici is asked for or the origin is not plain HTTP. */
export function clientFor(origin: string, opts: DriverOptions): 'h1' | 'undici' {
  return opts.client === 'undici' || new URL(origin).protocol !== 'http:' ? 'undici' : 'h1';
}

export async function drive(
  origin: string,
  items: SpecItem[],
  lanes: Lane[],
  opts: DriverOptions,
  hooks: DriverHooks = {},
  onProgress?: (p: DriveProgress) => void,
  signal?: AbortSignal,
): Promise<DrivenItem[]> {
  const mode: ConnectionMode = opts.connections ?? 'recorded';
  const client =
    clientFor(origin, opts) === 'h1'
      ? h1Client(new URL(origin), opts, signal)
      : undiciClient(origin, opts, signal);
  const h2 = items.some((it) => it.h2) ? h2Client(new URL(origin), opts, signal) : undefined;
  // Per-request results live in flat arrays while the replay runs (fewer objects for the GC to
  // carry along); they become DrivenItems once it is over.
  const answers: Array<LiveAnswer | undefined> = new Array(items.length);
  const sentAs: Array<OutgoingRequest | undefined> = new Array(items.length);
  const durations = new Float64Array(items.length).fill(-1);
  const sockPort = new Int32Array(items.length);
  const sockOpened = new Float64Array(items.length);
  const sockSeq = new Int32Array(items.length).fill(-1);
  const sockSent = new Float64Array(items.length);
  const sockStream = new Int32Array(items.length).fill(-1);
  const failures = new Map<number, string>();
  const reopened = new Map<number, string>();
  // requests are decoded once, before the clock starts
  const prepared = items.map((it) => toRequest(it, mode));
  const firstUs = items.reduce((m, it) => Math.min(m, it.startUs), Number.POSITIVE_INFINITY);
  const t0 = Date.now();
  let nextSlot = t0;
  let done = 0;
  let errors = 0;

  const wait = async (ms: number): Promise<void> => {
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  };

  const one = async (index: number, channel: Channel, where: SocketUse): Promise<void> => {
    const item = items[index]!;
    if (opts.speed) await wait(t0 + (item.startUs - firstUs) / 1000 / opts.speed - Date.now());
    if (opts.rate) {
      const slot = Math.max(nextSlot, Date.now());
      nextSlot = slot + 1000 / opts.rate;
      await wait(slot - Date.now());
    }
    let req = prepared[index]!;
    if (hooks.prepare) {
      req = hooks.prepare(item, req);
      sentAs[index] = req;
    }
    where.port = 0;
    where.seq = -1;
    const started = performance.now();
    let answer: LiveAnswer | undefined;
    hooks.inflight?.set(where, item.id);
    try {
      answer = await channel.send(req, where, signal, item);
      answers[index] = answer;
    } catch (e) {
      failures.set(index, (e as Error).message || String(e));
      errors++;
    } finally {
      hooks.inflight?.delete(where);
    }
    durations[index] = performance.now() - started;
    // (a socket that never connected has no port: nothing can be joined through it)
    if (where.seq >= 0 && where.port > 0) {
      sockPort[index] = where.port;
      sockOpened[index] = where.openedUs;
      sockSeq[index] = where.seq;
      sockSent[index] = where.sentUs;
      if (where.stream !== undefined) sockStream[index] = where.stream;
    }
    if (mode === 'recorded' && channel.reopened) reopened.set(index, channel.reopened);
    hooks.observe?.(item, req, answer);
    done++;
    onProgress?.({ done, total: items.length, errors });
  };

  /**
   * One lane, in order. Recorded mode: each recorded connection on a channel of its own. An
   * HTTP/2 exchange starts without waiting for the earlier HTTP/2 ones that were still open when
   * it started in the recording (streams of one connection run at once, as recorded); anything
   * else waits for everything before it.
   */
  const runLane = async (lane: Lane, shared: Channel | undefined, where: SocketUse): Promise<void> => {
    const own = new Map<string, Channel>();
    const open: Array<{ index: number; done: Promise<void> }> = [];
    const settle = async (keep: (index: number) => boolean): Promise<void> => {
      const waiting = open.filter((o) => !keep(o.index));
      if (waiting.length === 0) return;
      await Promise.all(waiting.map((o) => o.done));
      for (const o of waiting) open.splice(open.indexOf(o), 1);
    };
    try {
      for (const index of lane.items) {
        if (signal?.aborted) break;
        const item = items[index]!;
        // what this request may overlap: HTTP/2 exchanges the recording had open when it started
        await settle((i) => {
          const o = items[i]!;
          return !!item.h2 && !!o.h2 && (o.endUs ?? Number.POSITIVE_INFINITY) > item.startUs;
        });
        // HTTP/2 keeps its recorded connections in either mode: a stream has no meaning apart from them
        let channel = item.h2 ? undefined : shared;
        if (!channel) {
          channel = own.get(item.connection);
          if (!channel) {
            channel = item.h2 ? h2!.own(item) : client.own();
            own.set(item.connection, channel);
          }
        }
        const ch = channel;
        if (item.h2) {
          const done = one(index, ch, { port: 0, openedUs: 0, seq: -1, sentUs: 0 });
          open.push({ index, done });
          if (item.closeAfter) {
            // the recording closed this connection after its last stream: a graceful close once
            // that stream went out lets the ones still open finish
            own.delete(item.connection);
            void done.finally(() => ch.close());
          }
          continue;
        }
        await one(index, ch, where);
        if (!shared && item.closeAfter) {
          // the recording closed this connection here
          ch.close();
          own.delete(item.connection);
        }
      }
      await settle(() => false);
    } finally {
      await Promise.all(open.map((o) => o.done));
      for (const ch of own.values()) ch.close();
    }
  };

  let nextLane = 0;
  const worker = async (): Promise<void> => {
    const shared = mode === 'pooled' ? client.shared() : undefined;
    const where: SocketUse = { port: 0, openedUs: 0, seq: -1, sentUs: 0 };
    try {
      while (nextLane < lanes.length && !signal?.aborted) await runLane(lanes[nextLane++]!, shared, where);
    } finally {
      shared?.close();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, lanes.length)) }, worker));
  } finally {
    await Promise.all([client.close(), h2?.close()]);
  }
  const results: DrivenItem[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    if (durations[i]! < 0) {
      // never sent (interrupted): reported as such, not silently dropped
      results[i] = {
        id: it.id,
        method: it.method,
        target: it.target,
        headers: it.headers,
        error: 'not sent (replay interrupted)',
        durationMs: 0,
      };
      continue;
    }
    const req = sentAs[i] ?? prepared[i]!;
    const out: DrivenItem = {
      id: it.id,
      method: req.method,
      target: req.target,
      headers: req.headers,
      durationMs: durations[i]!,
    };
    if (req.body.length) out.body = req.body;
    const answer = answers[i];
    if (answer) {
      out.status = answer.status;
      out.answer = answer;
    } else out.error = failures.get(i) ?? 'no answer';
    if (sockSeq[i]! >= 0) {
      out.socket = { port: sockPort[i]!, openedUs: sockOpened[i]!, seq: sockSeq[i]!, sentUs: sockSent[i]! };
      if (sockStream[i]! >= 0) out.socket.stream = sockStream[i]!;
    }
    const why = reopened.get(i);
    if (why) out.reopened = why;
    results[i] = out;
  }
  return results;
}
