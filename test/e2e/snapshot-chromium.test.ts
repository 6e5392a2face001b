/**
 * HAR from a real browser: headless Chromium (Debian package) loads a local page; the DevTools
 * protocol over --remote-debugging-pipe records the Network events and bodies, from which the
 * test assembles a HAR 1.2 file. That file must import cleanly (schema, redaction, bodies).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Exchange } from '../../core/exchange.js';
import { exportHar, importHar, openSnapshot, validateSnapshot } from '../../snapshots/index.js';
import { skipWithoutTool } from '../helpers/privileged.js';

const CHROMIUM = '/usr/bin/chromium';
const missing = skipWithoutTool('Chromium', CHROMIUM, 'chromium, see ci/apt-packages.txt');

const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);
const PAGE = `<!doctype html><html><head><title>retap</title><link rel="icon" href="data:,"></head><body>
<img src="/pixel.png">
<script>
(async () => {
  await fetch('/api/orders/7?full=1', { headers: { 'Authorization': 'Bearer s3cr3t-token' } }).then(r => r.json());
  await fetch('/api/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user: 'ann', password: 'hunter2' }) }).then(r => r.text());
  await fetch('/api/big.txt').then(r => r.text());
  await fetch('/api/missing').then(r => r.text());
  await fetch('/done');
})();
</script></body></html>`;

let work: string;
let server: Server;
let chrome: ChildProcess | undefined;
let base: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'retap-chromium-'));
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/') {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Set-Cookie': 'sid=abc123; Path=/; HttpOnly',
      });
      res.end(PAGE);
    } else if (url === '/pixel.png') {
      res.writeHead(200, { 'Content-Type': 'image/png' });
      res.end(PNG);
    } else if (url.startsWith('/api/orders/7')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ id: 7, total: 12.5 }));
    } else if (url === '/api/login') {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"token":"tok-123","ok":true}');
      });
    } else if (url === '/api/big.txt') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Encoding': 'gzip' });
      res.end(gzipSync('line of text\n'.repeat(500)));
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (chrome?.pid && chrome.exitCode === null) {
    try {
      process.kill(-chrome.pid, 'SIGKILL');
    } catch {}
  }
  await new Promise((r) => server.close(r));
  rmSync(work, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: DevTools protocol messages
type Msg = any;

/** Minimal DevTools protocol client over the NUL-delimited pipe (fd 3 in, fd 4 out of Chromium). */
function cdp(input: Writable, output: Readable) {
  let id = 0;
  const pending = new Map<number, { res: (v: Msg) => void; rej: (e: Error) => void }>();
  const listeners: Array<(m: Msg) => void> = [];
  let buf = '';
  output.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let z = buf.indexOf('\0');
    while (z !== -1) {
      const m = JSON.parse(buf.slice(0, z)) as Msg;
      buf = buf.slice(z + 1);
      z = buf.indexOf('\0');
      if (m.id !== undefined && pending.has(m.id)) {
        const p = pending.get(m.id)!;
        pending.delete(m.id);
        if (m.error) p.rej(new Error(`${m.error.message}`));
        else p.res(m.result);
      } else for (const l of listeners) l(m);
    }
  });
  return {
    send(method: string, params: object = {}, sessionId?: string): Promise<Msg> {
      const msg = { id: ++id, method, params, ...(sessionId ? { sessionId } : {}) };
      return new Promise((res, rej) => {
        pending.set(msg.id, { res, rej });
        input.write(`${JSON.stringify(msg)}\0`);
      });
    },
    on(fn: (m: Msg) => void) {
      listeners.push(fn);
    },
  };
}

const pairs = (h: Record<string, string> | undefined) =>
  Object.entries(h ?? {}).flatMap(([name, v]) =>
    String(v)
      .split('\n')
      .map((value) => ({ name, value })),
  );

