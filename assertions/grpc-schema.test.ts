import { join } from 'node:path';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { describe, expect, it } from 'vitest';
import { loadProtoDirs } from '../core/protos.js';
import { grpcFrame } from '../core/protobuf.js';
import type { GrpcReflection, ReplayResults, ReplayRun } from '../core/results.js';
import { compareGrpc, grpcAnswer } from './grpc.js';
import { grpcSchemaFor } from './grpc-schema.js';

const fixtures = join(import.meta.dirname, '..', 'test', 'fixtures');
const root = protobuf.loadSync(join(fixtures, 'grpc', 'catalog.proto'));
const Item = root.lookupType('retap.test.Item');
/** What a build's reflection hands out: serialized FileDescriptorProtos (here from the fixture). */
const described = new protobuf.Root().loadSync(join(fixtures, 'grpc', 'catalog.proto'), { keepCase: true });
const files = (
  (described as unknown as { toDescriptor(s: string): { file: unknown[] } }).toDescriptor('proto3')
    .file as Array<Record<string, unknown>>
).map((f) => Buffer.from(descriptor.FileDescriptorProto.encode(f).finish()).toString('base64'));

const run = (label: string, role: 'candidate' | 'baseline', reflection?: GrpcReflection): ReplayRun => ({
  label,
  role,
  build: { command: 'x', port: 1 },
  startedAt: '',
  durationMs: 0,
  items: [],
  mocks: { calls: 0, matched: 0, misses: [] },
  capture: { exchanges: 0, ringbufDrops: 0, userBatchDrops: 0, gapBytes: 0 },
  warnings: [],
  ...(reflection ? { reflection } : {}),
});
const results = (...runs: ReplayRun[]) => ({ runs }) as unknown as ReplayResults;

const get = (price: number) =>
  grpcAnswer(
    '/retap.test.Catalog/Get',
    [['content-type', 'application/grpc']],
    grpcFrame(Item.encode(Item.fromObject({ id: 'a', name: 'n', priceCents: price })).finish()),
    [['grpc-status', '0']],
  );

describe('which names gRPC messages are compared with', () => {
  it("the build's reflected descriptors name the fields ($.price_cents, not #3)", () => {
    const choice = grpcSchemaFor(
      results(run('candidate', 'candidate', { api: 'grpc.reflection.v1', files })),
      undefined,
    );
    expect(choice.source).toBe('reflection');
    expect(choice.note).toBeUndefined();
    expect(compareGrpc(get(100), get(101), choice.schema).map((d) => d.path)).toEqual(['$.price_cents']);
    expect(compareGrpc(get(100), get(101)).map((d) => d.path)).toEqual(['#3']);
  });

  it('.proto files given win over reflection', () => {
    const protos = loadProtoDirs([join(fixtures, 'grpc')]);
    const choice = grpcSchemaFor(results(run('candidate', 'candidate', { files })), protos);
    expect(choice).toEqual({ schema: protos, source: 'proto' });
  });

  it("the candidate's schema first; a baseline's only when the candidate gave none", () => {
    const choice = grpcSchemaFor(
      results(
        run('baseline', 'baseline', { files }),
        run('candidate', 'candidate', { error: 'no reflection' }),
      ),
      undefined,
    );
    expect(choice.source).toBe('reflection');
  });

  it('a build without reflection: field numbers, and a note that says why', () => {
    const choice = grpcSchemaFor(
      results(run('candidate', 'candidate', { error: 'the build offers no gRPC server reflection (…)' })),
      undefined,
    );
    expect(choice.schema).toBeUndefined();
    expect(choice.note).toMatchObject({ run: 'candidate', code: 'grpc-reflection' });
    expect(choice.note?.message).toMatch(
      /^the build offers no gRPC server reflection .*compared by field number \(#2\)/,
    );
  });

  it('not asked (no gRPC, or turned off): no note', () => {
    expect(grpcSchemaFor(results(run('candidate', 'candidate')), undefined)).toEqual({ source: 'none' });
  });

  it('descriptors that do not make a schema: field numbers and a note, never a throw', () => {
    const choice = grpcSchemaFor(
      results(run('candidate', 'candidate', { files: [Buffer.from('not a descriptor').toString('base64')] })),
      undefined,
    );
    expect(choice.schema).toBeUndefined();
    expect(choice.note?.message).toMatch(/reflected descriptors do not make a schema/);
  });
});
