/**
 * The viewer's search against the shared filter: every query selects exactly the exchanges that
 * `compileFilter` (what `retap snapshot filter` keeps) selects over the snapshot reader, whatever
 * path it takes (columns only, text index, raw-line check, full parse).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileFilter, searchableTexts } from '../snapshots/filter.js';
import { openSnapshot } from '../snapshots/index.js';
import { parseQuery } from './query.js';
import { AbortedError, Search } from './search.js';
import { indexLines } from './sources/lines.js';
import { SnapshotSource } from './sources/snapshot.js';
import { LineFile, Store } from './store.js';
import { BLOCK_ROWS } from './text-index.js';
import { writeSynthSnapshot } from './testing/synth.js';

const N = 6 * BLOCK_ROWS + 77;
let dir: string;
let snap: string;
let store: Store;
let search: Search;
// biome-ignore lint/suspicious/noExplicitAny: stored lines
let lines: any[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'retap-view-search-'));
  snap = await writeSynthSnapshot(join(dir, 'shop'), N);
  const src = await SnapshotSource.open(snap);
  store = new Store(new LineFile(src.file));
  search = new Search(store);
  await src.start(store);
  lines = [];
  for await (const l of (await openSnapshot(snap)).lines()) lines.push(l.value);
}, 60_000);

afterAll(async () => {
  await store.file.close();
  rmSync(dir, { recursive: true, force: true });
});

function expected(q: string): number[] {
  const keep = compileFilter(parseQuery(q, lines[0].timing.startUs).spec);
  return lines.flatMap((v, i) => (keep(v) ? [i] : []));
}

async function got(q: string): Promise<number[]> {
  const s = await search.select(q);
  return Array.from({ length: s.count }, (_, i) => search.rowAt(s, i));
}

describe('viewer search = the shared filter', () => {
  it('indexes every line of the snapshot', () => {
    expect(store.count).toBe(N);
    expect(store.brokenCount).toBe(0);
  });

  it.each([
    '',
    'dir:inbound',
    'dir:outbound status:5xx',
    'status:none',
    'status:4xx,5xx method:GET',
    'url:/orders/*',
    'url:"GET /orders/{id}"',
    'url:/stock/**',
    'host:inventory*',
    'host:payments.shop.test',
    'peer:10.0.1.2',
    'peer:*:50051',
    'service:ord*',
    'proto:grpc',
    'proto:http1,grpc dir:outbound',
    'header:content-type=application/json',
    'header:x-request-id~^req-1f',
    'header:content-type',
    'json:user.tier=gold',
    'json:items[0].qty=3',
    'json:items[*].sku~^sku-1[0-9]$',
    'json:user.id',
    'ord-1238',
    'sku-17',
    'ORD-12',
    '"content-type: application/grpc"',
    'user-5 gold',
    'type:',
    'from:+100ms to:+200ms',
    'from:+100ms dir:inbound json:user.tier=basic "expand=items"',
    'zz-no-such-thing',
  ])('%s', async (q) => {
    expect(await got(q)).toEqual(expected(q));
  });

  it('finds any substring of any searchable string (text index soundness)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(N - 1), fc.nat(), fc.nat(), fc.integer({ min: 1, max: 12 }), async (row, which, at, len) => {
        const texts = searchableTexts(lines[row]);
        const t = texts[which % texts.length]!;
        if (t.length === 0) return;
        const start = at % t.length;
        const needle = t.slice(start, start + len).trim();
        if (needle === '' || /["\\]/.test(needle)) return;
        const q = `"${needle}"`;
        const rows = await got(q);
        expect(rows).toContain(row);
        expect(rows).toEqual(expected(q));
      }),
      { numRuns: 60 },
    );
  });

  it('reads only the blocks the text index cannot rule out', async () => {
    const before = store.linesRead;
    expect((await got('ord-1238')).length).toBe(1);
    // a block or two whose trigrams all occur, not the whole snapshot (N rows)
    expect(store.linesRead - before).toBeLessThanOrEqual(2 * BLOCK_ROWS);
    expect(store.linesRead - before).toBeLessThan(N / 3);
  });

  it('stops scanning when the browser moves on, and resumes where it stopped', async () => {
    const q = 'json:user.tier=basic "expand"';
    const ac = new AbortController();
    const pending = search.select(q, ac.signal);
    ac.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    const read = store.linesRead;
    expect(await got(q)).toEqual(expected(q));
    // the second select read only what the first did not
    expect(store.linesRead - read).toBeLessThan(N);
  });

  it('pages in both orders, and counts histograms, facets and the map over the selection', async () => {
    const s = await search.select('dir:outbound');
    const asc = search.page(s, 0, 5, 'asc').map((r) => r.n);
    const desc = search.page(s, 0, 5, 'desc').map((r) => r.n);
    const all = expected('dir:outbound');
    expect(asc).toEqual(all.slice(0, 5));
    expect(desc).toEqual(all.slice(-5).reverse());
    expect(search.histogram(s, 50).counts.reduce((a, b) => a + b, 0)).toBe(s.count);
    const f = await search.facets('dir:outbound status:2xx');
    expect(f.dir).toEqual({ inbound: expected('status:2xx dir:inbound').length, outbound: expected('status:2xx dir:outbound').length });
    const m = search.serviceMap(await search.select(''));
    expect(m.edges.reduce((n, e) => n + e.count, 0)).toBe(N);
    expect(m.nodes.map((x) => x.id).sort()).toEqual(['caller:10.0.1.1', 'caller:10.0.1.2', 'caller:10.0.1.3', 'dependency:inventory.shop.test:8081', 'dependency:payments.shop.test:50051', 'service:orders']);
    for (const e of m.edges) expect((await got(e.query)).length, e.query).toBe(e.count);
  });

  it('keeps going past a line that is not an exchange, and counts it', async () => {
    const f = join(dir, 'broken.jsonl');
    writeFileSync(f, `${JSON.stringify(lines[0])}\n{"id": broken\n{"id":"x"}\n${JSON.stringify(lines[1])}`);
    const s = new Store(new LineFile(f));
    const r = await indexLines(f, s);
    expect(r.lines).toBe(4);
    expect(s.count).toBe(2);
    expect(s.brokenCount).toBe(2);
    expect(s.broken.map((b) => b.where)).toEqual(['line 2', 'line 3']);
    expect((await s.line(1)).id).toBe(lines[1].id);
    await s.file.close();
  });
});
