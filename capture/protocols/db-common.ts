/**
 * What the database decoders (postgres/, mysql/, redis/) share: a per-side byte buffer that hands
 * out whole messages, and the projection of a DbCall onto the exchange's request/response
 * (core/db.ts says which fields mean what).
 */
import type { DbCall, DbSystem } from '../../core/db.js';
import { emptyBody } from '../../core/exchange.js';
import { asBuffer } from './bytes.js';
import type { DecodedExchange } from './types.js';

/**
 * Bytes of one side not yet consumed. `data()` is a view of [start, end); the parser consumes from
 * the front; pushed memory is copied only when a message spans pushes.
 */
export class SideBuffer {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** The current pushed chunk is used in place while nothing is carried. */
  private borrowed = false;

  get length(): number {
    return this.end - this.start;
  }

  push(data: Uint8Array): void {
    const b = asBuffer(data);
    if (this.length === 0) {
      this.buf = b;
      this.start = 0;
      this.end = b.length;
      this.borrowed = true;
      return;
    }
    const n = this.length;
    if (this.borrowed || this.end + b.length > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(256, (n + b.length) * 2));
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
      this.start = 0;
      this.end = n;
      this.borrowed = false;
    }
    b.copy(this.buf, this.end);
    this.end += b.length;
  }

  /** Keep what is left beyond this push (the caller's memory may be reused). */
  settle(): void {
    if (!this.borrowed || this.length === 0) {
      if (this.length === 0) this.clear();
      return;
    }
    const rest = Buffer.allocUnsafe(Math.max(256, this.length * 2));
    this.buf.copy(rest, 0, this.start, this.end);
    this.buf = rest;
    this.end = this.length;
    this.start = 0;
    this.borrowed = false;
  }

  view(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }

  /** The underlying buffer and the offsets of the unconsumed bytes (fast paths index it directly). */
  raw(): { buf: Buffer; start: number; end: number } {
    return { buf: this.buf, start: this.start, end: this.end };
  }

  consume(n: number): void {
    this.start += n;
    if (this.start >= this.end) this.clear();
  }

  clear(): void {
    this.start = 0;
    this.end = 0;
    if (this.borrowed || this.buf.length > 64 * 1024) this.buf = Buffer.alloc(0);
    this.borrowed = false;
  }
}

const VERSION: Record<DbSystem, string> = { postgres: 'postgres/3.0', mysql: 'mysql/10', redis: 'RESP2' };

/** First SQL keyword, upper-cased (`SELECT`, `WITH`…), skipping comments and parentheses. */
export function sqlVerb(text: string): string {
  let i = 0;
  const n = text.length;
  for (;;) {
    while (i < n && /[\s(;]/.test(text[i]!)) i++;
    if (text.startsWith('--', i)) {
      const nl = text.indexOf('\n', i);
      if (nl === -1) return 'SQL';
      i = nl + 1;
      continue;
    }
    if (text.startsWith('/*', i)) {
      const e = text.indexOf('*/', i + 2);
      if (e === -1) return 'SQL';
      i = e + 2;
      continue;
    }
    break;
  }
  let j = i;
  while (j < n && /[A-Za-z_]/.test(text[j]!)) j++;
  return j > i ? text.slice(i, j).toUpperCase() : 'SQL';
}

export interface CallTiming {
  reqStart: number;
  reqEnd: number;
  respStart?: number;
  respEnd?: number;
}

/** A DbCall as a DecodedExchange (request/response are the projection; the call is extras.db). */
export function dbExchange(
  call: DbCall,
  t: CallTiming,
  notes: string[],
  opts: { method?: string; target?: string; version?: string; answered: boolean },
): DecodedExchange {
  const version = opts.version ?? VERSION[call.system];
  const method =
    opts.method ??
    (call.kind === 'session' ? 'STARTUP' : call.text !== undefined ? sqlVerb(call.text) : call.command);
  const target = opts.target ?? call.text ?? call.command;
  const ex: DecodedExchange = {
    protocol: call.system,
    request: { method, target, version, headers: [], body: emptyBody() },
    requestStartNs: t.reqStart,
    requestEndNs: t.reqEnd,
    extras: { db: call },
  };
  if (opts.answered) {
    const failed = call.error !== undefined;
    ex.response = {
      status: failed ? 500 : 200,
      reason: failed ? `${call.error!.code} ${call.error!.message}`.slice(0, 200) : answerReason(call),
      version,
      headers: [],
      body: emptyBody(),
    };
    if (t.respStart !== undefined) ex.responseStartNs = t.respStart;
    if (t.respEnd !== undefined) ex.responseEndNs = t.respEnd;
  }
  if (notes.length) ex.notes = [...new Set(notes)];
  return ex;
}

function answerReason(call: DbCall): string {
  const last = call.results?.[call.results.length - 1];
  if (last?.tag) return last.tag;
  if (last?.ok) return `OK ${last.ok.affectedRows}`;
  if (last?.rows) return `${last.rowCount ?? last.rows.length} rows`;
  return 'OK';
}
