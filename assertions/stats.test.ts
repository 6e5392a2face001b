import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bootstrapRatio, histogram, mannWhitneyGreater, prng, quantile, summarize } from './stats.js';

describe('stats', () => {
  it('interpolates percentiles', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([5], 0.99)).toBe(5);
    expect(summarize([3, 1, 2])).toMatchObject({ n: 3, p50: 2, max: 3, avg: 2 });
  });

  it('keeps percentiles within the sample range', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (xs, p) => {
          const s = [...xs].sort((a, b) => a - b);
          const q = quantile(s, p);
          return q >= (s[0] as number) && q <= (s[s.length - 1] as number);
        },
      ),
    );
  });

  it('tells a shift from no shift (Mann-Whitney U)', () => {
    const r = prng(3);
    const a = Array.from({ length: 50 }, () => 10 + r());
    const b = Array.from({ length: 50 }, () => 12 + r());
    expect(mannWhitneyGreater(b, a)).toBeLessThan(0.001);
    expect(mannWhitneyGreater(a, b)).toBeGreaterThan(0.99);
    expect(mannWhitneyGreater([1, 1, 1], [1, 1, 1])).toBeCloseTo(0.5, 1);
  });

  it('bootstraps a deterministic ratio', () => {
    const a = Array.from({ length: 30 }, (_, i) => 20 + i);
    const b = a.map((x) => x * 2);
    const one = bootstrapRatio(b, a, { kind: 'pct', p: 0.95 }, 1.1, { seed: 5 });
    const two = bootstrapRatio(b, a, { kind: 'pct', p: 0.95 }, 1.1, { seed: 5 });
    expect(one).toEqual(two);
    expect(one.ratio).toBeCloseTo(2, 5);
    expect(one.exceed).toBe(1);
    expect(one.low).toBeLessThanOrEqual(2);
  });

  it('buckets latencies', () => {
    const h = histogram([0.3, 0.4, 3, 300]);
    expect(h.counts.reduce((s, c) => s + c, 0)).toBe(4);
    expect(h.bounds.length).toBe(h.counts.length);
  });
});
