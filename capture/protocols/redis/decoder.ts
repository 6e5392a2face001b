/**
 * Redis stream decoder (RESP2 and RESP3): commands from the client, replies from the server,
 * paired in order (pipelining, MULTI/EXEC: every command gets exactly one reply). (P|S)SUBSCRIBE
 * and their UNSUBSCRIBEs take one reply per channel; published messages and RESP3 pushes are
 * exchanges of their own (`kind: push`). HELLO 3 switches the connection to RESP3.
 *
 * Gaps: a command or reply cut by a gap is marked; commands sent before a server-side gap are
 * reported without an answer (how many replies were lost is unknown), and after any gap a reply is
 * paired only with a command sent before it arrived (kernel timestamps), marked `gap`.
 * Passwords (AUTH, HELLO … AUTH) are never kept.
 */
import {
  type DbCall,
  type DbKind,
  type DbResp,
  type DbValue,
  redisCommandLine,
  showValue,
} from '../../../core/db.js';
import { dbExchange, SideBuffer } from '../db-common.js';
import { latin1, textValue } from '../db-rows.js';
import type { DecoderOptions, DecoderSink, Side, StreamDecoder } from '../types.js';
import { INVALID, MORE, type ParseState, parseValue, respText } from './resp.js';

const SETUP = new Set(['HELLO', 'AUTH', 'SELECT', 'READONLY', 'READWRITE', 'RESET']);
const SUBSCRIBE = new Set([
  'SUBSCRIBE',
  'PSUBSCRIBE',
  'SSUBSCRIBE',
  'UNSUBSCRIBE',
  'PUNSUBSCRIBE',
  'SUNSUBSCRIBE',
]);
const MESSAGES = new Set(['message', 'pmessage', 'smessage']);
const MAX_QUEUE = 100_000;
export const PASSWORD_OMITTED = '<password omitted>';

interface Cmd {
  name: string;
  args: DbValue[];
  /** The exchange's target: the command line, arguments shortened. */
  target: string;
  start: number;
  end: number;
  notes: string[] | undefined;
  tx?: number;
  /** Subscribe family: replies expected (0 = until the subscription count reaches 0). */
  expect?: number;
  replies?: DbResp[];
  respStart?: number;
}

/** Setup commands: HELLO, AUTH, SELECT, CLIENT SETNAME/SETINFO, READONLY… */
export function redisKind(name: string, args: DbValue[]): DbKind {
  if (SETUP.has(name)) return 'setup';
  if (name === 'CLIENT') {
    const sub = typeof args[0] === 'string' ? args[0].toUpperCase() : '';
    if (sub === 'SETNAME' || sub === 'SETINFO') return 'setup';
  }
  return 'query';
}

/** AUTH [user] password, HELLO v AUTH user password: the password argument is replaced. */
export function hidePasswords(name: string, args: DbValue[]): DbValue[] {
  if (name === 'AUTH' && args.length > 0) {
    const out = [...args];
    out[out.length - 1] = PASSWORD_OMITTED;
    return out;
  }
  if (name === 'HELLO') {
    const out = [...args];
    for (let i = 0; i < out.length; i++) {
      if (typeof out[i] === 'string' && (out[i] as string).toUpperCase() === 'AUTH' && i + 2 < out.length) {
        out[i + 2] = PASSWORD_OMITTED;
        i += 2;
      }
    }
    return out;
  }
  return args;
}

/** `GET "user:1"`, arguments shortened: the exchange's target (core/db.ts, redaction rebuilds it too). */
export const commandLine = redisCommandLine;

/** Shared, never handed out: dbExchange keeps notes only when there are some. */
const NO_NOTES: string[] = [];
const NO_REPLY: unique symbol = Symbol('no-reply');

/** One argument of the command line (what commandLine shows for it). */
function shown(v: DbValue, plain: boolean): string {
  return plain && typeof v === 'string' && v.length <= 40 ? `"${v}"` : showValue(v, 40);
}

/** Command names seen, upper-cased, by a hash of their lower-cased bytes (no string made on a hit). */
const NAMES: Array<{ h: number; name: string } | undefined> = new Array(256);

