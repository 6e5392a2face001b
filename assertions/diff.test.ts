import { describe, expect, it } from 'vitest';
import { viewBytes } from './body.js';
import { compareHeaders } from './headers.js';
import { diffJson } from './json-diff.js';
import { compareCalls } from './outbound.js';
import { fromPointer, generalise, pathMatches } from './paths.js';
import { routeMatches } from './routes.js';
import { createSchemaSet } from './schema.js';
import { buildResults } from './testing/fixtures.js';

describe('diffJson', () => {
  it('reports changed value, changed type, missing and new fields, array length', () => {
    const d = diffJson(
      { a: 1, b: 'x', c: [1, 2], d: { e: true }, 'odd key': 1 },
      { a: 2, b: 3, c: [1], d: {}, f: null, 'odd key': 1 },
    );
    expect(d).toEqual([
      { path: '$.a', kind: 'changed-value', recorded: 1, candidate: 2 },
      { path: '$.b', kind: 'changed-type', recorded: 'x', candidate: 3 },
      { path: '$.c', kind: 'array-length', recorded: 2, candidate: 1 },
      { path: '$.d.e', kind: 'missing-field', recorded: true },
      { path: '$.f', kind: 'new-field', candidate: null },
    ]);
    expect(diffJson({ 'a b': [{ x: 1 }] }, { 'a b': [{ x: 2 }] })[0]?.path).toBe('$["a b"][0].x');
  });

  it('stays bounded on huge bodies', () => {
    const a = Array.from({ length: 5000 }, (_, i) => i);
    expect(
      diffJson(
        a,
        a.map((x) => x + 1),
      ).length,
    ).toBeLessThanOrEqual(200);
  });
});

describe('paths and routes', () => {
  it('matches ignore patterns', () => {
    expect(pathMatches('$.a', '$.a')).toBe(true);
    expect(pathMatches('$.a', '$.a.b')).toBe(true);
    expect(pathMatches('$.a', '$.ab')).toBe(false);
    expect(pathMatches('$.orders[*].id', '$.orders[3].id')).toBe(true);
    expect(pathMatches('$..createdAt', '$.orders[0].createdAt')).toBe(true);
    expect(pathMatches('$..createdAt', '$.createdAt')).toBe(true);
    expect(pathMatches('$.*.id', '$.x.id')).toBe(true);
    expect(generalise('$.a[3].b[10]')).toBe('$.a[*].b[*]');
    expect(fromPointer('/orders/0/total')).toBe('$.orders[0].total');
  });

  it('matches route globs', () => {
    expect(routeMatches('GET /orders/{id}', 'GET /orders/{id}')).toBe(true);
    expect(routeMatches('GET /orders/*', 'GET /orders/{id}')).toBe(true);
    expect(routeMatches('/orders/**', 'POST /orders/{id}/items')).toBe(true);
    expect(routeMatches('POST /orders/*', 'GET /orders/{id}')).toBe(false);
    expect(routeMatches(undefined, 'GET /x')).toBe(true);
  });
});

