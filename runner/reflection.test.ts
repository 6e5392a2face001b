/**
 * The reflection client against real servers on loopback: grpc-js with @grpc/reflection (v1 and
 * v1alpha), grpc-js without it, a plain HTTP/2 server that is not gRPC, a port nobody listens on,
 * and a server that never answers. Whatever the build does, askReflection answers (never throws),
 * within its time bound.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schemaFromDescriptors } from '../core/protos.js';
import { askReflection, decodeAnswer, fileNameAndImports } from './reflection.js';

const fixtures = join(import.meta.dirname, '..', 'test', 'fixtures');
const proto = join(fixtures, 'grpc', 'catalog.proto');

async function grpcServer(reflection: 'v1+v1alpha' | 'v1alpha' | 'none'): Promise<[grpc.Server, number]> {
  const def = loader.loadSync(proto, { keepCase: true, longs: String });
  const server = new grpc.Server();
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    retap: { test: { Catalog: { service: grpc.ServiceDefinition } } };
  };
  server.addService(pkg.retap.test.Catalog.service, {});
  if (reflection === 'v1+v1alpha') new ReflectionService(def).addToServer(server);
  else if (reflection === 'v1alpha')
    // only the older service, as a build on an older gRPC library offers it
    new ReflectionService(def).addToServer({
      addService(service: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) {
        const path = Object.values(service)[0]?.path ?? '';
        if (path.startsWith('/grpc.reflection.v1alpha.')) server.addService(service, impl);
      },
    } as unknown as grpc.Server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return [server, port];
}

const stop = (s: grpc.Server): Promise<void> => new Promise((r) => s.tryShutdown(() => r()));

describe('gRPC server reflection client', () => {
  const servers: grpc.Server[] = [];
  const h2servers: http2.Http2Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map(stop));
    for (const s of h2servers) s.close();
  });

  let v1 = 0;
  beforeAll(async () => {
    const [s, p] = await grpcServer('v1+v1alpha');
    servers.push(s);
    v1 = p;
  });

  it('asks v1: the services and their FileDescriptorProtos, which name the fields', async () => {
    const r = await askReflection({ host: '127.0.0.1', port: v1, tls: false, timeoutMs: 5000 });
    expect(r.error).toBeUndefined();
    expect(r.api).toBe('grpc.reflection.v1');
    expect(r.services).toEqual(['retap.test.Catalog']);
    const names = r.files!.map((f) => fileNameAndImports(Buffer.from(f, 'base64')).name);
    expect(names.length).toBeGreaterThan(0);
    const schema = schemaFromDescriptors(r.files!);
    const Item = protobuf.loadSync(proto).lookupType('retap.test.Item');
    const bytes = Item.encode(Item.fromObject({ id: 'a', name: 'n', priceCents: 250, tags: ['x'] })).finish();
    expect(schema.decode('/retap.test.Catalog/Get', 'response', bytes)).toEqual({
      id: 'a',
      name: 'n',
      price_cents: '250',
      tags: ['x'],
    });
    expect([...(schema.fields?.('/retap.test.Catalog/List', 'response') ?? [])].sort()).toEqual([1, 2, 3, 4]);
    expect(schema.decode('/retap.test.Catalog/Nope', 'response', bytes)).toBeUndefined();
  });

  it('falls back to v1alpha when the build has only the older service', async () => {
    const [s, port] = await grpcServer('v1alpha');
    servers.push(s);
    const r = await askReflection({ host: '127.0.0.1', port, tls: false, timeoutMs: 5000 });
    expect(r.error).toBeUndefined();
    expect(r.api).toBe('grpc.reflection.v1alpha');
    expect(r.services).toEqual(['retap.test.Catalog']);
  });

  it('a gRPC build without reflection: an error that says so, not a throw', async () => {
    const [s, port] = await grpcServer('none');
    servers.push(s);
    const r = await askReflection({ host: '127.0.0.1', port, tls: false, timeoutMs: 5000 });
    expect(r.files).toBeUndefined();
    expect(r.error).toMatch(/offers no gRPC server reflection .*grpc-status 12/);
    expect(r.error).toContain('v1alpha');
  });

  it('an HTTP/2 server that is not gRPC, a closed port, a build that never answers: errors in bounded time', async () => {
    const plain = http2.createServer((_req, res) => {
      res.writeHead(404);
      res.end('not here');
    });
    const silent = http2.createServer(() => {
      /* never answers */
    });
    h2servers.push(plain, silent);
    const listen = (s: http2.Http2Server) =>
      new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
    const [pp, sp] = [await listen(plain), await listen(silent)];
    const notGrpc = await askReflection({ host: '127.0.0.1', port: pp, tls: false, timeoutMs: 5000 });
    expect(notGrpc.error).toMatch(/HTTP status 404/);
    // a port nobody listens on any more
    const gone = http2.createServer();
    const goneport = await listen(gone);
    await new Promise<void>((r) => gone.close(() => r()));
    const refused = await askReflection({ host: '127.0.0.1', port: goneport, tls: false, timeoutMs: 5000 });
    expect(refused.error).toMatch(/ECONNREFUSED/);
    const t0 = performance.now();
    const hung = await askReflection({ host: '127.0.0.1', port: sp, tls: false, timeoutMs: 300 });
    expect(hung.error).toMatch(/within 300 ms/);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('reads an error answer and skips what it does not know', () => {
    const w = protobuf.Writer.create();
    w.uint32((9 << 3) | 0).uint32(5); // an unknown field first
    w.uint32((7 << 3) | 2).fork();
    w.uint32(1 << 3).int32(5);
    w.uint32((2 << 3) | 2).string('symbol not found');
    w.ldelim();
    expect(decodeAnswer(w.finish())).toEqual({ kind: 'error', code: 5, message: 'symbol not found' });
  });
});
