/**
 * The replay driver's HTTP/1.1 client for plain-HTTP origins: keep-alive connections to one host,
 * one request in flight per connection, each request written in a single syscall exactly as
 * prepared (header order, name case and duplicates kept), answers parsed straight off the socket.
 *
 * Why not undici here: replay sends many small requests and keeps every answer; undici's
 * per-request machinery cost ~28 µs of the driver's CPU per request on the reference box (profile
 * in docs/performance.md), which put the driver at a third of wrk. This client does the same work
 * in a fraction of that; undici stays available (`--client undici`) and serves TLS origins.
 *
 * Framing follows RFC 9112 §6.3: HEAD, 1xx, 204 and 304 answers have no body; chunked transfer
 * coding; Content-Length; otherwise the body runs to connection close. Interim 1xx answers are
 * skipped; 101 (protocol switch) is an error. Retries are off: a failure is a result.
 *
 * Two ways to use connections: `H1Pool.request` shares keep-alive connections (pooled replay);
 * `H1Pool.connection()` hands out one connection of its own that carries exactly the requests
 * given to it, in turn (recorded replay). Either way each request reports the socket it went out
 * on (`SocketUse`): the captured answer is joined to it by that, nothing is added to the request.
 */
import net from 'node:net';
import {
  finalCoding,
  hasToken,
  isToken,
  parseContentLength,
  parseHeaderLines,
  parseStatusLine,
  trimOws,
} from '../core/http1.js';
import type { HeaderList } from '../core/exchange.js';
import type { SocketUse } from '../core/results.js';

export interface H1Request {
  method: string;
  target: string;
  /**
   * Sent in this order, names as given; Transfer-Encoding already removed. A Content-Length here
   * keeps its place and gets the body's length as its value; without one it is added last.
   */
  headers: HeaderList;
  /** Sent with Content-Length when non-empty or when the method is not GET/HEAD. */
  body: Uint8Array;
  /** Request line version: `HTTP/1.1` (default) or `HTTP/1.0`. */
  version?: string | undefined;
}

/** Wall clock in µs since epoch, sub-millisecond. */
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

const SLAB_BYTES = 1 << 20;
const READ_BYTES = 64 << 10;
const OWN_BYTES = 64 << 10;

/**
 * Where answers' bytes are kept: packed into shared 1 MiB slabs (regions over 64 KiB get their own
 * buffer). A replay keeps every answer until the results are written; as JS strings and per-answer
 * buffers they were what the garbage collector spent the driver's time on. Here each answer is one
 * small object pointing into a slab, and the socket's read buffers die young.
 */
class Arena {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private at = 0;
  /** Where the last reserve() put its bytes. */
  buf: Buffer = this.slab;
  start = 0;

  reserve(n: number): void {
    if (n > OWN_BYTES) {
      this.buf = Buffer.allocUnsafeSlow(n);
      this.start = 0;
      return;
    }
    if (this.at + n > SLAB_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.at = 0;
    }
    this.buf = this.slab;
    this.start = this.at;
    this.at += n;
  }
}

const NO_BYTES = Buffer.alloc(0);

/** One answer; its head and body are decoded from the arena when asked for. */
export class H1Answer {
  private list: HeaderList | undefined;
  private view: Buffer | undefined;

  constructor(
    readonly status: number,
    private readonly hbuf: Buffer,
    private readonly hat: number,
    private readonly hlen: number,
    private readonly bbuf: Buffer,
    private readonly bat: number,
    private readonly blen: number,
  ) {}

  /** Status line and header lines as received (latin1), without the final blank line. */
  get head(): string {
    return this.hbuf.toString('latin1', this.hat, this.hat + this.hlen);
  }

  get body(): Uint8Array {
    this.view ??= this.bbuf.subarray(this.bat, this.bat + this.blen);
    return this.view;
  }

  /** Names lower-cased, values trimmed, order and duplicates kept; folded lines joined. */
  get headers(): HeaderList {
    this.list ??= headerLines(this.head);
    return this.list;
  }
}

/**
 * Header names and short values repeat from answer to answer (`content-type: text/html`, the
 * server's name, the same Date within a second). A replay keeps every answer, so the split lists
 * share one string per distinct text instead of holding copies. Bounded: cleared when full.
 */
const interned = new Map<string, string>();
const INTERN_MAX = 8192;

