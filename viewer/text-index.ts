/**
 * Full-text index: for each block of consecutive rows, a Bloom filter of the trigrams of every
 * searchable string of its exchanges (snapshots/filter.ts `searchableTexts`, folded). A text term
 * can only occur in a block whose filter holds all of the term's trigrams, so a search reads and
 * parses the rows of candidate blocks only. The check is sound by construction: the index is fed
 * the very strings the filter searches. False positives cost a read, never a wrong answer.
 * Memory: BLOCK_BITS / 8 bytes per BLOCK_ROWS rows (16 KiB per 512 rows: 32 MiB for 1M).
 */
import { foldText } from '../snapshots/index.js';

export const BLOCK_ROWS = 512;
const BLOCK_BITS = 1 << 17;
const MASK = BLOCK_BITS - 1;
const WORDS = BLOCK_BITS / 32;

function mix(a: number, b: number, c: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77) ^ Math.imul(c, 0xc2b2ae3d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/** Hashes of the trigrams of a folded string (deduplicated). */
export function trigramHashes(folded: string): number[] {
  const out = new Set<number>();
  for (let i = 0; i + 2 < folded.length; i++) {
    out.add(mix(folded.charCodeAt(i), folded.charCodeAt(i + 1), folded.charCodeAt(i + 2)));
  }
  return [...out];
}

export class TextIndex {
  private blocks: Uint32Array[] = [];
  /** Rows added so far (rows must be added in order, each once). */
  rows = 0;

  /** Adds row `n` (the next row) with its searchable strings. */
  add(n: number, texts: string[]): void {
    if (n !== this.rows) throw new Error(`text index: row ${n} added out of order (expected ${this.rows})`);
    const b = Math.floor(n / BLOCK_ROWS);
    let bits = this.blocks[b];
    if (!bits) {
      bits = new Uint32Array(WORDS);
      this.blocks[b] = bits;
    }
    for (const t of texts) {
      const s = foldText(t);
      let c0 = s.charCodeAt(0);
      let c1 = s.charCodeAt(1);
      for (let i = 2; i < s.length; i++) {
        const c2 = s.charCodeAt(i);
        const h = mix(c0, c1, c2);
        const p1 = h & MASK;
        const p2 = (h >>> 15) & MASK;
        bits[p1 >>> 5]! |= 1 << (p1 & 31);
        bits[p2 >>> 5]! |= 1 << (p2 & 31);
        c0 = c1;
        c1 = c2;
      }
    }
    this.rows = n + 1;
  }

  /**
   * False when block `b` cannot hold every needle; true when it may. Rows are indexed as they are
   * added to the columns, so a block's filter covers every row of it that exists.
   */
  mayContain(b: number, needleHashes: number[][]): boolean {
    const bits = this.blocks[b];
    if (!bits) return true;
    for (const hs of needleHashes) {
      for (const h of hs) {
        const p1 = h & MASK;
        const p2 = (h >>> 15) & MASK;
        if ((bits[p1 >>> 5]! & (1 << (p1 & 31))) === 0) return false;
        if ((bits[p2 >>> 5]! & (1 << (p2 & 31))) === 0) return false;
      }
    }
    return true;
  }

  bytes(): number {
    return this.blocks.length * WORDS * 4;
  }
}
