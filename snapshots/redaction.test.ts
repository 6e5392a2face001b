import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { Exchange } from '../core/exchange.js';
import { createRedactor, luhnValid, mergeSummaries, PLACEHOLDER } from './redaction.js';
import { sampleExchange } from './sample.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (b: Uint8Array) => dec.decode(b);

function withRequest(over: Partial<Exchange['request']>, i = 1): Exchange {
  const ex = sampleExchange(i);
  return { ...ex, request: { ...ex.request, ...over } };
}

describe('redaction', () => {
  it('checks card numbers with Luhn', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('378282246310005')).toBe(true);
  });

  it('redacts auth headers, cookies, api keys, query secrets; same secret gives same placeholder', () => {
    const r = createRedactor(undefined);
    const ex = withRequest({
      target: '/x?access_token=abc123&page=2',
      headers: [
        ['Authorization', 'Bearer abc123'],
        ['Cookie', 'sid=s3cr3t; theme=dark'],
        ['X-Api-Key', 'k-999'],
        ['Accept', 'text/html'],
      ],
    });
    const out = r.redact(ex);
    const h = Object.fromEntries(out.request.headers);
    const [scheme, ph] = h.Authorization!.split(' ') as [string, string];
    expect(scheme).toBe('Bearer');
    expect(ph).toMatch(PLACEHOLDER);
    expect(out.request.target).toBe(`/x?access_token=${ph}&page=2`);
    // a short plain value under a name that says nothing of credentials is no secret
    expect(h.Cookie).toMatch(/^sid=REDACTED-[0-9a-f]{16}; theme=dark$/);
    expect(h['X-Api-Key']).toMatch(PLACEHOLDER);
    expect(h.Accept).toBe('text/html');
    // the input is not modified
    expect(ex.request.headers[0]![1]).toBe('Bearer abc123');
    // idempotent: redacting again changes nothing
    expect(r.redact(out)).toBe(out);
    const s = r.summary();
    expect(s.enabled).toBe(true);
    expect(s.keyed).toBe(false);
    expect(s.redacted).toEqual([
      { rule: 'api-key-header', location: 'request.header:x-api-key', count: 1 },
      { rule: 'auth-header', location: 'request.header:authorization', count: 1 },
      { rule: 'cookie', location: 'request.header:cookie', count: 1 },
      { rule: 'query-param', location: 'request.query:access_token', count: 1 },
    ]);
  });

  it('never takes digit runs inside UUIDs or hex ids for card numbers', () => {
    const r = createRedactor(undefined);
    // a Luhn-valid run (4532015112830366) hiding inside ids, with and without dashes
    for (const id of ['c4532015-1128-3036-6b6f-0a1b2c3d4e5f', 'x4532015112830366', '4532015112830366abc', 'a-4532-0151-1283-0366']) {
      const body = new TextEncoder().encode(JSON.stringify({ id }));
      const ex = r.redact({ ...sampleExchange(0), response: { status: 200, version: 'HTTP/1.1', headers: [['content-type', 'application/json']], body: { data: body, size: body.length, truncated: false } } });
      expect(Buffer.from(ex.response!.body.data).toString()).toBe(JSON.stringify({ id }));
    }
  });

  it('redacts JSON fields lexically and card numbers, keeps the rest byte for byte, fixes Content-Length', () => {
    const body = '{ "user": "ann",  "password" : "hunter2", "nested": {"apiKey": 12345, "card": "4111 1111 1111 1111"}, "n": 4111111111111112 }';
    const ex = withRequest({
      headers: [
        ['Content-Type', 'application/json'],
        ['Content-Length', String(body.length)],
      ],
      body: { data: enc.encode(body), size: body.length, truncated: false },
    });
    const out = createRedactor({}).redact(ex);
    const got = text(out.request.body.data);
    expect(got).toMatch(/^\{ "user": "ann", {2}"password" : "REDACTED-[0-9a-f]{16}", "nested": \{"apiKey": "REDACTED-[0-9a-f]{16}", "card": "REDACTED-[0-9a-f]{16}"\}, "n": 4111111111111112 \}$/);
    expect(out.request.body.size).toBe(got.length);
    expect(out.request.headers[1]).toEqual(['Content-Length', String(got.length)]);
  });

  it('re-encodes a gzip body whose decoded form held a secret', () => {
    const plain = enc.encode('{"token":"t-1"}');
    const ex = sampleExchange(2);
    ex.response = {
      ...ex.response!,
      headers: [['Content-Encoding', 'gzip'], ['Content-Type', 'application/json']],
      body: { data: gzipSync(plain), size: 10, truncated: false, decoded: plain },
    };
    const out = createRedactor(undefined).redact(ex);
    const round = text(gunzipSync(out.response!.body.data));
    expect(round).toMatch(/^\{"token":"REDACTED-[0-9a-f]{16}"\}$/);
    expect(text(out.response!.body.decoded!)).toBe(round);
  });

  it('uses a key when given, supports custom rules, and can be turned off', () => {
    const ex = withRequest({ headers: [['X-Internal', 'abc'], ['Authorization', 'Basic Zm9v']], target: '/u/emp-77123' });
    const keyed = createRedactor({ key: 'k1', headers: ['x-internal'], patterns: [{ id: 'employee', regex: 'emp-(\\d+)' }] });
    const other = createRedactor({ key: 'k2' });
    const a = keyed.redact(ex);
    expect(a.request.headers[0]![1]).toMatch(PLACEHOLDER);
    expect(a.request.headers[1]![1]).not.toBe(other.redact(ex).request.headers[1]![1]);
    expect(a.request.target).toMatch(/^\/u\/emp-REDACTED-[0-9a-f]{16}$/);
    expect(keyed.summary().keyed).toBe(true);
    expect(createRedactor(false).redact(ex)).toBe(ex);
    const noAuth = createRedactor({ allowHeaders: ['authorization'] }).redact(ex);
    expect(noAuth.request.headers[1]![1]).toBe('Basic Zm9v');
  });

  it('leaves binary bodies alone', () => {
    const data = new Uint8Array([0, 1, 2, 0xff]);
    const ex = withRequest({ body: { data, size: 4, truncated: false } });
    expect(createRedactor(undefined).redact(ex)).toBe(ex);
  });
});

