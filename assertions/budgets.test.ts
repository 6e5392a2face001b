import { describe, expect, it } from 'vitest';
import { type BudgetInputs, judgeBudget, parseBudget } from './budgets.js';
import { prng } from './stats.js';

const opts = { minSamples: 20, confidence: 0.95, slackMs: 2, resamples: 1000, seed: 1 };

function samples(n: number, base: number, seed: number): number[] {
  const r = prng(seed);
  return Array.from({ length: n }, () => base * (0.7 + 0.6 * r()));
}

const inputs = (cand: number[], rec: number[], route = 'GET /a'): BudgetInputs => ({
  candidate: cand.map((latencyMs) => ({ route, latencyMs, error: false })),
  recorded: rec.map((latencyMs) => ({ route, latencyMs })),
  baseline: [],
  mocks: [],
  mockTotals: { calls: 0, matched: 0, recorded: 0 },
});

describe('parseBudget', () => {
  it('reads absolute, relative, error and mock budgets', () => {
    expect(parseBudget('p95<250ms')).toMatchObject({
      metric: 'pct',
      percentile: 95,
      op: '<',
      value: 250,
      relative: false,
    });
    expect(parseBudget('GET /orders/{id}: p99 < +10%')).toMatchObject({
      route: 'GET /orders/{id}',
      percentile: 99,
      value: 0.1,
      relative: true,
    });
    expect(parseBudget('GET /orders/:id: max <= 1.5s')).toMatchObject({
      route: 'GET /orders/:id',
      metric: 'max',
      op: '<=',
      value: 1500,
    });
    expect(parseBudget('avg < 800us')).toMatchObject({ metric: 'avg', value: 0.8 });
    expect(parseBudget('errors<1%')).toMatchObject({ metric: 'errors', value: 0.01 });
    expect(parseBudget('mocks >= 100%')).toMatchObject({ metric: 'mocks', op: '>=', value: 1 });
    expect(parseBudget('p99.9 < 1s')).toMatchObject({ percentile: 99.9 });
  });

  it('names the bad budget and says what is wrong', () => {
    expect(() => parseBudget('p95 < 250', '--budget')).toThrow(
      /budget 'p95 < 250' \(--budget\): '250' is not a duration/,
    );
    expect(() => parseBudget('p95 < 10%')).toThrow(/ambiguous.*\+10%/);
    expect(() => parseBudget('p96x < 1ms')).toThrow(/unknown metric/);
    expect(() => parseBudget('errors = 1%')).toThrow(/no comparison/);
    expect(() => parseBudget('errors < 150%')).toThrow(/more than 100%/);
    expect(() => parseBudget('mocks >= all')).toThrow(/not a percentage/);
  });
});

describe('judgeBudget', () => {
  it('judges absolute budgets on the measured percentile', () => {
    const r = judgeBudget(parseBudget('p95 < 250ms'), inputs(samples(30, 300, 1), []), opts);
    expect(r.status).toBe('fail');
    expect(r.measured).toBeGreaterThan(250);
    expect(r.samples).toBe(30);
  });

  it('does not judge relative budgets on too few samples', () => {
    const r = judgeBudget(parseBudget('p95 < +10%'), inputs(samples(10, 100, 1), samples(50, 10, 2)), opts);
    expect(r.status).toBe('not-judged');
    expect(r.message).toMatch(/n too small/);
  });

  it('fails a clear slowdown with high confidence and passes the same distribution', () => {
    const slow = judgeBudget(parseBudget('p95 < +10%'), inputs(samples(40, 40, 1), samples(40, 20, 2)), opts);
    expect(slow.status).toBe('fail');
    expect(slow.confidence).toBeGreaterThan(0.95);
    expect(slow.pValue).toBeLessThan(0.01);
    expect(slow.reference).toBe('recorded');
    let flips = 0;
    for (let seed = 0; seed < 30; seed++) {
      const same = judgeBudget(
        parseBudget('p95 < +10%'),
        inputs(samples(40, 20, 100 + seed), samples(40, 20, 200 + seed)),
        opts,
      );
      if (same.status === 'fail') flips++;
    }
    expect(flips).toBeLessThanOrEqual(1);
  });

  it('ignores shifts below the absolute slack', () => {
    const r = judgeBudget(parseBudget('p95 < +10%'), inputs(samples(40, 1.0, 1), samples(40, 0.5, 2)), opts);
    expect(r.status).toBe('pass');
    expect(r.message).toMatch(/slack/);
  });

  it('prefers the baseline as reference', () => {
    const data = inputs(samples(40, 40, 1), samples(40, 10, 2));
    data.baseline = samples(40, 40, 3).map((latencyMs) => ({ route: 'GET /a', latencyMs }));
    const r = judgeBudget(parseBudget('GET /a: p50 < +10%'), data, opts);
    expect(r.reference).toBe('baseline');
    expect(r.status).toBe('pass');
  });

  it('computes error and mock rates per route and globally', () => {
    const data = inputs([1, 1, 1, 1], []);
    (data.candidate[0] as { error: boolean }).error = true;
    data.mocks = [{ route: 'GET /a', calls: 4, misses: 1 }];
    data.mockTotals = { calls: 10, matched: 9, recorded: 0 };
    expect(judgeBudget(parseBudget('errors < 1%'), data, opts)).toMatchObject({
      status: 'fail',
      measured: 0.25,
    });
    expect(judgeBudget(parseBudget('GET /b: errors < 1%'), data, opts).status).toBe('not-judged');
    expect(judgeBudget(parseBudget('GET /a: mocks >= 100%'), data, opts)).toMatchObject({
      status: 'fail',
      measured: 0.75,
    });
    expect(judgeBudget(parseBudget('mocks >= 90%'), data, opts)).toMatchObject({
      status: 'pass',
      measured: 0.9,
    });
  });
});
