/**
 * Outbound calls per inbound request: the build must make the same set of downstream calls the
 * recorded service made. Calls are compared as a multiset of signatures `METHOD host /path/{id}`;
 * ports and IP literals are left out (mocks listen elsewhere than the recorded dependency).
 */
import { type Exchange, headerValue } from '../core/exchange.js';
import { compareDbCalls, isDbCall, linkedBy } from './db-calls.js';
import { pathTemplate } from './routes.js';
import type { Difference } from './types.js';

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

export function compareCalls(allRecorded: Exchange[], allCandidate: Exchange[]): Difference[] {
  // database calls have their own signatures and comparison (db-calls.ts)
  const recorded = allRecorded.filter((e) => !isDbCall(e));
  const candidate = allCandidate.filter((e) => !isDbCall(e));
  const db = compareDbCalls(allRecorded.filter(isDbCall), allCandidate.filter(isDbCall));
  const group = (list: Exchange[]): Map<string, Exchange[]> => {
    const m = new Map<string, Exchange[]>();
    for (const ex of list) {
      const sig = callSignature(ex);
      const l = m.get(sig);
      if (l) l.push(ex);
      else m.set(sig, [ex]);
    }
    return m;
  };
  const ga = group(recorded);
  const gb = group(candidate);
  const a = new Map([...ga].map(([k, v]) => [k, v.length]));
  const b = new Map([...gb].map(([k, v]) => [k, v.length]));
  const out: Difference[] = [];
  for (const sig of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const na = a.get(sig) ?? 0;
    const nb = b.get(sig) ?? 0;
    const path = `outbound:${sig}`;
    if (nb < na) {
      const link = linkedBy(ga.get(sig) ?? []);
      out.push({
        target: 'outbound',
        path,
        kind: 'missing-call',
        rating: 'breaking',
        recorded: na,
        candidate: nb,
        message: `${na - nb} fewer call${na - nb > 1 ? 's' : ''} to ${sig} (recorded ${na}, now ${nb}; linked by ${link})`,
        link,
      });
    } else if (nb > na) {
      const method = sig.split(' ')[0] ?? '';
      const link = linkedBy(gb.get(sig) ?? []);
      out.push({
        target: 'outbound',
        path,
        kind: 'extra-call',
        rating: UNSAFE.has(method) ? 'breaking' : 'warning',
        recorded: na,
        candidate: nb,
        message: `${nb - na} extra call${nb - na > 1 ? 's' : ''} to ${sig} (recorded ${na}, now ${nb}; linked by ${link})`,
        link,
      });
    }
  }
  out.push(...db);
  return out;
}
