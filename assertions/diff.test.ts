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
