import { describe, expect, it } from 'vitest';
import { shopResults } from '../../../assertions/testing/fixtures.js';
import { acceptedExchanges } from './accept.js';

describe('snapshot accept: the exchanges of the new version', () => {
  it('takes live answers and the build’s outbound calls, in recorded order, without the header older replays added', () => {
    const results = shopResults({ sessions: 3, variants: ['extra-call'] });
    const run = results.runs[0]!;
    for (const i of run.items) i.live?.request.headers.push(['x-retap-id', i.id]);
    const acc = acceptedExchanges(results, run);
    expect(acc.replaced).toBe(results.recorded.length);
    expect(acc.kept).toBe(0);
    const inbound = acc.exchanges.filter((e) => e.direction === 'inbound');
    const live = results.recorded.map((r) => run.items.find((i) => i.id === r.id)!.live!);
    expect(inbound.map((e) => e.response?.status)).toEqual(live.map((e) => e.response?.status));
    expect(acc.outbound).toBe(run.items.reduce((n, i) => n + i.outbound.length, 0));
    expect(acc.outbound).toBeGreaterThan(results.recorded.reduce((n, r) => n + r.outbound.length, 0));
    for (const e of inbound) expect(e.request.headers.some(([k]) => k === 'x-retap-id')).toBe(false);
    expect(new Set(acc.exchanges.map((e) => e.id)).size).toBe(acc.exchanges.length);
  });

  it('keeps the recorded exchange where capture missed the answer', () => {
    const results = shopResults({ sessions: 2 });
    const run = results.runs[0]!;
    const first = run.items[0]!;
    delete first.live;
    const acc = acceptedExchanges(results, run);
    expect(acc.kept).toBe(1);
    expect(
      acc.exchanges.some((e) => e.id === results.recorded.find((r) => r.id === first.id)!.exchange.id),
    ).toBe(true);
  });
});
