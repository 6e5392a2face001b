/**
 * The replay driver's HTTP/1.1 client against real loopback servers: node's http server for the
 * ordinary cases, a raw TCP server for the byte-exact and hostile ones (fragmented framing, interim
 * answers, early close, silence, extra bytes).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { SpecItem } from './spec.js';
import { drive } from './driver.js';
import { H1Pool, type H1Request } from './h1.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const GET = (target: string, headers: Array<[string, string]> = []): H1Request => ({
  method: 'GET',
  target,
  headers,
  body: new Uint8Array(0),
});

function pool(port: number, opts: Partial<ConstructorParameters<typeof H1Pool>[2]> = {}): H1Pool {
  const p = new H1Pool('127.0.0.1', port, { connections: 4, timeoutMs: 5000, maxBody: 32 << 20, ...opts });
  cleanups.push(() => p.close());
  return p;
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        (server as http.Server).closeAllConnections?.();
        server.close(() => r());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** A raw server: `answer(request head, socket index)` returns the bytes to write, as pieces. */
async function rawServer(
  answer: (head: string, conn: number) => Array<string | Buffer> | 'silence' | 'close',
  gapMs = 0,
): Promise<{ port: number; heads: string[]; connections: () => number }> {
  const heads: string[] = [];
  let conns = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    const conn = conns++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    s.on('data', async (d) => {
      pending = Buffer.concat([pending, d]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.subarray(0, end).toString('latin1');
        const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (pending.length < end + 4 + len) return;
        pending = pending.subarray(end + 4 + len);
        heads.push(head);
        const out = answer(head, conn);
        if (out === 'silence') return;
        if (out === 'close') {
          s.destroy();
          return;
        }
        for (const piece of out) {
          s.write(piece);
          if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
        }
      }
    });
  });
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
  });
  const port = await listen(server);
  return { port, heads, connections: () => conns };
}

describe('h1 client: requests', () => {
  it('sends headers in order, case and duplicates kept, nothing added but Content-Length for bodies', async () => {
    const seen: Array<{ raw: string[]; body: string; method: string; url: string }> = [];
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        seen.push({
          raw: req.rawHeaders,
          body: Buffer.concat(parts).toString(),
          method: req.method!,
          url: req.url!,
        });
        res.end('ok');
      });
    });
    const p = pool(await listen(server));
    const a = await p.request({
      method: 'POST',
      target: '/orders?x=1',
      headers: [
        ['Host', 'orders.internal'],
        ['X-Trace', 'a'],
        ['x-trace', 'b'],
        ['Content-Type', 'application/json'],
      ],
      body: Buffer.from('{"sku":"A-1"}'),
    });
    expect(a.status).toBe(200);
    expect(Buffer.from(a.body).toString()).toBe('ok');
    const b = await p.request({
      method: 'DELETE',
      target: '/orders/1',
      headers: [],
      body: new Uint8Array(0),
    });
    expect(b.status).toBe(200);
    expect(seen[0]).toEqual({
      method: 'POST',
      url: '/orders?x=1',
      body: '{"sku":"A-1"}',
      raw: [
        'Host',
        'orders.internal',
        'X-Trace',
        'a',
        'x-trace',
        'b',
        'Content-Type',
        'application/json',
        'content-length',
        '13',
      ],
    });
    // a missing Host is filled in with the origin; an empty non-GET body still says its length
    const port = (server.address() as AddressInfo).port;
    expect(seen[1]!.raw).toEqual(['host', `127.0.0.1:${port}`, 'content-length', '0']);
  });

  it('rejects what HTTP/1.1 cannot carry, with what to fix, and sends nothing', async () => {
    const srv = await rawServer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n']);
    const p = pool(srv.port);
    await expect(p.request(GET('/a', [['x-evil', 'a\r\nInjected: 1']]))).rejects.toThrow(
      /header x-evil has CR, LF, NUL.*transform rule/,
    );
    await expect(p.request(GET('/a b'))).rejects.toThrow(/target .*spaces, control/);
    await expect(p.request(GET('/a', [['bad name', 'v']]))).rejects.toThrow(/not an HTTP token/);
    await expect(p.request({ ...GET('/'), method: 'GE T' })).rejects.toThrow(/method is not an HTTP token/);
    // "€" has no latin1 byte: refused (as undici does), not sent as some other byte
    await expect(p.request(GET('/price', [['x-currency', '\u20ac']]))).rejects.toThrow(
      /x-currency .*beyond latin1/,
    );
    await expect(p.request(GET('/caf\u00e9/\u20ac'))).rejects.toThrow(/beyond latin1.*percent-encoded/);
    expect(srv.heads).toEqual([]);
    expect((await p.request(GET('/ok'))).status).toBe(200);
  });
});

