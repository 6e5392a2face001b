/**
 * The recorded database calls of one mock endpoint, and how a live call finds its answer.
 *
 * Key: the call's scope kind (session setup or query), its normalised text (whitespace runs
 * collapsed, trailing `;` dropped; Redis: the command name) and its parameters (Redis: arguments).
 * A recorded parameter holding a redaction placeholder (`REDACTED-…`) matches any live value: the
 * build sends its own credential there. Identical keys answer in recorded order. Scope: a call made
 * while the runner replays inbound request R prefers recordings made while R was recorded, then
 * recordings made outside any request (start-up queries), then any. Statement names never enter
 * the key: a statement prepared at replay maps to the recorded one by its text. No fuzzy matching:
 * a miss names the nearest recording and what differs.
 */
import { type DbCall, type DbValue, dbCallOf, showValue } from '../../../core/db.js';
import type { Exchange } from '../../../core/exchange.js';

export interface DbEntry {
  exchange: Exchange;
  call: DbCall;
  key: string;
  text: string;
  params: DbValue[];
  /** Recorded inbound request this call was made for (undefined: outside any request). */
  during?: string;
  used: boolean;
  /** Pushes the server sent right after this call's answer on the same connection. */
  pushes: DbCall[];
  /**
   * PostgreSQL: the call only prepared or described statements (Parse/Describe/Sync, no Execute —
   * pgx's statement cache, JDBC after prepareThreshold, a batch's prepare round). Kept for statement
   * descriptions, never the answer to an Execute.
   */
  describeOnly?: boolean;
}

export interface LiveDbCall {
  kind: 'setup' | 'query' | 'session';
  text: string;
  params: DbValue[];
  /** Redis: sent between MULTI and EXEC (answered QUEUED), matched only with such recordings. */
  inTx?: boolean;
  /**
   * PostgreSQL: the result formats the live Bind asked for. Among recordings that fit, one answered
   * in the same formats is taken first (JDBC switches to binary once a statement is server-prepared,
   * so the same query is recorded both ways; the mock answers with the recorded bytes).
   */
  resultFormats?: number[];
}

/** Result formats as one key: none given and all-text are the same. */
function formatKey(f: number[] | undefined): string {
  if (!f || f.every((x) => x === 0)) return 'text';
  return f.length === 1 ? `all:${f[0]}` : f.join(',');
}

export interface Nearest {
  entry: DbEntry;
  reason: string;
}

const PLACEHOLDER = /REDACTED-[0-9a-f]{16}/;

/** Whitespace runs become one space; leading/trailing space and trailing semicolons go. */
export function normaliseSql(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/(\s*;)+$/, '');
}

export function liveKey(kind: string, text: string, inTx = false): string {
  return `${kind === 'setup' ? 'setup' : 'query'}\u0000${text}${inTx ? '\u0000tx' : ''}`;
}

function textOf(call: DbCall): string {
  if (call.system === 'redis') return call.command;
  return normaliseSql(call.text ?? call.command);
}

const same = (rec: DbValue, live: DbValue): boolean => {
  if (typeof rec === 'string' && PLACEHOLDER.test(rec)) return true;
  if (rec === null || live === null) return rec === live;
  if (typeof rec === 'object' || typeof live === 'object')
    return typeof rec === 'object' && typeof live === 'object' && rec.b64 === live.b64;
  return String(rec) === String(live);
};

export function paramsMatch(rec: DbValue[], live: DbValue[]): boolean {
  if (rec.length !== live.length) return false;
  for (let i = 0; i < rec.length; i++) if (!same(rec[i]!, live[i]!)) return false;
  return true;
}

export class DbBook {
  readonly entries: DbEntry[] = [];
  private readonly byKey = new Map<string, DbEntry[]>();
  /** Exact (key, parameters) → recordings not yet answered, in recorded order (no placeholders). */
  private readonly exact = new Map<string, DbEntry[]>();
  /** Keys whose recordings hold a redaction placeholder: matched by scanning. */
  private readonly wild = new Set<string>();
  /** The recorded session (startup/handshake/HELLO answer) to present to clients. */
  readonly sessions: DbCall[] = [];

