import { describe, expect, it } from 'vitest';
import type { FilterSpec } from '../snapshots/filter.js';
import { formatSpec, parseQuery } from './query.js';

describe('viewer query language', () => {
  it('parses every key into the shared FilterSpec', () => {
    const q = parseQuery(
      'dir:in status:5xx,404 method:POST url:/orders/* host:inv* service:orders proto:grpc peer:10.0.0.* header:x-id=7 json:user.id=42 from:2026-01-01T00:00:00Z to:+30s "out of stock" timeout',
      1_767_225_600_000_000,
    );
    expect(q.spec).toEqual({
      direction: 'inbound',
      statuses: ['5xx', '404'],
      methods: ['POST'],
      routes: ['/orders/*'],
      hosts: ['inv*'],
      services: ['orders'],
      protocols: ['grpc'],
      peers: ['10.0.0.*'],
      headers: ['x-id=7'],
      json: ['user.id=42'],
      fromUs: 1_767_225_600_000_000,
      toUs: 1_767_225_630_000_000,
      text: ['out of stock', 'timeout'],
    } satisfies FilterSpec);
    expect(q.terms.map((t) => t.key)).toEqual(['dir', 'status', 'method', 'url', 'host', 'service', 'proto', 'peer', 'header', 'json', 'from', 'to', 'text', 'text']);
    expect(q.terms[1]!.raw).toBe('status:5xx,404');
  });

  it('repeated keys add alternatives; a word with an unknown key is text', () => {
    expect(parseQuery('status:200 status:404').spec.statuses).toEqual(['200', '404']);
    expect(parseQuery('foo:bar').spec.text).toEqual(['foo:bar']);
    expect(parseQuery('a,b').spec.text).toEqual(['a,b']);
    expect(parseQuery('').terms).toEqual([]);
    expect(parseQuery('json:"note=two words"').spec.json).toEqual(['note=two words']);
    expect(parseQuery('"say \\"hi\\""').spec.text).toEqual(['say "hi"']);
  });

  it('formatSpec writes what parseQuery reads back', () => {
    const specs: FilterSpec[] = [
      { direction: 'outbound', hosts: ['a b'], text: ['x,y', 'q"uote'], json: ['items[*].sku~^A'] },
      { statuses: ['none', '400-499'], routes: ['GET /orders/{id}'], headers: ['content-type~json'], fromUs: 1_767_225_600_123_000, toUs: 1_767_225_700_000_000 },
      { services: ['orders'], protocols: ['grpc', 'http2'], peers: ['*:50051'], methods: ['GET'] },
    ];
    for (const s of specs) expect(parseQuery(formatSpec(s)).spec).toEqual(s);
  });

  it('says what is wrong and where', () => {
    expect(() => parseQuery('status:7xx')).toThrow(/status: '7xx' is not a status/);
    expect(() => parseQuery('dir:sideways')).toThrow(/dir: 'sideways' is not inbound or outbound/);
    expect(() => parseQuery('text "open')).toThrow(/quoted value is not closed \(at column 6/);
    expect(() => parseQuery('status: 5xx')).toThrow(/status: needs a value/);
    expect(() => parseQuery('header:x~(')).toThrow(/bad regular expression/);
    expect(() => parseQuery('json:a..b=1')).toThrow(/is not a field path/);
    expect(() => parseQuery('from:-5m')).toThrow(/relative time needs/);
    expect(() => parseQuery('from:yesterday', 1)).toThrow(/'yesterday' is not a time/);
    try {
      parseQuery('status:7xx');
    } catch (e) {
      expect((e as { code: string }).code).toBe('RETAP_USAGE');
    }
  });
});