describe('h1 client: answers', () => {
  it('reads headers lower-cased in order with duplicates, and reuses one keep-alive connection', async () => {
    let conns = 0;
    const server = http.createServer((req, res) => {
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.setHeader('X-Echo', req.url!);
      res.end(`body of ${req.url}`);
    });
    server.on('connection', () => conns++);
    const p = pool(await listen(server), { connections: 1 });
    for (let i = 0; i < 20; i++) {
      const a = await p.request(GET(`/r${i}`));
      expect(a.status).toBe(200);
      expect(Buffer.from(a.body).toString()).toBe(`body of /r${i}`);
      expect(a.headers.filter(([n]) => n === 'set-cookie')).toEqual([
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
      ]);
      expect(a.headers.find(([n]) => n === 'x-echo')?.[1]).toBe(`/r${i}`);
      expect(a.head.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    }
    expect(conns).toBe(1);
  });

  it('decodes chunked bodies with extensions and trailers, however the bytes are split', async () => {
    const body = 'The quick brown fox jumps over the lazy dog.'.repeat(50);
    const wire = Buffer.from(
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n` +
        `a;ext=1\r\n${body.slice(0, 10)}\r\n` +
        `${(body.length - 10).toString(16)}\r\n${body.slice(10)}\r\n` +
        `0\r\nX-Checksum: abc\r\n\r\n`,
    );
    for (const step of [1, 2, 3, 7, 64, wire.length]) {
      const pieces: Buffer[] = [];
      for (let i = 0; i < wire.length; i += step) pieces.push(wire.subarray(i, i + step));
      const srv = await rawServer(() => pieces, step < 4 ? 0 : 1);
      const p = pool(srv.port, { connections: 1 });
      for (let k = 0; k < 2; k++) {
        const a = await p.request(GET('/chunked'));
        expect(Buffer.from(a.body).toString(), `split every ${step} bytes`).toBe(body);
        expect(a.headers).toEqual([
          ['transfer-encoding', 'chunked'],
          ['x-a', '1'],
        ]);
      }
      expect(srv.connections()).toBe(1);
    }
  });

  it('reads a body to connection close when nothing frames it, and does not reuse that connection', async () => {
    let conns = 0;
    const server = net.createServer((s) => {
      conns++;
      s.on('error', () => undefined);
      s.once('data', () => {
        s.write('HTTP/1.0 200 OK\r\nServer: old\r\n\r\nfirst half, ');
        setTimeout(() => s.end('second half'), 120);
      });
    });
    const p = pool(await listen(server), { connections: 1 });
    for (let i = 0; i < 2; i++) {
      const pending = p.request(GET('/old'));
      const early = await Promise.race([
        pending.then(() => 'answered'),
        new Promise((r) => setTimeout(() => r('waiting'), 50)),
      ]);
      expect(early).toBe('waiting');
      const a = await pending;
      expect([a.status, Buffer.from(a.body).toString()]).toEqual([200, 'first half, second half']);
    }
    expect(conns).toBe(2);
  });

  it('completes a close-delimited body when the server ends the connection', async () => {
    const server = net.createServer((s) => {
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\nX-K: v\r\n\r\nall of it, then FIN'));
      s.on('error', () => undefined);
    });
    const p = pool(await listen(server), { connections: 1 });
    for (let i = 0; i < 3; i++) {
      const a = await p.request(GET('/close'));
      expect(a.status).toBe(200);
      expect(Buffer.from(a.body).toString()).toBe('all of it, then FIN');
    }
  });

  it('reads no body for HEAD, 204 and 304, and skips 100 and 103 interim answers', async () => {
    const srv = await rawServer((head) => {
      const target = head.split(' ')[1];
      if (head.startsWith('HEAD')) return ['HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n'];
      if (target === '/204') return ['HTTP/1.1 204 No Content\r\n\r\n'];
      if (target === '/304') return ['HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n'];
      return [
        'HTTP/1.1 100 Continue\r\n\r\n',
        'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n',
        'HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone',
      ];
    }, 2);
    const p = pool(srv.port, { connections: 1 });
    const h = await p.request({ ...GET('/thing'), method: 'HEAD' });
    expect([h.status, h.body.length, h.headers]).toEqual([200, 0, [['content-length', '5000']]]);
    expect((await p.request(GET('/204'))).status).toBe(204);
    const n = await p.request(GET('/304'));
    expect([n.status, n.body.length]).toEqual([304, 0]);
    const c = await p.request({
      method: 'POST',
      target: '/make',
      headers: [['expect', '100-continue']],
      body: Buffer.from('x'),
    });
    expect([c.status, Buffer.from(c.body).toString(), c.headers]).toEqual([
      201,
      'done',
      [['content-length', '4']],
    ]);
    // a server may wrongly send a body after a HEAD answer: that connection is not reused
    expect(srv.connections()).toBe(2);
  });

  it('trims only SP and HTAB around values, joins folds onto empty values, refuses bare LF', async () => {
    const latin1 = (text: string) => [Buffer.from(text, 'latin1')];
    // "voilà" in UTF-8 ends in C3 A0; as latin1 A0 is a no-break space, which is part of the value
    const utf8 = await rawServer(() =>
      latin1('HTTP/1.1 200 OK\r\nX-City: voil\xc3\xa0 \t\r\nX-A:\r\n folded\r\nContent-Length: 2\r\n\r\nok'),
    );
    const a = await pool(utf8.port).request(GET('/'));
    expect(a.headers).toEqual([
      ['x-city', 'voil\xc3\xa0'],
      ['x-a', 'folded'],
      ['content-length', '2'],
    ]);
    const bare = await rawServer(() =>
      latin1('HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 99\r\nContent-Length: 2\r\n\r\nok'),
    );
    await expect(pool(bare.port).request(GET('/'))).rejects.toThrow(/bare CR or LF/);
  });

  it('closes after HTTP/1.0 with Transfer-Encoding and after Transfer-Encoding with Content-Length', async () => {
    const srv = await rawServer((head) =>
      head.includes('/old')
        ? [
            'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
          ]
        : ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
    );
    const p = pool(srv.port, { connections: 1 });
    for (const t of ['/old', '/old', '/both', '/both'])
      expect(Buffer.from((await p.request(GET(t))).body).toString()).toBe('ok');
    expect(srv.connections()).toBe(4);
  });

  it('ends a 2xx answer to CONNECT at its head and does not reuse the tunnel', async () => {
    const srv = await rawServer(() => ['HTTP/1.1 200 Connection Established\r\n\r\n']);
    const p = pool(srv.port, { connections: 1, timeoutMs: 2000 });
    const connect = {
      method: 'CONNECT',
      target: 'upstream.internal:443',
      headers: [],
      body: new Uint8Array(0),
    };
    const a = await p.request(connect);
    expect([a.status, a.body.length]).toEqual([200, 0]);
    await p.request(connect);
    expect(srv.connections()).toBe(2);
  });

  it('keeps big bodies exact: 5 MiB with Content-Length, 3 MiB chunked', async () => {
    const big = Buffer.alloc(5 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const server = http.createServer((req, res) => {
      if (req.url === '/chunked') {
        res.write(big.subarray(0, 1 << 20));
        res.write(big.subarray(1 << 20, 2 << 20));
        res.end(big.subarray(2 << 20, 3 << 20));
      } else {
        res.setHeader('content-length', big.length);
        res.end(big);
      }
    });
    const p = pool(await listen(server));
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    const [a, c] = await Promise.all([p.request(GET('/big')), p.request(GET('/chunked'))]);
    expect(a.body.length).toBe(big.length);
    expect(sha(a.body)).toBe(sha(big));
    expect(c.body.length).toBe(3 << 20);
    expect(sha(c.body)).toBe(sha(big.subarray(0, 3 << 20)));
  });

  it('keeps every answer of many concurrent connections apart (random splits, mixed framing)', async () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const srv = await rawServer((head) => {
      const id = head.split(' ')[1]!.slice(1);
      const body = `answer-${id}-`.repeat(1 + (Number(id) % 37));
      const wire = Buffer.from(
        Number(id) % 2
          ? `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-Id: ${id}\r\n\r\n${body}`
          : `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Id: ${id}\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
      );
      const pieces: Buffer[] = [];
      for (let i = 0; i < wire.length; ) {
        const n = 1 + rand(40);
        pieces.push(wire.subarray(i, i + n));
        i += n;
      }
      return pieces;
    });
    const p = pool(srv.port, { connections: 8 });
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => p.request(GET(`/${i}`))));
    answers.forEach((a, i) => {
      expect(a.headers.find(([n]) => n === 'x-id')?.[1]).toBe(String(i));
      expect(Buffer.from(a.body).toString()).toBe(`answer-${i}-`.repeat(1 + (i % 37)));
    });
    expect(srv.connections()).toBe(8);
  });
});