function commandName(b: Buffer, s: number, e: number): string {
  let h = 0;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c >= 0x80) return b.toString('utf8', s, e).toUpperCase();
    h = (Math.imul(h, 31) + (c >= 97 && c <= 122 ? c - 32 : c)) | 0;
  }
  const slot = (h ^ (h >>> 8)) & 255;
  const hit = NAMES[slot];
  if (hit !== undefined && hit.h === h && hit.name.length === e - s) {
    const name = hit.name;
    let i = 0;
    for (; i < name.length; i++) {
      const c = b[s + i]!;
      if ((c >= 97 && c <= 122 ? c - 32 : c) !== name.charCodeAt(i)) break;
    }
    if (i === name.length) return name;
  }
  const name = latin1(b, s, e).toUpperCase();
  if (e - s <= 32) NAMES[slot] = { h, name };
  return name;
}

/** Set by argValue: the argument is printable ASCII with nothing JSON would escape. */
let plainArg = false;

/** A bulk-string argument as a value (bytesValue's rule), noting whether it shows as is. */
function argValue(b: Buffer, s: number, e: number): DbValue {
  let plain = true;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c < 0x20 || c >= 0x7f) {
      plainArg = false;
      return textValue(b, s, e);
    }
    if (c === 0x22 || c === 0x5c) plain = false;
  }
  plainArg = plain;
  return latin1(b, s, e);
}

/** Digits at b[i..] up to CR: the value, and `digitsEnd` (the CR's offset); -1 not digits, -2 incomplete. */
let digitsEnd = 0;
function digitsAt(b: Buffer, i: number, end: number): number {
  let n = 0;
  const start = i;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c === 13) {
      if (i === start) return -1;
      digitsEnd = i;
      return n;
    }
    if (c < 48 || c > 57 || i - start > 10) return -1;
    n = n * 10 + (c - 48);
  }
  return -2;
}

export class RedisDecoder implements StreamDecoder {
  private readonly client = new SideBuffer();
  private readonly server = new SideBuffer();
  private readonly st: ParseState = { need: 0 };
  private pending: Cmd[] = [];
  /** Index of the oldest unanswered command in `pending` (a queue without shift()). */
  private head = 0;
  private resp3 = false;
  private subscribed = 0;
  private txOpen: number | undefined;
  private txCount = 0;
  /** Set after a gap: pair replies by time, and skip to a plausible start on that side. */
  private clientResync = false;
  private serverResync = false;
  private afterGap = false;
  private readonly maxBuffer: number;
  private clientStartTs = 0;
  private serverStartTs = 0;

  constructor(
    private readonly sink: DecoderSink,
    options?: DecoderOptions,
  ) {
    this.maxBuffer = options?.maxBufferBytes ?? 8 * 1024 * 1024;
  }

  bufferedBytes(): number {
    return this.client.length + this.server.length;
  }

  push(side: Side, data: Uint8Array, tsNs: number): void {
    if (data.length === 0) return;
    try {
      if (side === 'client') {
        if (this.client.length === 0) this.clientStartTs = tsNs;
        this.client.push(data);
        this.drainClient(tsNs);
        this.client.settle();
      } else {
        if (this.server.length === 0) this.serverStartTs = tsNs;
        this.server.push(data);
        this.drainServer(tsNs);
        this.server.settle();
      }
    } catch {
      // never throw: drop this side's partial state and resync
      this.gap(side, 0, tsNs);
    }
  }

  gap(side: Side, length: number, tsNs: number): void {
    this.afterGap = true;
    if (side === 'client') {
      if (this.client.length > 0) this.sink.raw?.('client', this.client.length, 'gap');
      this.client.clear();
      this.clientResync = true;
    } else {
      if (this.server.length > 0) this.sink.raw?.('server', this.server.length, 'gap');
      this.server.clear();
      this.serverResync = true;
      // the lost bytes may have answered any command sent so far
      for (const c of this.drainPending()) this.emitCmd(c, NO_REPLY, tsNs, ['gap', 'no-response']);
    }
    void length;
  }

  end(tsNs: number): void {
    if (this.client.length > 0) {
      this.sink.raw?.('client', this.client.length, 'incomplete');
      this.client.clear();
    }
    if (this.server.length > 0) {
      this.sink.raw?.('server', this.server.length, 'incomplete');
      this.server.clear();
    }
    for (const c of this.drainPending()) {
      if (c.replies && c.replies.length > 0) this.emitCmd(c, c.replies, tsNs, ['truncated']);
      else this.emitCmd(c, NO_REPLY, tsNs, ['no-response']);
    }
  }

  // ---- client side: commands

