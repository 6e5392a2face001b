/**
 * HTTP/1.x stream decoder: one state machine per side (requests from the client, responses from
 * the server) and a FIFO of exchanges that pairs them (pipelining, keep-alive). Works on the
 * pushed bytes with indexOf; only header sections become strings (latin1, one per message).
 *
 * Framing follows RFC 9112 §6.3. Gaps keep framing inside length-known bodies and otherwise end
 * the message as truncated and resync on the next start line. Nothing here throws on input.
 */
import type { HeaderList, Request, Response } from '../../../core/exchange.js';
import { emptyBody, UNKNOWN_METHOD } from '../../../core/exchange.js';
import type { Budget, BodyAcc } from '../budget.js';
import {
  bodyAdd,
  bodyFinish,
  bodyLost,
  DEFAULT_MAX_BODY,
  DEFAULT_MAX_BUFFER,
  newBodyAcc,
  newBudget,
  overBudget,
  settle,
} from '../budget.js';
import { asBuffer, Carry } from '../bytes.js';
import { decodeContent } from '../content-encoding.js';
import type { DecodedExchange, DecoderOptions, DecoderSink, Side, StreamDecoder } from '../types.js';
import { type Head, parseHead, parseTrailers } from '../../../core/http1.js';
import { findHeadEnd, findMessageStart, type StartContext } from './scan.js';

const St = {
  Start: 0,
  Head: 1,
  BodyLength: 2,
  ChunkSize: 3,
  ChunkData: 4,
  ChunkCrlf: 5,
  Trailers: 6,
  BodyClose: 7,
  /** Request asked to switch protocols (Upgrade/CONNECT): hold bytes until the answer. */
  Wait: 8,
  Raw: 9,
  Resync: 10,
} as const;
type St = (typeof St)[keyof typeof St];

const MAX_HEAD = 1024 * 1024;
const MAX_CHUNK_LINE = 4096;
const MAX_QUEUE = 4096;
/** Interim (1xx) answers kept per exchange; a longer storm is counted, not kept. */
export const MAX_INTERIM = 32;

/** One request/response pair being assembled. */
interface Entry {
  method: string | undefined;
  request: Request | undefined;
  reqStart: number;
  reqEnd: number;
  reqDone: boolean;
  response: Response | undefined;
  respStart: number;
  respEnd: number;
  respDone: boolean;
  interim: Array<{ status: number; headers: HeaderList }> | undefined;
  /** Interim answers past MAX_INTERIM or the head limit (counted, not kept). */
  interimDropped: number;
  interimBytes: number;
  notes: string[];
  /** Why this exchange cannot be valid (its request head was never seen…): emitted quarantined. */
  quarantine: string | undefined;
  /** Switched protocols after this exchange (`websocket`, `h2c`, `tunnel`…). */
  upgrade: string | undefined;
  reqEncoding: string | undefined;
  respEncoding: string | undefined;
  held: number;
}

interface SideState {
  side: Side;
  kind: 'request' | 'response';
  st: St;
  carry: Carry;
  /** True while this side's bytes are being processed (its carry is in use). */
  feeding: boolean;
  /** The exchange whose answer decides an Upgrade/CONNECT switch (state Wait). */
  waitEntry: Entry | undefined;
  /** Header scan resume point, relative to the head's first byte. */
  scan: number;
  head: Head | undefined;
  body: BodyAcc;
  remaining: number;
  started: boolean;
  startTs: number;
  lastTs: number;
  notes: string[];
  entry: Entry | undefined;
  /** A gap happened where a message boundary was unknown: the next message gets `gap`. */
  gapBefore: boolean;
  /** Resync: what precedes the first carried byte. */
  ctx: StartContext;
  /** Resync after a gap in `Start`: if bytes must be skipped, a message was cut (placeholder). */
  placeholderIfSkip: boolean;
}

function newSide(side: Side): SideState {
  return {
    side,
    kind: side === 'client' ? 'request' : 'response',
    st: St.Start,
    carry: new Carry(),
    feeding: false,
    waitEntry: undefined,
    scan: 0,
    head: undefined,
    body: newBodyAcc(),
    remaining: 0,
    started: false,
    startTs: 0,
    lastTs: 0,
    notes: [],
    entry: undefined,
    gapBefore: false,
    ctx: 'line',
    placeholderIfSkip: false,
  };
}

