/**
 * The replay driver's HTTP/2 client (node:http2): h2c with prior knowledge, or h2 over TLS (ALPN
 * `h2`), and gRPC over either — unary, server streaming, client streaming and bidirectional.
 *
 * A recorded HTTP/2 connection is replayed on one session of its own (`H2Client.connection()`),
 * its streams as concurrent as they were when recorded (the driver decides which wait for which;
 * runner/driver.ts). Flow control, SETTINGS and PING are node's (nghttp2's): a session honours the
 * build's window sizes and stream limits as any HTTP/2 client does.
 *
 * A stream carries what was recorded and nothing else: the recorded pseudo-headers (`:authority`,
 * `:scheme`) and headers in order (only the names HTTP/2 forbids, such as `Connection`, are
 * dropped when an HTTP/1 recording is sent over HTTP/2). A gRPC request body goes out message by
 * message: message k waits until the build has sent as many answer messages as the recorded
 * server had sent before it read message k (so a bidirectional ping-pong keeps its turns), and,
 * with `--speed`, until its recorded time after the stream's start; the client half-closes where
 * the recording did — after its last message, once the answers seen before the half-close have
 * come — or never, when the recorded client never did (the build ended the call).
 *
 * Each stream reports where it went out (`SocketUse`: the session socket's local port, when it
 * was opened, its position and its stream id): capture at the build sees the same connection and
 * stream, which is how the answer it recorded is joined to the request (runner/join.ts).
 */
import http2 from 'node:http2';
import { type Exchange, type HeaderList, headerValue } from '../core/exchange.js';
import { CONNECTION_SPECIFIC, isGrpc } from '../core/http.js';
import { grpcFrames } from '../core/protobuf.js';
import type { SocketUse } from '../core/results.js';

/** What the recording says about sending one exchange over HTTP/2 (SpecItem.h2). */
export interface H2Plan {
  /** The recorded connection was TLS: connect with ALPN h2. */
  tls?: boolean;
  /** Recorded `:authority` and `:scheme` (from the Host header when the recording was HTTP/1). */
  authority?: string;
  scheme?: string;
  /**
   * gRPC: one entry per recorded request message, in order: when the recorded server had it
   * (ns after the request's first byte) and how many answer messages it had sent by then.
   */
  messages?: Array<{ atNs?: number; after: number }>;
  /**
   * When the recorded client half-closed: after `after` answer messages (and `atNs`); `false`
   * when it never did (the recorded server ended the call first).
   */
  halfClose?: { after: number; atNs?: number } | false;
  /**
   * The recorded client reset the stream (a deadline, a cancel): after `after` answer messages,
   * `atNs` after its start (scaled by --speed; kept even without it: a deadline is behaviour).
   */
  reset?: { after: number; atNs: number; code: number };
}

interface RecordedMessage {
  atNs?: number;
}

/**
 * How to send a recorded exchange over HTTP/2, or undefined when it goes out over HTTP/1.1:
 * `auto` keeps the recorded protocol, `h2` and `h1` force one.
 */
export function planH2(ex: Exchange, protocol: 'auto' | 'h1' | 'h2' = 'auto'): H2Plan | undefined {
  const recordedH2 = ex.request.version === 'HTTP/2' || ex.protocol === 'http2' || ex.protocol === 'grpc';
  if (protocol === 'h1' || (protocol === 'auto' && !recordedH2)) return undefined;
  const plan: H2Plan = {};
  if (ex.tls) plan.tls = true;
  const pseudo = ex.extras?.pseudo as Record<string, string> | undefined;
  if (pseudo?.[':authority'] !== undefined) plan.authority = pseudo[':authority'];
  if (pseudo?.[':scheme'] !== undefined) plan.scheme = pseudo[':scheme'];
  const grpc = ex.extras?.grpc as
    | { requestMessages?: RecordedMessage[]; responseMessages?: RecordedMessage[] }
    | undefined;
  if (grpc?.requestMessages) {
    const answers = (grpc.responseMessages ?? [])
      .map((m) => m.atNs)
      .filter((t): t is number => t !== undefined)
      .sort((a, b) => a - b);
    /** Answer messages the recorded server had sent before `t`. */
    const before = (t: number | undefined): number => {
      if (t === undefined) return 0;
      let n = 0;
      while (n < answers.length && answers[n]! < t) n++;
      return n;
    };
    plan.messages = grpc.requestMessages.map((m) => ({
      ...(m.atNs !== undefined ? { atNs: m.atNs } : {}),
      after: before(m.atNs),
    }));
    if (ex.extras?.clientOpen === true && ex.extras?.resetBy !== 'client') plan.halfClose = false;
    else if (ex.extras?.clientOpen !== true) {
      const end = ex.timing.requestEndNs;
      plan.halfClose = { after: before(end), atNs: end };
    }
  } else if (ex.extras?.clientOpen === true) plan.halfClose = false;
  // (a reset after a whole answer changed nothing the build did; one before it cut the call)
  if (ex.extras?.resetBy === 'client' && typeof ex.extras.resetAtNs === 'number' && !ex.response) {
    const grpc = ex.extras?.grpc as { responseMessages?: RecordedMessage[] } | undefined;
    const at = ex.extras.resetAtNs;
    const after = (grpc?.responseMessages ?? []).filter((m) => m.atNs !== undefined && m.atNs < at).length;
    plan.reset = { after, atNs: at, code: typeof ex.extras.rstCode === 'number' ? ex.extras.rstCode : 8 };
    // the stream was cut before it half-closed: the reset ends it
    if (ex.extras?.clientOpen === true) plan.halfClose = false;
  }
  return plan;
}