/** Record one page load and build a HAR 1.2 document from Chromium's Network events. */
async function recordHar(url: string): Promise<object> {
  const profile = join(work, 'profile');
  chrome = spawn(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      '--remote-debugging-pipe',
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true },
  );
  let stderr = '';
  chrome.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const client = cdp(chrome.stdio[3] as Writable, chrome.stdio[4] as Readable);
  const { targetInfos } = await client.send('Target.getTargets');
  const page = (targetInfos as Msg[]).find((t) => t.type === 'page');
  if (!page) throw new Error(`no page target; chromium said: ${stderr}`);
  const { sessionId } = await client.send('Target.attachToTarget', {
    targetId: page.targetId,
    flatten: true,
  });
  const reqs = new Map<string, Msg>();
  let doneResolve: () => void;
  const done = new Promise<void>((r) => (doneResolve = r));
  client.on((m) => {
    if (m.sessionId !== sessionId) return;
    const p = m.params;
    if (m.method === 'Network.requestWillBeSent') reqs.set(p.requestId, { sent: p });
    else if (m.method === 'Network.requestWillBeSentExtraInfo')
      reqs.set(p.requestId, { ...reqs.get(p.requestId), extraReq: p });
    else if (m.method === 'Network.responseReceivedExtraInfo')
      reqs.set(p.requestId, { ...reqs.get(p.requestId), extraResp: p });
    else if (m.method === 'Network.responseReceived')
      reqs.set(p.requestId, { ...reqs.get(p.requestId), resp: p });
    else if (m.method === 'Network.loadingFinished') {
      const r = reqs.get(p.requestId) ?? {};
      reqs.set(p.requestId, { ...r, finished: p });
      if (r.sent?.request.url.endsWith('/done')) doneResolve();
    }
  });
  await client.send('Network.enable', {}, sessionId);
  await client.send('Page.enable', {}, sessionId);
  await client.send('Page.navigate', { url }, sessionId);
  await Promise.race([
    done,
    new Promise((_, rej) =>
      setTimeout(() => rej(new Error(`page did not finish; chromium said: ${stderr}`)), 30_000),
    ),
  ]);

  const entries: object[] = [];
  for (const [requestId, r] of reqs) {
    if (!r.sent || !r.resp || !r.finished) continue;
    const rq = r.sent.request;
    const rs = r.resp.response;
    const t = rs.timing ?? {};
    let body: { body: string; base64Encoded: boolean } | undefined;
    try {
      body = await client.send('Network.getResponseBody', { requestId }, sessionId);
    } catch {
      body = undefined;
    }
    let postData: string | undefined = rq.postData;
    if (rq.hasPostData && postData === undefined) {
      postData = (await client.send('Network.getRequestPostData', { requestId }, sessionId)).postData;
    }
    const sendMs = t.sendEnd !== undefined ? Math.max(0, t.sendEnd - t.sendStart) : 0;
    const waitMs = t.receiveHeadersEnd !== undefined ? Math.max(0, t.receiveHeadersEnd - t.sendEnd) : 0;
    const receiveMs =
      t.requestTime !== undefined
        ? Math.max(0, (r.finished.timestamp - t.requestTime) * 1000 - t.receiveHeadersEnd)
        : 0;
    const reqHeaders = pairs(r.extraReq?.headers ?? rq.headers);
    const u = new URL(rq.url);
    const size = body
      ? body.base64Encoded
        ? Buffer.from(body.body, 'base64').length
        : Buffer.byteLength(body.body)
      : 0;
    entries.push({
      startedDateTime: new Date(r.sent.wallTime * 1000).toISOString(),
      time: sendMs + waitMs + receiveMs,
      request: {
        method: rq.method,
        url: rq.url,
        httpVersion: rs.protocol ?? 'http/1.1',
        cookies: [],
        headers: reqHeaders,
        queryString: [...u.searchParams].map(([name, value]) => ({ name, value })),
        ...(postData !== undefined
          ? { postData: { mimeType: rq.headers['Content-Type'] ?? '', text: postData } }
          : {}),
        headersSize: -1,
        bodySize: postData ? Buffer.byteLength(postData) : 0,
      },
      response: {
        status: rs.status,
        statusText: rs.statusText ?? '',
        httpVersion: rs.protocol ?? 'http/1.1',
        cookies: [],
        // Set-Cookie and other raw headers only come with the ExtraInfo event
        headers: pairs(r.extraResp?.headers ?? rs.headers),
        content: {
          size,
          mimeType: rs.mimeType ?? '',
          ...(body ? { text: body.body, ...(body.base64Encoded ? { encoding: 'base64' } : {}) } : {}),
        },
        redirectURL: '',
        headersSize: -1,
        bodySize: Math.round(r.finished.encodedDataLength ?? -1),
      },
      cache: {},
      timings: { blocked: -1, dns: -1, connect: -1, ssl: -1, send: sendMs, wait: waitMs, receive: receiveMs },
      serverIPAddress: rs.remoteIPAddress ?? '',
      connection: String(rs.connectionId ?? ''),
      _resourceType: r.sent.type,
    });
  }
  const version = await client.send('Browser.getVersion');
  await client.send('Browser.close').catch(() => undefined);
  await new Promise((res) => {
    if (chrome!.exitCode !== null) res(undefined);
    chrome!.once('exit', res);
    setTimeout(() => {
      try {
        process.kill(-chrome!.pid!, 'SIGKILL');
      } catch {}
      res(undefined);
    }, 5000);
  });
  return {
    log: {
      version: '1.2',
      creator: { name: 'chromium-devtools-protocol', version: String(version.product) },
      browser: { name: 'Chromium', version: String(version.product).split('/')[1] ?? '' },
      entries,
    },
  };
}

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

