import { describe, expect, it } from 'vitest';
import { median, range, ratios } from './stats.js';

describe('stats', () => {
  it('median of odd and even counts, empty is NaN', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
  it('ratios pair rounds, range spans them', () => {
    expect(ratios([2, 3], [4, 3])).toEqual([0.5, 1]);
    expect(range([0.5, 1, 0.75])).toEqual([0.5, 1]);
  });
});
