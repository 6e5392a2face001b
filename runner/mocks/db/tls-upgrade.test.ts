import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEphemeralCa, type EphemeralCa } from '../../tls/ca.js';
import { upgradeToTls } from './tls-upgrade.js';

const PREFIX = Buffer.from('UPGRADE!');

const open = new Set<net.Socket>();

/**
 * A server that reads PREFIX in plaintext, answers 'S' (PostgreSQL's "go ahead"), then speaks TLS
 * on the same connection and echoes one line back in upper case: what a database mock does on an
 * SSLRequest.
 */
function prefixServer(ca: EphemeralCa): Promise<net.Server> {
  const pair = ca.certFor(['127.0.0.1']);
  const server = net.createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < PREFIX.length) return;
      socket.removeListener('data', onData);
      socket.write('S');
      const t = upgradeToTls(socket, pair, buf.subarray(PREFIX.length));
      t.on('error', () => socket.destroy());
      t.on('data', (line: Buffer) => t.end(line.toString().toUpperCase()));
    };
    socket.on('data', onData);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/**
 * A TLS client whose ClientHello leaves in the same write as PREFIX when `together` (as MySQL's
 * clients do), or only after the server's 'S' otherwise (as PostgreSQL's do).
 */
function client(port: number, caCert: string, together: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(port, '127.0.0.1');
    let first = true;
    let goAhead = false;
    if (!together) raw.write(PREFIX);
    const carrier = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, done) {
        const out = first && together ? Buffer.concat([PREFIX, chunk]) : chunk;
        first = false;
        raw.write(out, (err) => done(err ?? null));
      },
      final(done) {
        raw.end(() => done());
      },
    });
    const startTls = (): void => {
      const t = tls.connect({ socket: carrier, ca: caCert, host: '127.0.0.1' });
      let got = '';
      t.on('secureConnect', () => t.write('hello over tls'));
      t.on('data', (d) => {
        got += d.toString();
      });
      t.on('end', () => resolve(got));
      t.on('error', reject);
      setTimeout(() => reject(new Error(`no answer in 10 s (got ${JSON.stringify(got)})`)), 10_000).unref();
    };
    raw.on('data', (d: Buffer) => {
      if (!goAhead) {
        // the server's 'S' is plaintext: not part of the TLS stream
        goAhead = true;
        if (!together) startTls();
        d = d.subarray(1);
      }
      if (d.length) carrier.push(d);
    });
    raw.on('end', () => carrier.push(null));
    raw.on('error', reject);
    if (together) startTls();
  });
}

describe('upgradeToTls', () => {
  let dir: string;
  let ca: EphemeralCa;
  let server: net.Server;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'retap-tlsup-'));
    ca = await createEphemeralCa(dir);
    server = await prefixServer(ca);
  });
  afterAll(async () => {
    for (const s of open) s.destroy();
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a ClientHello that came in the same read as the upgrade request is not lost (MySQL clients do not wait)', async () => {
    const port = (server.address() as net.AddressInfo).port;
    expect(await client(port, ca.caCert, true)).toBe('HELLO OVER TLS');
  });

  it('a client that waits before its ClientHello is served the same way', async () => {
    const port = (server.address() as net.AddressInfo).port;
    expect(await client(port, ca.caCert, false)).toBe('HELLO OVER TLS');
  });
});