  private drainClient(ts: number): void {
    for (;;) {
      const { buf, start, end } = this.client;
      if (start >= end) return;
      if (this.clientResync) {
        const at = resyncCommand(buf, start, end);
        if (at < 0) {
          // keep the last bytes: a command start may straddle pushes
          const keep = Math.min(end - start, 32);
          this.sink.raw?.('client', end - start - keep, 'resync');
          this.client.consume(end - start - keep);
          return;
        }
        if (at > start) this.sink.raw?.('client', at - start, 'resync');
        this.client.consume(at - start);
        this.clientResync = false;
        continue;
      }
      let name: string;
      let args: DbValue[];
      let used: number;
      if (buf[start] === 0x2a) {
        // the usual shape, an array of bulk strings, read in place
        const fast = this.bulkCommand(buf, start, end, ts);
        if (fast > 0) {
          this.client.consume(fast);
          continue;
        }
        if (fast === 0) {
          if (end - start > this.maxBuffer) this.giveUp('client', ts);
          return;
        }
        const r = parseValue(buf, start, end, this.st, 0);
        if (r === MORE) {
          if (end - start > this.maxBuffer) this.giveUp('client', ts);
          return;
        }
        if (r === INVALID || !Array.isArray(r) || r.length === 0) {
          this.giveUp('client', ts);
          continue;
        }
        const first = respText(r[0]);
        if (first === undefined) {
          this.giveUp('client', ts);
          continue;
        }
        name = first.toUpperCase();
        args = r.slice(1).map(asArg);
        used = this.st.next! - start;
      } else {
        // inline command: words up to CRLF (redis-cli --no-raw pipes, telnet)
        const nl = buf.indexOf(10, start);
        if (nl === -1 || nl >= end) {
          if (end - start > 64 * 1024) this.giveUp('client', ts);
          return;
        }
        const line = buf.toString('utf8', start, nl).replace(/\r$/, '').trim();
        used = nl + 1 - start;
        if (line === '') {
          this.client.consume(used);
          continue;
        }
        const words = line.split(/\s+/);
        name = words[0]!.toUpperCase();
        args = words.slice(1);
      }
      this.client.consume(used);
      const hidden = hidePasswords(name, args);
      this.command(name, hidden, ts, commandLine(name, hidden));
    }
  }

  /**
   * `*<n>\r\n` and n bulk strings at `i`: the command is taken and its length returned; 0 when it
   * is not complete yet, -1 when it is not that shape (the general parser decides).
   */
  private bulkCommand(b: Buffer, i: number, end: number, ts: number): number {
    const n = digitsAt(b, i + 1, end);
    if (n === -2) return 0;
    if (n <= 0 || n > 1024 * 1024) return -1;
    let p = digitsEnd + 1;
    if (p >= end) return 0;
    if (b[p] !== 10) return -1;
    p++;
    // first pass: the frame is whole (no value made for a command still arriving)
    const first = p;
    for (let k = 0; k < n; k++) {
      if (p >= end) return 0;
      if (b[p] !== 0x24) return -1;
      const len = digitsAt(b, p + 1, end);
      if (len === -2) return 0;
      if (len < 0) return -1;
      p = digitsEnd + 1;
      if (p >= end) return 0;
      if (b[p] !== 10) return -1;
      p += 1 + len;
      if (p + 2 > end) return 0;
      if (b[p] !== 13 || b[p + 1] !== 10) return -1;
      p += 2;
    }
    // second pass: the values
    let q = first;
    let name = '';
    let args: DbValue[] = [];
    let target = '';
    for (let k = 0; k < n; k++) {
      const len = digitsAt(b, q + 1, end);
      const s = digitsEnd + 2;
      const e = s + len;
      if (k === 0) {
        name = commandName(b, s, e);
        target = name;
        args = new Array(n - 1);
      } else {
        const v = argValue(b, s, e);
        args[k - 1] = v;
        if (k <= 8) target += ` ${shown(v, plainArg)}`;
      }
      q = e + 2;
    }
    if (n > 9) target += ` …(${n - 9} more)`;
    if (name === 'AUTH' || name === 'HELLO') {
      args = hidePasswords(name, args);
      target = commandLine(name, args);
    }
    this.command(name, args, ts, target);
    return p - i;
  }

  private giveUp(side: Side, ts: number): void {
    const b = side === 'client' ? this.client : this.server;
    if (b.length > 0) this.sink.raw?.(side, b.length, 'not-resp');
    b.clear();
    if (side === 'client') this.clientResync = true;
    else {
      this.serverResync = true;
      this.afterGap = true;
      for (const c of this.drainPending()) this.emitCmd(c, NO_REPLY, ts, ['gap', 'no-response']);
    }
  }

