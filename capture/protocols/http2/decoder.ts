/**
 * HTTP/2 connection decoder: frames per side, HPACK per direction, streams paired into
 * exchanges (request from the client's HEADERS/DATA, response from the server's), trailers,
 * interim 1xx, server push, RST_STREAM. gRPC streams are recognised by content-type and get
 * their messages decoded into `extras.grpc`.
 *
 * Joined mid-stream (no preface): frames are decoded, header references to dynamic entries
 * we never saw are left out, and every exchange is marked `hpack-state-unknown`. A gap inside a
 * DATA payload keeps framing; a gap elsewhere resets that direction's HPACK state and resyncs
 * on the next plausible frame boundary.
 */
import type { HeaderList, Request, Response } from '../../../core/exchange.js';
import { UNKNOWN_METHOD } from '../../../core/exchange.js';
import type { BodyAcc, Budget } from '../budget.js';
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
import { isToken } from '../../../core/http1.js';
import { asBuffer, Carry } from '../bytes.js';
import { decodeContent } from '../content-encoding.js';
import { decodeGrpcExchange, isGrpcContentType } from '../grpc/exchange.js';
import type { DecodedExchange, DecoderOptions, DecoderSink, Side, StreamDecoder } from '../types.js';
import {
  Flag,
  type FrameHeader,
  FrameType,
  findFrameBoundary,
  PREFACE,
  readFrameHeader,
  Setting,
} from './frames.js';
import { HpackDecoder } from './hpack/decoder.js';

const MAX_STREAMS = 10_000;
/** Interim (1xx) answers kept per stream; a longer storm is counted, not kept. */
const MAX_INTERIM = 32;
/** Decoded header list kept per header block (names + values + 32 per field). */
const MAX_HEADER_LIST = 1024 * 1024;

interface H2Stream {
  id: number;
  pseudoReq: Record<string, string>;
  reqHeaders: HeaderList | undefined;
  reqTrailers: HeaderList | undefined;
  reqBody: BodyAcc;
  reqStart: number;
  reqEnd: number;
  reqEnded: boolean;
  status: number;
  /** `:status` as sent (for the reason when it is not a status). */
  statusRaw: string | undefined;
  respHeaders: HeaderList | undefined;
  respTrailers: HeaderList | undefined;
  interim: Array<{ status: number; headers: HeaderList }> | undefined;
  interimDropped: number;
  respBody: BodyAcc;
  respStart: number;
  respEnd: number;
  respEnded: boolean;
  notes: string[];
  pushedBy: number | undefined;
  rstCode: number | undefined;
  /** Who sent the RST_STREAM, and when. */
  rstSide: Side | undefined;
  rstTs: number;
  held: number;
  /** When DATA arrived: [body bytes so far, ts] per frame, so gRPC messages get their times. */
  reqMarks: number[] | undefined;
  respMarks: number[] | undefined;
}

/** Most DATA arrival marks kept per stream side (later messages take the last one's time). */
const MAX_MARKS = 2 * 4096;

interface HeaderBlock {
  stream: number;
  /** HEADERS or PUSH_PROMISE */
  type: number;
  endStream: boolean;
  promised: number;
  parts: Buffer[];
  size: number;
  startTs: number;
}

interface SideState {
  side: Side;
  carry: Carry;
  /** Client only: still checking for the preface. */
  prefacePending: boolean;
  /** Current frame (header read, payload pending). */
  frame: FrameHeader | undefined;
  frameStartTs: number;
  /** DATA: payload bytes left, pad bytes at the end of the payload. */
  remaining: number;
  padLeft: number;
  /** Bytes of a frame to discard (after a gap inside it). */
  skip: number;
  block: HeaderBlock | undefined;
  hpack: HpackDecoder;
  /** Frame boundaries lost: scanning for the next plausible frame. */
  resync: boolean;
  feeding: boolean;
  /** Time of the chunk that held the first carried byte. */
  carryTs: number;
}

