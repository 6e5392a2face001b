/**
 * Variables stored by rules, per client session, with an index from recorded value to pair so
 * substitution is a map lookup. Lookups try the session first, then every session (values such
 * as random tokens and uuids are unique, so a global fallback finds them when sessions were not
 * known), most recent first.
 */
import type { Pair } from './run.js';

interface Slot {
  pairs: Pair[];
  byRecorded: Map<string, Pair>;
}

/** Pairs scanned for substring matches at most (exact matches use the index). */
const SCAN_LIMIT = 2000;

export interface VarStore {
  put(session: string, name: string, pairs: Pair[]): void;
  pairs(session: string, name: string): Pair[];
  byRecorded(session: string, name: string, value: string): Pair | undefined;
  size(): number;
}

export function createVarStore(): VarStore {
  const sessions = new Map<string, Map<string, Slot>>();
  const global = new Map<string, Slot>();
  let count = 0;
  const slot = (m: Map<string, Slot>, name: string): Slot => {
    let s = m.get(name);
    if (!s) m.set(name, (s = { pairs: [], byRecorded: new Map() }));
    return s;
  };
  const add = (s: Slot, p: Pair): void => {
    s.pairs.push(p);
    if (p.recorded !== undefined) {
      // a later live value wins; a missing live value never hides a known one
      const old = s.byRecorded.get(p.recorded);
      if (!old || p.live !== undefined || old.live === undefined) s.byRecorded.set(p.recorded, p);
    }
  };
  return {
    put(session, name, pairs) {
      let m = sessions.get(session);
      if (!m) sessions.set(session, (m = new Map()));
      for (const p of pairs) {
        add(slot(m, name), p);
        add(slot(global, name), p);
        count++;
      }
    },
    pairs(session, name) {
      const own = sessions.get(session)?.get(name);
      if (own && own.pairs.length > 0) return own.pairs;
      const all = global.get(name)?.pairs ?? [];
      return all.length > SCAN_LIMIT ? all.slice(-SCAN_LIMIT) : all;
    },
    byRecorded(session, name, value) {
      return sessions.get(session)?.get(name)?.byRecorded.get(value) ?? global.get(name)?.byRecorded.get(value);
    },
    size: () => count,
  };
}