  /** A whole command (passwords already hidden). */
  private command(name: string, args: DbValue[], ts: number, target: string): void {
    const cmd: Cmd = {
      name,
      args,
      target,
      start: this.clientStartTs || ts,
      end: ts,
      notes: this.afterGap ? ['gap'] : undefined,
    };
    this.clientStartTs = ts;
    if (name === 'MULTI') this.txOpen = ++this.txCount;
    if (this.txOpen !== undefined) cmd.tx = this.txOpen;
    if (name === 'EXEC' || name === 'DISCARD') this.txOpen = undefined;
    if (SUBSCRIBE.has(name)) cmd.expect = args.length;
    if (this.pending.length - this.head >= MAX_QUEUE) {
      const old = this.take()!;
      this.emitCmd(old, NO_REPLY, ts, ['no-response']);
    }
    this.pending.push(cmd);
  }

  /** Removes and returns the oldest pending command. */
  private take(): Cmd | undefined {
    const c = this.pending[this.head];
    if (c === undefined) return undefined;
    this.pending[this.head++] = undefined as unknown as Cmd;
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
    return c;
  }

  /** Every pending command, oldest first, leaving the queue empty. */
  private drainPending(): Cmd[] {
    const all = this.pending.slice(this.head);
    this.pending = [];
    this.head = 0;
    return all;
  }

  // ---- server side: replies and pushes

  private drainServer(ts: number): void {
    for (;;) {
      const { buf, start, end } = this.server;
      if (start >= end) return;
      if (this.serverResync) {
        // a reply starts at a type byte; take the first offset from which a whole value parses
        let at = -1;
        for (let i = start; i < end && i < start + 4096; i++) {
          if (!isType(buf[i]!)) continue;
          const r = parseValue(buf, i, end, this.st, 0);
          if (r !== INVALID && r !== MORE && (this.st.next === end || isType(buf[this.st.next!]!))) {
            at = i;
            break;
          }
          if (r === MORE && i === start) break;
        }
        if (at < 0) {
          if (end - start > 4096) {
            this.sink.raw?.('server', end - start, 'resync');
            this.server.consume(end - start);
          }
          return;
        }
        if (at > start) this.sink.raw?.('server', at - start, 'resync');
        this.server.consume(at - start);
        this.serverResync = false;
        continue;
      }
      const r = parseValue(buf, start, end, this.st, 0);
      if (r === MORE) {
        if (end - start > this.maxBuffer) this.giveUp('server', ts);
        return;
      }
      if (r === INVALID) {
        this.giveUp('server', ts);
        continue;
      }
      this.server.consume(this.st.next! - start);
      const startTs = this.serverStartTs || ts;
      this.serverStartTs = ts;
      this.reply(r, startTs, ts);
    }
  }

  private reply(v: DbResp, startTs: number, ts: number): void {
    // after a gap, a reply that arrived before a command was sent cannot be its answer
    if (this.afterGap && this.pending.length > this.head && this.pending[this.head]!.start > startTs) {
      this.sink.raw?.('server', 0, 'unpaired-after-gap');
      return;
    }
    const head = this.pending[this.head];
    const kind = pushKind(v);
    if (head?.expect !== undefined && kind === head.name.toLowerCase()) {
      head.respStart ??= startTs;
      (head.replies ??= []).push(v);
      const count = subscriptionCount(v);
      if (count !== undefined) this.subscribed = count;
      const done = head.expect > 0 ? head.replies.length >= head.expect : count === 0 || count === undefined;
      if (done) {
        this.take();
        this.emitCmd(head, head.replies, ts, NO_NOTES);
      }
      return;
    }
    const isPush =
      (typeof v === 'object' && v !== null && !Array.isArray(v) && 'push' in v) ||
      (this.subscribed > 0 && Array.isArray(v) && MESSAGES.has(kind ?? ''));
    if (isPush) {
      this.emitPush(v, startTs, ts);
      return;
    }
    if (!head) {
      const call: DbCall = { system: 'redis', kind: 'query', command: '?', reply: v };
      if (isError(v)) call.error = errorOf(v);
      this.sink.exchange(
        dbExchange(
          call,
          { reqStart: startTs, reqEnd: startTs, respStart: startTs, respEnd: ts },
          ['no-request'],
          {
            method: '?',
            target: '?',
            version: this.resp3 ? 'RESP3' : 'RESP2',
            answered: true,
          },
        ),
      );
      return;
    }
    this.take();
    head.respStart = startTs;
    if (head.name === 'HELLO' && !isError(v)) this.resp3 = helloVersion(head.args) === 3;
    if (head.name === 'RESET' && !isError(v)) {
      this.resp3 = false;
      this.subscribed = 0;
    }
    this.emitCmd(head, v, ts, NO_NOTES);
  }

