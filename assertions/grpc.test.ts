import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { loadProtoDirs } from '../core/protos.js';
import { grpcFrame } from '../core/protobuf.js';
import { sampleExchange } from '../snapshots/sample.js';
import { compareAnswers, recordedAnswer, runAnswer } from './answer.js';
import { compareGrpc, grpcAnswer } from './grpc.js';

const fixtures = join(import.meta.dirname, '..', 'test', 'fixtures');
const root = protobuf.loadSync(join(fixtures, 'grpc', 'catalog.proto'));
const renamedRoot = protobuf.loadSync(join(fixtures, 'grpc-renamed', 'catalog.proto'));
const Item = root.lookupType('retap.test.Item');
const RenamedItem = renamedRoot.lookupType('retap.test.Item');
const PATH = '/retap.test.Catalog/List';

const body = (type: protobuf.Type, values: Array<Record<string, unknown>>): Uint8Array =>
  Buffer.concat(values.map((v) => grpcFrame(type.encode(type.fromObject(v)).finish())));

const answer = (b: Uint8Array, status = '0', message?: string) =>
  grpcAnswer(PATH, [['content-type', 'application/grpc']], b, [
    ['grpc-status', status],
    ...(message ? ([['grpc-message', message]] as Array<[string, string]>) : []),
  ]);

const items = (n: number, price = (i: number) => 100 * i) =>
  Array.from({ length: n }, (_, i) => ({
    id: `sku-${i}`,
    name: `item ${i}`,
    priceCents: price(i),
    tags: ['a'],
  }));

describe('gRPC answers compared', () => {
  it('an unchanged stream has no differences', () => {
    expect(compareGrpc(answer(body(Item, items(3))), answer(body(Item, items(3))))).toEqual([]);
  });

  it('names a changed field by number without a schema, by name with one', () => {
    const a = answer(body(Item, items(3)));
    const b = answer(
      body(
        Item,
        items(3, (i) => (i === 2 ? 999 : 100 * i)),
      ),
    );
    const raw = compareGrpc(a, b);
    expect(raw.map((d) => [d.path, d.kind, d.recorded, d.candidate])).toEqual([
      ['[2]#3', 'changed-value', '200', '999'],
    ]);
    const named = compareGrpc(a, b, loadProtoDirs([join(fixtures, 'grpc')]));
    expect(named.map((d) => [d.path, d.kind, d.recorded, d.candidate])).toEqual([
      ['[2]$.price_cents', 'changed-value', '200', '999'],
    ]);
  });

  it('a missing or an extra stream message is a breaking message-count difference', () => {
    const missing = compareGrpc(answer(body(Item, items(3))), answer(body(Item, items(2))));
    expect(missing).toMatchObject([
      { path: 'messages', kind: 'message-count', rating: 'breaking', recorded: 3, candidate: 2 },
    ]);
    expect(missing[0]!.message).toBe('1 of 3 answer messages missing (got 2)');
    const extra = compareGrpc(answer(body(Item, items(1))), answer(body(Item, items(2))));
    expect(extra[0]).toMatchObject({ kind: 'message-count', recorded: 1, candidate: 2 });
  });

  it('a changed grpc-status is breaking and named', () => {
    const d = compareGrpc(
      answer(new Uint8Array(), '5', 'no such item'),
      answer(new Uint8Array(), '7', 'no such item'),
    );
    expect(d).toMatchObject([
      { path: 'grpc-status', kind: 'grpc-status', rating: 'breaking', recorded: 5, candidate: 7 },
    ]);
    expect(d[0]!.message).toBe('grpc-status 5 NOT_FOUND → 7 PERMISSION_DENIED (no such item)');
  });

  it('a renamed and renumbered field, with the recording’s .proto: the name that went missing and the number that came', () => {
    const a = answer(body(Item, items(1)));
    const b = answer(
      body(
        RenamedItem,
        items(1).map(({ name, ...r }) => ({ ...r, title: name })),
      ),
    );
    const d = compareGrpc(a, b, loadProtoDirs([join(fixtures, 'grpc')]));
    expect(d.map((x) => [x.path, x.kind, x.rating])).toEqual([
      ['$.name', 'missing-field', 'breaking'],
      ['#6', 'new-field', 'warning'],
    ]);
  });

  it('nested messages and repeated fields without a schema; a text-vs-message guess compares bytes', () => {
    const Outer = protobuf.Root.fromJSON({
      nested: {
        Inner: { fields: { price: { type: 'int32', id: 1 }, note: { type: 'string', id: 2 } } },
        Outer: { fields: { items: { rule: 'repeated', type: 'Inner', id: 2 } } },
      },
    }).lookupType('Outer');
    const mk = (p: number) =>
      answer(
        Buffer.from(
          grpcFrame(
            Outer.encode(
              Outer.fromObject({
                items: [
                  { price: 1, note: 'x y' },
                  { price: p, note: 'z w' },
                ],
              }),
            ).finish(),
          ),
        ),
      );
    expect(compareGrpc(mk(2), mk(3)).map((d) => d.path)).toEqual(['#2[1].1']);
  });
});

