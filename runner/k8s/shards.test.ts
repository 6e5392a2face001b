import { describe, expect, it } from 'vitest';
import { splitLanes } from './shards.js';

describe('splitLanes', () => {
  const lanes = [
    { key: 'a', items: [0, 3, 4] },
    { key: 'b', items: [1] },
    { key: 'c', items: [2, 5] },
    { key: 'd', items: [6] },
  ];
  it('keeps every lane whole, balances requests, re-indexes for the shard', () => {
    const s = splitLanes(lanes, 2);
    expect(s).toHaveLength(2);
    expect(s.map((x) => x.items.length).sort()).toEqual([3, 4]);
    expect(s.flatMap((x) => x.items).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const sh of s) {
      for (const l of sh.lanes) {
        const orig = lanes.find((o) => o.key === l.key)!;
        expect(l.items.map((i) => sh.items[i])).toEqual(orig.items);
      }
    }
  });
  it('never more shards than lanes; one shard is the plan as it is', () => {
    expect(splitLanes(lanes, 9)).toHaveLength(4);
    expect(splitLanes(lanes, 1)).toEqual([{ items: [0, 1, 2, 3, 4, 5, 6], lanes }]);
  });
});