  private emitPush(v: DbResp, startTs: number, ts: number): void {
    const items = Array.isArray(v) ? v : (v as { push: DbResp[] }).push;
    const kind = respText(items[0]) ?? 'push';
    const call: DbCall = { system: 'redis', kind: 'push', command: kind, reply: v };
    const target = commandLine(kind, items.slice(1, 3).map(asArg));
    this.sink.exchange(
      dbExchange(call, { reqStart: startTs, reqEnd: startTs, respStart: startTs, respEnd: ts }, [], {
        method: 'PUSH',
        target,
        version: this.resp3 ? 'RESP3' : 'RESP2',
        answered: true,
      }),
    );
  }

  /** `reply`: the answer (subscribe family: every reply, an array), or NO_REPLY. */
  private emitCmd(c: Cmd, reply: DbResp | typeof NO_REPLY, ts: number, more: string[]): void {
    const call: DbCall = {
      system: 'redis',
      kind: redisKind(c.name, c.args),
      command: c.name,
      params: c.args,
    };
    if (c.tx !== undefined) call.tx = c.tx;
    const answered = reply !== NO_REPLY;
    if (answered) {
      call.reply = reply;
      const err =
        c.expect !== undefined ? (reply as DbResp[]).find(isError) : isError(reply) ? reply : undefined;
      if (err !== undefined) call.error = errorOf(err);
    }
    const notes = c.notes ? [...c.notes, ...more] : more.length ? [...more] : NO_NOTES;
    this.sink.exchange(
      dbExchange(
        call,
        {
          reqStart: c.start,
          reqEnd: c.end,
          respStart: answered ? (c.respStart ?? ts) : undefined,
          respEnd: answered ? ts : undefined,
        },
        notes,
        {
          method: c.name,
          target: c.target,
          version: this.resp3 ? 'RESP3' : 'RESP2',
          answered,
        },
      ),
    );
  }
}

function asArg(v: DbResp): DbValue {
  if (typeof v === 'string' || typeof v === 'number' || v === null) return v;
  if (!Array.isArray(v) && 'b64' in v) return v;
  return respText(v) ?? JSON.stringify(v);
}

function isType(c: number): boolean {
  return (
    c === 0x2b ||
    c === 0x2d ||
    c === 0x3a ||
    c === 0x24 ||
    c === 0x2a ||
    c === 0x5f ||
    c === 0x2c ||
    c === 0x23 ||
    c === 0x28 ||
    c === 0x21 ||
    c === 0x3d ||
    c === 0x25 ||
    c === 0x7e ||
    c === 0x3e ||
    c === 0x7c
  );
}

/** A client command starts a line: `*<n>\r\n$`. Offset of the first one at or after `from`. */
function resyncCommand(b: Buffer, from: number, end: number): number {
  let i = from;
  while (i < end) {
    const at = b.indexOf(0x2a, i);
    if (at === -1 || at >= end) return -1;
    if (at === from || b[at - 1] === 10) {
      let j = at + 1;
      while (j < end && b[j]! >= 48 && b[j]! <= 57) j++;
      if (j > at + 1 && j + 2 < end && b[j] === 13 && b[j + 1] === 10 && b[j + 2] === 0x24) return at;
      if (j + 2 >= end) return -1;
    }
    i = at + 1;
  }
  return -1;
}

function pushKind(v: DbResp): string | undefined {
  const items = Array.isArray(v) ? v : v && typeof v === 'object' && 'push' in v ? v.push : undefined;
  return items ? respText(items[0])?.toLowerCase() : undefined;
}

function subscriptionCount(v: DbResp): number | undefined {
  const items = Array.isArray(v) ? v : v && typeof v === 'object' && 'push' in v ? v.push : undefined;
  const n = items?.[2];
  return typeof n === 'number' ? n : undefined;
}

function isError(v: DbResp): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && ('error' in v || 'blobError' in v);
}

function errorOf(v: DbResp): { code: string; message: string } {
  const text =
    (v as { error?: string; blobError?: string }).error ?? (v as { blobError: string }).blobError ?? '';
  const sp = text.indexOf(' ');
  return sp > 0 ? { code: text.slice(0, sp), message: text.slice(sp + 1) } : { code: text, message: '' };
}

function helloVersion(args: DbValue[]): number {
  const v = Number(typeof args[0] === 'string' ? args[0] : 2);
  return Number.isFinite(v) ? v : 2;
}
