/**
 * Outbound calls per inbound request: the build must make the same set of downstream calls the
 * recorded service made, with the same parameters. Calls are compared as a multiset of signatures
 * `METHOD host /path/{id}`; ports and IP literals are left out (mocks listen elsewhere than the
 * recorded dependency). Calls of the same signature are then paired in order and what they send is
 * compared: query parameters and the JSON (or text) request body. The mocks may still answer a
 * call whose parameters changed (a field the dependency echoes is treated as volatile there), so
 * this is where a changed parameter shows.
 */
import { type Exchange, headerValue } from '../core/exchange.js';
import { viewBody } from './body.js';
import { diffJson, jsonType } from './json-diff.js';
import { compareDbCalls, isDbCall } from './db-calls.js';
import { pathTemplate } from './routes.js';
import type { Difference, Rating } from './types.js';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function hostOf(ex: Exchange): string {
  const raw =
    ex.peer.host ??
    headerValue(ex.request.headers, 'host') ??
    headerValue(ex.request.headers, ':authority') ??
    '';
  const host = raw.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (host === '' || /^[\d.]+$/.test(host) || host.includes(':')) return '';
  return host;
}

export function callSignature(ex: Exchange): string {
  const host = hostOf(ex);
  return `${ex.request.method} ${host ? `${host} ` : ''}${pathTemplate(ex.request.target)}`;
}

function queryOf(target: string): Map<string, string> {
  const out = new Map<string, string[]>();
  const q = target.indexOf('?');
  if (q !== -1) {
    for (const part of target.slice(q + 1).split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const dec = (x: string): string => {
        try {
          return decodeURIComponent(x.replace(/\+/g, ' '));
        } catch {
          return x;
        }
      };
      const k = dec(eq === -1 ? part : part.slice(0, eq));
      const list = out.get(k) ?? [];
      list.push(eq === -1 ? '' : dec(part.slice(eq + 1)));
      out.set(k, list);
    }
  }
  return new Map([...out].map(([k, v]) => [k, v.join(',')]));
}

const PARAM_RATING: Record<string, Rating> = { 'changed-type': 'breaking', 'missing-field': 'breaking' };
const show = (v: unknown): string => JSON.stringify(v) ?? 'undefined';

/** What one call sends compared with what the recorded call sent: query parameters and body. */
function compareParams(sig: string, a: Exchange, b: Exchange): Difference[] {
  const out: Difference[] = [];
  const base = `outbound:${sig}`;
  const qa = queryOf(a.request.target);
  const qb = queryOf(b.request.target);
  for (const name of [...new Set([...qa.keys(), ...qb.keys()])].sort()) {
    const va = qa.get(name);
    const vb = qb.get(name);
    if (va === vb) continue;
    const kind = va === undefined ? 'new-field' : vb === undefined ? 'missing-field' : 'changed-value';
    out.push({
      target: 'outbound',
      path: `${base} ?${name}`,
      kind,
      rating: PARAM_RATING[kind] ?? 'warning',
      ...(va !== undefined ? { recorded: va } : {}),
      ...(vb !== undefined ? { candidate: vb } : {}),
      message: `${sig} sends query ${name}: ${show(va)} → ${show(vb)}`,
    });
  }
  const ba = viewBody(a.request.body, a.request.headers);
  const bb = viewBody(b.request.body, b.request.headers);
  if (ba.truncated || bb.truncated) return out;
  if (ba.kind === 'json' && bb.kind === 'json') {
    for (const d of diffJson(ba.value, bb.value, 20)) {
      out.push({
        target: 'outbound',
        path: `${base} ${d.path}`,
        kind: d.kind,
        rating: PARAM_RATING[d.kind] ?? 'warning',
        recorded: d.recorded,
        candidate: d.candidate,
        message:
          d.kind === 'changed-type'
            ? `${sig} sends ${d.path} as ${jsonType(d.candidate)} ${show(d.candidate)} (was ${jsonType(d.recorded)} ${show(d.recorded)})`
            : d.kind === 'array-length'
              ? `${sig} sends ${d.path} with ${String(d.candidate)} items (was ${String(d.recorded)})`
              : `${sig} sends ${d.path}: ${show(d.recorded)} → ${show(d.candidate)}`,
      });
    }
  } else if (ba.kind !== bb.kind || (ba.kind === 'text' && bb.kind === 'text' && ba.text !== bb.text)) {
    const text = (v: typeof ba): string =>
      v.kind === 'text' ? v.text.slice(0, 200) : v.kind === 'json' ? show(v.value).slice(0, 200) : v.kind;
    out.push({
      target: 'outbound',
      path: `${base} body`,
      kind: ba.kind === bb.kind ? 'changed-text' : 'body-kind',
      rating: 'warning',
      recorded: text(ba),
      candidate: text(bb),
      message: `${sig} sends another body`,
    });
  }
  return out;
}

export function compareCalls(allRecorded: Exchange[], allCandidate: Exchange[]): Difference[] {
  // database calls have their own signatures and comparison (db-calls.ts)
  const recorded = allRecorded.filter((e) => !isDbCall(e));
  const candidate = allCandidate.filter((e) => !isDbCall(e));
  const db = compareDbCalls(allRecorded.filter(isDbCall), allCandidate.filter(isDbCall));
  const count = (list: Exchange[]): Map<string, number> => {
    const m = new Map<string, number>();
    for (const ex of list) m.set(callSignature(ex), (m.get(callSignature(ex)) ?? 0) + 1);
    return m;
  };
  const a = count(recorded);
  const b = count(candidate);
  const out: Difference[] = [];
  for (const sig of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const na = a.get(sig) ?? 0;
    const nb = b.get(sig) ?? 0;
    const path = `outbound:${sig}`;
    if (nb < na) {
      out.push({
        target: 'outbound',
        path,
        kind: 'missing-call',
        rating: 'breaking',
        recorded: na,
        candidate: nb,
        message: `${na - nb} fewer call${na - nb > 1 ? 's' : ''} to ${sig} (recorded ${na}, now ${nb})`,
      });
    } else if (nb > na) {
      const method = sig.split(' ')[0] ?? '';
      out.push({
        target: 'outbound',
        path,
        kind: 'extra-call',
        rating: UNSAFE.has(method) ? 'breaking' : 'warning',
        recorded: na,
        candidate: nb,
        message: `${nb - na} extra call${nb - na > 1 ? 's' : ''} to ${sig} (recorded ${na}, now ${nb})`,
      });
    }
  }
  // the same calls, paired in order: what they send
  const bySig = (list: Exchange[]): Map<string, Exchange[]> => {
    const m = new Map<string, Exchange[]>();
    for (const ex of list) {
      const l = m.get(callSignature(ex)) ?? [];
      l.push(ex);
      m.set(callSignature(ex), l);
    }
    return m;
  };
  const ra = bySig(recorded);
  const rb = bySig(candidate);
  for (const [sig, calls] of [...ra].sort(([x], [y]) => x.localeCompare(y))) {
    const other = rb.get(sig) ?? [];
    const seen = new Set<string>();
    for (let i = 0; i < Math.min(calls.length, other.length); i++) {
      for (const d of compareParams(sig, calls[i] as Exchange, other[i] as Exchange)) {
        // one difference per parameter and call signature (repeated calls say it once)
        if (seen.has(`${d.path}\t${d.kind}`)) continue;
        seen.add(`${d.path}\t${d.kind}`);
        out.push(d);
      }
    }
  }
  out.push(...db);
  return out;
}
