/**
 * Outbound calls per inbound request: the build must make the same set of downstream calls the
 * recorded service made. Calls are compared as a multiset of signatures `METHOD host /path/{id}`;
 * ports and IP literals are left out (mocks listen elsewhere than the recorded dependency).
 */
import type { Exchange } from '../core/exchange.js';
import { hostName, pathTemplate, requestAuthority } from '../core/http.js';
import { compareDbCalls, isDbCall } from './db-calls.js';
import type { Difference } from './types.js';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The recorded host name; '' for an IP literal (mocks listen elsewhere than the recorded address). */
function hostOf(ex: Exchange): string {
  const authority = ex.peer.host ?? requestAuthority(ex.request.headers, ex.extras);
  const host = authority === undefined ? '' : hostName(authority);
  if (host === '' || /^[\d.]+$/.test(host) || host.includes(':')) return '';
  return host;
}

export function callSignature(ex: Exchange): string {
  const host = hostOf(ex);
  return `${ex.request.method} ${host ? `${host} ` : ''}${pathTemplate(ex.request.target)}`;
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
  out.push(...db);
  return out;
}
