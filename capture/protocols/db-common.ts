/**
 * What the database decoders (postgres/, mysql/, redis/) share: a per-side byte buffer that hands
 * out whole messages, and the projection of a DbCall onto the exchange's request/response
 * (core/db.ts says which fields mean what).
 */
import type { DbCall, DbSystem } from '../../core/db.js';
import { asBuffer, EMPTY } from './bytes.js';
import { rowsHeld } from './db-rows.js';
import type { DecodedExchange } from './types.js';

/**
 * Bytes of one side not yet consumed. `data()` is a view of [start, end); the parser consumes from
 * the front; pushed memory is copied only when a message spans pushes.
 */
export class SideBuffer {
  /** The unconsumed bytes are buf[start, end): decoders index them directly (no object per message). */
  buf: Buffer = EMPTY;
  start = 0;
  end = 0;
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

  consume(n: number): void {
    this.start += n;
    if (this.start >= this.end) this.clear();
  }

  clear(): void {
    this.start = 0;
    this.end = 0;
    if (this.borrowed || this.buf.length > 64 * 1024) this.buf = EMPTY;
    this.borrowed = false;
  }
}

/** A database exchange has no body: one shared empty array (what emptyBody() holds; nothing can be written into it). */
const NO_BYTES = new Uint8Array(0);

const VERSION: Record<DbSystem, string> = { postgres: 'postgres/3.0', mysql: 'mysql/10', redis: 'RESP2' };

const verbs = new Map<string, string>();

/** First SQL keyword, upper-cased (`SELECT`, `WITH`…), skipping comments and parentheses. */
export function sqlVerb(text: string): string {
  const known = verbs.get(text);
  if (known !== undefined) return known;
  const v = scanVerb(text);
  if (text.length <= 4096) {
    // statements repeat: their verb is looked up, not scanned (long texts are not kept alive for it)
    if (verbs.size >= 512) verbs.clear();
    verbs.set(text, v);
  }
  return v;
}

function scanVerb(text: string): string {
  let i = 0;
  const n = text.length;
  for (;;) {
    while (i < n) {
      const c = text.charCodeAt(i);
      // whitespace, '(' and ';'
      if (c === 32 || (c >= 9 && c <= 13) || c === 40 || c === 59 || (c > 127 && /\s/.test(text[i]!))) i++;
      else break;
    }
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
  while (j < n) {
    const c = text.charCodeAt(j);
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95) j++;
    else break;
  }
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
    request: { method, target, version, headers: [], body: { data: NO_BYTES, size: 0, truncated: false } },
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
      body: { data: NO_BYTES, size: 0, truncated: false },
    };
    if (t.respStart !== undefined) ex.responseStartNs = t.respStart;
    if (t.respEnd !== undefined) ex.responseEndNs = t.respEnd;
  }
  // notes: a fresh array from the decoder, deduplicated when there can be duplicates
  if (notes.length === 1) ex.notes = notes;
  else if (notes.length > 1) ex.notes = [...new Set(notes)];
  return ex;
}

function answerReason(call: DbCall): string {
  const last = call.results?.[call.results.length - 1];
  if (last?.tag) return last.tag;
  if (last?.ok) return `OK ${last.ok.affectedRows}`;
  const held = last ? rowsHeld(last) : undefined;
  if (held !== undefined) return `${last!.rowCount ?? held} rows`;
  return 'OK';
}
