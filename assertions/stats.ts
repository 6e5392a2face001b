/**
 * Latency statistics: percentiles (linear interpolation between order statistics), a seeded
 * bootstrap for the ratio of a statistic between two samples, and the Mann-Whitney U test for an
 * upward shift. Deterministic for a given seed, so a verdict never depends on luck of the draw.
 */
import type { LatencyStats } from './types.js';

export function quantile(sorted: readonly number[], p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (n === 1) return sorted[0] as number;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const a = sorted[lo] as number;
  const b = sorted[Math.min(lo + 1, n - 1)] as number;
  return a + (h - lo) * (b - a);
}

export const mean = (xs: readonly number[]): number =>
  xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : Number.NaN;

export function summarize(samples: readonly number[]): LatencyStats | undefined {
  if (samples.length === 0) return undefined;
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: quantile(s, 0.5),
    p90: quantile(s, 0.9),
    p95: quantile(s, 0.95),
    p99: quantile(s, 0.99),
    max: s[s.length - 1] as number,
    avg: mean(s),
  };
}

/** A statistic of a sample: a percentile (0..1), the max or the mean. */
export type Statistic = { kind: 'pct'; p: number } | { kind: 'max' } | { kind: 'avg' };

export function statistic(samples: readonly number[], stat: Statistic, sorted = false): number {
  if (stat.kind === 'avg') return mean(samples);
  const s = sorted ? samples : [...samples].sort((a, b) => a - b);
  return stat.kind === 'max' ? (s[s.length - 1] as number) : quantile(s, stat.p);
}

/** mulberry32: small, fast, good enough for resampling. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function resample(xs: readonly number[], rand: () => number, out: number[]): number[] {
  for (let i = 0; i < xs.length; i++) out[i] = xs[Math.floor(rand() * xs.length)] as number;
  return out.sort((a, b) => a - b);
}

export interface RatioEstimate {
  /** statistic(candidate) / statistic(reference) on the samples themselves. */
  ratio: number;
  /** Fraction of bootstrap resamples whose ratio exceeded `limit`: P(ratio > limit). */
  exceed: number;
  /** Percentile interval of the bootstrap ratios at the given level. */
  low: number;
  high: number;
}

/**
 * Bootstrap of statistic(candidate)/statistic(reference). `limit` is the allowed ratio
 * (1.10 for `+10%`). Reference values of zero are floored at `floor` to keep ratios finite.
 */
export function bootstrapRatio(
  candidate: readonly number[],
  reference: readonly number[],
  stat: Statistic,
  limit: number,
  opts: { resamples?: number; seed?: number; level?: number; floor?: number } = {},
): RatioEstimate {
  const resamples = opts.resamples ?? 1000;
  const level = opts.level ?? 0.95;
  const floor = opts.floor ?? 1e-3;
  const rand = prng(opts.seed ?? 1);
  const ratios: number[] = [];
  const bc: number[] = new Array(candidate.length);
  const br: number[] = new Array(reference.length);
  let over = 0;
  for (let i = 0; i < resamples; i++) {
    const c = statistic(resample(candidate, rand, bc), stat, true);
    const r = statistic(resample(reference, rand, br), stat, true);
    const ratio = c / Math.max(r, floor);
    ratios.push(ratio);
    if (ratio > limit) over++;
  }
  ratios.sort((a, b) => a - b);
  const ratio = statistic(candidate, stat) / Math.max(statistic(reference, stat), floor);
  return {
    ratio,
    exceed: over / resamples,
    low: quantile(ratios, (1 - level) / 2),
    high: quantile(ratios, 1 - (1 - level) / 2),
  };
}

/** Standard normal upper tail, Abramowitz–Stegun 7.1.26 via erfc. */
function normalUpper(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erfc = poly * Math.exp(-x * x);
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

/**
 * One-sided Mann-Whitney U: p-value for "candidate tends to be larger than reference"
 * (normal approximation with tie correction and continuity correction).
 */
export function mannWhitneyGreater(candidate: readonly number[], reference: readonly number[]): number {
  const n1 = candidate.length;
  const n2 = reference.length;
  if (n1 === 0 || n2 === 0) return Number.NaN;
  const all = [...candidate.map((v) => ({ v, c: true })), ...reference.map((v) => ({ v, c: false }))].sort(
    (a, b) => a.v - b.v,
  );
  const n = all.length;
  let rankSum = 0;
  let tieTerm = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && (all[j + 1] as { v: number }).v === (all[i] as { v: number }).v) j++;
    const rank = (i + j + 2) / 2;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    for (let k = i; k <= j; k++) if ((all[k] as { c: boolean }).c) rankSum += rank;
    i = j + 1;
  }
  const u = rankSum - (n1 * (n1 + 1)) / 2;
  const mu = (n1 * n2) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  if (sigma === 0) return 0.5;
  return normalUpper((u - mu - 0.5) / sigma);
}

/** Histogram over fixed, roughly logarithmic bounds (ms; the last, 1e9, means "above 10 s"), trimmed to the range used. */
const BOUNDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 1e9];

export function histogram(samples: readonly number[]): { bounds: number[]; counts: number[] } {
  const counts = BOUNDS.map(() => 0);
  for (const x of samples) {
    const i = BOUNDS.findIndex((b) => x <= b);
    counts[i] = (counts[i] as number) + 1;
  }
  let first = counts.findIndex((c) => c > 0);
  let last = counts.length - 1 - [...counts].reverse().findIndex((c) => c > 0);
  if (first === -1) return { bounds: [], counts: [] };
  first = Math.max(0, first - 1);
  last = Math.min(counts.length - 1, last + 1);
  return { bounds: BOUNDS.slice(first, last + 1), counts: counts.slice(first, last + 1) };
}
