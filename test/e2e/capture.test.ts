/**
 * Capture through the real kernel path: real servers and clients, eBPF tracepoints and uprobes,
 * the addon, reassembly and the HTTP/1.1 decoder. Every test asserts exact bytes and counts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCgroup } from '../../capture/cgroup.js';
import { RECORDER_NODE_FLAGS } from '../../capture/node-flags.js';
import { CaptureSession } from '../../capture/session.js';
import type { Exchange } from '../../core/exchange.js';
import { selfSignedCert } from '../helpers/certs.js';
import { skipPrivileged } from '../helpers/privileged.js';
import { freePort, run, start, stopAll, waitForPort } from '../helpers/procs.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const text = (b: { data: Uint8Array } | undefined): string => Buffer.from(b?.data ?? []).toString();

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-capture-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(stopAll);

async function nodeServer(args: string[] = []): Promise<{ pid: number; port: number }> {
  const p = start('node', [join(fixtures, 'http-server.mjs'), ...args]);
  // generous: node starts in well under a second, but CI runs this beside the cluster tests
  const deadline = Date.now() + 30_000;
  while (!/listening (\d+)/.test(p.output())) {
    const ended = p.child.exitCode ?? p.child.signalCode;
    if (ended !== null || Date.now() > deadline)
      throw new Error(
        `the node test server ${ended !== null ? `ended (${ended})` : 'did not listen in 30 s'}: ${p.output()}`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
  return { pid: p.pid, port: Number(/listening (\d+)/.exec(p.output())![1]) };
}

/**
 * python3 -m http.server on a port the kernel picks, read from its banner: a port chosen ahead
 * (freePort) can be taken by a parallel test's server before python binds it, and the requests
 * then reach that server instead (seen once in CI: an empty answer).
 */
async function pythonServer(root: string): Promise<{ pid: number; port: number }> {
  const p = start('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1'], { cwd: root });
  for (let i = 0; i < 400; i++) {
    const m = /Serving HTTP on \S+ port (\d+)/.exec(p.output());
    if (m) {
      const port = Number(m[1]);
      await waitForPort(port);
      return { pid: p.pid, port };
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`python3 -m http.server did not start: ${p.output()}`);
}

function capture(opts: Parameters<typeof CaptureSession.start>[0]) {
  const exchanges: Exchange[] = [];
  const session = CaptureSession.start(opts, (e) => exchanges.push(e));
  return { session, exchanges };
}

function certs(): { cert: string; key: string } {
  return selfSignedCert(dir);
}

