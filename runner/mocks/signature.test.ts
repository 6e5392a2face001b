import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { canonicalQuery } from './canon.js';
import { type RequestView, signatureOf } from './signature.js';
import { emptyVolatileFields, isVolatileName, isVolatileValue, volatileFromTokens } from './volatile.js';

const req = (
  method: string,
  target: string,
  body?: unknown,
  headers: Array<[string, string]> = [['content-type', 'application/json']],
): RequestView => ({
  method,
  target,
  headers,
  body:
    body === undefined
      ? new Uint8Array(0)
      : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
});

describe('volatile values', () => {
  it('knows uuids, timestamps, JWTs, long hex and epoch numbers; not ordinary values', () => {
    for (const v of [
      '6f1c2e0a-8b7d-4c3e-9f21-0123456789ab',
      '2025-11-20T10:00:00.123Z',
      'Wed, 01 May 2024 12:00:00 GMT',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln',
      'a3f9c0d1e2b4a5f6c7d8',
      1732099200,
      1732099200123,
    ]) {
      expect(isVolatileValue(v), String(v)).toBe(true);
    }
    for (const v of ['sku-1', 'EUR', 'hello world', 42, 500, 'payments', true, null])
      expect(isVolatileValue(v), String(v)).toBe(false);
  });

  it('knows id and time field names', () => {
    for (const n of [
      'id',
      'orderId',
      'request_id',
      'createdAt',
      'updated_at',
      'nonce',
      'traceID',
      'timestamp',
    ])
      expect(isVolatileName(n), n).toBe(true);
    for (const n of ['sku', 'qty', 'amount', 'format', 'valid', 'status', 'paid'])
      expect(isVolatileName(n), n).toBe(false);
  });

  it('reads request-side token locations from tokens.yaml', () => {
    const v = volatileFromTokens({
      version: 1,
      tokens: [
        { id: 't1', origin: { exchange: 'x', in: 'request', where: 'jsonpath:$.items[0].ref' } },
        {
          id: 't2',
          origin: { exchange: 'x', in: 'response', where: 'jsonpath:$.ignored' },
          uses: [{ exchange: 'y', where: 'query:session' }],
        },
      ],
    });
    expect([...v.jsonPaths]).toEqual(['$.items[*].ref']);
    expect([...v.queryNames]).toEqual(['session']);
  });
});

describe('signatures', () => {
  it('sorts query parameters and decodes them', () => {
    const mode = { values: true, names: false };
    expect(canonicalQuery('b=2&a=1&a=0', mode)).toBe(canonicalQuery('a=0&b=2&a=1', mode));
    expect(canonicalQuery('q=a%20b', mode)).toBe(canonicalQuery('q=a+b', mode));
    expect(canonicalQuery('t=2025-01-01T00:00:00Z&x=1', mode)).toBe(
      canonicalQuery('x=1&t=2026-02-02T10:00:00Z', mode),
    );
  });

  it('ignores JSON key order and volatile values in the exact key', () => {
    const a = signatureOf(
      req('post', '/pay?b=1&a=2', { amount: 5, at: '2025-01-01T00:00:00Z', nested: { z: 1, y: [1, 2] } }),
    );
    const b = signatureOf(
      req('POST', '/pay?a=2&b=1', { nested: { y: [1, 2], z: 1 }, at: '2026-09-09T09:09:09Z', amount: 5 }),
    );
    expect(a.keys.exact).toBe(b.keys.exact);
    const c = signatureOf(req('POST', '/pay?a=2&b=1', { nested: { y: [2, 1], z: 1 }, amount: 5, at: 'x' }));
    expect(c.keys.exact).not.toBe(a.keys.exact);
  });

  it('route key: id-like path segments and id/time-named fields do not count', () => {
    const a = signatureOf(req('POST', '/orders/123/items', { orderId: 'ord-1', sku: 'A' }));
    const b = signatureOf(req('POST', '/orders/456/items', { orderId: 'ord-2', sku: 'A' }));
    expect(a.keys.exact).not.toBe(b.keys.exact);
    expect(a.keys.route).toBe(b.keys.route);
    const c = signatureOf(req('POST', '/orders/456/items', { orderId: 'ord-2', sku: 'B' }));
    expect(c.keys.route).not.toBe(a.keys.route);
  });

  it('fields named in tokens.yaml or transform rules are masked everywhere', () => {
    const known = emptyVolatileFields();
    known.jsonPaths.add('$.reference');
    const a = signatureOf(req('POST', '/r', { reference: 'ord-OLD-1', sku: 'A' }), known);
    const b = signatureOf(req('POST', '/r', { reference: 'ord-NEW-2', sku: 'A' }), known);
    expect(a.keys.exact).toBe(b.keys.exact);
  });

  it('compares decoded content, form bodies sorted, other bodies as text', () => {
    const plain = signatureOf(req('POST', '/j', { a: 1 }));
    const gz = signatureOf({
      ...req('POST', '/j'),
      headers: [
        ['content-type', 'application/json'],
        ['content-encoding', 'gzip'],
      ],
      body: gzipSync(Buffer.from('{ "a" : 1 }')),
    });
    expect(gz.keys.exact).toBe(plain.keys.exact);
    const form = (t: string) =>
      signatureOf(req('POST', '/f', t, [['content-type', 'application/x-www-form-urlencoded']])).keys.exact;
    expect(form('b=2&a=1')).toBe(form('a=1&b=2'));
    expect(signatureOf(req('POST', '/t', 'hello', [['content-type', 'text/plain']])).exact).toBe('raw:hello');
  });

  it('a truncated recorded body only has the loose key', () => {
    const s = signatureOf({ ...req('POST', '/up', 'partial'), truncated: true });
    expect(s.keys).toEqual({ loose: 'POST /up' });
  });
});