describe('bodies, headers, calls, schema', () => {
  it('classifies bodies', () => {
    const enc = new TextEncoder();
    expect(viewBytes(enc.encode('{"a":1}'), []).kind).toBe('json');
    expect(viewBytes(enc.encode('hello'), [['Content-Type', 'text/plain']]).kind).toBe('text');
    expect(viewBytes(Uint8Array.from([0, 1, 2, 255]), []).kind).toBe('binary');
    expect(viewBytes(new Uint8Array(0), []).kind).toBe('empty');
  });

  it('compares headers case-insensitively and rates content-type as breaking', () => {
    const d = compareHeaders(
      [
        ['Content-Type', 'application/json; charset=utf-8'],
        ['X-A', '1'],
        ['X-Gone', 'y'],
      ],
      [
        ['content-type', 'text/html'],
        ['x-a', '1'],
        ['x-new', 'z'],
      ],
    );
    expect(d.map((x) => [x.kind, x.path, x.rating])).toEqual([
      ['changed-header', 'header:content-type', 'breaking'],
      ['missing-header', 'header:x-gone', 'warning'],
      ['new-header', 'header:x-new', 'warning'],
    ]);
  });

  it('compares outbound calls as a multiset of signatures', () => {
    const r = buildResults([
      {
        id: 'a',
        route: 'POST /x',
        method: 'POST',
        target: '/x',
        recorded: { status: 200, calls: ['GET inv /stock/1', 'POST pay /charges'] },
        candidate: { status: 200, calls: ['GET inv /stock/2', 'GET inv /stock/3', 'POST pay /refunds'] },
      },
    ]);
    const rec = r.recorded[0]?.outbound ?? [];
    const cand = r.runs[0]?.items[0]?.outbound ?? [];
    expect(compareCalls(rec, cand).map((d) => [d.kind, d.path, d.rating])).toEqual([
      ['extra-call', 'outbound:GET inv /stock/{id}', 'warning'],
      ['missing-call', 'outbound:POST pay /charges', 'breaking'],
      ['extra-call', 'outbound:POST pay /refunds', 'breaking'],
    ]);
  });

  it('compares what paired calls send: query parameters and JSON body', () => {
    const call = (target: string, body?: unknown) =>
      buildResults([
        {
          id: 'x#0',
          route: 'POST /notes',
          method: 'POST',
          target: '/notes',
          recorded: { status: 201, calls: [{ call: `POST audit ${target}`, body }] },
          candidate: { status: 201 },
        },
      ]).recorded[0]?.outbound ?? [];
    const rec = call('/events?v=2&src=web', { kind: 'note.created', qty: 2, tags: ['a'], user: 'ana' });
    const cand = call('/events?v=3&src=web&dry=1', { kind: 'created', qty: '2', tags: ['a', 'b'] });
    expect(compareCalls(rec, cand).map((d) => [d.kind, d.path, d.rating, d.message])).toEqual([
      [
        'new-field',
        'outbound:POST audit /events ?dry',
        'warning',
        'POST audit /events sends query dry: undefined → "1"',
      ],
      [
        'changed-value',
        'outbound:POST audit /events ?v',
        'warning',
        'POST audit /events sends query v: "2" → "3"',
      ],
      [
        'changed-value',
        'outbound:POST audit /events $.kind',
        'warning',
        'POST audit /events sends $.kind: "note.created" → "created"',
      ],
      [
        'changed-type',
        'outbound:POST audit /events $.qty',
        'breaking',
        'POST audit /events sends $.qty as string "2" (was number 2)',
      ],
      [
        'array-length',
        'outbound:POST audit /events $.tags',
        'warning',
        'POST audit /events sends $.tags with 2 items (was 1)',
      ],
      [
        'missing-field',
        'outbound:POST audit /events $.user',
        'breaking',
        'POST audit /events sends $.user: "ana" → undefined',
      ],
    ]);
    expect(compareCalls(rec, rec)).toEqual([]);
  });

  it('a changed call parameter is a finding; volatile ids and times in it are noise', async () => {
    const { evaluate } = await import('./index.js');
    const event = (kind: string, i: number, run: number) => ({
      kind,
      note_id: `${(run * 7 + i).toString(16).padStart(16, 'a')}`,
      at: new Date(1_767_225_600_000 + run * 1e6 + i).toISOString(),
    });
    const cases = Array.from({ length: 4 }, (_, i) => ({
      id: `n${i}#0`,
      route: 'POST /notes',
      method: 'POST',
      target: '/notes',
      recorded: { status: 201, calls: [{ call: 'POST audit /events', body: event('note.created', i, 0) }] },
      candidate: { status: 201, calls: [{ call: 'POST audit /events', body: event('created', i, 1) }] },
    }));
    const v = evaluate(buildResults(cases));
    expect(v.status).toBe('fail-assertions');
    const counted = v.items.flatMap((it) =>
      it.diffs.filter((d) => !d.noise).map((d) => `${d.kind} ${d.path}`),
    );
    expect([...new Set(counted)]).toEqual(['changed-value outbound:POST audit /events $.kind']);
    expect(v.noise.map((n) => [n.path, n.source])).toEqual(
      expect.arrayContaining([
        ['outbound:POST audit /events $.at', 'volatile-format'],
        ['outbound:POST audit /events $.note_id', 'volatile-format'],
      ]),
    );
  });

  it('infers types, required fields and formats from the recording', () => {
    const s = createSchemaSet();
    s.add('GET /o', 200, {
      id: '7f3c0b8e-0000-4000-a000-000000000001',
      at: '2026-01-01T00:00:00Z',
      n: 1,
      opt: 'x',
    });
    s.add('GET /o', 200, { id: '7f3c0b8e-0000-4000-a000-000000000002', at: '2026-01-02T00:00:00Z', n: 2.5 });
    expect(s.schema('GET /o', 200)).toMatchObject({
      required: ['id', 'at', 'n'],
      properties: { id: { format: 'uuid' }, n: { type: 'number' } },
    });
    const d = s.check('GET /o', 200, { id: 'nope', at: '2026-01-03T00:00:00Z', n: '3' });
    expect(d.map((x) => [x.kind, x.path])).toEqual([
      ['schema-format', '$.id'],
      ['schema-type', '$.n'],
    ]);
    expect(
      s.check('GET /o', 200, { id: '7f3c0b8e-0000-4000-a000-000000000003', n: 1 }).map((x) => x.kind),
    ).toEqual(['schema-required']);
    expect(s.check('GET /o', 404, {})).toEqual([]);
  });
});
