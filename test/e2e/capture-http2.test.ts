/**
 * HTTP/2 and gRPC through the real capture path: separate peer processes (nghttp, node http2,
 * grpc-js), eBPF on the server, decoded exchanges compared with what the clients logged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CaptureSession } from '../../capture/session.js';
import type { Exchange } from '../../core/exchange.js';
import { selfSignedCert } from '../helpers/certs.js';
import { skipPrivileged } from '../helpers/privileged.js';
import { run, start, stopAll } from '../helpers/procs.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const text = (b: { data: Uint8Array } | undefined): string => Buffer.from(b?.data ?? []).toString();

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-h2-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(stopAll);

async function server(cmd: string[]): Promise<{ pid: number; port: number }> {
  const p = start('node', cmd);
  const deadline = Date.now() + 15_000;
  while (!/listening (\d+)/.test(p.output())) {
    if (Date.now() > deadline) throw new Error(`server did not start: ${p.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { pid: p.pid, port: Number(/listening (\d+)/.exec(p.output())![1]) };
}

function lines(out: Buffer): Array<Record<string, unknown>> {
  return out
    .toString()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe.skipIf(skipPrivileged())('capture of HTTP/2 and gRPC (real kernel path)', () => {
  it('h2c with prior knowledge: nghttp against a node http2 server', async () => {
    const srv = await server([join(fixtures, 'h2-server.mjs')]);
    const exchanges: Exchange[] = [];
    const session = CaptureSession.start({ pids: [srv.pid] }, (e) => exchanges.push(e));
    const r = await run('nghttp', [
      '-n',
      `http://127.0.0.1:${srv.port}/echo/a`,
      `http://127.0.0.1:${srv.port}/echo/b`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    await session.stop();
    expect(exchanges).toHaveLength(2);
    for (const ex of exchanges) {
      expect(ex.protocol).toBe('http2');
      expect(ex.direction).toBe('inbound');
      const id = ex.request.target.slice('/echo/'.length);
      expect(['a', 'b']).toContain(id);
      expect(ex.response?.status).toBe(200);
      expect(ex.response?.headers).toContainEqual(['x-id', id]);
      expect(ex.response?.trailers).toContainEqual(['x-done', id]);
      expect(text(ex.response?.body)).toBe(`h2 ${id} `);
    }
    // both streams ran on one connection
    expect(new Set(exchanges.map((e) => e.connection.id)).size).toBe(1);
  });

  it('h2 over TLS (ALPN): node http2 client and server, plaintext frames decoded', async () => {
    const { cert, key } = selfSignedCert(dir);
    const srv = await server([join(fixtures, 'h2-server.mjs'), '--tls', cert, key]);
    const exchanges: Exchange[] = [];
    const session = CaptureSession.start({ pids: [srv.pid] }, (e) => exchanges.push(e));
    const r = await run('node', [
      join(fixtures, 'h2-client.mjs'),
      `https://localhost:${srv.port}`,
      '10',
      '--ca',
      cert,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const seen = lines(r.stdout);
    await session.stop();
    expect(exchanges).toHaveLength(10);
    for (const ex of exchanges) {
      expect(ex).toMatchObject({
        protocol: 'http2',
        direction: 'inbound',
        tls: true,
        service: { port: srv.port },
      });
      const id = ex.request.target.slice('/echo/'.length);
      expect(ex.request.headers).toContainEqual(['x-n', id]);
      expect(text(ex.request.body)).toBe(`body-${id}`);
      const logged = seen.find((s) => String(s.i) === id);
      expect(text(ex.response?.body)).toBe(logged?.body);
    }
  });

  it('gRPC (grpc-js client and server): service, method, messages and status', async () => {
    const srv = await server([join(fixtures, 'grpc-peer.mjs'), 'server']);
    const exchanges: Exchange[] = [];
    const session = CaptureSession.start({ pids: [srv.pid] }, (e) => exchanges.push(e));
    const r = await run('node', [join(fixtures, 'grpc-peer.mjs'), 'client', String(srv.port), '3']);
    expect(r.code, r.stderr).toBe(0);
    const seen = lines(r.stdout);
    await session.stop();
    expect(exchanges).toHaveLength(4);
    for (const ex of exchanges) {
      expect(ex.protocol).toBe('grpc');
      expect(ex.request.target).toBe('/shop.v1.Shop/Get');
      const grpc = ex.extras?.grpc as { status?: number; service?: string; method?: string } | undefined;
      expect(grpc?.service).toBe('shop.v1.Shop');
      expect(grpc?.method).toBe('Get');
    }
    const statuses = exchanges.map((e) => (e.extras?.grpc as { status?: number } | undefined)?.status).sort();
    expect(statuses).toEqual([0, 0, 0, 5]);
    // the item name the client received is inside the captured response message
    for (const s of seen.filter((x) => x.code === 0)) {
      const name = (s.res as { name: string }).name;
      expect(exchanges.some((e) => text(e.response?.body).includes(name))).toBe(true);
    }
  });
});
