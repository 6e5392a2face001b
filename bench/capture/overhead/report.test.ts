import { describe, expect, it } from 'vitest';
import type { ArmName } from './arms.js';
import type { Sample } from './measure.js';
import { addedP99, compare, lost } from './report.js';

const s = (arm: ArmName, rps: number, p99Ms: number, extra: Partial<Sample> = {}): Sample => ({
  arm,
  rps,
  p50Ms: p99Ms / 2,
  p99Ms,
  requests: rps,
  answered: rps,
  socketErrors: 0,
  serverUs: 10,
  foreign: [],
  note: '',
  ...extra,
});

describe('overhead report', () => {
  it('ratio is the median of per-round ratios, and a miss says MISS', () => {
    const rounds = [
      [s('none', 100, 1), s('retap', 90, 1.2)],
      [s('none', 50, 1), s('retap', 49, 1.0)],
      [s('none', 100, 1), s('retap', 96, 1.05)],
    ];
    const row = compare('t', rounds, 'retap', 'none', 'req/s', (x) => x.rps, { min: 0.95 });
    expect(row.ratio).toBeCloseTo(0.96);
    expect(row.spread).toEqual([0.9, 0.98]);
    expect(row.target).toBe('>= 0.95 met');
    const p99 = compare('t', rounds, 'retap', 'none', 'p99', (x) => x.p99Ms, { max: 1.0 });
    expect(p99.target).toBe('<= 1.00 MISS');
  });

  it('added p99 is taken against no capture of the same round', () => {
    const rounds = [
      [s('none', 1, 1), s('retap', 1, 1.1), s('mitmdump', 1, 11)],
      [s('none', 1, 2), s('retap', 1, 2.1), s('mitmdump', 1, 22)],
    ];
    const row = addedP99('t', rounds, 0.1);
    expect(row.value).toBeCloseTo(0.1);
    expect(row.ratio).toBeLessThan(0.1);
    expect(row.target).toMatch(/met$/);
  });

  it('lost sums every retap run and never nets extras against losses', () => {
    const a = [[s('retap', 1, 1, { answered: 100, recorded: 98, lost: 2 })]];
    const b = [[s('retap', 1, 1, { answered: 50, recorded: 51, lost: -1 })]];
    const row = lost('http', [a, b]);
    expect(row.value).toBe(2);
    expect(row.peerValue).toBe(150);
    expect(row.target).toBe('= 0 MISS');
    expect(row.figure).toMatch(/\+1 captured/);
  });
});