function intern(text: string, lower: boolean): string {
  const key = lower ? `\0${text}` : text;
  let hit = interned.get(key);
  if (hit === undefined) {
    if (interned.size >= INTERN_MAX) interned.clear();
    hit = lower ? text.toLowerCase() : text;
    interned.set(key, hit);
  }
  return hit;
}

/**
 * The answer's header list: names lower-cased (as undici gives them), values without surrounding
 * SP/HTAB, folded lines joined — the HTTP/1 field parser of core/http1.ts that capture makes snapshots with.
 */
export function headerLines(head: string): HeaderList {
  const out: HeaderList = [];
  const eol = head.indexOf('\n');
  if (eol < 0) return out;
  parseHeaderLines(head, eol + 1, { obsFold: false }, out);
  for (const h of out) {
    h[0] = intern(h[0], true);
    if (h[1].length <= 64) h[1] = intern(h[1], false);
  }
  return out;
}

export interface H1PoolOptions {
  /** Most connections open at once; requests beyond wait for a free one. */
  connections: number;
  /** A request fails when its connection makes no progress (connect, answer bytes) this long. */
  timeoutMs: number;
  /** Largest answer body kept; a larger one fails its request. */
  maxBody: number;
  /** Largest answer head (status line + headers). Default 64 KiB. */
  maxHeadBytes?: number;
  /** Idle connections are closed after this long (a server's `Keep-Alive: timeout` hint, less 1 s, wins when shorter). Default 4 s. */
  idleMs?: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LF = 0x0a;
const BAD_TARGET = /[\x00-\x20\x7f\u0100-\uffff]/;
const BAD_VALUE = /[\r\n\0\u0100-\uffff]/;
/** CR not before LF, or LF not after CR: line ends HTTP/1.1 does not allow in a head. */
const BARE_CR_LF = /\r(?!\n)|(?<!\r)\n/;

// parser phases
const HEAD = 0;
const LENGTH = 1;
const CHUNKED = 2;
const UNTIL_CLOSE = 3;
// chunked sub-states
const C_SIZE = 0;
const C_DATA = 1;
const C_DATA_END = 2;
const C_TRAILER = 3;

interface Pending {
  wire: string;
  body: Uint8Array | undefined;
  isHead: boolean;
  isConnect: boolean;
  /** The request itself ends its connection (`Connection: close`, HTTP/1.0 without keep-alive). */
  closes: boolean;
  /** Filled with the socket it went out on when it settles (if it was sent). */
  where: SocketUse | undefined;
  conn: Conn | undefined;
  seq: number;
  sentUs: number;
  resolve(a: H1Answer): void;
  reject(e: Error): void;
}

/** Whether a request's own headers end its connection after the answer. */
function requestCloses(req: H1Request): boolean {
  let close = false;
  let keepAlive = false;
  for (const [name, value] of req.headers) {
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      close ||= hasToken(value, 'close');
      keepAlive ||= hasToken(value, 'keep-alive');
    }
  }
  return close || (req.version === 'HTTP/1.0' && !keepAlive);
}

/**
 * Serialise one request exactly as given (nothing added but Host when it has none, and
 * Content-Length for a body); throws with what is wrong and what to do for input HTTP/1.1 cannot
 * carry.
 */
export function serialise(req: H1Request, authority: string): string {
  const what = `request ${req.method} ${req.target}`;
  if (!isToken(req.method)) throw new Error(`${what}: the method is not an HTTP token`);
  if (!req.target || BAD_TARGET.test(req.target))
    throw new Error(
      `${what}: the target is empty or has spaces, control characters or characters beyond latin1 (send them percent-encoded); fix it with a transform rule`,
    );
  const version = req.version ?? 'HTTP/1.1';
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0')
    throw new Error(`${what}: version ${version} cannot be sent over HTTP/1 (HTTP/1.0 or HTTP/1.1)`);
  let wire = `${req.method} ${req.target} ${version}\r\n`;
  let host = false;
  let length = false;
  for (const [name, value] of req.headers) {
    if (!isToken(name)) throw new Error(`${what}: header name ${JSON.stringify(name)} is not an HTTP token`);
    if (BAD_VALUE.test(value))
      throw new Error(
        `${what}: header ${name} has CR, LF, NUL or a character beyond latin1 in its value (HTTP/1.1 sends bytes); fix it with a transform rule`,
      );
    if (!host && name.length === 4 && name.toLowerCase() === 'host') host = true;
    else if (name.length === 14 && name.toLowerCase() === 'content-length') {
      // a recorded Content-Length stays where it was, saying the length of the body sent now
      if (!length) wire += `${name}: ${req.body.length}\r\n`;
      length = true;
      continue;
    }
    wire += `${name}: ${value}\r\n`;
  }
  if (!host) wire += `host: ${authority}\r\n`;
  if (!length && (req.body.length || (req.method !== 'GET' && req.method !== 'HEAD')))
    wire += `content-length: ${req.body.length}\r\n`;
  return `${wire}\r\n`;
}

