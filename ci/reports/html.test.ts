import { describe, expect, it } from 'vitest';
import { evaluate } from '../../assertions/index.js';
import { shopResults } from '../../assertions/testing/fixtures.js';
import { listed, renderHtml } from './html.js';

describe('HTML report of a large run', () => {
  it('lists failures and errors first, at most listMax requests, and counts the rest', () => {
    const r = shopResults({ sessions: 10, variants: ['changed-field'] });
    const v = evaluate(r);
    const failing = v.items.filter((i) => i.status !== 'pass');
    expect(failing.length).toBeGreaterThan(0);
    expect(failing.length).toBeLessThan(v.items.length - 5);
    const max = failing.length + 2;
    const html = renderHtml(v, { results: r, listMax: max });
    const rows = [...html.matchAll(/<tr class="ex" data-status="(\w+)" data-id="([^"]+)"/g)];
    expect(rows).toHaveLength(max);
    // every failure is listed; the two passes that fill up are the first ones, in verdict order
    expect(rows.filter((m) => m[1] !== 'pass').map((m) => m[2])).toEqual(failing.map((i) => i.id));
    const passes = v.items.filter((i) => i.status === 'pass');
    expect(rows.filter((m) => m[1] === 'pass').map((m) => m[2])).toEqual(passes.slice(0, 2).map((i) => i.id));
    expect(html).toContain(
      `${v.items.length - max} more requests not listed (${passes.length - 2} passed): report.json holds every request`,
    );
    // the filter buttons still count every request
    expect(html).toContain(`all (${v.items.length})`);
    // bodies only for the listed requests
    const unlisted = passes.at(-1)!;
    expect(html).not.toContain(`data-id="${unlisted.id}"`);
  });

  it('lists everything when the run is small, and no "not listed" line', () => {
    const r = shopResults({ sessions: 2 });
    const html = renderHtml(evaluate(r), { results: r });
    expect(html.match(/<tr class="ex"/g)).toHaveLength(r.recorded.length);
    expect(html).not.toContain('not-listed');
  });

  it('when there are more failures than room, the first failures by verdict order', () => {
    const items = [
      { id: 'a', status: 'pass' },
      { id: 'b', status: 'fail' },
      { id: 'c', status: 'error' },
      { id: 'd', status: 'fail' },
    ];
    expect(listed(items, 2).shown.map((i) => i.id)).toEqual(['b', 'c']);
    expect(listed(items, 2).rest.map((i) => i.id)).toEqual(['a', 'd']);
  });
});