describe('the rules a snapshot carries', () => {
  it('summary() keeps the user rules (never the key); built-ins alone carry none', () => {
    const r = createRedactor({ key: 'k-secret', headers: ['x-ref'], patterns: [{ id: 'code', regex: 'C-\\d+' }] });
    const s = r.summary();
    expect(s.config).toEqual({ headers: ['x-ref'], patterns: [{ id: 'code', regex: 'C-\\d+' }] });
    expect(JSON.stringify(s)).not.toContain('k-secret');
    expect(createRedactor(undefined).summary().config).toBeUndefined();
    expect(createRedactor(false).summary().config).toBeUndefined();
  });

  it('merged summaries carry the union of their rules; built-ins stay on when any source had them', () => {
    const a = createRedactor({ defaults: false, headers: ['x-a'], patterns: [{ id: 'p', regex: 'A' }] }).summary();
    const b = createRedactor({ defaults: false, headers: ['x-b'], patterns: [{ id: 'p', regex: 'A' }] }).summary();
    expect(mergeSummaries([a, b]).config).toEqual({
      defaults: false,
      headers: ['x-a', 'x-b'],
      patterns: [{ id: 'p', regex: 'A' }],
    });
    const plain = createRedactor(undefined).summary();
    expect(mergeSummaries([plain, a]).config).toEqual({ headers: ['x-a'], patterns: [{ id: 'p', regex: 'A' }] });
    expect(mergeSummaries([plain, plain]).config).toBeUndefined();
  });
});