function newSide(side: Side): SideState {
  return {
    side,
    carry: new Carry(),
    prefacePending: side === 'client',
    frame: undefined,
    frameStartTs: 0,
    remaining: 0,
    padLeft: 0,
    skip: 0,
    block: undefined,
    hpack: new HpackDecoder(4096, false),
    resync: false,
    feeding: false,
    carryTs: 0,
  };
}

function addNote(notes: string[], note: string): void {
  if (!notes.includes(note)) notes.push(note);
}

export class Http2Decoder implements StreamDecoder {
  private readonly client = newSide('client');
  private readonly server = newSide('server');
  private readonly streams = new Map<number, H2Stream>();
  private readonly budget: Budget;
  private readonly maxBody: number;
  private readonly frameLimit: number;
  /** The client did not start with the preface: HPACK state before we joined is unknown. */
  private midStream = false;
  /** Known whether the connection began with the preface. */
  private startKnown = false;
  /** Frames were lost (a gap or an internal failure): streams may have begun unseen. */
  private lostFrames = false;
  private closed = false;
  /** Recently finished stream ids, so late frames do not open them again. */
  private readonly closedIds = new Set<number>();

  constructor(
    private readonly sink: DecoderSink,
    private readonly options: DecoderOptions = {},
  ) {
    const max = Math.max(1024, options.maxBufferBytes ?? DEFAULT_MAX_BUFFER);
    this.frameLimit = Math.min(16 * 1024 * 1024 + 9, Math.floor(max / 4));
    this.budget = newBudget(max, 2 * this.frameLimit, options.pool);
    this.maxBody = Math.max(0, options.maxBodyBytes ?? DEFAULT_MAX_BODY);
  }

  bufferedBytes(): number {
    return this.budget.held;
  }

  push(side: Side, data: Uint8Array, tsNs: number): void {
    if (this.closed || data.length === 0) return;
    const s = side === 'client' ? this.client : this.server;
    s.feeding = true;
    try {
      this.feed(s, asBuffer(data), tsNs);
    } catch (e) {
      this.lose(s, e);
    } finally {
      s.feeding = false;
    }
    settle(this.budget);
  }

  gap(side: Side, length: number, tsNs: number): void {
    if (this.closed || !(length > 0)) return;
    const s = side === 'client' ? this.client : this.server;
    try {
      this.onGap(s, length, tsNs);
    } catch (e) {
      this.lose(s, e);
    }
    settle(this.budget);
  }

  end(tsNs: number): void {
    if (this.closed) return;
    this.closed = true;
    try {
      for (const s of [this.client, this.server]) {
        if (s.carry.len > 0) this.sink.raw?.(s.side, s.carry.len, 'incomplete');
        // A DATA frame cut by the end: its stream's body is truncated.
        if (s.frame?.type === FrameType.DATA) {
          const st = this.streams.get(s.frame.stream);
          if (st) {
            const body = s.side === 'client' ? st.reqBody : st.respBody;
            bodyLost(body, 0);
            body.truncated = true;
          }
        }
      }
      for (const st of [...this.streams.values()]) this.emit(st, tsNs, true);
    } catch (e) {
      this.sink.fault?.('client', describe(e));
    }
    this.client.carry.clear();
    this.server.carry.clear();
    this.budget.held = 0;
    settle(this.budget);
  }

  // ---- bytes → frames ------------------------------------------------------------------------

