/**
 * Multi-pattern string matcher for secret values: finds every occurrence of any of many patterns
 * (thousands of session tokens and their encoded forms) in one left-to-right pass over a text.
 *
 * Scheme (Rabin–Karp over a fixed window, bucketed by the pattern's LAST `Q` code units, as in
 * Wu–Manber): each pattern is filed under a 32-bit rolling hash of its final Q code units; the scan
 * rolls the same hash over every window of the text, tests one bit of a 1 Mbit filter, and only on
 * a set bit looks the bucket up and verifies its patterns in place (`startsWith`). Memory is the
 * patterns themselves plus one map entry each — no per-character trie nodes, which for 100k tokens
 * of 40 characters would cost an Aho–Corasick automaton some 4 M nodes. The suffix (not the prefix)
 * keys the buckets because credentials of one issuer share long prefixes (every HS256 JWT starts
 * `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.`) and end in their random part.
 *
 * Adding a pattern is O(length) and can happen at any time (no rebuild). Overlaps resolve as
 * leftmost first, then longest. About 100 bytes of heap per pattern besides its own characters.
 */

/** Shortest pattern: the window length. Shorter secrets are redacted where they stand only. */
export const MIN_PATTERN = 8;
const Q = MIN_PATTERN;
const BASE = 0x01000193;
const FILTER_BITS = 20;

/** BASE^(Q-1) mod 2^32, to remove the code unit leaving the window. */
const OUT_FACTOR = (() => {
  let f = 1;
  for (let i = 0; i < Q - 1; i++) f = Math.imul(f, BASE);
  return f;
})();

function windowHash(s: string, from: number): number {
  let h = 0;
  for (let i = from; i < from + Q; i++) h = (Math.imul(h, BASE) + s.charCodeAt(i)) | 0;
  return h;
}

export interface Hit {
  start: number;
  end: number;
  /** Index of the pattern (in the order added). */
  pattern: number;
}

export interface Matcher {
  readonly size: number;
  /** Adds a pattern (at least MIN_PATTERN code units); returns its index. The caller dedupes. */
  add(pattern: string): number;
  pattern(index: number): string;
  /** Non-overlapping occurrences, leftmost first, longest at a start. */
  find(text: string): Hit[];
  /** True when any pattern occurs. */
  test(text: string): boolean;
  /** Text with every occurrence replaced by `replace(pattern index)`; the same string when none. */
  replace(text: string, replace: (pattern: number, hit: Hit) => string): string;
}

export function createMatcher(): Matcher {
  const patterns: string[] = [];
  /** suffix hash (30 bits: small integers, no boxed keys) → pattern index, or several. */
  const buckets = new Map<number, number | number[]>();
  const filter = new Uint32Array(1 << (FILTER_BITS - 5));

  const bit = (h: number): number => (h >>> (32 - FILTER_BITS)) | 0;

  /** Calls `onHit` for every verified occurrence in order of END position; stops when it returns true. */
  const scan = (text: string, onHit: (start: number, end: number, pattern: number) => boolean): void => {
    const n = text.length;
    if (patterns.length === 0 || n < Q) return;
    let h = windowHash(text, 0);
    for (let end = Q; ; end++) {
      const b = bit(h);
      if ((filter[b >>> 5]! & (1 << (b & 31))) !== 0) {
        const entry = buckets.get(h >>> 2);
        if (entry !== undefined) {
          if (typeof entry === 'number') {
            const p = patterns[entry]!;
            const start = end - p.length;
            if (start >= 0 && text.startsWith(p, start) && onHit(start, end, entry)) return;
          } else {
            for (const i of entry) {
              const p = patterns[i]!;
              const start = end - p.length;
              if (start >= 0 && text.startsWith(p, start) && onHit(start, end, i)) return;
            }
          }
        }
      }
      if (end >= n) return;
      h = (Math.imul(h - Math.imul(text.charCodeAt(end - Q), OUT_FACTOR), BASE) + text.charCodeAt(end)) | 0;
    }
  };

  const find = (text: string): Hit[] => {
    const all: Hit[] = [];
    scan(text, (start, end, pattern) => {
      all.push({ start, end, pattern });
      return false;
    });
    if (all.length <= 1) return all;
    all.sort((a, b) => a.start - b.start || b.end - a.end);
    const out: Hit[] = [];
    let until = -1;
    for (const m of all) {
      if (m.start < until) continue;
      out.push(m);
      until = m.end;
    }
    return out;
  };

  return {
    get size() {
      return patterns.length;
    },
    add(p) {
      if (p.length < Q) throw new RangeError(`matcher patterns need at least ${Q} code units`);
      const index = patterns.length;
      patterns.push(p);
      const h = windowHash(p, p.length - Q);
      const prev = buckets.get(h >>> 2);
      if (prev === undefined) buckets.set(h >>> 2, index);
      else if (typeof prev === 'number') buckets.set(h >>> 2, [prev, index]);
      else prev.push(index);
      const b = bit(h);
      filter[b >>> 5] = filter[b >>> 5]! | (1 << (b & 31));
      return index;
    },
    pattern: (i) => patterns[i]!,
    find,
    test(text) {
      let any = false;
      scan(text, () => {
        any = true;
        return true;
      });
      return any;
    },
    replace(text, replace) {
      const hits = find(text);
      if (hits.length === 0) return text;
      let out = '';
      let at = 0;
      for (const m of hits) {
        out += text.slice(at, m.start) + replace(m.pattern, m);
        at = m.end;
      }
      return out + text.slice(at);
    },
  };
}