describe.skipIf(missing)('HAR recorded by headless Chromium', () => {
  it('imports cleanly: statuses, bodies (text, binary, gzip), redaction; exports back to valid HAR', async () => {
    const har = await recordHar(`${base}/`);
    const harFile = join(work, 'chromium.har');
    writeFileSync(harFile, JSON.stringify(har, null, 1));
    const result = await importHar(harFile, {
      dir: join(work, 'store'),
      name: 'browser',
      source: { host: 'test', filters: {} },
    });
    expect(result.skipped).toEqual([]);
    const snap = await openSnapshot(result.path);
    const byPath = new Map<string, Exchange>();
    for await (const ex of snap.exchanges()) byPath.set(ex.request.target, ex);
    expect([...byPath.keys()].sort()).toEqual([
      '/',
      '/api/big.txt',
      '/api/login',
      '/api/missing',
      '/api/orders/7?full=1',
      '/done',
      '/pixel.png',
    ]);

    const order = byPath.get('/api/orders/7?full=1')!;
    expect(order.protocol).toBe('http1');
    expect(order.service).toMatchObject({ addr: '127.0.0.1', port: Number(new URL(base).port) });
    expect(JSON.parse(text(order.response!.body.data))).toEqual({ id: 7, total: 12.5 });
    const auth = order.request.headers.find(([n]) => n.toLowerCase() === 'authorization')![1];
    expect(auth).toMatch(/^Bearer REDACTED-[0-9a-f]{16}$/);

    const login = byPath.get('/api/login')!;
    expect(login.request.method).toBe('POST');
    expect(text(login.request.body.data)).toMatch(/^\{"user":"ann","password":"REDACTED-[0-9a-f]{16}"\}$/);
    expect(text(login.response!.body.data)).toMatch(/^\{"token":"REDACTED-[0-9a-f]{16}","ok":true\}$/);

    expect(Buffer.from(byPath.get('/pixel.png')!.response!.body.data)).toEqual(PNG);
    const big = byPath.get('/api/big.txt')!.response!;
    expect(text(big.body.decoded)).toBe('line of text\n'.repeat(500));
    expect(big.body.data[0]).toBe(0x1f); // gzip again, as the headers say
    expect(byPath.get('/api/missing')!.response!.status).toBe(404);
    const root = byPath.get('/')!.response!;
    expect(root.headers.find(([n]) => n.toLowerCase() === 'set-cookie')![1]).toMatch(
      /^sid=REDACTED-[0-9a-f]{16}; Path=\/; HttpOnly$/,
    );
    expect(snap.manifest.redaction.redacted.map((r) => r.rule)).toEqual(
      expect.arrayContaining(['auth-header', 'json-field', 'set-cookie']),
    );
    expect((await validateSnapshot(result.path)).ok).toBe(true);

    const out = join(work, 'again.har');
    const exported = await exportHar(result.path, out);
    expect(exported.entries).toBe(7);
    const again = await importHar(out, {
      dir: join(work, 'store2'),
      name: 'browser',
      source: { host: 'test', filters: {} },
    });
    expect(again.imported).toBe(7);
  }, 90_000);
});
