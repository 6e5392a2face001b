/**
 * Decoders against real peers on loopback: node http/http2 servers and clients, curl, nghttp,
 * h2load and grpc-js, each connection recorded byte for byte by a relay (no eBPF needed). What
 * the decoders read must match what the peers saw.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvents, type StreamEvent } from '../../capture/protocols/collect.js';
import type { GrpcExtras } from '../../capture/protocols/grpc/exchange.js';
import { detect, http1, http2 as h2decoder, loadProtos } from '../../capture/protocols/index.js';
import { startRecordingRelay, type RecordingRelay } from '../../capture/protocols/record-relay.js';

const listen = (server: net.Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
const closeServer = (server: net.Server) => new Promise<void>((r) => server.close(() => r()));
const pairs = (raw: string[]) => {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
};
const run = (cmd: string, args: string[]) =>
  new Promise<string>((resolve, reject) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd}: ${err.message} ${stderr}`)) : resolve(stdout),
    );
  });

function detectFirst(events: StreamEvent[]): string | undefined {
  const first = events.find((e) => e.side === 'client' && 'data' in e) as { data: Uint8Array } | undefined;
  if (!first) return undefined;
  const r = detect(first.data, 'client');
  return typeof r === 'object' ? r.decoder.name : r;
}

describe('HTTP/1.1 decoder with real peers', () => {
  interface Seen {
    method: string;
    url: string;
    rawHeaders: Array<[string, string]>;
    body: Buffer;
    trailers: Array<[string, string]>;
  }
  const seen: Seen[] = [];
  let server: http.Server;
  let relay: RecordingRelay;
  const big = Buffer.alloc(70_000, 'z');

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        seen.push({
          method: req.method!,
          url: req.url!,
          rawHeaders: pairs(req.rawHeaders),
          body: Buffer.concat(parts),
          trailers: pairs(req.rawTrailers),
        });
        const url = req.url!;
        if (url === '/gzip') {
          res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'application/json' });
          res.end(gzipSync(Buffer.from('{"compressed":true}')));
        } else if (url === '/trailers') {
          res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
          res.write('part one;');
          res.write('part two');
          res.addTrailers({ 'x-checksum': 'abc123' });
          res.end();
        } else if (url === '/empty') {
          res.writeHead(204);
          res.end();
        } else if (url === '/cached') {
          res.writeHead(304, { etag: '"v1"' });
          res.end();
        } else if (url === '/big') {
          res.end(big);
        } else {
          res.setHeader('x-dup', ['one', 'two']);
          res.end(`echo ${req.method} ${url} ${Buffer.concat(parts).length}`);
        }
      });
    });
    server.on('checkContinue', (req, res) => {
      res.writeContinue();
      server.emit('request', req, res);
    });
    const port = await listen(server);
    relay = await startRecordingRelay({ port });
  });
  afterAll(async () => {
    await relay?.close();
    await closeServer(server);
  });

  it('node client: keep-alive GET/POST/chunked/HEAD/204/304/gzip/trailers/100-continue', async () => {
    const before = relay.connections.length;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const got: Array<{
      status: number;
      rawHeaders: Array<[string, string]>;
      body: Buffer;
      trailers: Array<[string, string]>;
    }> = [];
    const call = (opts: http.RequestOptions, write?: (req: http.ClientRequest) => void) =>
      new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: relay.port, agent, ...opts }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => {
            got.push({
              status: res.statusCode!,
              rawHeaders: pairs(res.rawHeaders),
              body: Buffer.concat(parts),
              trailers: pairs(res.rawTrailers),
            });
            resolve();
          });
        });
        req.on('error', reject);
        if (write) write(req);
        else req.end();
      });
    await call({ path: '/items?id=7&x=%20', headers: { 'X-Trace': 'a', Accept: 'application/json' } });
    await call({ method: 'POST', path: '/json', headers: { 'content-type': 'application/json' } }, (r) =>
      r.end('{"a":1}'),
    );
    await call({ method: 'PUT', path: '/chunked' }, (r) => {
      r.write('first,');
      r.write('second,');
      r.addTrailers({ 'X-Req-Sum': '9' });
      r.end('third');
    });
    await call({ method: 'HEAD', path: '/head' });
    await call({ path: '/empty' });
    await call({ path: '/cached' });
    await call({ path: '/gzip', headers: { 'accept-encoding': 'gzip' } });
    await call({ path: '/trailers' });
    await call({ path: '/big' });
    await call(
      { method: 'POST', path: '/continue', headers: { expect: '100-continue', 'content-length': '5' } },
      (r) => {
        r.on('continue', () => r.end('12345'));
      },
    );
    agent.destroy();
    await new Promise((r) => setTimeout(r, 50));

    expect(detectFirst(relay.connections[before]!.events)).toBe('http1');
    // The agent may open more than one connection (node closes one after a HEAD, for instance).
    const exs = relay.connections.slice(before).flatMap((c) => decodeEvents(http1, c.events).exchanges);
    expect(exs).toHaveLength(got.length);
    const srv = seen.slice(-got.length);
    exs.forEach((ex, i) => {
      expect(ex.notes).toBeUndefined();
      expect(ex.request.method).toBe(srv[i]!.method);
      expect(ex.request.target).toBe(srv[i]!.url);
      expect(ex.request.headers).toEqual(srv[i]!.rawHeaders);
      expect(Buffer.from(ex.request.body.data).equals(srv[i]!.body)).toBe(true);
      if (srv[i]!.trailers.length > 0) expect(ex.request.trailers).toEqual(srv[i]!.trailers);
      expect(ex.response?.status).toBe(got[i]!.status);
      expect(ex.response?.headers).toEqual(got[i]!.rawHeaders);
      if (srv[i]!.url !== '/gzip')
        expect(Buffer.from(ex.response!.body.data).equals(got[i]!.body)).toBe(true);
      if (got[i]!.trailers.length > 0) expect(ex.response?.trailers).toEqual(got[i]!.trailers);
      expect(ex.requestStartNs).toBeLessThanOrEqual(ex.requestEndNs);
      // With 100-continue the answer starts (interim) before the request body is sent.
      if (!ex.response?.interim) expect(ex.requestEndNs).toBeLessThanOrEqual(ex.responseStartNs!);
      expect(ex.responseStartNs).toBeLessThanOrEqual(ex.responseEndNs!);
    });
    const gz = exs.find((e) => e.request.target === '/gzip')!;
    expect(Buffer.from(gz.response!.body.decoded!).toString()).toBe('{"compressed":true}');
    const cont = exs.find((e) => e.request.target === '/continue')!;
    expect(cont.response?.interim?.map((x) => x.status)).toEqual([100]);
    expect(exs.find((e) => e.request.target === '/big')!.response!.body.size).toBe(big.length);
  });

  it('curl: two requests on one connection, form POST, compressed answer', async () => {
    const before = relay.connections.length;
    const base = `http://127.0.0.1:${relay.port}`;
    await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-H',
      'X-Curl: yes',
      `${base}/one?q=1`,
      '-o',
      '/dev/null',
      `${base}/gzip`,
      '--compressed',
    ]);
    await run('curl', ['-sS', '-o', '/dev/null', '--data-binary', 'k=v&x=y', `${base}/form`]);
    await new Promise((r) => setTimeout(r, 50));
    const conns = relay.connections.slice(before);
    expect(conns).toHaveLength(2);
    const exs = conns.flatMap((c) => decodeEvents(http1, c.events).exchanges);
    expect(exs.map((e) => [e.request.method, e.request.target, e.response?.status])).toEqual([
      ['GET', '/one?q=1', 200],
      ['GET', '/gzip', 200],
      ['POST', '/form', 200],
    ]);
    const srv = seen.slice(-3);
    exs.forEach((ex, i) => {
      expect(ex.request.headers).toEqual(srv[i]!.rawHeaders);
    });
    expect(Buffer.from(exs[2]!.request.body.data).toString()).toBe('k=v&x=y');
    expect(Buffer.from(exs[1]!.response!.body.decoded!).toString()).toBe('{"compressed":true}');
  });

  it('pipelined requests written at once pair in order (FIFO)', async () => {
    const { connect } = await import('node:net');
    const before = relay.connections.length;
    const sock = connect(relay.port, '127.0.0.1');
    const answer: Buffer[] = [];
    sock.on('data', (d) => answer.push(d));
    sock.write(
      'GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\nGET /p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    await new Promise((r) => sock.on('close', r));
    await new Promise((r) => setTimeout(r, 50));
    const exs = decodeEvents(http1, relay.connections[before]!.events).exchanges;
    expect(exs.map((e) => [e.request.target, Buffer.from(e.response!.body.data).toString()])).toEqual([
      ['/p1', 'echo GET /p1 0'],
      ['/p2', 'echo GET /p2 0'],
      ['/p3', 'echo GET /p3 0'],
    ]);
  });
});

describe('HTTP/2 decoder with real peers', () => {
  let server: http2.Http2Server;
  let relay: RecordingRelay;
  const seen: Array<{ headers: http2.IncomingHttpHeaders; body: Buffer }> = [];

  beforeAll(async () => {
    server = http2.createServer();
    server.on('stream', (stream, headers) => {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => {
        seen.push({ headers, body: Buffer.concat(parts) });
        const path = headers[':path'];
        if (path === '/trailers') {
          stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'x-done': 'yes' }));
          stream.end('with trailers');
        } else if (path === '/push' && stream.pushAllowed) {
          stream.pushStream({ ':path': '/pushed.css' }, (err, push) => {
            if (!err) {
              push.respond({ ':status': 200, 'content-type': 'text/css' });
              push.end('body{}');
            }
          });
          stream.respond({ ':status': 200 });
          stream.end('pushed one');
        } else if (path === '/gzip') {
          stream.respond({ ':status': 200, 'content-encoding': 'gzip' });
          stream.end(gzipSync('h2 gzip'));
        } else {
          stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-long': 'v'.repeat(200) });
          stream.end(`h2 ${headers[':method']} ${path} ${Buffer.concat(parts).length}`);
        }
      });
    });
    const port = await listen(server);
    relay = await startRecordingRelay({ port });
  });
  afterAll(async () => {
    await relay?.close();
    await closeServer(server);
  });

  it('node client: concurrent streams, bodies, trailers, push, gzip, dynamic table reuse', async () => {
    const before = relay.connections.length;
    const client = http2.connect(`http://127.0.0.1:${relay.port}`);
    const got = new Map<string, { status: number; body: Buffer; trailers?: http2.IncomingHttpHeaders }>();
    const call = (headers: http2.OutgoingHttpHeaders, body?: string) =>
      new Promise<void>((resolve, reject) => {
        const req = client.request(headers);
        const parts: Buffer[] = [];
        let status = 0;
        let trailers: http2.IncomingHttpHeaders | undefined;
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.on('trailers', (t) => {
          trailers = t;
        });
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => {
          got.set(String(headers[':path']), {
            status,
            body: Buffer.concat(parts),
            ...(trailers ? { trailers } : {}),
          });
          resolve();
        });
        req.on('error', reject);
        req.end(body);
      });
    client.on('stream', (push) => {
      push.resume();
    });
    await Promise.all([
      call({ ':path': '/a?x=1', 'x-custom': 'same-value' }),
      call({ ':path': '/b', 'x-custom': 'same-value' }),
      call(
        { ':method': 'POST', ':path': '/post', 'content-type': 'application/json' },
        JSON.stringify({ n: 'x'.repeat(40_000) }),
      ),
    ]);
    await call({ ':path': '/trailers' });
    await call({ ':path': '/gzip' });
    await call({ ':path': '/push' });
    await call({ ':path': '/c', 'x-custom': 'same-value' });
    await new Promise<void>((r) => client.close(() => r()));
    await new Promise((r) => setTimeout(r, 50));

    const conn = relay.connections[before]!;
    expect(detectFirst(conn.events)).toBe('http2');
    const exs = decodeEvents(h2decoder, conn.events).exchanges;
    const byPath = new Map(exs.map((e) => [e.request.target, e]));
    for (const [path, g] of got) {
      const ex = byPath.get(path)!;
      expect(ex, path).toBeDefined();
      expect(ex.notes).toBeUndefined();
      const s = seen.find((x) => x.headers[':path'] === path)!;
      expect(ex.request.method).toBe(s.headers[':method']);
      for (const [n, v] of ex.request.headers) expect(s.headers[n], n).toBe(v);
      expect(Buffer.from(ex.request.body.data).equals(s.body)).toBe(true);
      expect(ex.response?.status).toBe(g.status);
      if (path !== '/gzip') expect(Buffer.from(ex.response!.body.data).equals(g.body)).toBe(true);
      if (g.trailers) expect(ex.response?.trailers).toEqual([['x-done', 'yes']]);
    }
    expect(Buffer.from(byPath.get('/gzip')!.response!.body.decoded!).toString()).toBe('h2 gzip');
    const pushed = byPath.get('/pushed.css');
    expect(pushed?.response?.status).toBe(200);
    expect(Buffer.from(pushed!.response!.body.data).toString()).toBe('body{}');
    expect(pushed?.extras?.pushPromiseStream).toBe(byPath.get('/push')!.extras!.streamId);
    expect(byPath.get('/a?x=1')!.extras!.pseudo).toMatchObject({
      ':scheme': 'http',
      ':authority': `127.0.0.1:${relay.port}`,
    });
  });

  it('nghttp (prior knowledge) and h2load: every request decoded', async () => {
    const before = relay.connections.length;
    await run('nghttp', [
      '-n',
      '-H',
      'x-tool: nghttp',
      `http://127.0.0.1:${relay.port}/ng?1`,
      `http://127.0.0.1:${relay.port}/ng?2`,
    ]);
    await run('h2load', ['-n', '200', '-c', '2', '-m', '10', `http://127.0.0.1:${relay.port}/load`]);
    await new Promise((r) => setTimeout(r, 100));
    const conns = relay.connections.slice(before);
    const ng = decodeEvents(h2decoder, conns[0]!.events).exchanges;
    expect(ng.map((e) => [e.request.target, e.response?.status])).toEqual([
      ['/ng?1', 200],
      ['/ng?2', 200],
    ]);
    expect(ng[0]!.request.headers).toContainEqual(['x-tool', 'nghttp']);
    const load = conns.slice(1).flatMap((c) => decodeEvents(h2decoder, c.events).exchanges);
    expect(load).toHaveLength(200);
    expect(load.every((e) => e.response?.status === 200 && !e.notes)).toBe(true);
    expect(new Set(load.map((e) => Buffer.from(e.response!.body.data).toString()))).toEqual(
      new Set(['h2 GET /load 0']),
    );
  });

  it('joined mid-stream: frames decoded, exchanges marked hpack-state-unknown, nothing invented', async () => {
    const before = relay.connections.length;
    const client = http2.connect(`http://127.0.0.1:${relay.port}`);
    const get = (path: string) =>
      new Promise<void>((resolve, reject) => {
        const req = client.request({ ':path': path, 'x-custom': 'repeated-value' });
        req.on('error', reject);
        req.resume();
        req.on('end', () => resolve());
        req.end();
      });
    await get('/first');
    await get('/second');
    await new Promise<void>((r) => client.close(() => r()));
    await new Promise((r) => setTimeout(r, 50));
    const events = relay.connections[before]!.events;
    const all = decodeEvents(h2decoder, events).exchanges;
    expect(all).toHaveLength(2);
    // Drop everything up to the first response: capture "joins" at the client's second request.
    const firstDone = events.findIndex(
      (e) => e.side === 'server' && 'data' in e && e.data.length > 9 + 8 + 20,
    );
    const late = events.slice(firstDone + 1);
    const joinAt = late.findIndex((e) => e.side === 'client' && 'data' in e && e.data.length > 20);
    const tail = late.filter((e, i) => i >= joinAt || e.side === 'server');
    const exs = decodeEvents(h2decoder, tail).exchanges;
    expect(exs.length).toBeGreaterThanOrEqual(1);
    for (const ex of exs) {
      expect(ex.notes).toContain('hpack-state-unknown');
      // Headers we print must be ones the client really sent.
      for (const h of ex.request.headers) expect(all.flatMap((a) => a.request.headers)).toContainEqual(h);
    }
  });
});

describe('gRPC decoder with grpc-js peers', () => {
  let dir: string;
  let server: grpc.Server;
  let relay: RecordingRelay;
  const proto = `syntax = "proto3";
package demo.v1;
message Item { int64 id = 1; string name = 2; repeated string tags = 3; Inner inner = 4; bytes blob = 5; double price = 6; }
message Inner { bool ok = 1; sint32 delta = 2; }
message GetReq { int64 id = 1; }
message ListReq { int32 count = 1; }
service Shop {
  rpc Get(GetReq) returns (Item);
  rpc List(ListReq) returns (stream Item);
}
`;
  const item = (id: number) => ({
    id: String(9_000_000_000 + id),
    name: `item-${id}`,
    tags: ['a', 'b'],
    inner: { ok: true, delta: -id },
    blob: Buffer.from([0, 1, 2, 255]),
    price: 1.5,
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'retap-grpc-'));
    writeFileSync(join(dir, 'shop.proto'), proto);
    const def = protoLoader.loadSync(join(dir, 'shop.proto'), { longs: String, keepCase: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      demo: { v1: { Shop: grpc.ServiceClientConstructor } };
    };
    server = new grpc.Server();
    server.addService(pkg.demo.v1.Shop.service, {
      Get: (call: grpc.ServerUnaryCall<{ id: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (call.request.id === '404')
          cb({ code: grpc.status.NOT_FOUND, details: 'no such item: 404 (ünïcode)' });
        else cb(null, item(Number(call.request.id)));
      },
      List: (call: grpc.ServerWritableStream<{ count: number }, unknown>) => {
        for (let i = 0; i < call.request.count; i++) call.write(item(i));
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    relay = await startRecordingRelay({ port });
  });
  afterAll(async () => {
    await relay?.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('unary, server streaming, error status, gzip compression; with and without .proto', async () => {
    const def = protoLoader.loadSync(join(dir, 'shop.proto'), { longs: String, keepCase: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      demo: { v1: { Shop: grpc.ServiceClientConstructor } };
    };
    const before = relay.connections.length;
    const client = new pkg.demo.v1.Shop(`127.0.0.1:${relay.port}`, grpc.credentials.createInsecure(), {
      'grpc.default_compression_algorithm': 2,
    }) as unknown as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
    const unary = (id: string) =>
      new Promise<{ err: grpc.ServiceError | null; res: unknown }>((resolve) => {
        client.Get!({ id }, (err: grpc.ServiceError | null, res: unknown) => resolve({ err, res }));
      });
    const ok = await unary('7');
    const nf = await unary('404');
    const listed = await new Promise<unknown[]>((resolve, reject) => {
      const out: unknown[] = [];
      const call = client.List!({ count: 3 }) as grpc.ClientReadableStream<unknown>;
      call.on('data', (d) => out.push(d));
      call.on('end', () => resolve(out));
      call.on('error', reject);
    });
    client.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(ok.err).toBeNull();
    expect(nf.err?.code).toBe(grpc.status.NOT_FOUND);
    expect(listed).toHaveLength(3);

    const events = relay.connections.slice(before).flatMap((c) => c.events);
    const schema = loadProtos([join(dir, 'shop.proto')]);
    const exs = decodeEvents(h2decoder, events, { grpc: { schema } }).exchanges;
    expect(exs.map((e) => [e.protocol, e.request.target])).toEqual([
      ['grpc', '/demo.v1.Shop/Get'],
      ['grpc', '/demo.v1.Shop/Get'],
      ['grpc', '/demo.v1.Shop/List'],
    ]);
    const [g1, g2, g3] = exs.map((e) => e.extras!.grpc as GrpcExtras);
    expect(g1).toMatchObject({ service: 'demo.v1.Shop', method: 'Get', status: 0 });
    expect(g1!.requestMessages[0]!.value).toEqual({ id: '7' });
    expect(g1!.responseMessages[0]!.value).toEqual({
      ...item(7),
      blob: Buffer.from([0, 1, 2, 255]).toString('base64'),
    });
    expect(g1!.responseMessages[0]!.value).toEqual({
      ...(ok.res as object),
      blob: Buffer.from([0, 1, 2, 255]).toString('base64'),
    });
    // Without names: field numbers and wire types, nested message guessed.
    const raw = g1!.responseMessages[0]!.fields!;
    expect(raw[0]).toEqual({ field: 1, wire: 'varint', value: 9_000_000_007 });
    expect(raw[1]).toEqual({ field: 2, wire: 'len', string: 'item-7' });
    expect(raw.find((f) => f.field === 4)).toEqual({
      field: 4,
      wire: 'len',
      message: [
        { field: 1, wire: 'varint', value: 1 },
        { field: 2, wire: 'varint', value: 13 },
      ],
    });
    expect(g2).toMatchObject({
      status: grpc.status.NOT_FOUND,
      message: 'no such item: 404 (ünïcode)',
      responseMessages: [],
    });
    expect(g3!.responseMessages.map((m) => (m.value as { name: string }).name)).toEqual([
      'item-0',
      'item-1',
      'item-2',
    ]);
    // The client asked for gzip: its messages are compressed and still decoded.
    expect(g1!.requestEncoding).toBe('gzip');
    const schemaless = decodeEvents(h2decoder, events).exchanges.map((e) => e.extras!.grpc as GrpcExtras);
    expect(schemaless[0]!.requestMessages[0]!.value).toBeUndefined();
    expect(schemaless[0]!.requestMessages[0]!.fields).toEqual([{ field: 1, wire: 'varint', value: 7 }]);
  });
});
