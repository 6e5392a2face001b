/**
 * "Did you mean …?": the known word nearest to a misspelt one, for errors that name an unknown
 * key or flag. Distance is Damerau–Levenshtein over lower-case letters (a swap of two neighbours
 * counts one), so `buidl` finds `build` and `mockmiss` finds `mockMiss`.
 */

function distance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(
        (d[(i - 1) * cols + j] as number) + 1,
        (d[i * cols + j - 1] as number) + 1,
        (d[(i - 1) * cols + j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, (d[(i - 2) * cols + j - 2] as number) + 1);
      d[i * cols + j] = v;
    }
  }
  return d[rows * cols - 1] as number;
}

/**
 * The candidate nearest to `word`, or undefined when none is near enough to be a likely typo
 * (at most a third of the word's letters off, and never more than 3). Ties go to the first listed.
 */
export function nearestWord(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const n = distance(w, c.toLowerCase());
    if (n < bestDistance) {
      best = c;
      bestDistance = n;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
