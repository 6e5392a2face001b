import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rng } from './prng.js';

describe('rng', () => {
  it('repeats exactly for the same seed and differs for another', () => {
    const a = rng(42);
    const b = rng(42);
    const c = rng(43);
    const seqA = Array.from({ length: 20 }, () => a.next());
    expect(Array.from({ length: 20 }, () => b.next())).toEqual(seqA);
    expect(Array.from({ length: 20 }, () => c.next())).not.toEqual(seqA);
  });

  it('stays in range', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer({ min: -50, max: 50 }),
        fc.integer({ min: 0, max: 50 }),
        (seed, min, span) => {
          const r = rng(seed);
          for (let i = 0; i < 20; i++) {
            const x = r.next();
            expect(x).toBeGreaterThanOrEqual(0);
            expect(x).toBeLessThan(1);
            const n = r.int(min, min + span);
            expect(n).toBeGreaterThanOrEqual(min);
            expect(n).toBeLessThanOrEqual(min + span);
          }
          expect(r.hex(7)).toMatch(/^[0-9a-f]{7}$/);
        },
      ),
      { numRuns: 200 },
    );
  });
});
