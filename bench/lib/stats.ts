/** Small statistics for interleaved rounds. */
export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function range(xs: number[]): [number, number] {
  return xs.length ? [Math.min(...xs), Math.max(...xs)] : [Number.NaN, Number.NaN];
}

/** Per-round ratios a[i]/b[i] (rounds interleave A and B, so pairs share the machine's mood). */
export function ratios(a: number[], b: number[]): number[] {
  return a.map((x, i) => x / b[i]!);
}

export const sum = (xs: number[]): number => xs.reduce((s, x) => s + x, 0);