describe('h1 client: connections and faults', () => {
  it('opens a new connection after Connection: close, after extra bytes, and when the idle hint says so', async () => {
    const srv = await rawServer((head) => {
      const t = head.split(' ')[1];
      if (t === '/close') return ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na'];
      if (t === '/extra') return ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nbEXTRA'];
      if (t === '/hint') return ['HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 1\r\n\r\nc'];
      return ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nd'];
    });
    const p = pool(srv.port, { connections: 1 });
    expect(Buffer.from((await p.request(GET('/close'))).body).toString()).toBe('a');
    expect(Buffer.from((await p.request(GET('/extra'))).body).toString()).toBe('b');
    expect(Buffer.from((await p.request(GET('/hint'))).body).toString()).toBe('c');
    await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.from((await p.request(GET('/plain'))).body).toString()).toBe('d');
    expect(Buffer.from((await p.request(GET('/plain'))).body).toString()).toBe('d');
    // close, extra and the 1 s hint (reuse window 0) each cost a connection; the last two share one
    expect(srv.connections()).toBe(4);
  });

  it('does not reuse a connection whose request was still being written when the answer came', async () => {
    let conns = 0;
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => {
      conns++;
      sockets.push(s);
      s.on('error', () => undefined);
      let head = '';
      s.on('data', (d: Buffer) => {
        if (head.includes('\r\n\r\n')) return; // the rest of a refused upload: ignored
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        if (head.startsWith('PUT')) {
          s.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!');
          s.pause(); // stop reading: the client's upload stays unwritten
        } else s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    const port = await listen(server);
    cleanups.push(() => {
      for (const s of sockets) s.destroy(); // the paused one would keep the server open
    });
    const p = pool(port, { connections: 1 });
    const up = await p.request({
      method: 'PUT',
      target: '/upload',
      headers: [],
      body: Buffer.alloc(8 << 20, 1),
    });
    expect([up.status, Buffer.from(up.body).toString()]).toEqual([413, 'too big!']);
    const next = await p.request(GET('/next'));
    expect([next.status, Buffer.from(next.body).toString()]).toEqual([200, 'ok']);
    expect(conns).toBe(2);
  });

  it('fails a request when the server closes without answering', async () => {
    const srv = await rawServer(() => 'close');
    const p = pool(srv.port, { connections: 1 });
    await expect(p.request(GET('/x'))).rejects.toThrow(
      /closed the connection before the answer was complete|ECONNRESET/,
    );
    await expect(p.request(GET('/y'))).rejects.toThrow(
      /closed the connection before the answer was complete|ECONNRESET/,
    );
    expect(srv.connections()).toBe(2);
  });

  it('fails a request with a partial body when the peer resets', async () => {
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part');
        setTimeout(() => s.destroy(), 20);
      });
    });
    const p = pool(await listen(server), { connections: 1 });
    await expect(p.request(GET('/cut'))).rejects.toThrow(/before the answer was complete|ECONNRESET/);
    // the next request gets a fresh connection and its own failure or answer, never the old bytes
    await expect(p.request(GET('/cut'))).rejects.toThrow(/before the answer was complete|ECONNRESET/);
  });

  it('times out a silent server, refuses a closed port, limits bodies, and says why', async () => {
    const silent = await rawServer(() => 'silence');
    const p = pool(silent.port, { timeoutMs: 150 });
    await expect(p.request(GET('/slow'))).rejects.toThrow(/no answer from the build for 150 ms/);

    const closed = net.createServer();
    const port = await listen(closed);
    await new Promise<void>((r) => closed.close(() => r()));
    await expect(pool(port).request(GET('/'))).rejects.toThrow(/ECONNREFUSED/);

    const big = await rawServer(() => ['HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n']);
    await expect(pool(big.port, { maxBody: 1 << 20 }).request(GET('/'))).rejects.toThrow(
      /over the 1 MiB the driver keeps/,
    );

    const junk = await rawServer(() => ['SSH-2.0-OpenSSH_9.2\r\n\r\n']);
    await expect(pool(junk.port).request(GET('/'))).rejects.toThrow(/not a valid HTTP\/1.x answer/);

    const sw = await rawServer(() => ['HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n']);
    await expect(pool(sw.port).request(GET('/'))).rejects.toThrow(/switched protocols/);
  });

  it('abort fails what is in flight and what comes after', async () => {
    const silent = await rawServer(() => 'silence');
    const p = pool(silent.port);
    const inflight = p.request(GET('/a'));
    await new Promise((r) => setTimeout(r, 30));
    p.abort('replay interrupted');
    await expect(inflight).rejects.toThrow('replay interrupted');
    await expect(p.request(GET('/b'))).rejects.toThrow('replay interrupted');
  });
});