class Conn {
  readonly sock: net.Socket;
  /** µs since epoch when the socket was asked for (with the local port, names this connection). */
  readonly openedUs = nowUs();
  /** Requests written so far. */
  sent = 0;
  dead = false;
  /** Reusable after the current answer. */
  keep = true;
  /** Why it cannot carry another request, once it cannot (for the replay's warnings). */
  endReason: string | undefined;
  idleLimit: number;
  /** ms clock of the last progress (request written, bytes read) or of going idle */
  activity = 0;
  cur: Pending | undefined;
  private phase = HEAD;
  private headBuf: Buffer | undefined;
  private remaining = 0;
  private first: Buffer | undefined;
  private more: Buffer[] | undefined;
  private hbuf: Buffer = NO_BYTES;
  private hat = 0;
  private hlen = 0;
  /** A Content-Length body is copied straight into its arena region. */
  private bbuf: Buffer | undefined;
  private bat = 0;
  private size = 0;
  private status = 0;
  private cstate = C_SIZE;
  private line = '';
  private answered = false;

  constructor(
    private readonly pool: H1Pool,
    port: number,
    host: string,
    /** Owned by one H1Connection: never shared, never closed for idling. */
    readonly dedicated = false,
  ) {
    this.idleLimit = pool.idleMs;
    // Reads land in one buffer per connection (no stream machinery, no allocation per read);
    // whatever is kept is copied out of it before the callback returns.
    this.sock = net.connect({
      port,
      host,
      noDelay: true,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BYTES),
        callback: (n: number, buf: Uint8Array): boolean => {
          this.onData(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true;
        },
      },
    });
    // a request written before the connection is up: its port is known from here
    this.sock.once('connect', () => {
      const w = this.cur?.where;
      if (w && !w.port) w.port = this.sock.localPort ?? 0;
    });
    this.sock.on('end', () => this.onEnd());
    this.sock.on('error', (e: Error) => this.fail(e.message || String(e)));
    this.sock.on('close', () => this.fail('the connection closed before the answer was complete'));
  }

  send(p: Pending): void {
    this.cur = p;
    p.conn = this;
    p.seq = this.sent++;
    p.sentUs = nowUs();
    this.activity = Date.now();
    this.phase = HEAD;
    this.headBuf = undefined;
    this.first = undefined;
    this.more = undefined;
    this.bbuf = undefined;
    this.size = 0;
    this.answered = false;
    // the port is known from now on (the replay's mocks ask which request a call is for)
    if (p.where) p.where.port = this.sock.localPort ?? 0;
    if (p.body?.length) {
      this.sock.cork();
      this.sock.write(p.wire, 'latin1');
      this.sock.write(p.body);
      this.sock.uncork();
    } else this.sock.write(p.wire, 'latin1');
  }

  /** Fail the request in flight (if any) and drop the connection. */
  fail(message: string): void {
    const p = this.cur;
    this.cur = undefined;
    if (!this.dead) {
      this.endReason ??= message;
      this.dead = true;
      this.sock.destroy();
      this.pool.forget(this);
    }
    if (p) {
      this.tell(p);
      p.reject(new Error(message));
    }
  }

  /** Fills in where `p` went out (the local port is known once connected). */
  tell(p: Pending): void {
    const w = p.where;
    if (!w) return;
    w.port = this.sock.localPort ?? 0;
    w.openedUs = this.openedUs;
    w.seq = p.seq;
    w.sentUs = p.sentUs;
  }

  /** Not to be reused after this answer, and why. */
  noReuse(reason: string): void {
    this.keep = false;
    this.endReason ??= reason;
  }

  close(): void {
    this.endReason ??= 'closed by the driver';
    if (this.dead) return;
    this.dead = true;
    this.sock.destroy();
    this.pool.forget(this);
  }

  private onEnd(): void {
    if (this.cur && this.phase === UNTIL_CLOSE) {
      this.noReuse('the answer ran to the end of the connection');
      this.finish();
      this.pool.release(this);
    } else
      this.fail(
        this.cur
          ? 'the build closed the connection before the answer was complete'
          : 'the build closed the connection',
      );
  }

  private onData(d: Buffer): void {
    if (!this.cur) {
      // bytes nobody asked for: the connection's framing can no longer be trusted
      this.fail('unexpected bytes from the build between answers');
      return;
    }
    this.activity = Date.now();
    let off = 0;
    try {
      while (off < d.length && !this.answered) {
        if (this.phase === HEAD) off = this.readHead(d, off);
        else if (this.phase === LENGTH) {
          const n = Math.min(this.remaining, d.length - off);
          d.copy(this.bbuf!, this.bat + this.size, off, off + n);
          this.size += n;
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finish();
        } else if (this.phase === CHUNKED) off = this.readChunked(d, off);
        else {
          this.push(d.subarray(off));
          off = d.length;
        }
      }
    } catch (e) {
      this.fail((e as Error).message);
      return;
    }
    if (!this.answered) return;
    // more bytes after a complete answer: never reuse this connection
    if (off < d.length) this.noReuse('the build sent more bytes than its answer');
    this.pool.release(this);
  }

  private readHead(d: Buffer, off: number): number {
    const prev = this.headBuf;
    const buf = prev ? Buffer.concat([prev, d.subarray(off)]) : off ? d.subarray(off) : d;
    // (`d` is the connection's read buffer: a partial head is copied before it is kept)
    const from = prev ? Math.max(0, prev.length - 3) : 0;
    const end = buf.indexOf(CRLFCRLF, from);
    const max = this.pool.maxHeadBytes;
    if (end < 0) {
      if (buf.length > max) throw new Error(`the answer's head is over ${max} bytes`);
      this.headBuf = prev ? buf : Buffer.from(buf);
      return d.length;
    }
    if (end > max) throw new Error(`the answer's head is over ${max} bytes`);
    this.headBuf = undefined;
    return off + end + 4 - (prev ? prev.length : 0) + this.parseHead(buf, end);
  }

  /** Copies the head's bytes into the arena. */
  private keepHead(buf: Buffer, end: number): void {
    const arena = this.pool.arena;
    arena.reserve(end);
    buf.copy(arena.buf, arena.start, 0, end);
    this.hbuf = arena.buf;
    this.hat = arena.start;
  }

  /** Returns how many body bytes after the head it took from `buf` (the whole body, when it is there). */
  private parseHead(buf: Buffer, end: number): number {
    // The load only needs the framing facts, so this scan looks at nothing else and allocates
    // little; the grammar's parseHead (core/http1.ts) builds the whole header list and cost the
    // driver about 12% of its throughput here. The rules (Content-Length lists, final coding,
    // connection tokens) are that grammar's helpers, shared with capture. What is kept is the
    // bytes (copied below).
    const text = buf.toString('latin1', 0, end);
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const sl = parseStatusLine(text.slice(0, eol));
    if (!sl || (sl[0] !== 'HTTP/1.1' && sl[0] !== 'HTTP/1.0'))
      throw new Error(
        `not a valid HTTP/1.x answer head: ${JSON.stringify(text.slice(0, Math.min(eol, 80)))}`,
      );
    if (BARE_CR_LF.test(text))
      throw new Error('the answer has a bare CR or LF in its head (lines must end with CRLF)');
    const http10 = sl[0] === 'HTTP/1.0';
    const status = sl[1];
    let coding: 'chunked' | 'other' | '' = '';
    let cl = -1;
    let close = false;
    let keepAlive = false;
    let hint: string | undefined;
    for (let at = eol + 2; at < text.length; ) {
      let end = text.indexOf('\r\n', at);
      if (end < 0) end = text.length;
      const c0 = text.charCodeAt(at);
      if (c0 !== 0x20 && c0 !== 0x09) {
        const colon = text.indexOf(':', at);
        if (colon <= at || colon > end)
          throw new Error(
            `malformed header line in the answer: ${JSON.stringify(text.slice(at, Math.min(end, at + 80)))}`,
          );
        const len = colon - at;
        if (len === 14 || len === 17 || len === 10) {
          const name = text.slice(at, colon).toLowerCase();
          if (name === 'content-length') cl = parseContentLength(trimOws(text.slice(colon + 1, end)), cl);
          else if (name === 'transfer-encoding') {
            const c = finalCoding(text.slice(colon + 1, end));
            if (c) coding = c;
          } else if (name === 'connection') {
            const v = text.slice(colon + 1, end);
            close ||= hasToken(v, 'close');
            keepAlive ||= hasToken(v, 'keep-alive');
          } else if (name === 'keep-alive') hint = text.slice(colon + 1, end);
        }
      } else if (at === eol + 2) throw new Error('the answer starts its headers with a continuation line');
      at = end + 2;
    }
    if (status < 200) {
      if (status === 101) throw new Error('the build switched protocols (101); replay speaks HTTP/1.1 only');
      return 0; // interim answer (100 Continue, 103 Early Hints): the real one follows
    }
    if (cl === -2) throw new Error("the answer's Content-Length is invalid or repeated with other values");
    if (close) this.noReuse('the build answered "Connection: close"');
    else if (http10 && !keepAlive) this.noReuse('the build answered HTTP/1.0 without keep-alive');
    else this.keep = true;
    if (this.cur!.closes) this.noReuse('the request asked to close the connection');
    if (hint) {
      const t = /timeout\s*=\s*(\d+)/i.exec(hint);
      if (t) this.idleLimit = Math.min(this.pool.idleMs, Math.max(0, Number(t[1]) * 1000 - 1000));
    }
    this.status = status;
    this.hlen = end;
    const arena = this.pool.arena;
    const tunnel = this.cur!.isConnect && status < 300;
    if (this.cur!.isHead || tunnel || status === 204 || status === 304) {
      // some servers send a body after a HEAD answer anyway, so a shared connection is not
      // reused after one (a dedicated one carries on as the recording did: stray bytes would
      // fail it, never pass unseen); a CONNECT that succeeded is a tunnel now
      if (tunnel) this.noReuse('the build opened a tunnel (CONNECT)');
      else if (this.cur!.isHead && !this.dedicated) this.noReuse('a HEAD answer (not reused in a pool)');
      this.keepHead(buf, end);
      this.finish();
      return 0;
    }
    if (coding) {
      // HTTP/1.0 with Transfer-Encoding, or Transfer-Encoding with Content-Length: framing that
      // cannot be trusted past this answer (RFC 9112 §6.1, §6.3)
      if (http10 || cl !== -1) this.noReuse("the answer's framing cannot be trusted past it");
      if (coding === 'chunked') {
        this.phase = CHUNKED;
        this.cstate = C_SIZE;
        this.line = '';
      } else {
        this.phase = UNTIL_CLOSE;
        this.noReuse('the answer ran to the end of the connection');
      }
      this.keepHead(buf, end);
      return 0;
    }
    if (cl >= 0) {
      const n = cl;
      if (n > this.pool.maxBody) throw this.tooBig();
      const whole = end + 4 + n;
      if (n > 0 && buf.length >= whole && whole <= OWN_BYTES) {
        // the common case: head and body arrived together; one copy keeps both
        arena.reserve(whole);
        buf.copy(arena.buf, arena.start, 0, whole);
        this.hbuf = this.bbuf = arena.buf;
        this.hat = arena.start;
        this.bat = arena.start + end + 4;
        this.size = n;
        this.finish();
        return n;
      }
      this.keepHead(buf, end);
      if (n === 0) this.finish();
      else {
        this.phase = LENGTH;
        this.remaining = n;
        arena.reserve(n);
        this.bbuf = arena.buf;
        this.bat = arena.start;
      }
      return 0;
    }
    this.phase = UNTIL_CLOSE;
    this.noReuse('the answer ran to the end of the connection');
    this.keepHead(buf, end);
    return 0;
  }

  /** Reads one line of chunk framing into `this.line`; returns the offset after it, or -1 when the line is not complete yet. */
  private readLine(d: Buffer, off: number): number {
    const lf = d.indexOf(LF, off);
    if (lf < 0) {
      this.line += d.toString('latin1', off, d.length);
      if (this.line.length > 8192)
        throw new Error('a chunk-size or trailer line of the answer is over 8 KiB');
      return -1;
    }
    this.line += d.toString('latin1', off, lf);
    if (this.line.endsWith('\r')) this.line = this.line.slice(0, -1);
    return lf + 1;
  }

  private readChunked(d: Buffer, start: number): number {
    let off = start;
    while (off < d.length) {
      if (this.cstate === C_DATA) {
        const n = Math.min(this.remaining, d.length - off);
        this.push(d.subarray(off, off + n));
        off += n;
        this.remaining -= n;
        if (this.remaining === 0) this.cstate = C_DATA_END;
        continue;
      }
      const next = this.readLine(d, off);
      if (next < 0) return d.length;
      off = next;
      const line = this.line;
      this.line = '';
      if (this.cstate === C_SIZE) {
        const semi = line.indexOf(';');
        const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex))
          throw new Error(`invalid chunk size in the answer: ${JSON.stringify(line.slice(0, 40))}`);
        const n = Number.parseInt(hex, 16);
        if (n === 0) this.cstate = C_TRAILER;
        else {
          if (this.size + n > this.pool.maxBody) throw this.tooBig();
          this.remaining = n;
          this.cstate = C_DATA;
        }
      } else if (this.cstate === C_DATA_END) {
        if (line !== '') throw new Error('a chunk of the answer is longer than its size says');
        this.cstate = C_SIZE;
      } else if (line === '') {
        // end of trailers (their content is not kept, as with undici)
        this.finish();
        return off;
      }
    }
    return off;
  }

  private tooBig(): Error {
    return new Error(`answer over the ${this.pool.maxBody >> 20} MiB the driver keeps`);
  }

  /** Keeps a copy of `view` (a piece of the read buffer) until the answer is complete. */
  private push(view: Buffer): void {
    this.size += view.length;
    if (this.size > this.pool.maxBody) throw this.tooBig();
    const chunk = Buffer.from(view);
    if (!this.first) this.first = chunk;
    else (this.more ??= [this.first]).push(chunk);
  }

  private finish(): void {
    const p = this.cur!;
    this.cur = undefined;
    this.answered = true;
    this.phase = HEAD;
    let bbuf = this.bbuf;
    let bat = this.bat;
    if (!bbuf && this.first) {
      // chunked or close-delimited: gather the pieces into one region
      const arena = this.pool.arena;
      arena.reserve(this.size);
      bbuf = arena.buf;
      bat = arena.start;
      let at = bat;
      for (const c of this.more ?? [this.first]) at += c.copy(bbuf, at);
    }
    this.first = undefined;
    this.more = undefined;
    this.bbuf = undefined;
    this.tell(p);
    p.resolve(
      new H1Answer(this.status, this.hbuf, this.hat, this.hlen, bbuf ?? NO_BYTES, bat, bbuf ? this.size : 0),
    );
  }
}

