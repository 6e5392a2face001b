import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Exchange } from '../core/exchange.js';
import { createSnapshotWriter, diffSnapshots, filterSnapshot, mergeSnapshots, openSnapshot, validateSnapshot } from './index.js';
import { sampleExchange } from './sample.js';

let dir: string;
let v1: string;
let v2: string;

async function write(list: Exchange[], store: string): Promise<string> {
  const w = await createSnapshotWriter({ dir: store, name: 'orders', source: { host: 'h', filters: {} } });
  for (const ex of list) await w.append(ex);
  await w.finish();
  return w.path;
}

async function ids(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const ex of (await openSnapshot(path)).exchanges()) out.push(ex.id);
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'retap-derive-'));
  const base = Array.from({ length: 40 }, (_, i) => sampleExchange(i));
  v1 = await write(base, join(dir, 'a'));
  // v2: drop #3, change #5's status, add #40
  const next = base.filter((_, i) => i !== 3).map((ex) => (ex.id === sampleExchange(5).id ? { ...ex, response: { ...ex.response!, status: 500 } } : ex));
  next.push(sampleExchange(40));
  v2 = await write(next, join(dir, 'b'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('filter, diff, merge, validate', () => {
  it('filters by status, route, direction, header, text and time', async () => {
    const f = await filterSnapshot(v1, { statuses: ['4xx'] }, { dir: join(dir, 'f1') });
    expect(f.read).toBe(40);
    expect(f.written).toBe(4); // 0, 11, 22, 33
    expect(f.manifest.parent?.hash).toBe((await openSnapshot(v1)).manifest.hash);
    expect(f.manifest.notes[0]).toMatch(/^filtered from orders@v1/);
    const g = await filterSnapshot(v1, { routes: ['POST /orders/*'], direction: 'inbound' }, { dir: join(dir, 'f2') });
    expect(g.written).toBe(new Set(Array.from({ length: 40 }, (_, i) => i).filter((i) => i % 3 === 0 && i % 5 !== 0)).size);
    const h = await filterSnapshot(v1, { text: 'item 17"' }, { dir: join(dir, 'f3') });
    expect(await ids(h.path)).toEqual([sampleExchange(17).id]);
    const t = await filterSnapshot(v1, { fromUs: sampleExchange(10).timing.startUs, toUs: sampleExchange(12).timing.startUs, headers: ['content-type~json'] }, { dir: join(dir, 'f4') });
    expect(t.written).toBe(2);
    // into the source's own store by default: a new version with lineage
    const own = await filterSnapshot(v1, { methods: ['GET'] });
    expect(own.path).toBe(join(dir, 'a', 'v2'));
    expect(own.manifest.parent?.version).toBe(1);
  });

  it('diffs routes and exchanges', async () => {
    const d = await diffSnapshots(v1, v2);
    expect(d.identical).toBe(false);
    expect(d.exchanges).toMatchObject({ added: 1, removed: 1, changed: 1, same: 38 });
    expect(d.exchanges.list.changed[0]).toMatchObject({ id: sampleExchange(5).id, fields: ['response'] });
    expect(d.routes.added.map((r) => r.key)).toEqual([]);
    expect(d.routes.changed.length).toBeGreaterThan(0);
    const same = await diffSnapshots(v1, v1);
    expect(same.identical).toBe(true);
  });

  it('merges without duplicates and keeps order', async () => {
    const m = await mergeSnapshots([v1, v2], { dir: join(dir, 'm') });
    // 40 from v1, +1 new (#40), +1 conflicting #5 (500) ; #3 only in v1
    expect(m.duplicates).toBe(38);
    expect(m.conflicts).toBe(1);
    expect(m.written).toBe(42);
    expect(m.manifest.notes.at(-1)).toBe('1 exchange(s) share id and start time with different content');
    const report = await validateSnapshot(m.path);
    expect(report).toMatchObject({ ok: true, exchanges: 42 });
  });
});
