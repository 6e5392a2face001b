/**
 * The viewer's server: the token gates everything, other Host names are refused, state changes
 * need the page's own origin, the page gets a CSP that allows only its own origin, query errors
 * are 400s that say what is wrong, and the event stream reports state.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource, startViewer, type Viewer } from './index.js';
import { writeSynthSnapshot } from './testing/synth.js';

let dir: string;
let v: Viewer;
let port: number;
let token: string;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function req(path: string, opts: { method?: string; headers?: Record<string, string>; body?: string; firstChunk?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { host: `127.0.0.1:${port}`, ...opts.headers } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
        const at = body.indexOf('event: state');
        if (opts.firstChunk && at >= 0 && body.includes('\n\n', at)) {
          res.destroy();
          resolve({ status: res.statusCode!, headers: res.headers, body });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    r.on('error', reject);
    r.end(opts.body);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'retap-view-server-'));
  const snap = await writeSynthSnapshot(join(dir, 'shop'), 300);
  v = await startViewer({ source: await openSource({ snapshot: snap }) });
  await v.loaded;
  const u = new URL(v.url);
  port = Number(u.port);
  token = u.pathname.split('/')[1]!;
}, 60_000);

afterAll(async () => {
  await v?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('retap view server', () => {
  it('listens on loopback with a random token in the URL', () => {
    expect(v.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{24}\/$/);
  });

  it('answers nothing without the token', async () => {
    for (const p of ['/', '/index.html', '/api/info', `/${token.slice(0, -1)}x/api/info`, `/${token}x/`, '/assets/app.js']) {
      expect((await req(p)).status, p).toBe(404);
    }
  });

  it('serves the page under a CSP that allows only its own origin', async () => {
    const page = await req(`/${token}/`);
    expect(page.status).toBe(200);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/unsafe|https?:|\*/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    // every asset the page names is served by retap itself, by a relative URL
    const refs = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    for (const r of refs) {
      expect(r, r).not.toMatch(/^(https?:)?\/\//);
      if (r.startsWith('data:')) continue;
      expect((await req(`/${token}/${r}`)).status, r).toBe(200);
    }
    const app = await req(`/${token}/assets/app.js`);
    expect(app.headers['content-type']).toMatch(/^text\/javascript/);
    expect(app.body).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    expect((await req(`/${token}`)).headers.location).toBe(`/${token}/`);
  });

  it('refuses other Host names (DNS rebinding)', async () => {
    expect((await req(`/${token}/api/info`, { headers: { host: `evil.example:${port}` } })).status).toBe(421);
    expect((await req(`/${token}/api/info`, { headers: { host: `127.0.0.1:${port + 1}` } })).status).toBe(421);
    expect((await req(`/${token}/api/info`, { headers: { host: `localhost:${port}` } })).status).toBe(200);
  });

  it('takes state changes only from its own origin', async () => {
    const body = JSON.stringify({ q: 'status:404', out: join(dir, 'saved') });
    const headers = { 'content-type': 'application/json' };
    expect((await req(`/${token}/api/save`, { method: 'POST', headers, body })).status).toBe(403);
    expect((await req(`/${token}/api/save`, { method: 'POST', headers: { ...headers, origin: 'http://evil.example' }, body })).status).toBe(403);
    expect((await req(`/${token}/api/save`, { method: 'POST', headers: { origin: `http://127.0.0.1:${port}`, 'content-type': 'text/plain' }, body })).status).toBe(415);
    const ok = await req(`/${token}/api/save`, { method: 'POST', headers: { ...headers, origin: `http://127.0.0.1:${port}` }, body });
    expect(ok.status, ok.body).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ version: 1, name: 'shop', selected: JSON.parse(ok.body).written, parent: 'shop@v1' });
  });

  it('answers a bad query with 400 and what is wrong', async () => {
    const r = await req(`/${token}/api/rows?q=${encodeURIComponent('status:9xx')}`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toMatchObject({ code: 'RETAP_USAGE', message: expect.stringMatching(/'9xx' is not a status/) });
    expect((await req(`/${token}/api/rows?limit=5000`)).status).toBe(400);
    expect((await req(`/${token}/api/exchange?n=300`)).status).toBe(404);
  });

  it('streams state over server-sent events', async () => {
    const r = await req(`/${token}/api/events`, { firstChunk: true });
    expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
    const data = JSON.parse(/event: state\ndata: (.*)\n/.exec(r.body)![1]!);
    expect(data).toMatchObject({ count: 300, source: { kind: 'snapshot', label: 'shop@v1' }, health: { done: true, indexed: 300 } });
  });
});