export interface H2Request {
  method: string;
  target: string;
  headers: HeaderList;
  body: Uint8Array;
}

export interface H2Answer {
  status: number;
  headers: HeaderList;
  body: Uint8Array;
  trailers?: HeaderList;
  /**
   * gRPC: the build reset the stream (CANCEL) once the request's `grpc-timeout` had passed, and
   * the status is DEADLINE_EXCEEDED as a gRPC client reports it (the words say so), not one the
   * build sent. grpc-go's server does either, whichever comes first: send the handler's status or
   * reset the stream when its deadline timer fires.
   */
  deadline?: string;
}

/** `grpc-timeout` (gRPC over HTTP/2: 1–8 digits and a unit H M S m u n) in ms, or undefined. */
export function grpcTimeoutMs(headers: HeaderList): number | undefined {
  const v = headerValue(headers, 'grpc-timeout');
  const m = v ? /^(\d{1,8})([HMSmun])$/.exec(v.trim()) : null;
  if (!m) return undefined;
  const per: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
  return Number(m[1]) * per[m[2]!]!;
}

export interface H2Options {
  timeoutMs: number;
  maxBody: number;
  /** Recorded pacing inside a stream (the driver's --speed); undefined: as fast as turns allow. */
  speed?: number | undefined;
}

/** Longest wait for an answer message before the next request message goes out anyway. */
const TURN_MS = 5000;

/** Wall clock in µs since epoch, sub-millisecond. */
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

/**
 * The header object node:http2 sends: pseudo-headers first, then the recorded headers in their
 * order (a repeated name becomes one array at its first place; HPACK has no order between names
 * anyway beyond what this keeps).
 */