describe.skipIf(skipPrivileged())('capture (real kernel path)', () => {
  it('python http.server + curl: every request, exact bytes, inbound with addresses', async () => {
    writeFileSync(join(dir, 'hello.txt'), 'hello from retap\n');
    const srv = await pythonServer(dir);
    const { session, exchanges } = capture({ pids: [srv.pid] });
    for (let i = 0; i < 5; i++) {
      const r = await run('curl', ['-s', '-H', `x-n: ${i}`, `http://127.0.0.1:${srv.port}/hello.txt?n=${i}`]);
      expect(r.stdout.toString()).toBe('hello from retap\n');
    }
    const stats = await session.stop();
    expect(exchanges).toHaveLength(5);
    exchanges.sort((a, b) => a.timing.startUs - b.timing.startUs);
    exchanges.forEach((ex, i) => {
      expect(ex.direction).toBe('inbound');
      expect(ex.request.method).toBe('GET');
      expect(ex.request.target).toBe(`/hello.txt?n=${i}`);
      expect(ex.request.headers).toContainEqual(['x-n', String(i)]);
      expect(ex.response?.status).toBe(200);
      expect(text(ex.response?.body)).toBe('hello from retap\n');
      expect(ex.service).toMatchObject({ addr: '127.0.0.1', port: srv.port, pid: srv.pid });
      expect(ex.peer.addr).toBe('127.0.0.1');
      expect(ex.timing.responseStartNs).toBeGreaterThanOrEqual(ex.timing.requestEndNs);
    });
    // HTTP/1.0 server closes each connection: fds are reused, generations keep them apart.
    expect(new Set(exchanges.map((e) => e.connection.id)).size).toBe(5);
    expect(stats.kernel.ringbufDrops).toBe(0);
    expect(stats.gapBytes).toBe(0);
  });

  it('does not capture unrelated processes', async () => {
    writeFileSync(join(dir, 'a.txt'), 'a');
    const target = await pythonServer(dir);
    const other = await pythonServer(dir);
    const { session, exchanges } = capture({ pids: [target.pid] });
    await run('curl', ['-s', `http://127.0.0.1:${other.port}/a.txt`]);
    await run('curl', ['-s', `http://127.0.0.1:${target.port}/a.txt`]);
    await run('curl', ['-s', `http://127.0.0.1:${other.port}/a.txt`]);
    await session.stop();
    expect(exchanges).toHaveLength(1);
    expect(exchanges[0]!.service.port).toBe(target.port);
  });

  it('a 5 MiB body arrives whole and byte-exact', async () => {
    const big = Buffer.alloc(5 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    writeFileSync(join(dir, 'big.bin'), big);
    const srv = await pythonServer(dir);
    const { session, exchanges } = capture({ pids: [srv.pid] });
    const r = await run('curl', ['-s', `http://127.0.0.1:${srv.port}/big.bin`]);
    expect(r.stdout.length).toBe(big.length);
    const stats = await session.stop();
    expect(exchanges).toHaveLength(1);
    const body = exchanges[0]!.response!.body;
    expect(body.truncated).toBe(false);
    expect(body.size).toBe(big.length);
    expect(Buffer.compare(Buffer.from(body.data), big)).toBe(0);
    expect(stats.kernel.ringbufDrops).toBe(0);
  });

  it('a full ring buffer: drops are counted, the exchange is kept and marked truncated', async () => {
    const big = Buffer.alloc(4 << 20, 7);
    writeFileSync(join(dir, 'flood.bin'), big);
    const srv = await pythonServer(dir);
    // 64 KiB of ring for a 4 MiB answer: most records cannot fit
    const { session, exchanges } = capture({ pids: [srv.pid], ringBufferBytes: 64 << 10 });
    const r = await run('curl', ['-s', `http://127.0.0.1:${srv.port}/flood.bin`]);
    expect(r.stdout.length).toBe(big.length);
    writeFileSync(join(dir, 'small.txt'), 'still here');
    const after = await run('curl', ['-s', `http://127.0.0.1:${srv.port}/small.txt`]);
    expect(after.stdout.toString()).toBe('still here');
    const stats = await session.stop();
    // capture went on after the overflow
    expect(exchanges.some((e) => text(e.response?.body) === 'still here')).toBe(true);
    expect(stats.kernel.ringbufDrops).toBeGreaterThan(0);
    expect(stats.gapBytes).toBeGreaterThan(0);
    const flood = exchanges.find((e) =>
      e.response?.headers.some(([n, v]) => n === 'Content-Length' && v === String(big.length)),
    );
    expect(flood?.response?.body.size).toBe(big.length);
    expect(flood?.response?.body.truncated).toBe(true);
    expect(flood?.response?.body.data.length).toBeLessThan(big.length);
  });

  it('past the per-call cap only sizes are kept, and framing survives', async () => {
    const srv = await nodeServer();
    const { session, exchanges } = capture({ pids: [srv.pid], perCallCapBytes: 4096 });
    const c = await run('node', [join(fixtures, 'http-client.mjs'), `http://127.0.0.1:${srv.port}`, '2']);
    expect(c.code).toBe(0);
    // one big answer in between, then another request on the same keep-alive connection
    await new Promise<void>((resolve, reject) => {
      request(`http://127.0.0.1:${srv.port}/big/200000`, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    const stats = await session.stop();
    const big = exchanges.find((e) => e.request.target === '/big/200000');
    expect(big?.response?.body.size).toBe(200000);
    expect(big?.response?.body.truncated).toBe(true);
    expect(stats.kernel.truncations).toBeGreaterThan(0);
    expect(exchanges.filter((e) => e.request.target.startsWith('/echo/'))).toHaveLength(2);
  });

  it('nginx keep-alive: pipelined requests and chunked (gzip) responses', async () => {
    const port = await freePort();
    const root = join(dir, 'nginx');
    execFileSync('mkdir', ['-p', join(root, 'www'), join(root, 'tmp')]);
    writeFileSync(join(root, 'www', 'index.html'), '<h1>retap</h1>\n'.repeat(200));
    writeFileSync(
      join(root, 'nginx.conf'),
      `daemon off; master_process off; worker_processes 1; pid ${root}/nginx.pid; error_log ${root}/error.log;
events { worker_connections 64; }
http { access_log off; sendfile off; client_body_temp_path ${root}/tmp; proxy_temp_path ${root}/tmp;
  fastcgi_temp_path ${root}/tmp; uwsgi_temp_path ${root}/tmp; scgi_temp_path ${root}/tmp;
  gzip on; gzip_min_length 1; gzip_types text/html; keepalive_requests 1000;
  server { listen 127.0.0.1:${port}; root ${root}/www; } }`,
    );
    const ngx = start('nginx', ['-c', join(root, 'nginx.conf'), '-p', root]);
    await waitForPort(port);
    const { session, exchanges } = capture({ pids: [ngx.pid] });
    // three pipelined requests in one write, the middle one gzip (chunked), on one connection
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect({ port, host: '127.0.0.1' }, () => {
        sock.write(
          'GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n' +
            'GET /index.html HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n' +
            'GET /missing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
        );
      });
      const parts: Buffer[] = [];
      sock.on('data', (d) => parts.push(d));
      sock.on('end', () => resolve(Buffer.concat(parts).toString('latin1')));
      sock.on('error', reject);
    });
    expect(raw.match(/HTTP\/1\.1 /g)).toHaveLength(3);
    await session.stop();
    expect(exchanges).toHaveLength(3);
    const [plain, gz, missing] = exchanges.sort((a, b) => a.connection.order - b.connection.order);
    expect(new Set(exchanges.map((e) => e.connection.id)).size).toBe(1);
    expect(text(plain!.response!.body)).toBe('<h1>retap</h1>\n'.repeat(200));
    expect(gz!.response!.headers.map(([n]) => n.toLowerCase())).toContain('transfer-encoding');
    expect(Buffer.from(gz!.response!.body.decoded ?? []).toString()).toBe('<h1>retap</h1>\n'.repeat(200));
    expect(missing!.response!.status).toBe(404);
  });

  it('200 concurrent connections: every exchange, no loss', async () => {
    const srv = await nodeServer();
    const { session, exchanges } = capture({ pids: [srv.pid] });
    const c = await run('node', [
      join(fixtures, 'http-client.mjs'),
      `http://127.0.0.1:${srv.port}`,
      '200',
      '--concurrent',
      '--no-keepalive',
    ]);
    expect(c.code).toBe(0);
    const stats = await session.stop();
    expect(exchanges).toHaveLength(200);
    const ids = new Set(exchanges.map((e) => e.response && text(e.response.body)));
    for (let i = 0; i < 200; i++) expect(ids.has(`echo ${i} payload-${i}`)).toBe(true);
    expect(stats.kernel.ringbufDrops).toBe(0);
    expect(stats.gapBytes).toBe(0);
  });

  it('a server that exits mid-response: capture keeps going and marks the exchange', async () => {
    const srv = await nodeServer();
    const { session, exchanges } = capture({ pids: [srv.pid] });
    await new Promise<void>((resolve) => {
      request(`http://127.0.0.1:${srv.port}/exit-mid`, (res) => {
        res.resume();
        res.on('error', () => resolve());
        res.on('aborted', () => resolve());
        res.on('end', () => resolve());
      })
        .on('error', () => resolve())
        .end();
    });
    // a second server still captured after the first one died
    const srv2 = await nodeServer();
    session.addPid(srv2.pid);
    const c = await run('node', [join(fixtures, 'http-client.mjs'), `http://127.0.0.1:${srv2.port}`, '1']);
    expect(c.code).toBe(0);
    await session.stop();
    const mid = exchanges.find((e) => e.request.target === '/exit-mid');
    expect(mid?.response?.status).toBe(200);
    expect(mid?.response?.body.truncated).toBe(true);
    expect(mid?.response?.body.data.length).toBe(400);
    expect(exchanges.some((e) => e.request.target === '/echo/0')).toBe(true);
  });

  it('curl (libssl SSL_read/SSL_write) over TLS to openssl s_server: outbound plaintext, ciphertext suppressed', async () => {
    const { cert, key } = certs();
    const port = await freePort();
    start('openssl', ['s_server', '-accept', String(port), '-cert', cert, '-key', key, '-www', '-quiet']);
    await waitForPort(port);
    // curl runs inside a cgroup that is captured before curl starts: nothing of it is missed
    const cg = createCgroup(`test-curl-${process.pid}`);
    try {
      const { session, exchanges } = capture({ cgroupIds: [cg.id] });
      const curl = await run('/bin/sh', [
        '-c',
        `echo $$ > ${cg.dir}/cgroup.procs && exec curl -sk --http1.1 -H 'x-secret-test: 1' https://127.0.0.1:${port}/`,
      ]);
      expect(curl.code).toBe(0);
      const stats = await session.stop();
      expect(exchanges).toHaveLength(1);
      const ex = exchanges[0]!;
      expect(ex).toMatchObject({ direction: 'outbound', tls: true, peer: { addr: '127.0.0.1', port } });
      expect(ex.request.headers).toContainEqual(['x-secret-test', '1']);
      // what the capture saw is byte for byte what curl printed
      expect(text(ex.response?.body)).toBe(curl.stdout.toString());
      expect(stats.ciphertextBytes).toBeGreaterThan(0);
      expect(stats.unknownConnections).toBe(0);
    } finally {
      cg.destroy();
    }
  });

  it('python ssl server (libssl SSL_read_ex/SSL_write_ex): inbound plaintext with the socket addresses', async () => {
    const { cert, key } = certs();
    const p = start('python3', ['-u', join(fixtures, 'https-server.py'), cert, key]);
    const deadline = Date.now() + 10_000;
    while (!/listening (\d+)/.test(p.output()) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const port = Number(/listening (\d+)/.exec(p.output())?.[1]);
    const { session, exchanges } = capture({ pids: [p.pid] });
    for (const path of ['/a', '/b?x=1']) {
      const r = await run('curl', ['-sk', `https://127.0.0.1:${port}${path}`]);
      expect(r.stdout.toString()).toBe(`secure ${path}`);
    }
    await session.stop();
    expect(exchanges.map((e) => e.request.target).sort()).toEqual(['/a', '/b?x=1']);
    for (const ex of exchanges) {
      expect(ex).toMatchObject({ direction: 'inbound', tls: true, service: { port, pid: p.pid } });
      expect(text(ex.response?.body)).toBe(`secure ${ex.request.target}`);
    }
  });

  it('node https server and client (static OpenSSL, memory BIOs): plaintext attributed to the right sockets', async () => {
    const { cert, key } = certs();
    const srv = await nodeServer(['--tls', cert, key]);
    const { session, exchanges } = capture({ pids: [srv.pid] });
    const client = await run('node', [
      join(fixtures, 'http-client.mjs'),
      `https://localhost:${srv.port}`,
      '5',
      '--ca',
      cert,
    ]);
    expect(client.code).toBe(0);
    await session.stop();
    const inbound = exchanges.filter((e) => e.direction === 'inbound');
    expect(inbound).toHaveLength(5);
    for (const ex of inbound) {
      expect(ex.tls).toBe(true);
      expect(ex.service.port).toBe(srv.port);
      const id = ex.request.target.slice('/echo/'.length);
      expect(text(ex.request.body)).toBe(`payload-${id}`);
      expect(text(ex.response?.body)).toBe(`echo ${id} payload-${id}`);
    }
  });

  it('node https client as the target: outbound exchanges with the server address', async () => {
    const { cert, key } = certs();
    const srv = await nodeServer(['--tls', cert, key]);
    // TLS on another port at the same time: its plaintext reaches the probes too (every node
    // process is probed), and must be left out because its socket is filtered out by port
    const other = await nodeServer(['--tls', cert, key]);
    const exchanges: Exchange[] = [];
    const session = CaptureSession.start({ all: true, ports: [srv.port] }, (e) => exchanges.push(e));
    const [client, otherClient] = await Promise.all([
      run('node', [join(fixtures, 'http-client.mjs'), `https://localhost:${srv.port}`, '3', '--ca', cert]),
      run('node', [join(fixtures, 'http-client.mjs'), `https://localhost:${other.port}`, '4', '--ca', cert]),
    ]);
    expect(client.code).toBe(0);
    expect(otherClient.code).toBe(0);
    const stats = await session.stop();
    expect(stats.tlsUnboundDropped).toBeGreaterThanOrEqual(2); // the other pair's client and server
    const outbound = exchanges.filter((e) => e.direction === 'outbound');
    const inbound = exchanges.filter((e) => e.direction === 'inbound');
    expect(outbound).toHaveLength(3);
    expect(inbound).toHaveLength(3);
    for (const ex of outbound) {
      expect(ex.tls).toBe(true);
      expect(ex.peer.port).toBe(srv.port);
      expect(ex.response?.status).toBe(200);
    }
  });

  it('non-HTTP and garbage bytes are counted as unknown, never decoded or fatal', async () => {
    const srv = await nodeServer();
    const { session, exchanges } = capture({ pids: [srv.pid] });
    await new Promise<void>((resolve) => {
      const sock = connect({ port: srv.port, host: '127.0.0.1' }, () => {
        sock.write(
          Buffer.from([
            0, 1, 2, 3, 0xff, 0xfe, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0,
          ]),
        );
        setTimeout(() => sock.end(), 100);
      });
      sock.resume();
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
    });
    const c = await run('node', [join(fixtures, 'http-client.mjs'), `http://127.0.0.1:${srv.port}`, '1']);
    expect(c.code).toBe(0);
    const stats = await session.stop();
    expect(exchanges.filter((e) => e.request.target === '/echo/0')).toHaveLength(1);
    expect(stats.unknownConnections).toBeGreaterThanOrEqual(1);
  });

  it('retap capture -- CMD writes a valid snapshot of exactly that command', async () => {
    const out = join(dir, 'snap');
    const script = join(dir, 'serve-and-call.sh');
    writeFileSync(join(dir, 'x.txt'), 'x-body');
    writeFileSync(
      script,
      `cd ${dir}; python3 -m http.server 0 --bind 127.0.0.1 > ${dir}/srv.log 2>&1 & S=$!
for i in $(seq 1 50); do P=$(grep -o 'port [0-9]*' ${dir}/srv.log | head -1 | cut -d' ' -f2); [ -n "$P" ] && break; sleep 0.1; done
sleep 0.3; curl -s http://127.0.0.1:$P/x.txt >/dev/null; curl -s http://127.0.0.1:$P/x.txt >/dev/null; kill $S; wait $S
tr '\\0' ' ' < /proc/$PPID/cmdline > ${dir}/recorder-cmdline.txt`,
    );
    const r = await run(
      'node',
      [
        join(import.meta.dirname, '..', '..', 'bin', 'retap.js'),
        'capture',
        '--out',
        out,
        '--json',
        '--',
        'sh',
        script,
      ],
      {
        env: { ...process.env, PYTHONUNBUFFERED: '1' },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.toString());
    // both sides are inside the cgroup: curl's outbound and the server's inbound
    expect(summary.inbound).toBe(2);
    expect(summary.outbound).toBe(2);
    const manifest = readFileSync(join(summary.path, 'snapshot.yaml'), 'utf8');
    expect(manifest).toMatch(/exchanges: 4/);
    expect(readFileSync(join(summary.path, 'exchanges.jsonl'), 'utf8').trim().split('\n')).toHaveLength(4);
    // the recorder started again in place under its node flags (capture/node-flags.ts), and its
    // stdout (the JSON above) survived that
    const recorder = readFileSync(join(dir, 'recorder-cmdline.txt'), 'utf8');
    for (const flag of RECORDER_NODE_FLAGS) expect(recorder).toContain(flag);
    expect(recorder).toContain('retap.js capture');
  });
});