  constructor(recorded: Exchange[], duringOf: (ex: Exchange) => string | undefined) {
    const sorted = [...recorded].sort(
      (a, b) => a.timing.startUs - b.timing.startUs || a.connection.order - b.connection.order,
    );
    const lastOnConn = new Map<string, DbEntry>();
    for (const ex of sorted) {
      const call = dbCallOf(ex);
      if (!call) continue;
      if (call.kind === 'session') {
        this.sessions.push(call);
        continue;
      }
      if (call.kind === 'push') {
        lastOnConn.get(ex.connection.id)?.pushes.push(call);
        continue;
      }
      if (!ex.response) continue;
      const text = textOf(call);
      const entry: DbEntry = {
        exchange: ex,
        call,
        key: liveKey(
          call.kind,
          text,
          call.system === 'redis' && call.tx !== undefined && !/^(MULTI|EXEC|DISCARD)$/.test(call.command),
        ),
        text,
        params: call.params ?? [],
        used: false,
        pushes: [],
      };
      if (call.system === 'postgres' && call.steps !== undefined && !call.steps.includes('E'))
        entry.describeOnly = true;
      const d = duringOf(ex);
      if (d !== undefined) entry.during = d;
      this.entries.push(entry);
      lastOnConn.set(ex.connection.id, entry);
      const list = this.byKey.get(entry.key);
      if (list) list.push(entry);
      else this.byKey.set(entry.key, [entry]);
      if (entry.params.some((p) => typeof p === 'string' && PLACEHOLDER.test(p))) this.wild.add(entry.key);
      if (entry.describeOnly) continue;
      const ek = exactKey(entry.key, entry.params);
      const same = this.exact.get(ek);
      if (same) same.push(entry);
      else this.exact.set(ek, [entry]);
    }
  }

  /** Recorded calls with this text (any parameters): for statement descriptions. */
  withText(kind: string, text: string, inTx = false): DbEntry[] {
    return (
      this.byKey.get(liveKey(kind, text, inTx)) ??
      this.byKey.get(liveKey(kind === 'setup' ? 'query' : 'setup', text, inTx)) ??
      []
    );
  }

  /** The next recording for a live call, taken (used) — undefined on a miss. */
  match(live: LiveDbCall, during: string | undefined): DbEntry | undefined {
    const list = this.withText(live.kind, live.text, live.inTx);
    const key = list[0]?.key;
    // fast path: no placeholder under this key, so only recordings with these exact parameters fit
    const fits =
      key !== undefined && !this.wild.has(key)
        ? (this.exact.get(exactKey(key, live.params)) ?? [])
        : list.filter((e) => !e.describeOnly && paramsMatch(e.params, live.params));
    if (fits.length === 0) return undefined;
    const unused = fits.filter((e) => !e.used);
    let pool = unused.length > 0 ? unused : fits;
    if (live.resultFormats !== undefined) {
      const want = formatKey(live.resultFormats);
      const same = pool.filter((e) => formatKey(e.call.resultFormats) === want);
      if (same.length > 0) pool = same;
    }
    const pick =
      pool.find((e) => during !== undefined && e.during === during) ??
      pool.find((e) => e.during === undefined) ??
      pool[0]!;
    pick.used = true;
    // past the end, the last one again (like the HTTP mocks)
    return unused.length > 0 ? pick : pool[pool.length - 1];
  }

  /** The nearest recording and the first thing that differs. */
  nearest(live: LiveDbCall): Nearest | undefined {
    if (this.entries.length === 0) return undefined;
    const all = this.withText(live.kind, live.text, live.inTx);
    // an Execute is compared with recorded Executes (a prepare round has no parameters to compare)
    const executed = all.filter((e) => !e.describeOnly);
    const sameText = executed.length > 0 ? executed : all;
    if (sameText.length > 0) {
      const e = sameText.find((x) => !x.used) ?? sameText[0]!;
      return { entry: e, reason: paramDiff(e.params, live.params) };
    }
    let best: DbEntry | undefined;
    let bestScore = -1;
    const words = new Set(live.text.toLowerCase().split(/[^a-z0-9_$?]+/));
    for (const e of this.entries) {
      const w = e.text.toLowerCase().split(/[^a-z0-9_$?]+/);
      let common = 0;
      for (const x of w) if (words.has(x)) common++;
      const score = common / Math.max(w.length, words.size) + (e.used ? 0 : 0.001);
      if (score > bestScore) {
        best = e;
        bestScore = score;
      }
    }
    return { entry: best!, reason: `text differs: recorded ${quote(best!.text)}, live ${quote(live.text)}` };
  }

  stats(): { total: number; used: number } {
    return { total: this.entries.length, used: this.entries.filter((e) => e.used).length };
  }
}

function exactKey(key: string, params: DbValue[]): string {
  return `${key}\u0001${params.map((v) => (v === null ? '\u0002' : typeof v === 'object' ? `b:${v.b64}` : String(v))).join('\u0001')}`;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 160 ? `${s.slice(0, 160)}…` : s);
}

function paramDiff(rec: DbValue[], live: DbValue[]): string {
  if (rec.length !== live.length)
    return `parameter count differs (recorded ${rec.length}, live ${live.length})`;
  for (let i = 0; i < rec.length; i++) {
    if (!same(rec[i]!, live[i]!))
      return `parameter ${i + 1} differs (recorded ${showValue(rec[i]!)}, live ${showValue(live[i]!)})`;
  }
  return 'same text and parameters, but every recording of it was answered already';
}

/** One line naming a recorded call, for misses. */
export function describeEntry(e: DbEntry): string {
  const p = e.params.length ? ` [${e.params.map((v) => showValue(v, 30)).join(', ')}]` : '';
  return `${e.exchange.request.method} ${e.text.slice(0, 160)}${p}`;
}
