/** The shared filter's conditions (used by `retap snapshot filter` and `retap view`). */
import { describe, expect, it } from 'vitest';
import { synthExchange } from '../viewer/testing/synth.js';
import { compileFilter, compileFilterParts, type FilterSpec, searchableTexts, summarize } from './filter.js';
import { toStored } from './format.js';

// biome-ignore lint/suspicious/noExplicitAny: stored exchange lines
const stored = (i: number): any => toStored(synthExchange(i));
const inbound = stored(1); // GET /orders/1, JSON answer, peer 10.0.1.2
const post = stored(5); // POST /orders with a JSON body
const inventory = stored(6); // outbound HTTP to inventory.shop.test
const payments = stored(8); // outbound gRPC, protobuf body, decoded extras
const all = [inbound, post, inventory, payments];
const keep = (spec: FilterSpec) => all.filter((v) => compileFilter(spec)(v)).map((v) => v.id);

describe('shared filter conditions', () => {
  it('summary fields', () => {
    expect(summarize(payments)).toMatchObject({ direction: 'outbound', method: 'POST', host: 'payments.shop.test:50051', protocol: 'grpc', service: 'orders', peerAddr: '10.0.3.7', peerPort: 50051, status: 200 });
    expect(summarize(inbound).host).toBe('orders.shop.test');
  });

  it('service, protocol and peer globs', () => {
    expect(keep({ services: ['ORD*'] })).toHaveLength(4);
    expect(keep({ services: ['inventory'] })).toEqual([]);
    expect(keep({ protocols: ['GRPC'] })).toEqual([payments.id]);
    expect(keep({ peers: ['10.0.1.*'] })).toEqual([inbound.id, post.id]);
    expect(keep({ peers: ['*:8081'] })).toEqual([inventory.id]);
  });

  it('JSON fields in request or response bodies', () => {
    expect(keep({ json: ['user.tier=basic'] })).toEqual([inbound.id, post.id]);
    expect(keep({ json: ['user.tier=gold'] })).toEqual([]);
    expect(keep({ json: ['items[0].qty=2'] })).toEqual([post.id]);
    expect(keep({ json: ['items[*].sku~^sku-5$'] })).toEqual([post.id]);
    expect(keep({ json: ['available'] })).toEqual([inventory.id]);
    expect(keep({ json: ['user.id', 'items'] })).toEqual([post.id]);
    expect(keep({ json: ['order=1'] })).toEqual([inbound.id]);
  });

  it('text anywhere, including what decoders extracted from binary bodies', () => {
    expect(payments.request.body.encoding).toBe('base64');
    expect(keep({ text: 'ORD-8' })).toEqual([payments.id]);
    expect(searchableTexts(payments)).toContain('ord-8');
    expect(keep({ text: 'content-type: application/grpc' })).toEqual([payments.id]);
    expect(keep({ text: ['warehouse', 'sku-6'] })).toEqual([inventory.id]);
    expect(keep({ text: ['warehouse', 'sku-7'] })).toEqual([]);
  });

  it('compiles into a summary stage and a content stage', () => {
    expect(compileFilterParts({ statuses: ['2xx'], routes: ['/orders/*'] }).full).toBeUndefined();
    const c = compileFilterParts({ text: 'Gold', headers: ['accept'] });
    expect(c.full).toBeDefined();
    expect(c.needles).toEqual(['gold']);
  });
});