describe('a DEADLINE_EXCEEDED the client made (the build reset the call at its deadline)', () => {
  it('compares the status, not a grpc-message the build never sent', () => {
    const recorded = answer(new Uint8Array(), '4', 'context deadline exceeded');
    const byClient = { ...answer(new Uint8Array(), '4'), byClient: 'reset at the deadline' };
    expect(compareGrpc(recorded, byClient)).toEqual([]);
    // the same status sent by the build with another message is still a warning
    expect(compareGrpc(recorded, answer(new Uint8Array(), '4', 'deadline')).map((d) => d.kind)).toEqual([
      'changed-header',
    ]);
    // and another status is still breaking
    const other = { ...answer(new Uint8Array(), '14'), byClient: 'x' };
    expect(compareGrpc(recorded, other).map((d) => d.rating)).toEqual(['breaking']);
  });
});

describe('the same, from the results a replay writes', () => {
  it('a trailers-only DEADLINE_EXCEEDED recorded, the build reset at its deadline: no difference', () => {
    const empty = { data: new Uint8Array(0), size: 0, truncated: false };
    const grpcCt: [string, string] = ['content-type', 'application/grpc'];
    const exchange = sampleExchange(0, {
      id: 'c0#2',
      protocol: 'grpc',
      direction: 'inbound',
      request: {
        method: 'POST',
        target: PATH,
        version: 'HTTP/2',
        headers: [grpcCt, ['grpc-timeout', '200m']],
        body: empty,
      },
      response: {
        status: 200,
        version: 'HTTP/2',
        headers: [grpcCt, ['grpc-status', '4'], ['grpc-message', 'context deadline exceeded']],
        body: empty,
      },
    });
    const rec = recordedAnswer({ id: 'c0#2', route: `POST ${PATH}`, session: 'c0', exchange, outbound: [] });
    const client = {
      method: 'POST',
      target: PATH,
      headers: exchange.request.headers,
      status: 200,
      responseHeaders: [grpcCt],
      responseBody: new Uint8Array(0),
      responseTrailers: [['grpc-status', '4']] as Array<[string, string]>,
      durationMs: 210,
    };
    const deadline = runAnswer({
      id: 'c0#2',
      client: { ...client, deadline: 'reset at 210 ms' },
      outbound: [],
    });
    expect(compareAnswers(rec, deadline, { route: `POST ${PATH}` })).toEqual([]);
    // without the mark it is the build's own answer: its missing grpc-message is a difference
    const sent = runAnswer({ id: 'c0#2', client, outbound: [] });
    expect(compareAnswers(rec, sent, { route: `POST ${PATH}` }).length).toBeGreaterThan(0);
  });
});
