import { describe, expect, it } from 'vitest';
import { parseVariants, SLOW_DELAY_MS, VARIANTS, variantConfig } from './variants.js';

describe('parseVariants', () => {
  it('is empty without a value', () => {
    expect(parseVariants(undefined)).toEqual([]);
    expect(parseVariants('')).toEqual([]);
    expect(parseVariants(' , ')).toEqual([]);
  });

  it('expands all', () => {
    expect(parseVariants('all')).toEqual([...VARIANTS]);
    expect(parseVariants('slow,all')).toEqual([...VARIANTS]);
  });

  it('keeps the order given, trims and drops duplicates', () => {
    expect(parseVariants(' error , slow,error')).toEqual(['error', 'slow']);
  });

  it('names the valid variants when one is unknown', () => {
    expect(() => parseVariants('slow,fast')).toThrow(
      /unknown variant 'fast'; valid: changed-field, slow, extra-call, error, all/,
    );
  });
});

describe('variantConfig', () => {
  it('changes nothing without variants', () => {
    expect(variantConfig([])).toEqual({
      variants: [],
      delays: {},
      failing: [],
      totalAsString: false,
      extraStockCheck: false,
    });
  });

  it('turns each variant into exactly one effect', () => {
    expect(variantConfig(['slow']).delays).toEqual({ 'GET /orders/:id': SLOW_DELAY_MS });
    expect(variantConfig(['error']).failing).toEqual(['GET /orders']);
    expect(variantConfig(['changed-field']).totalAsString).toBe(true);
    expect(variantConfig(['extra-call']).extraStockCheck).toBe(true);
    expect(variantConfig(['extra-call']).delays).toEqual({});
  });
});