export function h2Headers(
  req: H2Request,
  plan: H2Plan,
  fallbackAuthority: string,
): http2.OutgoingHttpHeaders {
  let authority = plan.authority;
  if (authority === undefined)
    for (const [n, v] of req.headers)
      if (n.length === 4 && n.toLowerCase() === 'host') {
        authority = v;
        break;
      }
  const out: http2.OutgoingHttpHeaders = {
    ':method': req.method,
    ':scheme': plan.scheme ?? (plan.tls ? 'https' : 'http'),
    ':authority': authority ?? fallbackAuthority,
    ':path': req.target,
  };
  if (req.method === 'CONNECT') {
    delete out[':scheme'];
    delete out[':path'];
    out[':authority'] = req.target;
  }
  for (const [rawName, value] of req.headers) {
    const name = rawName.toLowerCase();
    if (name.startsWith(':') || CONNECTION_SPECIFIC.has(name) || name === 'host') continue;
    if (name === 'te' && value.trim().toLowerCase() !== 'trailers') continue;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else out[name] = Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  return out;
}

/** [name, value, name, value…] from node into a header list without pseudo-headers. */
function pairs(raw: string[] | undefined): HeaderList {
  const out: HeaderList = [];
  if (!raw) return out;
  for (let i = 0; i + 1 < raw.length; i += 2)
    if (raw[i]!.charCodeAt(0) !== 0x3a) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

const sleep = (ms: number): Promise<void> =>
  ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();

/** One stream in flight: its answer as it arrives, and the turns the sender waits for. */
class Flight {
  status = 0;
  headers: HeaderList = [];
  trailers: HeaderList | undefined;
  chunks: Buffer[] = [];
  size = 0;
  /** Whole gRPC messages received so far. */
  messages = 0;
  /** Bytes still to come of the message being received, or -1 while reading its prefix. */
  private need = -1;
  private prefix: number[] = [];
  ended = false;
  failed: string | undefined;
  activity = Date.now();
  private waiters: Array<{ n: number; wake: () => void }> = [];

  constructor(private readonly grpc: boolean) {}

  data(chunk: Buffer): void {
    this.activity = Date.now();
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (!this.grpc) return;
    let at = 0;
    while (at < chunk.length) {
      if (this.need < 0) {
        this.prefix.push(chunk[at++]!);
        if (this.prefix.length === 5) {
          const p = this.prefix;
          this.need = ((p[1]! << 24) >>> 0) + (p[2]! << 16) + (p[3]! << 8) + p[4]!;
          this.prefix = [];
          if (this.need === 0) this.message();
        }
        continue;
      }
      const n = Math.min(this.need, chunk.length - at);
      at += n;
      this.need -= n;
      if (this.need === 0) this.message();
    }
  }

  private message(): void {
    this.need = -1;
    this.messages++;
    this.wake();
  }

  /** Resolves once `n` answer messages came, the answer ended or failed, or nothing came for `idleMs`. */
  turn(n: number, idleMs: number): Promise<void> {
    if (this.messages >= n || this.ended || this.failed) return Promise.resolve();
    return new Promise((resolve) => {
      const w = { n, wake: resolve };
      this.waiters.push(w);
      const check = (): void => {
        if (!this.waiters.includes(w)) return;
        if (Date.now() - this.activity >= idleMs) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          resolve();
        } else setTimeout(check, Math.max(10, idleMs - (Date.now() - this.activity))).unref();
      };
      setTimeout(check, idleMs).unref();
    });
  }

  wake(): void {
    if (this.waiters.length === 0) return;
    const done = this.ended || this.failed !== undefined;
    this.waiters = this.waiters.filter((w) => {
      if (done || this.messages >= w.n) {
        w.wake();
        return false;
      }
      return true;
    });
  }
}

/** A session to the build and what names it for the join. */
interface Session {
  s: http2.ClientHttp2Session;
  openedUs: number;
  port: number;
  streams: number;
  /** Why it can carry no more streams, once it cannot. */
  ended: string | undefined;
}

export class H2Client {
  private readonly sessions = new Set<Session>();
  private readonly flights = new Set<{ f: Flight; cancel: (why: string) => void }>();
  private readonly timer: NodeJS.Timeout;
  private closed: string | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly opts: H2Options,
  ) {
    this.timer = setInterval(() => this.sweep(), Math.min(1000, Math.max(20, opts.timeoutMs / 4)));
    this.timer.unref();
  }

  /** A session of its own (a recorded connection), opened on first use, reopened if the build ends it. */
  connection(tls: boolean, servername?: string): H2Connection {
    return new H2Connection(this, tls, servername);
  }

  /** @internal */
  open(tls: boolean, servername: string | undefined): Session {
    if (this.closed) throw new Error(this.closed);
    const authority = `${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
    const openedUs = nowUs();
    const s = tls
      ? http2.connect(`https://${authority}`, {
          rejectUnauthorized: false,
          ALPNProtocols: ['h2'],
          ...(servername && !/^[\d.:[\]]+$/.test(servername) ? { servername } : {}),
        })
      : http2.connect(`http://${authority}`);
    const sess: Session = { s, openedUs, port: 0, streams: 0, ended: undefined };
    const note = (): void => {
      sess.port ||= s.socket?.localPort ?? 0;
      // small frames (a message, then END_STREAM) must not wait for the peer's delayed ACK
      try {
        s.socket?.setNoDelay(true);
      } catch {
        /* not a TCP socket */
      }
    };
    s.once('connect', note);
    s.on('error', (e: Error) => {
      sess.ended ??= `the connection failed: ${e.message}`;
    });
    s.on('goaway', (code: number) => {
      sess.ended ??= `the build sent GOAWAY (code ${code})`;
    });
    s.once('close', () => {
      sess.ended ??= 'the build closed the connection';
      this.sessions.delete(sess);
    });
    this.sessions.add(sess);
    return sess;
  }

  /** @internal Sends one request on `sess` and resolves with its answer. */
  stream(
    sess: Session,
    req: H2Request,
    plan: H2Plan,
    where: SocketUse,
    signal: AbortSignal | undefined,
  ): Promise<H2Answer> {
    const authority = `${this.host}:${this.port}`;
    const headers = h2Headers(req, plan, authority);
    const grpcPlan = plan.messages;
    const frames = grpcPlan ? grpcFrames(req.body) : undefined;
    // a body that does not cut into the recorded messages goes out as one piece
    const byMessage = frames !== undefined && frames.rest === 0 && frames.frames.length === grpcPlan!.length;
    const flight = new Flight(grpcPlan !== undefined);
    const seq = sess.streams++;
    const sentUs = nowUs();
    const startMs = performance.now();
    const opts = this.opts;
    const oneShot = !byMessage && plan.halfClose !== false;
    // a turn the build does not take (fewer answers than recorded) is given up after this long:
    // the message goes out anyway, and the missing answers show in the comparison
    const turnMs = Math.min(opts.timeoutMs, TURN_MS);
    const grpc = isGrpc(req.headers);
    const deadlineMs = grpc ? grpcTimeoutMs(req.headers) : undefined;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = sess.s.request(headers, { endStream: oneShot && req.body.length === 0 });
    } catch (e) {
      return Promise.reject(e);
    }
    const tell = (): void => {
      sess.port ||= sess.s.socket?.localPort ?? 0;
      where.port = sess.port;
      where.openedUs = sess.openedUs;
      where.seq = seq;
      where.sentUs = sentUs;
      if (stream.id !== undefined) where.stream = stream.id;
    };
    stream.once('ready', tell);
    return new Promise<H2Answer>((resolve, reject) => {
      let settled = false;
      // the stream was ended from this side (a cancel, the recorded client's reset)
      let ours = false;
      const entry = {
        f: flight,
        cancel: (why: string) => {
          ours = true;
          flight.failed ??= why;
          flight.wake();
          if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        },
      };
      this.flights.add(entry);
      const onAbort = (): void => entry.cancel('replay interrupted');
      signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (): void => {
        if (settled) return;
        settled = true;
        this.flights.delete(entry);
        signal?.removeEventListener('abort', onAbort);
        tell();
        // an answer that came whole (its trailers, or its end) stands, whatever error followed it
        const whole = flight.ended || flight.trailers !== undefined;
        if (flight.status === 0 || (flight.failed && !whole)) {
          const code = stream.rstCode;
          const elapsedMs = performance.now() - startMs;
          if (
            grpc &&
            !ours &&
            code === http2.constants.NGHTTP2_CANCEL &&
            deadlineMs !== undefined &&
            elapsedMs >= deadlineMs
          ) {
            // what a gRPC client reports here: grpc-go's client, too, turns a CANCEL reset that
            // comes once its deadline has passed into DEADLINE_EXCEEDED
            const deadline = `the build reset the stream (CANCEL) ${Math.round(elapsedMs)} ms after the request, past its grpc-timeout of ${deadlineMs} ms: DEADLINE_EXCEEDED`;
            resolve({
              status: 200,
              headers: flight.status === 200 ? flight.headers : [['content-type', 'application/grpc']],
              body: flight.status === 200 ? Buffer.concat(flight.chunks) : Buffer.alloc(0),
              trailers: [['grpc-status', '4']],
              deadline,
            });
            return;
          }
          reject(
            new Error(
              flight.failed ??
                (code !== undefined && code !== 0
                  ? `the build reset the stream (HTTP/2 error code ${code})`
                  : (sess.ended ?? 'the stream closed before an answer')),
            ),
          );
          return;
        }
        const body = flight.chunks.length === 1 ? flight.chunks[0]! : Buffer.concat(flight.chunks);
        resolve({
          status: flight.status,
          headers: flight.headers,
          body,
          ...(flight.trailers ? { trailers: flight.trailers } : {}),
        });
      };
      stream.on('response', (_h: unknown, _f: number, raw: string[]) => {
        flight.activity = Date.now();
        const st = (_h as Record<string, unknown>)[':status'];
        flight.status = Number(st) || 0;
        flight.headers = pairs(raw);
      });
      stream.on('data', (chunk: Buffer) => {
        if (flight.size + chunk.length > opts.maxBody) {
          entry.cancel(`answer over the ${opts.maxBody >> 20} MiB the driver keeps`);
          return;
        }
        flight.data(chunk);
      });
      stream.on('trailers', (_h: unknown, _f: number, raw: string[]) => {
        flight.activity = Date.now();
        flight.trailers = pairs(raw);
      });
      stream.on('end', () => {
        flight.ended = true;
        flight.wake();
        // the build ended the call while the recorded client still had its side open: close ours
        if (!stream.destroyed && !stream.writableEnded) stream.close(http2.constants.NGHTTP2_NO_ERROR);
      });
      stream.on('error', (e: Error) => {
        flight.failed ??= e.message || String(e);
        flight.wake();
      });
      stream.on('close', finish);
      const reset = plan.reset;
      if (reset) {
        void (async () => {
          await flight.turn(reset.after, turnMs);
          await sleep(startMs + reset.atNs / 1e6 / (opts.speed ?? 1) - performance.now());
          if (!stream.destroyed && !flight.ended) {
            ours = true;
            flight.failed ??= `reset by the client as recorded (HTTP/2 error code ${reset.code})`;
            stream.close(reset.code);
          }
        })();
      }
      if (oneShot) {
        if (req.body.length) stream.end(req.body);
        return;
      }
      // gRPC message by message, each in its recorded turn; then the recorded half-close
      void (async () => {
        const pace = (atNs: number | undefined): Promise<void> =>
          opts.speed && atNs !== undefined
            ? sleep(startMs + atNs / 1e6 / opts.speed - performance.now())
            : Promise.resolve();
        const list = byMessage ? frames!.frames : [];
        for (let k = 0; k < list.length; k++) {
          const m = grpcPlan![k]!;
          await flight.turn(m.after, turnMs);
          await pace(m.atNs);
          if (stream.destroyed || flight.failed) return;
          if (flight.ended) return; // the build ended the call: what it did not wait for is not sent
          const f = list[k]!;
          const end = f.offset + 5 + f.bytes.length;
          const piece = req.body.subarray(f.offset, end);
          const hc = plan.halfClose;
          if (
            k === list.length - 1 &&
            hc !== false &&
            (hc?.after ?? 0) <= flight.messages &&
            !(opts.speed && hc?.atNs !== undefined)
          ) {
            // the last message and the half-close in one go (one DATA frame with END_STREAM)
            stream.end(piece);
            return;
          }
          if (!stream.write(piece)) await new Promise<void>((r) => stream.once('drain', r));
        }
        if (!byMessage && req.body.length && !stream.destroyed) stream.write(req.body);
        const hc = plan.halfClose;
        if (hc === false) return;
        await flight.turn(hc?.after ?? 0, turnMs);
        await pace(hc?.atNs);
        if (!stream.destroyed && !stream.writableEnded && !flight.ended) stream.end();
      })().catch((e: unknown) => entry.cancel((e as Error).message));
    });
  }

  close(): Promise<void> {
    this.closed ??= 'the replay client is closed';
    clearInterval(this.timer);
    for (const fl of [...this.flights]) fl.cancel(this.closed);
    const all = [...this.sessions].map(
      (sess) =>
        new Promise<void>((r) => {
          if (sess.s.closed || sess.s.destroyed) return r();
          const t = setTimeout(() => {
            sess.s.destroy();
            r();
          }, 1000);
          t.unref();
          sess.s.close(() => {
            clearTimeout(t);
            r();
          });
        }),
    );
    return Promise.all(all).then(() => undefined);
  }

  private sweep(): void {
    const now = Date.now();
    for (const fl of [...this.flights]) {
      if (now - fl.f.activity >= this.opts.timeoutMs)
        fl.cancel(`no answer from the build for ${this.opts.timeoutMs} ms (--timeout)`);
    }
  }
}

/**
 * A session of its own (one recorded connection): its streams go out on it, as many at once as
 * the driver starts; when the build has ended it (GOAWAY, close), the next stream opens a new one
 * and `reopened` says why.
 */
export class H2Connection {
  private sess: Session | undefined;
  /** Set by the last request() that needed a new session: why the previous one could not carry it. */
  reopened: string | undefined;

  constructor(
    private readonly client: H2Client,
    private readonly tls: boolean,
    private readonly servername: string | undefined,
  ) {}

  request(req: H2Request, plan: H2Plan, where: SocketUse, signal?: AbortSignal): Promise<H2Answer> {
    this.reopened = undefined;
    let sess = this.sess;
    if (sess && (sess.ended || sess.s.closed || sess.s.destroyed)) {
      this.reopened = sess.ended ?? 'the build closed the connection';
      this.sess = sess = undefined;
    }
    try {
      sess ??= this.sess = this.client.open(this.tls, this.servername);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.client.stream(sess, req, plan, where, signal);
  }

  /** Close the session once its streams are done (as recorded, after its last stream). */
  close(): void {
    const s = this.sess?.s;
    this.sess = undefined;
    if (s && !s.closed && !s.destroyed) s.close();
  }
}