export class H1Pool {
  readonly maxBody: number;
  readonly maxHeadBytes: number;
  readonly idleMs: number;
  readonly arena = new Arena();
  private readonly idle: Conn[] = [];
  /** Every live connection, shared or dedicated (timeouts, abort). */
  private readonly open = new Set<Conn>();
  /** How many of `open` are dedicated (they do not count against `connections`). */
  private dedicated = 0;
  private readonly queue: Pending[] = [];
  private readonly timer: NodeJS.Timeout;
  private closed: string | undefined;
  private readonly authority: string;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly opts: H1PoolOptions,
  ) {
    this.maxBody = opts.maxBody;
    this.maxHeadBytes = opts.maxHeadBytes ?? 64 << 10;
    this.idleMs = opts.idleMs ?? 4000;
    this.authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.timer = setInterval(() => this.sweep(), Math.min(1000, Math.max(20, opts.timeoutMs / 4)));
    this.timer.unref();
  }

  /**
   * Send `req` on a shared keep-alive connection and resolve with the answer; `where` (if given)
   * is filled with the socket it went out on once it settles.
   */
  request(req: H1Request, where?: SocketUse): Promise<H1Answer> {
    return this.submit(req, where, undefined);
  }

  /** A connection of its own: see H1Connection. */
  connection(): H1Connection {
    return new H1Connection(this);
  }

  /** @internal Serialise, then send on `owner`'s connection (opened as needed) or through the pool. */
  submit(req: H1Request, where: SocketUse | undefined, owner: H1Connection | undefined): Promise<H1Answer> {
    if (this.closed) return Promise.reject(new Error(this.closed));
    let wire: string;
    try {
      wire = serialise(req, this.authority);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const p: Pending = {
        wire,
        body: req.body.length ? req.body : undefined,
        isHead: req.method === 'HEAD',
        isConnect: req.method === 'CONNECT',
        closes: requestCloses(req),
        where,
        conn: undefined,
        seq: -1,
        sentUs: 0,
        resolve,
        reject,
      };
      if (!owner) {
        this.dispatch(p);
        return;
      }
      let c = owner.conn;
      if (!c) {
        c = new Conn(this, this.port, this.host, true);
        this.open.add(c);
        this.dedicated++;
        owner.conn = c;
      } else if (c.cur) {
        reject(new Error('a dedicated connection carries one request at a time'));
        return;
      }
      c.send(p);
    });
  }

  /** Fail everything in flight and queued with `reason`; later requests fail at once. */
  abort(reason: string): void {
    this.closed ??= reason;
    for (const p of this.queue.splice(0)) p.reject(new Error(reason));
    for (const c of [...this.open]) c.fail(reason);
    clearInterval(this.timer);
  }

  async close(): Promise<void> {
    this.abort('the replay client is closed');
  }

  /** Called by a connection whose answer is complete. */
  release(c: Conn): void {
    // an answer that came before the request was fully written (an early 413, say) leaves the
    // rest of the request on the wire: that connection cannot carry another one
    if (c.sock.writableLength > 0) c.noReuse('the build answered before the whole request was sent');
    if (!c.keep || c.dead || this.closed) {
      c.close();
      if (!c.dedicated) this.next();
      return;
    }
    if (c.dedicated) {
      c.activity = Date.now();
      return;
    }
    const p = this.queue.shift();
    if (p) c.send(p);
    else {
      c.activity = Date.now();
      this.idle.push(c);
    }
  }

  /** Called once by a connection that died. */
  forget(c: Conn): void {
    this.open.delete(c);
    if (c.dedicated) {
      this.dedicated--;
      return;
    }
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    this.next();
  }

  private next(): void {
    if (this.queue.length && !this.closed && this.open.size - this.dedicated < this.opts.connections)
      this.dispatch(this.queue.shift()!);
  }

  private dispatch(p: Pending): void {
    const now = Date.now();
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (c.dead) continue;
      if (now - c.activity >= c.idleLimit) {
        c.close();
        continue;
      }
      c.send(p);
      return;
    }
    if (this.open.size - this.dedicated < this.opts.connections) {
      const c = new Conn(this, this.port, this.host);
      this.open.add(c);
      c.send(p);
      return;
    }
    this.queue.push(p);
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of [...this.open]) {
      if (c.cur) {
        if (now - c.activity >= this.opts.timeoutMs)
          c.fail(`no answer from the build for ${this.opts.timeoutMs} ms (--timeout)`);
      } else if (!c.dedicated && now - c.activity >= c.idleLimit) c.close();
    }
  }
}

/**
 * One connection of its own (recorded replay): it carries exactly the requests given to it, one at
 * a time, in the order given, and is closed by its owner where the recording closed it. It is
 * never shared and never closed for being idle. When the build has closed it (or its last answer
 * did not allow another request), the next request goes out on a new socket and `reopened` says
 * why — the recording kept that connection open, so the run reports it.
 */
export class H1Connection {
  /** @internal */
  conn: Conn | undefined;
  /** Set by the last request() when it needed a new socket: why the previous one could not carry it. */
  reopened: string | undefined;

  constructor(private readonly pool: H1Pool) {}

  request(req: H1Request, where?: SocketUse): Promise<H1Answer> {
    this.reopened = undefined;
    const c = this.conn;
    if (c && (c.dead || !c.keep)) {
      this.reopened = c.endReason ?? 'the build closed the connection';
      c.close();
      this.conn = undefined;
    }
    return this.pool.submit(req, where, this);
  }

  /** Close the connection now (after its last request, as recorded). */
  close(): void {
    this.conn?.close();
    this.conn = undefined;
  }
}
