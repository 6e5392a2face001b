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
import { type DbCall, type DbKind, type DbResp, type DbValue, showValue } from '../../../core/db.js';
import { dbExchange, SideBuffer } from '../db-common.js';
import type { DecoderOptions, DecoderSink, Side, StreamDecoder } from '../types.js';
import { BAD, NEED, type ParseState, parseResp, respText } from './resp.js';

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
  start: number;
  end: number;
  notes: string[];
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

/** `GET "user:1"`, arguments shortened: the exchange's target. */
export function commandLine(name: string, args: DbValue[]): string {
  const shown = args.slice(0, 8).map((a) => showValue(a, 40));
  if (args.length > 8) shown.push(`…(${args.length - 8} more)`);
  return [name, ...shown].join(' ');
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
      for (const c of this.drainPending()) this.emitCmd(c, undefined, tsNs, ['gap', 'no-response']);
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
      else this.emitCmd(c, undefined, tsNs, ['no-response']);
    }
  }

  // ---- client side: commands

  private drainClient(ts: number): void {
    for (;;) {
      const { buf, start, end } = this.client.raw();
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
        const r = parseResp(buf, start, end, this.st);
        if (r === NEED) {
          if (end - start > this.maxBuffer) this.giveUp('client', ts);
          return;
        }
        if (r === BAD || !Array.isArray(r.value) || r.value.length === 0) {
          this.giveUp('client', ts);
          continue;
        }
        const parts = r.value as DbResp[];
        const first = respText(parts[0]);
        if (first === undefined) {
          this.giveUp('client', ts);
          continue;
        }
        name = first.toUpperCase();
        args = parts.slice(1).map(asArg);
        used = r.next - start;
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
      this.command(name, args, ts);
    }
  }

  private giveUp(side: Side, ts: number): void {
    const b = side === 'client' ? this.client : this.server;
    if (b.length > 0) this.sink.raw?.(side, b.length, 'not-resp');
    b.clear();
    if (side === 'client') this.clientResync = true;
    else {
      this.serverResync = true;
      this.afterGap = true;
      for (const c of this.drainPending()) this.emitCmd(c, undefined, ts, ['gap', 'no-response']);
    }
  }

  private command(name: string, rawArgs: DbValue[], ts: number): void {
    const args = hidePasswords(name, rawArgs);
    const cmd: Cmd = { name, args, start: this.clientStartTs || ts, end: ts, notes: [] };
    this.clientStartTs = ts;
    if (this.afterGap) cmd.notes.push('gap');
    if (name === 'MULTI') this.txOpen = ++this.txCount;
    if (this.txOpen !== undefined) cmd.tx = this.txOpen;
    if (name === 'EXEC' || name === 'DISCARD') this.txOpen = undefined;
    if (SUBSCRIBE.has(name)) cmd.expect = args.length;
    if (this.pending.length - this.head >= MAX_QUEUE) {
      const old = this.take()!;
      this.emitCmd(old, undefined, ts, ['no-response']);
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
      const { buf, start, end } = this.server.raw();
      if (start >= end) return;
      if (this.serverResync) {
        // a reply starts at a type byte; take the first offset from which a whole value parses
        let at = -1;
        for (let i = start; i < end && i < start + 4096; i++) {
          if (!isType(buf[i]!)) continue;
          const r = parseResp(buf, i, end, this.st);
          if (r !== BAD && r !== NEED && (r.next === end || isType(buf[r.next]!))) {
            at = i;
            break;
          }
          if (r === NEED && i === start) break;
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
      const r = parseResp(buf, start, end, this.st);
      if (r === NEED) {
        if (end - start > this.maxBuffer) this.giveUp('server', ts);
        return;
      }
      if (r === BAD) {
        this.giveUp('server', ts);
        continue;
      }
      this.server.consume(r.next - start);
      const startTs = this.serverStartTs || ts;
      this.serverStartTs = ts;
      this.reply(r.value, startTs, ts);
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
        this.emitCmd(head, head.replies, ts, []);
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
    this.emitCmd(head, [v], ts, []);
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

  private emitCmd(c: Cmd, replies: DbResp[] | undefined, ts: number, more: string[]): void {
    const call: DbCall = {
      system: 'redis',
      kind: redisKind(c.name, c.args),
      command: c.name,
      params: c.args,
    };
    if (c.tx !== undefined) call.tx = c.tx;
    if (replies) {
      call.reply = c.expect !== undefined ? (replies as DbResp[]) : replies[0]!;
      const err = replies.find(isError);
      if (err !== undefined) call.error = errorOf(err);
    }
    const notes = [...c.notes, ...more];
    this.sink.exchange(
      dbExchange(
        call,
        {
          reqStart: c.start,
          reqEnd: c.end,
          ...(replies ? { respStart: c.respStart ?? ts, respEnd: ts } : {}),
        },
        notes,
        {
          method: c.name,
          target: commandLine(c.name, c.args),
          version: this.resp3 ? 'RESP3' : 'RESP2',
          answered: replies !== undefined,
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