describe('replay driver: h1 and undici give the same results', () => {
  it('same status, headers and bodies for the same recorded requests', async () => {
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const body = Buffer.concat(parts);
        if (req.url === '/chunked') {
          res.write('a');
          res.end('b');
          return;
        }
        res.setHeader('X-Method', req.method!);
        res.setHeader('X-Accept', String(req.headers.accept));
        res.statusCode = req.url === '/missing' ? 404 : 200;
        res.end(req.method === 'HEAD' ? undefined : `${req.method} ${req.url} ${body.toString()}`);
      });
    });
    const port = await listen(server);
    const items: SpecItem[] = [
      ['GET', '/a', ''],
      ['POST', '/b', Buffer.from('{"n":1}').toString('base64')],
      ['HEAD', '/c', ''],
      ['GET', '/missing', ''],
      ['GET', '/chunked', ''],
      ['PUT', '/d', ''],
    ].map(([method, target, body], i) => ({
      id: `e${i}`,
      session: `s${i % 2}`,
      method: method!,
      target: target!,
      headers: [
        ['host', 'svc'],
        ['connection', 'keep-alive'],
        ['accept', '*/*'],
      ],
      body: body!,
      startUs: i,
      connection: `s${i % 2}`,
      closeAfter: i >= 4,
    }));
    const sessions = [
      { key: 's0', items: [0, 2, 4] },
      { key: 's1', items: [1, 3, 5] },
    ];
    const run = async (client: 'h1' | 'undici') =>
      (
        await drive(`http://127.0.0.1:${port}`, items, sessions, {
          concurrency: 2,
          timeoutMs: 5000,
          client,
        })
      ).map((d) => ({
        id: d.id,
        status: d.status,
        error: d.error,
        // connection management differs on purpose (undici closes after HEAD and says so)
        headers: d.answer?.headers.filter(([n]) => !['date', 'keep-alive', 'connection'].includes(n)),
        body: d.answer ? Buffer.from(d.answer.body).toString() : undefined,
      }));
    const h1 = await run('h1');
    const undici = await run('undici');
    expect(h1).toEqual(undici);
    expect(h1.map((r) => r.status)).toEqual([200, 200, 200, 404, 200, 200]);
    expect(h1[1]!.body).toBe('POST /b {"n":1}');
    expect(h1[0]!.headers).toContainEqual(['x-accept', '*/*']);
  });
});
