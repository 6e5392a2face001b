/**
 * `--shards N`: the lanes of a replay (runner/plan.ts lanesFor: every session and every recorded
 * connection whole, never split) dealt to N run pods, largest lane first onto the pod with the
 * fewest requests so far. Each shard's items and lanes are re-indexed for its own worker.
 */
import type { Lane } from '../spec.js';

export interface Shard {
  /** Plan item indexes this shard sends, in plan order. */
  items: number[];
  /** Its lanes, as indexes into `items`. */
  lanes: Lane[];
}

export function splitLanes(lanes: Lane[], shards: number): Shard[] {
  const n = Math.max(1, Math.min(shards, lanes.length || 1));
  const load = new Array<number>(n).fill(0);
  const dealt: Lane[][] = Array.from({ length: n }, () => []);
  const order = lanes
    .map((l, i) => ({ l, i }))
    .sort((a, b) => b.l.items.length - a.l.items.length || a.i - b.i);
  for (const { l } of order) {
    let k = 0;
    for (let j = 1; j < n; j++) if (load[j]! < load[k]!) k = j;
    dealt[k]!.push(l);
    load[k]! += l.items.length;
  }
  return dealt.map((ls) => {
    const items = ls.flatMap((l) => l.items).sort((a, b) => a - b);
    const at = new Map(items.map((plan, local) => [plan, local]));
    // lanes keep the order lanesFor gave them (by first request)
    const kept = lanes.filter((l) => ls.includes(l));
    return { items, lanes: kept.map((l) => ({ key: l.key, items: l.items.map((i) => at.get(i)!) })) };
  });
}