  private feed(s: SideState, data: Buffer, ts: number): void {
    const before = s.carry.len;
    let buf = data;
    if (before > 0) {
      s.carry.append(data);
      buf = s.carry.view();
    }
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      if (s.prefacePending) {
        const n = Math.min(len - pos, PREFACE.length);
        if (buf.compare(PREFACE, 0, n, pos, pos + n) !== 0) {
          this.setStart(false);
          s.prefacePending = false;
          continue;
        }
        if (n < PREFACE.length) break;
        pos += PREFACE.length;
        s.prefacePending = false;
        this.setStart(true);
        continue;
      }
      if (s.skip > 0) {
        // the rest of a frame we cannot hold (or that a gap cut): counted as it arrives
        const n = Math.min(s.skip, len - pos);
        this.sink.raw?.(s.side, n, 'skipped-frame');
        s.skip -= n;
        pos += n;
        if (s.skip === 0) s.frame = undefined;
        continue;
      }
      if (s.resync) {
        const r = findFrameBoundary(buf, pos);
        if (r.at === -1) {
          // Keep the last 8 bytes: a frame header may start there.
          const keep = Math.max(pos, len - 8);
          this.sink.raw?.(s.side, keep - pos, 'resync');
          pos = keep;
          break;
        }
        if (r.at > pos) this.sink.raw?.(s.side, r.at - pos, 'resync');
        pos = r.at;
        if (r.needMore) {
          if (len - pos <= this.frameLimit) break;
          // Cannot hold enough to confirm this candidate: move past it.
          this.sink.raw?.(s.side, 1, 'resync');
          pos++;
          continue;
        }
        s.resync = false;
        continue;
      }
      const f = s.frame;
      if (!f) {
        if (len - pos < 9) break;
        const h = readFrameHeader(buf, pos);
        s.frameStartTs = pos < before ? s.carryTs : ts;
        pos += 9;
        s.frame = h;
        if (h.type === FrameType.DATA) {
          s.remaining = h.length;
          s.padLeft = -1; // pad length not read yet
          if (!(h.flags & Flag.PADDED)) s.padLeft = 0;
          if (h.length === 0) this.dataDone(s, h, ts);
        } else if (h.length > this.frameLimit) {
          // Larger than we may hold: skip it (the header block inside, if any, is lost); its
          // bytes are counted as they arrive, never by the length it declares.
          this.sink.raw?.(s.side, 9, 'frame-too-large');
          this.sink.cut?.(s.side, 'frame');
          if (
            h.type === FrameType.HEADERS ||
            h.type === FrameType.CONTINUATION ||
            h.type === FrameType.PUSH_PROMISE
          ) {
            this.hpackLost(s, h.stream);
          }
          s.skip = h.length;
          if (s.skip === 0) s.frame = undefined;
        } else if (h.length === 0) {
          s.frame = undefined;
          this.onFrame(s, h, buf.subarray(pos, pos), ts);
        }
        continue;
      }
      if (f.type === FrameType.DATA) {
        pos = this.dataBytes(s, f, buf, pos, ts);
        continue;
      }
      if (len - pos < f.length) break;
      const payload = buf.subarray(pos, pos + f.length);
      pos += f.length;
      s.frame = undefined;
      this.onFrame(s, f, payload, ts);
    }
    // Keep the unread tail (partial preface, frame header or non-DATA payload).
    if (pos < len) {
      if (buf === data) {
        s.carry.clear();
        s.carry.append(buf, pos);
        s.carryTs = ts;
      } else if (pos > 0) {
        s.carry.buf.copyWithin(0, pos, s.carry.len);
        s.carry.len -= pos;
        if (pos >= before) s.carryTs = ts;
      }
    } else s.carry.clear();
    this.budget.held += s.carry.len - before;
    if (s.carry.len > 0 && overBudget(this.budget)) this.cutCarry(s);
  }

  /**
   * The capture's memory pool is full while this side carries a partial frame: the frame is cut
   * (what arrived is counted, the rest skipped as it comes), framing goes on.
   */
  private cutCarry(s: SideState): void {
    const f = s.frame;
    const carried = s.carry.len;
    this.sink.cut?.(s.side, 'frame');
    this.budget.held -= carried;
    this.sink.raw?.(s.side, carried, 'cut');
    s.carry.clear();
    if (f && f.type !== FrameType.DATA) {
      if (f.type === FrameType.HEADERS || f.type === FrameType.CONTINUATION || f.type === FrameType.PUSH_PROMISE)
        this.hpackLost(s, f.stream);
      s.skip = Math.max(0, f.length - carried);
      if (s.skip === 0) s.frame = undefined;
    } else if (!f) {
      // a partial frame header or preface: where the next frame starts is unknown now
      this.hpackLost(s, 0);
      s.resync = true;
    }
  }

  private setStart(preface: boolean): void {
    if (this.startKnown) return;
    this.startKnown = true;
    if (!preface) {
      this.midStream = true;
      this.client.hpack.midStream = true;
      this.server.hpack.midStream = true;
    }
  }

  /** Streams DATA payload bytes into the stream body (padding skipped). Returns the new position. */
  private dataBytes(s: SideState, f: FrameHeader, buf: Buffer, pos: number, ts: number): number {
    if (s.padLeft === -1) {
      const pad = buf[pos]!;
      pos++;
      s.remaining--;
      s.padLeft = Math.min(pad, s.remaining);
      if (pad > s.remaining + 0) s.padLeft = s.remaining;
    }
    const dataLeft = s.remaining - s.padLeft;
    const n = Math.min(dataLeft, buf.length - pos);
    if (n > 0) {
      const st = this.streamFor(s, f.stream, false);
      if (!st) this.sink.raw?.(s.side, n, 'no-stream');
      else if (bodyAdd(s.side === 'client' ? st.reqBody : st.respBody, buf, pos, pos + n, this.maxBody, this.budget))
        this.sink.cut?.(s.side, 'body');
      pos += n;
      s.remaining -= n;
    }
    if (s.remaining - s.padLeft === 0) {
      const p = Math.min(s.padLeft, buf.length - pos);
      pos += p;
      s.padLeft -= p;
      s.remaining -= p;
    }
    if (s.remaining === 0) this.dataDone(s, f, ts);
    return pos;
  }

  private dataDone(s: SideState, f: FrameHeader, ts: number): void {
    s.frame = undefined;
    const st = this.streams.get(f.stream);
    if (!st) return;
    if (s.side === 'client') st.reqEnd = ts;
    else st.respEnd = ts;
    if (f.length > 0) {
      const body = s.side === 'client' ? st.reqBody : st.respBody;
      const marks = s.side === 'client' ? (st.reqMarks ??= []) : (st.respMarks ??= []);
      if (marks.length < MAX_MARKS && (marks.length === 0 || marks[marks.length - 2]! < body.size))
        marks.push(body.size, ts);
    }
    if (f.flags & Flag.END_STREAM) this.endSide(st, s.side, ts);
  }

  // ---- frames --------------------------------------------------------------------------------

  private onFrame(s: SideState, f: FrameHeader, p: Buffer, ts: number): void {
    // A header block in progress must continue with CONTINUATION on the same stream.
    if (s.block && f.type !== FrameType.CONTINUATION) {
      this.hpackLost(s, s.block.stream);
      s.block = undefined;
    }
    switch (f.type) {
      case FrameType.HEADERS: {
        let at = 0;
        let end = p.length;
        if (f.flags & Flag.PADDED) {
          if (p.length < 1) return;
          end -= p[0]!;
          at = 1;
        }
        if (f.flags & Flag.PRIORITY) at += 5;
        if (end < at) {
          this.hpackLost(s, f.stream);
          return;
        }
        this.startBlock(s, f, FrameType.HEADERS, 0, p.subarray(at, end), ts);
        return;
      }
      case FrameType.PUSH_PROMISE: {
        let at = 0;
        let end = p.length;
        if (f.flags & Flag.PADDED) {
          if (p.length < 1) return;
          end -= p[0]!;
          at = 1;
        }
        if (end < at + 4) {
          this.hpackLost(s, f.stream);
          return;
        }
        const promised = p.readUInt32BE(at) & 0x7fffffff;
        this.startBlock(s, f, FrameType.PUSH_PROMISE, promised, p.subarray(at + 4, end), ts);
        return;
      }
      case FrameType.CONTINUATION: {
        const b = s.block;
        if (!b || b.stream !== f.stream) {
          this.hpackLost(s, f.stream);
          return;
        }
        b.parts.push(Buffer.from(p));
        b.size += p.length;
        if (b.size > this.frameLimit) {
          s.block = undefined;
          this.hpackLost(s, f.stream);
          return;
        }
        if (f.flags & Flag.END_HEADERS) this.finishBlock(s, ts);
        return;
      }
      case FrameType.RST_STREAM: {
        const st = this.streams.get(f.stream);
        if (!st) return;
        st.rstCode = p.length >= 4 ? p.readUInt32BE(0) : 0;
        st.rstSide = s.side;
        st.rstTs = ts;
        addNote(st.notes, 'reset');
        this.emit(st, ts, false);
        return;
      }
      case FrameType.SETTINGS: {
        if (f.flags & Flag.ACK) return;
        // Settings a side sends bound what its peer's encoder may use when talking to it.
        const peer = s.side === 'client' ? this.server : this.client;
        for (let i = 0; i + 6 <= p.length; i += 6) {
          const id = p.readUInt16BE(i);
          const v = p.readUInt32BE(i + 2);
          if (id === Setting.HEADER_TABLE_SIZE) peer.hpack.setLimit(v);
        }
        return;
      }
      default:
        // PRIORITY, PING, GOAWAY, WINDOW_UPDATE and unknown types carry nothing to record.
        return;
    }
  }

  private startBlock(
    s: SideState,
    f: FrameHeader,
    type: number,
    promised: number,
    fragment: Buffer,
    ts: number,
  ): void {
    s.block = {
      stream: f.stream,
      type,
      endStream: (f.flags & Flag.END_STREAM) !== 0,
      promised,
      parts: [Buffer.from(fragment)],
      size: fragment.length,
      startTs: s.frameStartTs || ts,
    };
    if (f.flags & Flag.END_HEADERS) this.finishBlock(s, ts);
  }

  /** A whole header block arrived: decode it and apply it to its stream. */
  private finishBlock(s: SideState, ts: number): void {
    const b = s.block!;
    s.block = undefined;
    if (!this.startKnown && s.side === 'server') this.setStart(false);
    let decoded: ReturnType<HpackDecoder['decode']>;
    try {
      decoded = s.hpack.decode(b.parts.length === 1 ? b.parts[0]! : Buffer.concat(b.parts), MAX_HEADER_LIST);
    } catch {
      this.hpackLost(s, b.stream);
      return;
    }
    const unknownState = s.hpack.midStream;
    if (b.type === FrameType.PUSH_PROMISE) {
      // The server promises a request on a new stream; the response comes on that stream.
      const st = this.streamFor(s, b.promised, true);
      if (!st) return;
      st.pushedBy = b.stream;
      if (unknownState || decoded.unknown) addNote(st.notes, 'hpack-state-unknown');
      if (decoded.cut) this.listCut(s, st);
      this.applyRequestHeaders(st, decoded.headers, b.startTs, ts);
      st.reqEnded = true;
      this.hold(st, decoded.listBytes);
      return;
    }
    const st = this.streamFor(s, b.stream, true);
    if (!st) return;
    if (unknownState || decoded.unknown) addNote(st.notes, 'hpack-state-unknown');
    if (decoded.cut) this.listCut(s, st);
    if (s.side === 'client') {
      if (st.reqHeaders === undefined) this.applyRequestHeaders(st, decoded.headers, b.startTs, ts);
      else st.reqTrailers = decoded.headers;
      st.reqEnd = ts;
    } else {
      const raw = statusOf(decoded.headers);
      const status = statusCode(raw);
      if (st.respHeaders === undefined && status >= 100 && status < 200) {
        st.interim ??= [];
        if (st.interim.length < MAX_INTERIM) st.interim.push({ status, headers: regular(decoded.headers) });
        else {
          // a 1xx storm: counted, not kept
          if (st.interimDropped++ === 0) {
            addNote(st.notes, 'interim-dropped');
            this.sink.cut?.(s.side, 'interim');
          }
          if (!st.respStart) st.respStart = b.startTs;
          return;
        }
        if (!st.respStart) st.respStart = b.startTs;
        this.hold(st, decoded.listBytes);
        return;
      }
      if (st.respHeaders === undefined) {
        st.status = status;
        st.statusRaw = raw;
        st.respHeaders = decoded.headers;
        if (!st.respStart) st.respStart = b.startTs;
      } else st.respTrailers = decoded.headers;
      st.respEnd = ts;
    }
    this.hold(st, decoded.listBytes);
    if (b.endStream) this.endSide(st, s.side, ts);
  }

  private listCut(s: SideState, st: H2Stream): void {
    addNote(st.notes, 'truncated');
    this.sink.cut?.(s.side, 'header-list');
  }

  /**
   * Charges a stream's decoded header fields to the connection. Past the budget (or a full pool)
   * the oldest other streams go out as they are, marked truncated, like MAX_STREAMS does.
   */
  private hold(st: H2Stream, n: number): void {
    st.held += n;
    this.budget.held += n;
    if (!overBudget(this.budget)) return;
    for (const old of [...this.streams.values()]) {
      if (!overBudget(this.budget)) break;
      if (old === st) continue;
      addNote(old.notes, 'truncated');
      this.emit(old, old.respEnd || old.reqEnd || old.reqStart || old.respStart, true);
    }
  }

  private applyRequestHeaders(st: H2Stream, headers: HeaderList, startTs: number, endTs: number): void {
    st.reqHeaders = headers;
    for (const [n, v] of headers) if (n.charCodeAt(0) === 0x3a) st.pseudoReq[n] = v;
    st.reqStart = startTs;
    st.reqEnd = endTs;
  }

  /** Header block state lost for this direction: treat it like joining mid-stream from here. */
  private hpackLost(s: SideState, stream: number): void {
    s.hpack = new HpackDecoder(s.hpack.tableMaxSize, true);
    const st = this.streams.get(stream);
    if (st) {
      addNote(st.notes, 'hpack-state-unknown');
      addNote(st.notes, 'truncated');
    }
  }

  private streamFor(s: SideState, id: number, create: boolean): H2Stream | undefined {
    let st = this.streams.get(id);
    if (st || id === 0) return st;
    // A frame for a stream that already ended (e.g. DATA racing a RST_STREAM): nothing to add.
    if (this.closedIds.has(id)) return undefined;
    // DATA on a stream no HEADERS opened, on a connection seen whole from its preface: a protocol
    // error, not an exchange (its bytes are counted raw). Joined mid-stream or after a gap, the
    // HEADERS may just have been missed: the stream is kept (and noted `gap`).
    if (!create && this.startKnown && !this.midStream && !this.lostFrames) return undefined;
    void s;
    if (this.streams.size >= MAX_STREAMS) {
      const oldest = this.streams.values().next().value as H2Stream;
      addNote(oldest.notes, 'truncated');
      this.emit(oldest, 0, true);
    }
    st = {
      id,
      pseudoReq: {},
      reqHeaders: undefined,
      reqTrailers: undefined,
      reqBody: newBodyAcc(),
      reqStart: 0,
      reqEnd: 0,
      reqEnded: false,
      status: 0,
      statusRaw: undefined,
      respHeaders: undefined,
      respTrailers: undefined,
      interim: undefined,
      interimDropped: 0,
      respBody: newBodyAcc(),
      respStart: 0,
      respEnd: 0,
      respEnded: false,
      notes: [],
      pushedBy: undefined,
      rstCode: undefined,
      rstSide: undefined,
      rstTs: 0,
      held: 0,
      reqMarks: undefined,
      respMarks: undefined,
    };
    if (!create) addNote(st.notes, 'gap');
    this.streams.set(id, st);
    return st;
  }

  private endSide(st: H2Stream, side: Side, ts: number): void {
    if (side === 'client') {
      st.reqEnded = true;
      st.reqEnd = ts;
    } else {
      st.respEnded = true;
      st.respEnd = ts;
    }
    if (st.reqEnded && st.respEnded) this.emit(st, ts, false);
  }

  // ---- exchanges -----------------------------------------------------------------------------

  private emit(st: H2Stream, ts: number, ending: boolean): void {
    if (!this.streams.delete(st.id)) return;
    this.closedIds.add(st.id);
    if (this.closedIds.size > 1024) this.closedIds.delete(this.closedIds.values().next().value as number);
    const notes = st.notes;
    if (this.midStream) addNote(notes, 'hpack-state-unknown');
    const reqBody = bodyFinish(st.reqBody);
    const respBody = bodyFinish(st.respBody);
    this.budget.held -= reqBody.data.length + respBody.data.length + st.held;
    if (this.budget.held < 0) this.budget.held = 0;
    if (ending && !st.reqEnded) reqBody.truncated = true;
    const p = st.pseudoReq;
    const method = p[':method'];
    const request: Request = {
      method: method || UNKNOWN_METHOD,
      target: (method === 'CONNECT' ? p[':authority'] : p[':path']) ?? '',
      version: 'HTTP/2',
      headers: regular(st.reqHeaders ?? []),
      body: reqBody,
    };
    let quarantine: string | undefined;
    if (st.reqHeaders === undefined) {
      addNote(notes, 'no-request');
      request.version = '';
      reqBody.truncated = true;
      quarantine = 'no request headers were seen on this stream';
    } else if (method === undefined) quarantine = 'request without :method';
    else if (!isToken(method)) quarantine = `request :method ${JSON.stringify(method.slice(0, 40))} is not a method`;
    else if (method !== 'CONNECT' && p[':path'] === undefined) quarantine = 'request without :path';
    if (st.reqTrailers) request.trailers = regular(st.reqTrailers);
    const ex: DecodedExchange = {
      protocol: 'http2',
      request,
      requestStartNs: st.reqStart || st.respStart || ts,
      requestEndNs: st.reqEnd || st.reqStart || st.respStart || ts,
    };
    const extras: Record<string, unknown> = { streamId: st.id };
    const pseudo: Record<string, string> = {};
    for (const k of Object.keys(p)) if (k !== ':method' && k !== ':path') pseudo[k] = p[k]!;
    if (Object.keys(pseudo).length > 0) extras.pseudo = pseudo;
    if (st.pushedBy !== undefined) extras.pushPromiseStream = st.pushedBy;
    if (st.rstCode !== undefined) {
      extras.rstCode = st.rstCode;
      // a client's reset is a cancel (a gRPC deadline, a user giving up): replay resets there too
      if (st.rstSide) {
        extras.resetBy = st.rstSide;
        extras.resetAtNs = Math.max(0, st.rstTs - ex.requestStartNs);
      }
    }
    let response: Response | undefined;
    if (st.respHeaders !== undefined) {
      if (ending && !st.respEnded) respBody.truncated = true;
      response = { status: st.status, version: 'HTTP/2', headers: regular(st.respHeaders), body: respBody };
      if (st.respTrailers) response.trailers = regular(st.respTrailers);
      if (st.interim) response.interim = st.interim;
      ex.response = response;
      ex.responseStartNs = st.respStart;
      ex.responseEndNs = st.respEnd || st.respStart;
    } else if (st.rstCode === undefined) addNote(notes, 'no-response');
    if (response && (response.status < 100 || response.status > 599)) {
      response.status = Math.max(0, response.status);
      quarantine ??=
        st.statusRaw === undefined
          ? 'response without :status'
          : `response :status ${JSON.stringify(st.statusRaw.slice(0, 40))} is not a status in 100–599`;
    }
    if (reqBody.truncated || respBody.truncated) addNote(notes, 'truncated');
    if (st.interimDropped > 0) extras.interimDropped = st.interimDropped;
    const reqCt = headerOf(request.headers, 'content-type');
    if (quarantine !== undefined) ex.quarantine = quarantine;
    else if (
      isGrpcContentType(reqCt) ||
      isGrpcContentType(response && headerOf(response.headers, 'content-type'))
    ) {
      ex.protocol = 'grpc';
      extras.grpc = decodeGrpcExchange(request, response, this.maxBody, this.options.grpc, {
        startNs: ex.requestStartNs,
        request: st.reqMarks,
        response: st.respMarks,
      });
      // the client never half-closed (the server ended the call, or it was reset)
      if (!st.reqEnded && st.reqHeaders !== undefined) extras.clientOpen = true;
    } else {
      decodeBody(request, this.maxBody);
      if (response) decodeBody(response, this.maxBody);
    }
    if (notes.length > 0) ex.notes = notes;
    ex.extras = extras;
    this.sink.exchange(ex);
  }

  // ---- trouble -------------------------------------------------------------------------------

  private onGap(s: SideState, length: number, ts: number): void {
    this.lostFrames = true;
    const f = s.frame;
    if (s.prefacePending) {
      s.prefacePending = false;
      this.setStart(false);
    }
    if (s.resync) {
      this.resetCarry(s);
      return;
    }
    if (s.skip > 0 && length < s.skip) {
      s.skip -= length;
      return;
    }
    if (f && f.type === FrameType.DATA && s.padLeft >= 0 && length <= s.remaining - s.padLeft) {
      // Inside the data of a DATA frame: framing holds; the body is truncated.
      const st = this.streams.get(f.stream);
      if (st) {
        bodyLost(s.side === 'client' ? st.reqBody : st.respBody, length);
        addNote(st.notes, 'gap');
      }
      s.remaining -= length;
      if (s.remaining === 0) this.dataDone(s, f, ts);
      return;
    }
    if (f && f.type !== FrameType.DATA && s.skip === 0) {
      const have = s.carry.len;
      if (have + length < f.length) {
        // Inside a non-DATA frame whose length we know: skip the rest of it.
        if (
          f.type === FrameType.HEADERS ||
          f.type === FrameType.CONTINUATION ||
          f.type === FrameType.PUSH_PROMISE
        ) {
          this.hpackLost(s, f.stream);
        }
        this.resetCarry(s);
        s.skip = f.length - have - length;
        return;
      }
    }
    // Frame boundaries lost: the header blocks in between may have changed the table.
    if (f) {
      const st = this.streams.get(f.stream);
      if (st) addNote(st.notes, 'gap');
    }
    this.hpackLost(s, f?.stream ?? 0);
    s.block = undefined;
    s.frame = undefined;
    s.skip = 0;
    this.resetCarry(s);
    s.resync = true;
  }

  private resetCarry(s: SideState): void {
    if (s.feeding) return;
    this.budget.held -= s.carry.len;
    if (s.carry.len > 0) this.sink.raw?.(s.side, s.carry.len, 'gap');
    s.carry.clear();
  }

  /** Unexpected internal failure: drop this side's partial state and resync. */
  private lose(s: SideState, e: unknown): void {
    this.lostFrames = true;
    this.sink.fault?.(s.side, describe(e));
    if (s.carry.len > 0) this.sink.raw?.(s.side, s.carry.len, 'fault');
    this.budget.held -= s.carry.len;
    s.carry.clear();
    s.frame = undefined;
    s.block = undefined;
    s.skip = 0;
    s.resync = true;
    s.hpack = new HpackDecoder(4096, true);
    if (this.budget.held < 0) this.budget.held = 0;
  }
}

/** `:status` as sent, or undefined when absent. */
function statusOf(headers: HeaderList): string | undefined {
  for (const [n, v] of headers) if (n === ':status') return v;
  return undefined;
}

/** A status code: exactly three digits (RFC 9110 §15); -1 otherwise. */
function statusCode(raw: string | undefined): number {
  if (raw === undefined || raw.length !== 3) return -1;
  let n = 0;
  for (let i = 0; i < 3; i++) {
    const d = raw.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Headers without pseudo-headers (those are in method/target/status and extras.pseudo). */
function regular(headers: HeaderList): HeaderList {
  let pseudo = false;
  for (const [n] of headers) if (n.charCodeAt(0) === 0x3a) pseudo = true;
  return pseudo ? headers.filter(([n]) => n.charCodeAt(0) !== 0x3a) : headers;
}

function headerOf(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}

function decodeBody(msg: Request | Response, maxBody: number): void {
  const enc = headerOf(msg.headers, 'content-encoding');
  if (!enc || msg.body.truncated || msg.body.data.length === 0) return;
  const d = decodeContent(enc, msg.body.data, maxBody);
  if (d) msg.body.decoded = d;
}