function newEntry(): Entry {
  return {
    method: undefined,
    request: undefined,
    reqStart: 0,
    reqEnd: 0,
    reqDone: false,
    response: undefined,
    respStart: 0,
    respEnd: 0,
    respDone: false,
    interim: undefined,
    interimDropped: 0,
    interimBytes: 0,
    notes: [],
    quarantine: undefined,
    upgrade: undefined,
    reqEncoding: undefined,
    respEncoding: undefined,
    held: 0,
  };
}

/** Stands for a request whose head was never seen; its exchange is emitted quarantined. */
function placeholderRequest(): Request {
  return {
    method: UNKNOWN_METHOD,
    target: '',
    version: '',
    headers: [],
    body: { ...emptyBody(), truncated: true },
  };
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function addNote(notes: string[], note: string): void {
  if (!notes.includes(note)) notes.push(note);
}

export class Http1Decoder implements StreamDecoder {
  private readonly client = newSide('client');
  private readonly server = newSide('server');
  private readonly queue: Entry[] = [];
  private readonly budget: Budget;
  private readonly maxBody: number;
  private readonly headLimit: number;
  private closed = false;

  constructor(
    private readonly sink: DecoderSink,
    options: DecoderOptions = {},
  ) {
    const max = Math.max(1024, options.maxBufferBytes ?? DEFAULT_MAX_BUFFER);
    this.headLimit = Math.min(MAX_HEAD, Math.floor(max / 4));
    this.budget = newBudget(max, 2 * this.headLimit, options.pool);
    this.maxBody = Math.max(0, options.maxBodyBytes ?? DEFAULT_MAX_BODY);
  }

  /** Bytes this connection currently holds (bodies, queued messages, carried partial lines). */
  bufferedBytes(): number {
    return this.budget.held;
  }

  push(side: Side, data: Uint8Array, tsNs: number): void {
    if (this.closed || data.length === 0) return;
    const s = side === 'client' ? this.client : this.server;
    try {
      this.feed(s, asBuffer(data), tsNs);
    } catch (e) {
      // A bug must not take capture down: say so, drop this side's state and resync.
      this.recover(s, e);
    }
    settle(this.budget);
  }

  gap(side: Side, length: number, tsNs: number): void {
    if (this.closed || !(length > 0)) return;
    const s = side === 'client' ? this.client : this.server;
    try {
      this.onGap(s, length, tsNs);
    } catch (e) {
      this.recover(s, e);
    }
    settle(this.budget);
  }

  end(tsNs: number): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.finishSide(this.client, tsNs);
      this.finishSide(this.server, tsNs);
      while (this.queue.length > 0) this.emit(this.queue.shift()!, true);
    } catch (e) {
      this.sink.fault?.('client', describe(e));
    }
    this.client.carry.clear();
    this.server.carry.clear();
    this.budget.held = 0;
    settle(this.budget);
  }

  // ---- per-side byte processing -------------------------------------------------------------

  private feed(s: SideState, data: Buffer, ts: number): void {
    s.feeding = true;
    try {
      this.feedInner(s, data, ts);
    } finally {
      s.feeding = false;
    }
  }

  private feedInner(s: SideState, data: Buffer, ts: number): void {
    s.lastTs = ts;
    let buf = data;
    let pos = 0;
    const carried = s.carry.len;
    if (carried > 0) {
      s.carry.append(data);
      buf = s.carry.view();
    }
    let more = true;
    while (more && pos < buf.length) {
      switch (s.st) {
        case St.Start: {
          while (pos < buf.length && (buf[pos] === 13 || buf[pos] === 10)) pos++;
          if (pos >= buf.length) break;
          if (!s.started) {
            s.started = true;
            s.startTs = ts;
          }
          s.st = St.Head;
          s.scan = 0;
          break;
        }
        case St.Head: {
          const r = findHeadEnd(buf, pos + s.scan);
          // The head limit holds however the head arrived (in one read or many).
          const seen = r.resume === undefined ? r.after - pos : buf.length - pos;
          if (seen > this.headLimit) {
            this.headTooLong(s, seen, ts);
            pos += seen;
            break;
          }
          if (r.resume !== undefined) {
            s.scan = r.resume - pos;
            more = false;
            break;
          }
          const head = parseHead(buf.toString('latin1', pos, r.textEnd), s.kind);
          if (!head) {
            this.unparsable(s, pos, buf, ts);
            pos++;
            break;
          }
          const headBytes = r.after - pos;
          pos = r.after;
          this.onHead(s, head, headBytes, ts);
          break;
        }
        case St.BodyLength:
        case St.ChunkData: {
          const n = Math.min(s.remaining, buf.length - pos);
          if (bodyAdd(s.body, buf, pos, pos + n, this.maxBody, this.budget)) this.sink.cut?.(s.side, 'body');
          pos += n;
          s.remaining -= n;
          if (s.remaining === 0) {
            if (s.st === St.BodyLength) this.finishMessage(s, ts, undefined);
            else s.st = St.ChunkCrlf;
          }
          break;
        }
        case St.ChunkCrlf: {
          const c = buf[pos];
          if (c === 13) pos++;
          else if (c === 10) {
            pos++;
            s.st = St.ChunkSize;
          } else {
            this.framingError(s, ts);
          }
          break;
        }
        case St.ChunkSize: {
          const nl = buf.indexOf(10, pos);
          if (nl === -1) {
            if (buf.length - pos > MAX_CHUNK_LINE) {
              this.sink.cut?.(s.side, 'chunk-line');
              this.framingError(s, ts);
            } else more = false;
            break;
          }
          const size = parseChunkSize(buf, pos, nl);
          pos = nl + 1;
          if (size < 0) this.framingError(s, ts);
          else if (size === 0) {
            s.st = St.Trailers;
            s.scan = 0;
          } else {
            s.st = St.ChunkData;
            s.remaining = size;
          }
          break;
        }
        case St.Trailers: {
          // Empty trailer section: the line right after the last chunk is empty.
          if (s.scan === 0 && buf[pos] === 10) {
            this.finishMessage(s, ts, undefined);
            pos++;
            break;
          }
          if (s.scan === 0 && buf[pos] === 13) {
            if (pos + 1 >= buf.length) {
              more = false;
              break;
            }
            if (buf[pos + 1] === 10) {
              this.finishMessage(s, ts, undefined);
              pos += 2;
              break;
            }
          }
          const r = findHeadEnd(buf, pos + s.scan);
          if (r.resume !== undefined) {
            s.scan = Math.max(1, r.resume - pos);
            more = false;
            break;
          }
          const trailers = parseTrailers(buf.toString('latin1', pos, r.textEnd));
          pos = r.after;
          this.finishMessage(s, ts, trailers);
          break;
        }
        case St.BodyClose: {
          if (bodyAdd(s.body, buf, pos, buf.length, this.maxBody, this.budget)) this.sink.cut?.(s.side, 'body');
          pos = buf.length;
          s.lastTs = ts;
          break;
        }
        case St.Raw: {
          this.sink.raw?.(s.side, buf.length - pos, 'upgraded');
          pos = buf.length;
          break;
        }
        case St.Wait: {
          more = false;
          break;
        }
        case St.Resync: {
          const r = findMessageStart(buf, pos, s.kind, s.ctx);
          const skipTo = 'at' in r ? r.at : r.keep;
          if (skipTo > pos) {
            this.sink.raw?.(s.side, skipTo - pos, 'resync');
            if (s.placeholderIfSkip) this.placeholder(s, ts, 'gap');
            s.ctx = buf[skipTo - 1] === 10 ? 'line' : 'none';
            pos = skipTo;
          }
          if ('at' in r) {
            s.st = St.Start;
            s.ctx = 'line';
          } else more = false;
          break;
        }
      }
    }
    // Keep what is left (a partial head, chunk line, resync tail, or held upgrade bytes).
    const before = carried;
    if (pos < buf.length) {
      if (buf === data) {
        s.carry.clear();
        s.carry.append(buf, pos);
      } else if (pos > 0) {
        s.carry.buf.copyWithin(0, pos, s.carry.len);
        s.carry.len -= pos;
      }
    } else s.carry.clear();
    this.budget.held += s.carry.len - before;
    if (s.carry.len > 0 && (s.carry.len > this.headLimit || overBudget(this.budget))) this.overflow(s, ts);
  }

  /** A head was parsed: attach it to an exchange and choose how the body is framed. */
  private onHead(s: SideState, head: Head, headBytes: number, ts: number): void {
    s.head = head;
    s.body = newBodyAcc();
    if (head.obsFold) addNote(s.notes, 'obs-fold');
    if (s.gapBefore) {
      addNote(s.notes, 'gap');
      s.gapBefore = false;
    }
    if (s.kind === 'request') {
      const e = this.entryFor('request');
      s.entry = e;
      e.method = head.method;
      e.reqStart = s.startTs;
      this.charge(e, headBytes);
      if (head.chunked) {
        this.toChunked(s);
        return;
      }
      if (head.otherTransferEncoding || head.contentLength === -2) {
        // RFC 9112 §6.3: a server cannot frame this request; we read none and resync if needed.
        addNote(s.notes, 'invalid-framing');
        this.finishMessage(s, ts, undefined);
        return;
      }
      if (head.contentLength > 0) {
        this.toLength(s, head.contentLength);
        return;
      }
      this.finishMessage(s, ts, undefined);
      return;
    }
    const status = head.status;
    const e = this.entryFor('response');
    s.entry = e;
    this.charge(e, headBytes);
    if (status >= 100 && status < 200 && status !== 101) {
      // Interim response: belongs to the exchange, the final response follows.
      e.interim ??= [];
      if (e.interim.length < MAX_INTERIM && e.interimBytes + headBytes <= this.headLimit) {
        e.interim.push({ status, headers: head.headers });
        e.interimBytes += headBytes;
      } else {
        // a 1xx storm: counted, not kept (its head was charged above; give it back)
        e.held -= headBytes;
        this.budget.held -= headBytes;
        this.sink.raw?.(s.side, headBytes, 'interim-storm');
        if (e.interimDropped++ === 0) {
          addNote(e.notes, 'interim-dropped');
          this.sink.cut?.(s.side, 'interim');
        }
      }
      if (!e.respStart) e.respStart = s.startTs;
      s.head = undefined;
      s.started = false;
      s.st = St.Start;
      return;
    }
    const method = e.method;
    if (method === 'HEAD' || status === 204 || status === 304 || status === 101 || status < 100) {
      this.finishMessage(s, ts, undefined);
      return;
    }
    if (method === 'CONNECT' && status >= 200 && status < 300) {
      this.finishMessage(s, ts, undefined);
      return;
    }
    if (head.chunked) {
      this.toChunked(s);
      return;
    }
    if (head.otherTransferEncoding) {
      s.st = St.BodyClose;
      return;
    }
    if (head.contentLength >= 0) {
      if (head.contentLength === 0) {
        this.finishMessage(s, ts, undefined);
        return;
      }
      this.toLength(s, head.contentLength);
      return;
    }
    if (head.contentLength === -2) addNote(s.notes, 'invalid-framing');
    s.st = St.BodyClose;
  }

  /** Charges a head to its exchange; when the connection holds too much, the oldest goes out. */
  private charge(e: Entry, n: number): void {
    e.held += n;
    this.budget.held += n;
    while (this.budget.held > this.budget.max && this.queue.length > 1 && this.queue[0] !== e) {
      const old = this.queue.shift()!;
      addNote(old.notes, 'truncated');
      this.emit(old, true);
    }
  }

  private toChunked(s: SideState): void {
    s.st = St.ChunkSize;
    s.scan = 0;
  }

  private toLength(s: SideState, n: number): void {
    s.st = St.BodyLength;
    s.remaining = n;
  }

  /** The first exchange still waiting for this kind of message, or a new one at the end. */
  private entryFor(kind: 'request' | 'response'): Entry {
    for (const e of this.queue) {
      if (kind === 'request' ? e.request === undefined && e.method === undefined : !e.respDone) return e;
    }
    const e = newEntry();
    this.queue.push(e);
    if (this.queue.length > MAX_QUEUE) {
      const old = this.queue.shift()!;
      addNote(old.notes, 'truncated');
      this.emit(old, true);
    }
    return e;
  }

  /** A message ended (or was cut): store it in its exchange and move to the next state. */
  private finishMessage(s: SideState, ts: number, trailers: HeaderList | undefined, cut = false): void {
    const head = s.head;
    const e = s.entry;
    s.st = St.Start;
    s.started = false;
    s.head = undefined;
    s.entry = undefined;
    if (!head || !e) {
      s.notes = [];
      return;
    }
    const body = bodyFinish(s.body);
    if (cut) body.truncated = true;
    s.body = newBodyAcc();
    e.held += body.data.length;
    for (const n of s.notes) addNote(e.notes, n);
    s.notes = [];
    if (body.truncated) addNote(e.notes, 'truncated');
    if (s.kind === 'request') {
      const req: Request = {
        method: head.method,
        target: head.target,
        version: head.version,
        headers: head.headers,
        body,
      };
      if (trailers && trailers.length > 0) req.trailers = trailers;
      e.request = req;
      e.reqEnd = ts;
      e.reqDone = true;
      e.reqEncoding = head.contentEncoding;
      const wantsSwitch = head.method === 'CONNECT' || (head.upgrade !== undefined && head.connectionUpgrade);
      if (e.upgrade !== undefined) this.toRaw(s);
      else if (wantsSwitch && !cut && !e.respDone) {
        s.st = St.Wait;
        s.waitEntry = e;
      }
    } else {
      const resp: Response = { status: head.status, version: head.version, headers: head.headers, body };
      if (head.reason) resp.reason = head.reason;
      if (trailers && trailers.length > 0) resp.trailers = trailers;
      if (e.interim) resp.interim = e.interim;
      e.response = resp;
      if (!e.respStart) e.respStart = s.startTs;
      e.respEnd = ts;
      e.respDone = true;
      e.respEncoding = head.contentEncoding;
      const upgraded =
        !cut && (head.status === 101 || (e.method === 'CONNECT' && head.status >= 200 && head.status < 300));
      if (upgraded) {
        e.upgrade = head.status === 101 ? (head.upgrade ?? 'unknown') : 'tunnel';
        this.toRaw(s);
        const c = this.client;
        if (c.st === St.Wait && c.waitEntry === e) this.toRaw(c);
      } else if (this.client.st === St.Wait && this.client.waitEntry === e) {
        // The switch was refused: parse the held client bytes as HTTP again.
        this.resumeClient();
      }
    }
    this.flush();
  }

  private toRaw(s: SideState): void {
    s.st = St.Raw;
    s.waitEntry = undefined;
    if (!s.feeding && s.carry.len > 0) {
      this.sink.raw?.(s.side, s.carry.len, 'upgraded');
      this.budget.held -= s.carry.len;
      s.carry.clear();
    }
  }

  private resumeClient(): void {
    const c = this.client;
    c.st = St.Start;
    c.waitEntry = undefined;
    if (c.carry.len === 0 || c.feeding) return;
    const held = Buffer.from(c.carry.view());
    this.budget.held -= c.carry.len;
    c.carry.clear();
    this.feed(c, held, c.lastTs);
  }

  /** Emits finished exchanges from the head of the queue, in order. */
  private flush(): void {
    while (this.queue.length > 0) {
      const e = this.queue[0]!;
      if (!(e.reqDone && e.respDone)) return;
      this.queue.shift();
      this.emit(e, false);
    }
  }

  private emit(e: Entry, ending: boolean): void {
    this.budget.held -= e.held;
    if (this.budget.held < 0) this.budget.held = 0;
    const notes = e.notes;
    let request = e.request;
    if (!request) {
      request = placeholderRequest();
      addNote(notes, 'no-request');
      e.quarantine ??= 'no request was seen for this response';
    }
    const ex: DecodedExchange = {
      protocol: 'http1',
      request,
      requestStartNs: e.reqStart || e.respStart,
      requestEndNs: e.reqEnd || e.reqStart || e.respStart,
    };
    if (e.response) {
      ex.response = e.response;
      ex.responseStartNs = e.respStart;
      ex.responseEndNs = e.respEnd;
    } else if (ending || e.respDone) addNote(notes, 'no-response');
    const status = e.response?.status;
    if (status !== undefined && (status < 100 || status > 599))
      e.quarantine ??= `response status ${String(status).padStart(3, '0')} is outside 100–599`;
    if (e.quarantine === undefined) this.decodeBodies(e);
    else ex.quarantine = e.quarantine;
    if (notes.length > 0) ex.notes = notes;
    if (e.upgrade !== undefined) ex.extras = { upgrade: e.upgrade };
    if (e.interimDropped > 0) ex.extras = { ...ex.extras, interimDropped: e.interimDropped };
    this.sink.exchange(ex);
  }

  private decodeBodies(e: Entry): void {
    const rq = e.request?.body;
    if (rq && e.reqEncoding && !rq.truncated && rq.data.length > 0) {
      const d = decodeContent(e.reqEncoding, rq.data, this.maxBody);
      if (d) rq.decoded = d;
    }
    const rs = e.response?.body;
    if (rs && e.respEncoding && !rs.truncated && rs.data.length > 0) {
      const d = decodeContent(e.respEncoding, rs.data, this.maxBody);
      if (d) rs.decoded = d;
    }
  }

  // ---- trouble -----------------------------------------------------------------------------

  /** Bytes where a start line should be are not HTTP: count one byte raw and resync. */
  private unparsable(s: SideState, pos: number, _buf: Buffer, _ts: number): void {
    this.sink.raw?.(s.side, 1, 'unparsable');
    s.st = St.Resync;
    s.started = false;
    s.ctx = 'none';
    s.placeholderIfSkip = false;
    void pos;
  }

  /** A head longer than the limit: its bytes are counted, the message cut, the side resyncs. */
  private headTooLong(s: SideState, n: number, ts: number): void {
    this.sink.raw?.(s.side, n, 'overflow');
    this.sink.cut?.(s.side, 'head');
    s.started = false;
    this.placeholder(s, ts, 'cut');
    s.st = St.Resync;
    s.ctx = 'none';
    s.placeholderIfSkip = false;
  }

  /** Chunk framing broke: end the message as truncated and resync. */
  private framingError(s: SideState, ts: number): void {
    addNote(s.notes, 'invalid-framing');
    this.finishMessage(s, ts, undefined, true);
    s.st = St.Resync;
    s.ctx = 'none';
    s.placeholderIfSkip = false;
  }

  /**
   * A message whose head was lost (in a gap, or cut at the head limit) keeps request/response
   * pairing in step: a lost request makes its exchange quarantined (nothing to replay), a lost
   * response leaves its request unanswered.
   */
  private placeholder(s: SideState, ts: number, why: 'gap' | 'cut'): void {
    s.placeholderIfSkip = false;
    const e = this.entryFor(s.kind);
    addNote(e.notes, why === 'gap' ? 'gap' : 'truncated');
    addNote(e.notes, 'truncated');
    if (s.kind === 'request') {
      e.request = placeholderRequest();
      e.method = '';
      e.quarantine ??=
        why === 'gap'
          ? 'request head lost in a capture gap'
          : `request head longer than ${this.headLimit} bytes, cut`;
      e.reqStart = e.reqStart || ts;
      e.reqEnd = ts;
      e.reqDone = true;
    } else {
      e.respStart = e.respStart || ts;
      e.respEnd = ts;
      e.respDone = true;
    }
    this.flush();
  }

  private onGap(s: SideState, length: number, ts: number): void {
    s.lastTs = ts;
    switch (s.st) {
      case St.BodyLength:
      case St.ChunkData:
        addNote(s.notes, 'gap');
        if (length <= s.remaining) {
          bodyLost(s.body, length);
          s.remaining -= length;
          if (s.remaining === 0) {
            if (s.st === St.BodyLength) this.finishMessage(s, ts, undefined, true);
            else s.st = St.ChunkCrlf;
          }
          return;
        }
        bodyLost(s.body, s.remaining);
        this.finishMessage(s, ts, undefined, true);
        this.toResync(s, false);
        return;
      case St.BodyClose:
        addNote(s.notes, 'gap');
        bodyLost(s.body, length);
        return;
      case St.Raw:
        // lost bytes of a tunnel: counted as gap bytes by capture, nothing to decode
        return;
      case St.Wait:
        // Bytes after an upgrade request were lost; if the switch is refused we resync.
        return;
      case St.Start:
        if (s.carry.len === 0) {
          s.gapBefore = true;
          this.toResync(s, true);
          return;
        }
        this.cutHead(s, ts);
        return;
      case St.Head:
        this.cutHead(s, ts);
        return;
      case St.ChunkSize:
      case St.ChunkCrlf:
      case St.Trailers:
        addNote(s.notes, 'gap');
        this.finishMessage(s, ts, undefined, true);
        this.toResync(s, false);
        return;
      case St.Resync:
        s.gapBefore = true;
        s.ctx = 'gap';
        return;
    }
  }

  /** A gap inside a head: the message is lost; a placeholder keeps pairing; resync. */
  private cutHead(s: SideState, ts: number): void {
    this.sink.raw?.(s.side, s.carry.len, 'gap');
    this.budget.held -= s.carry.len;
    s.carry.clear();
    s.started = false;
    this.placeholder(s, ts, 'gap');
    this.toResync(s, false);
  }

  private toResync(s: SideState, placeholderIfSkip: boolean): void {
    this.budget.held -= s.carry.len;
    if (s.carry.len > 0) this.sink.raw?.(s.side, s.carry.len, 'gap');
    s.carry.clear();
    s.st = St.Resync;
    s.ctx = 'gap';
    s.started = false;
    s.placeholderIfSkip = placeholderIfSkip;
  }

  /**
   * Too many bytes held for one side (a head, chunk line, trailer section or held upgrade bytes
   * that never end, or the capture's pool is full): give up on what is pending and resync.
   */
  private overflow(s: SideState, ts: number): void {
    const n = s.carry.len;
    this.budget.held -= n;
    s.carry.clear();
    this.sink.raw?.(s.side, n, 'overflow');
    this.sink.cut?.(s.side, s.st === St.Wait ? 'upgrade' : s.st === St.Head || s.st === St.Start ? 'head' : 'message');
    if (s.st === St.Wait) {
      // Nothing came back yet and the client keeps sending: treat it as a tunnel.
      s.st = St.Raw;
      return;
    }
    if (s.st === St.Head || s.st === St.Start) {
      s.started = false;
      this.placeholder(s, ts, 'cut');
    } else if (s.head) {
      this.finishMessage(s, ts, undefined, true);
    }
    s.st = St.Resync;
    s.ctx = 'none';
    s.placeholderIfSkip = false;
  }

  private recover(s: SideState, e: unknown): void {
    this.sink.fault?.(s.side, describe(e));
    if (s.carry.len > 0) this.sink.raw?.(s.side, s.carry.len, 'fault');
    this.budget.held -= s.carry.len + s.body.kept;
    s.body = newBodyAcc();
    s.carry.clear();
    s.head = undefined;
    s.entry = undefined;
    s.started = false;
    s.st = St.Resync;
    s.ctx = 'none';
    if (this.budget.held < 0) this.budget.held = 0;
  }

  /** Connection end: a close-delimited body is complete; other partial messages are cut. */
  private finishSide(s: SideState, ts: number): void {
    if (s.st === St.BodyClose) {
      this.finishMessage(s, ts, undefined);
      return;
    }
    if (s.st === St.Wait || s.st === St.Raw || s.st === St.Resync || s.st === St.Start) {
      if (s.st === St.Wait && s.carry.len > 0) this.sink.raw?.(s.side, s.carry.len, 'unanswered-upgrade');
      else if (s.carry.len > 0) this.sink.raw?.(s.side, s.carry.len, 'incomplete');
      return;
    }
    if (s.st === St.Head) {
      // Try to salvage the start line and complete header lines of the cut head.
      const text = s.carry.view().toString('latin1');
      const lastNl = text.lastIndexOf('\n');
      const head = lastNl > 0 ? parseHead(text.slice(0, lastNl), s.kind) : undefined;
      if (head) {
        s.head = head;
        s.entry = this.entryFor(s.kind);
        if (s.kind === 'request') {
          s.entry.method = head.method;
          s.entry.reqStart = s.startTs;
        } else s.entry.respStart = s.startTs;
        s.body = newBodyAcc();
        this.finishMessage(s, ts, undefined, true);
        return;
      }
      this.sink.raw?.(s.side, s.carry.len, 'incomplete');
      return;
    }
    this.finishMessage(s, ts, undefined, true);
  }
}

/** Hex chunk size before `;` extensions; -1 when invalid. */
function parseChunkSize(buf: Buffer, start: number, nl: number): number {
  let n = 0;
  let digits = 0;
  let i = start;
  for (; i < nl; i++) {
    const c = buf[i]!;
    let v: number;
    if (c >= 48 && c <= 57) v = c - 48;
    else if (c >= 97 && c <= 102) v = c - 87;
    else if (c >= 65 && c <= 70) v = c - 55;
    else break;
    if (++digits > 13) return -1;
    n = n * 16 + v;
  }
  if (digits === 0) return -1;
  // Allowed after the size: BWS, chunk extensions, CR.
  for (; i < nl; i++) {
    const c = buf[i];
    if (c === 59 || c === 13) break;
    if (c !== 32 && c !== 9) return -1;
  }
  return n;
}
