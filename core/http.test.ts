import { describe, expect, it } from 'vitest';
import { emptyBody, type Exchange, type HeaderList } from './exchange.js';
import {
  CONNECTION_SPECIFIC,
  exchangeAuthority,
  HOP_BY_HOP,
  hostName,
  isIdSegment,
  parseDurationMs,
  pathTemplate,
  requestAuthority,
} from './http.js';

function ex(headers: HeaderList, peer: { addr: string; host?: string }, extras?: Record<string, unknown>): Exchange {
  return {
    id: 'c#0',
    protocol: 'http1',
    direction: 'outbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 5000 },
    peer: { ...peer, port: 8080 },
    connection: { id: 'c', order: 0 },
    request: { method: 'GET', target: '/', version: 'HTTP/1.1', headers, body: emptyBody() },
    timing: { startUs: 0, requestEndNs: 0 },
    ...(extras ? { extras } : {}),
  };
}

describe('hosts', () => {
  it('the authority a request named: Host, else :authority as a header, else the HTTP/2 pseudo-header', () => {
    expect(requestAuthority([['HOST', 'a.example:81']])).toBe('a.example:81');
    expect(requestAuthority([[':authority', 'b.example']])).toBe('b.example');
    expect(requestAuthority([['host', 'a'], [':authority', 'b']])).toBe('a');
    expect(requestAuthority([], { pseudo: { ':authority': 'c.example:443' } })).toBe('c.example:443');
    expect(requestAuthority([['accept', '*/*']])).toBeUndefined();
  });

  it('where an exchange went: peer.host, else the authority, else the peer address', () => {
    expect(exchangeAuthority(ex([['host', 'h:1']], { addr: '10.0.0.1', host: 'svc' }))).toBe('svc');
    expect(exchangeAuthority(ex([['host', 'h:1']], { addr: '10.0.0.1' }))).toBe('h:1');
    expect(exchangeAuthority(ex([], { addr: '10.0.0.1' }, { pseudo: { ':authority': 'p' } }))).toBe('p');
    expect(exchangeAuthority(ex([], { addr: '10.0.0.1' }))).toBe('10.0.0.1');
  });

  it('the host of an authority: no port, no brackets, a bare IPv6 address whole, case kept', () => {
    expect(hostName('Shop.Example:8080')).toBe('Shop.Example');
    expect(hostName('shop.example')).toBe('shop.example');
    expect(hostName('[::1]:443')).toBe('::1');
    expect(hostName('[fe80::1]')).toBe('fe80::1');
    expect(hostName('::1')).toBe('::1');
    expect(hostName('2001:db8::8080')).toBe('2001:db8::8080');
    expect(hostName('127.0.0.1:5432')).toBe('127.0.0.1');
  });
});

describe('headers', () => {
  it('connection-specific fields are hop-by-hop; te and http2-settings are hop-by-hop only', () => {
    for (const h of CONNECTION_SPECIFIC) expect(HOP_BY_HOP.has(h), h).toBe(true);
    expect([...HOP_BY_HOP].filter((h) => !CONNECTION_SPECIFIC.has(h)).sort()).toEqual(['http2-settings', 'te']);
    // message fields, never dropped as hop-by-hop
    for (const h of ['content-length', 'trailer', 'host', 'content-type']) expect(HOP_BY_HOP.has(h), h).toBe(false);
    for (const h of HOP_BY_HOP) expect(h).toBe(h.toLowerCase());
  });
});

describe('paths', () => {
  it('id segments: numbers, uuids, 16+ hex digits, 24+ opaque characters, redaction placeholders', () => {
    for (const s of ['7', '6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b', '0123456789abcdef', 'eyJhbGciOiJIUzI1NiJ9abcdef', 'REDACTED-0123456789abcdef'])
      expect(isIdSegment(s), s).toBe(true);
    // 12–15 hex digits are not enough (one rule everywhere: routes, manifests, outbound calls)
    for (const s of ['', 'orders', 'v2', 'SKU-1', '0123456789ab', 'deadbeefcafe12f']) expect(isIdSegment(s), s).toBe(false);
  });

  it('templates a path: query dropped, id segments → {id}, empty segments kept', () => {
    expect(pathTemplate('/orders/123?full=1')).toBe('/orders/{id}');
    expect(pathTemplate('/orders/6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b/items/')).toBe('/orders/{id}/items/');
    expect(pathTemplate('/stock/SKU-1?x=1')).toBe('/stock/SKU-1');
    expect(pathTemplate('//a')).toBe('//a');
    expect(pathTemplate('*')).toBe('*');
    expect(pathTemplate('shop.example:443')).toBe('shop.example:443');
  });
});

describe('durations', () => {
  it('units ms, s, m, h, d; fractions; not rounded', () => {
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('30s')).toBe(30_000);
    expect(parseDurationMs(' 1.5m ')).toBe(90_000);
    expect(parseDurationMs('2h')).toBe(7_200_000);
    expect(parseDurationMs('1d')).toBe(86_400_000);
    expect(parseDurationMs('0.5ms')).toBe(0.5);
  });

  it('a bare number needs `bare`, a sign needs `signed`', () => {
    expect(parseDurationMs('30')).toBeUndefined();
    expect(parseDurationMs('30', { bare: 's' })).toBe(30_000);
    expect(parseDurationMs('-5m')).toBeUndefined();
    expect(parseDurationMs('-5m', { signed: true })).toBe(-300_000);
    expect(parseDurationMs('+1h', { signed: true })).toBe(3_600_000);
  });

  it('refuses what is not a duration', () => {
    for (const t of ['', 'soon', '5 s', '1e3ms', '5sec', 's', '.5s', '1.s']) expect(parseDurationMs(t, { bare: 's' }), t).toBeUndefined();
  });
});
