/**
 * Database calls are outbound calls: per inbound request, the build must make the same queries
 * and commands the recorded service made, with the same parameters, and get the same answers.
 *
 * A call's signature is `<system> <normalised text>` (PostgreSQL/MySQL: the SQL with whitespace
 * collapsed; Redis: the command name). Calls are counted per signature (missing → breaking; extra
 * → breaking: an N+1 query or an extra write is a change of behaviour, and a mock can only answer
 * it from another recording). Calls of one signature are then paired in order and compared:
 * parameters / Redis arguments (`changed-value`, one per position) and the answer the build got
 * (`changed-value` on `answer`: rows, command tag, OK counts, error, Redis reply). Connection
 * start-up (`session`) and server pushes are not compared; session settings (`setup`: SET, HELLO,
 * SELECT db) are, rated `warning`. A connection's opening calls (`opening`, marked by
 * snapshots/links.ts: start-up, settings and a Redis client's handshake up to its first other call)
 * belong to the connection, not to the request under which a pool happened to open it: they are
 * not counted, only paired with the recorded request's own opening calls and compared, rated
 * `warning`. Noise (volatile formats in parameters, noise runs, baselines)
 * applies as to any difference.
 */
import { type DbCall, type DbValue, dbCallOf, showValue } from '../core/db.js';
import type { Exchange } from '../core/exchange.js';
import type { Difference, Rating } from './types.js';

/** How the calls were linked to their request, e.g. `thread` or `goroutine, time-window`. */
export function linkedBy(calls: Exchange[]): string {
  const methods = new Set(calls.map((c) => c.cause?.method ?? 'time-window'));
  return [...methods].sort().join(', ');
}

const norm = (t: string): string =>
  t
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/(\s*;)+$/, '');

export function dbSignature(call: DbCall): string {
  return call.system === 'redis'
    ? `redis ${call.command}`
    : `${call.system} ${norm(call.text ?? call.command)}`;
}

/** True for exchanges this module compares (the rest of outbound.ts leaves them alone). */
export function isDbCall(ex: Exchange): boolean {
  return dbCallOf(ex) !== undefined;
}

interface Item {
  call: DbCall;
  sig: string;
  ex: Exchange;
  /** `sig`, and whether the call opened its connection: the two are paired apart. */
  key: string;
}

function items(list: Exchange[]): Item[] {
  const out: Item[] = [];
  for (const ex of list) {
    const call = dbCallOf(ex);
    if (!call || call.kind === 'session' || call.kind === 'push') continue;
    const sig = dbSignature(call);
    out.push({ call, sig, ex, key: call.opening ? `opening\t${sig}` : sig });
  }
  return out;
}

const short = (sig: string): string => (sig.length > 140 ? `${sig.slice(0, 140)}…` : sig);

/** What an answer says, compactly: rows + tags/OKs + error, or the Redis reply. */
export function answerOf(call: DbCall): unknown {
  if (call.system === 'redis') return call.reply ?? null;
  const results = (call.results ?? []).map((r) => ({
    ...(r.columns ? { columns: r.columns.map((c) => `${c.name}:${c.type}`) } : {}),
    ...(r.rows ? { rows: r.rows } : {}),
    ...(r.tag !== undefined ? { tag: r.tag } : {}),
    ...(r.ok ? { affected: r.ok.affectedRows, insertId: r.ok.insertId } : {}),
  }));
  return { results, ...(call.error ? { error: `${call.error.code} ${call.error.message}` } : {}) };
}

const valueText = (v: DbValue): string =>
  v === null ? 'NULL' : typeof v === 'object' ? `b64:${v.b64}` : String(v);

export function compareDbCalls(recorded: Exchange[], candidate: Exchange[]): Difference[] {
  const a = items(recorded);
  const b = items(candidate);
  const group = (list: Item[]): Map<string, Item[]> => {
    const m = new Map<string, Item[]>();
    for (const it of list) {
      const l = m.get(it.key);
      if (l) l.push(it);
      else m.set(it.key, [it]);
    }
    return m;
  };
  const ga = group(a);
  const gb = group(b);
  const out: Difference[] = [];
  for (const key of [...new Set([...ga.keys(), ...gb.keys()])].sort()) {
    const ra = ga.get(key) ?? [];
    const rb = gb.get(key) ?? [];
    const first = (ra[0] ?? rb[0])!;
    const sig = first.sig;
    const opening = first.call.opening === true;
    const rating: Rating = opening || first.call.kind === 'setup' ? 'warning' : 'breaking';
    const path = `outbound:${short(sig)}`;
    // opening calls are not counted: how many a request sees depends on the pool, not the build
    if (!opening && rb.length < ra.length) {
      const n = ra.length - rb.length;
      const link = linkedBy(ra.map((i) => i.ex));
      out.push({
        target: 'outbound',
        path,
        kind: 'missing-call',
        rating,
        recorded: ra.length,
        candidate: rb.length,
        message: `${n} fewer call${n > 1 ? 's' : ''} to ${short(sig)} (recorded ${ra.length}, now ${rb.length}; linked by ${link})`,
        link,
      });
    } else if (!opening && rb.length > ra.length) {
      const n = rb.length - ra.length;
      const link = linkedBy(rb.map((i) => i.ex));
      out.push({
        target: 'outbound',
        path,
        kind: 'extra-call',
        rating,
        recorded: ra.length,
        candidate: rb.length,
        message: `${n} extra call${n > 1 ? 's' : ''} to ${short(sig)} (recorded ${ra.length}, now ${rb.length}; linked by ${link})`,
        link,
      });
    }
    const seen = new Set<string>();
    const push = (d: Difference): void => {
      const k = `${d.path}\t${d.kind}`;
      if (seen.has(k)) return;
      seen.add(k);
      out.push(d);
    };
    for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
      const ca = ra[i]!.call;
      const cb = rb[i]!.call;
      const pa = ca.params ?? [];
      const pb = cb.params ?? [];
      const n = Math.max(pa.length, pb.length);
      for (let k = 0; k < n; k++) {
        const va = pa[k];
        const vb = pb[k];
        if (va !== undefined && vb !== undefined && valueText(va) === valueText(vb)) continue;
        const name = ca.system === 'redis' ? `arg ${k + 1}` : `$${k + 1}`;
        push({
          target: 'outbound',
          path: `${path} ${name}`,
          kind: va === undefined ? 'new-field' : vb === undefined ? 'missing-field' : 'changed-value',
          rating,
          ...(va !== undefined
            ? { recorded: va === null || typeof va !== 'object' ? va : valueText(va) }
            : {}),
          ...(vb !== undefined
            ? { candidate: vb === null || typeof vb !== 'object' ? vb : valueText(vb) }
            : {}),
          message: `${short(sig)} sends ${name}: ${va === undefined ? 'nothing' : showValue(va)} → ${vb === undefined ? 'nothing' : showValue(vb)}`,
        });
      }
      const aa = JSON.stringify(answerOf(ca));
      const ab = JSON.stringify(answerOf(cb));
      if (aa !== ab) {
        push({
          target: 'outbound',
          path: `${path} answer`,
          kind: 'changed-value',
          rating,
          recorded: aa.length > 300 ? `${aa.slice(0, 300)}…` : aa,
          candidate: ab.length > 300 ? `${ab.slice(0, 300)}…` : ab,
          message: `${short(sig)} got another answer than recorded (${cb.error ? `error ${cb.error.code} ${cb.error.message}` : 'different rows or counts'})`,
        });
      }
    }
  }
  return out;
}
