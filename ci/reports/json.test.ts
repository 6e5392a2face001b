import { describe, expect, it } from 'vitest';
import { evaluate } from '../../assertions/index.js';
import { brokenResults, mixedResults, shopResults } from '../../assertions/testing/fixtures.js';
import { renderJson, renderJsonChunks } from './json.js';

describe('JSON report in pieces', () => {
  it('is exactly JSON.stringify(verdict, null, 2), written one item at a time', () => {
    for (const r of [mixedResults(), brokenResults(), shopResults({ sessions: 4, variants: ['error'] })]) {
      const v = evaluate(r);
      expect(renderJson(v)).toBe(`${JSON.stringify(v, null, 2)}\n`);
      expect([...renderJsonChunks(v)].length).toBeGreaterThan(v.items.length);
    }
    const empty = { ...evaluate(mixedResults()), items: [] };
    expect(renderJson(empty)).toBe(`${JSON.stringify(empty, null, 2)}\n`);
  });
});
