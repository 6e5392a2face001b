/**
 * The viewer's HTTP server (node:http): the page, its own assets, a small JSON API and a
 * server-sent event stream. Everything sits under a random token path (`/<token>/…`); anything
 * else is a 404. Bound to 127.0.0.1 unless told otherwise; requests naming another Host are
 * refused (DNS rebinding), state-changing requests must come from the page's own origin, and the
 * page runs under a Content-Security-Policy that allows nothing but its own origin: no script,
 * style, font or image is ever loaded from the network.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ErrorCodes, isRetapError, RetapError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { packageRoot } from '../core/paths.js';
import { routeOf } from '../snapshots/index.js';
import { AbortedError, type Search, type Selection } from './search.js';
import type { TrafficSource } from './sources/types.js';
import type { Store } from './store.js';

const log = logger('view');

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const COMMON_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

interface Asset {
  type: string;
  body: Buffer;
}

/** The page and its assets: static files from viewer/static, compiled scripts from dist/viewer/web. */
export function loadAssets(): Map<string, Asset> {
  const root = packageRoot();
  const assets = new Map<string, Asset>();
  const staticDir = join(root, 'viewer', 'static');
  const webDir = join(root, 'dist', 'viewer', 'web');
  const must = (dir: string, names: string[], what: string) => {
    for (const n of names) {
      const p = join(dir, n);
      if (!existsSync(p)) {
        throw new RetapError(ErrorCodes.NOT_BUILT, `the viewer's ${what} ${p} is missing`, {
          hint: 'Build the package first: npm run build (the front end compiles to dist/viewer/web).',
        });
      }
      assets.set(n, { type: TYPES[n.slice(n.lastIndexOf('.'))] ?? 'application/octet-stream', body: readFileSync(p) });
    }
  };
  must(staticDir, ['index.html', 'viewer.css'], 'page');
  must(webDir, ['app.js'], 'script');
  // every module app.js imports (tsconfig.web.json compiles viewer/web/*.ts there)
  must(webDir, readdirSync(webDir).filter((n) => n.endsWith('.js') && n !== 'app.js'), 'script');
  return assets;
}

export interface ViewerServerOptions {
  store: Store;
  search: Search;
  source: TrafficSource;
  host: string;
  port: number;
  token?: string;
}

export interface ViewerServer {
  url: string;
  token: string;
  server: Server;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function intParam(u: URL, name: string, def: number, min: number, max: number): number {
  const t = u.searchParams.get(name);
  if (t === null || t === '') return def;
  const n = Number(t);
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, `${name}: expected a whole number from ${min} to ${max}`);
  return n;
}

function numParam(u: URL, name: string): number | undefined {
  const t = u.searchParams.get(name);
  if (t === null || t === '') return undefined;
  const n = Number(t);
  if (!Number.isFinite(n)) throw new HttpError(400, `${name}: not a number`);
  return n;
}

async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  let size = 0;
  const parts: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw new HttpError(413, 'request body too large');
    parts.push(c);
  }
  return Buffer.concat(parts).toString('utf8');
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export async function startServer(opts: ViewerServerOptions): Promise<ViewerServer> {
  const assets = loadAssets();
  const token = opts.token ?? randomBytes(18).toString('base64url');
  const tokenBuf = Buffer.from(token);
  const { store, search, source } = opts;
  const loopback = LOOPBACK.has(opts.host);
  let port = 0;
  const streams = new Set<ServerResponse>();

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}) => {
    res.writeHead(status, { ...COMMON_HEADERS, 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...extra });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, value: unknown) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));

  const state = () => ({
    count: store.count,
    generation: store.generation,
    source: source.info(),
    health: source.health(),
    memory: store.memory(),
  });

  const selectionLines = (sel: Selection) =>
    (async function* () {
      const CH = 512;
      for (let i = 0; i < sel.count; i += CH) {
        const rows: number[] = [];
        for (let k = i; k < Math.min(sel.count, i + CH); k++) rows.push(search.rowAt(sel, k));
        const texts: string[] = [];
        await store.eachLine(rows, 0, rows.length, (_r, t) => texts.push(t));
        for (const t of texts) yield JSON.parse(t) as unknown;
      }
    })();

  const api = async (req: IncomingMessage, res: ServerResponse, path: string, u: URL): Promise<void> => {
    const q = u.searchParams.get('q') ?? '';
    // a browser that moved on (new query, closed tab) stops the scans it started
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const signal = gone.signal;
    switch (path) {
      case 'info':
        return json(res, 200, state());
      case 'rows': {
        const sel = await search.select(q, signal);
        const offset = intParam(u, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
        const limit = intParam(u, 'limit', 100, 1, 1000);
        const order = u.searchParams.get('order') === 'desc' ? 'desc' : 'asc';
        return json(res, 200, {
          count: sel.count,
          total: store.count,
          query: sel.query.canonical,
          terms: sel.query.terms.map((t) => ({ key: t.key, values: t.values, raw: t.raw })),
          range: { fromUs: sel.query.spec.fromUs, toUs: sel.query.spec.toUs },
          offset,
          rows: search.page(sel, offset, limit, order),
        });
      }
      case 'histogram': {
        const sel = await search.select(q, signal);
        const bins = intParam(u, 'bins', 120, 1, 2000);
        return json(res, 200, search.histogram(sel, bins, numParam(u, 'from'), numParam(u, 'to')));
      }
      case 'facets':
        return json(res, 200, await search.facets(q, signal));
      case 'map':
        return json(res, 200, search.serviceMap(await search.select(q, signal)));
      case 'exchange': {
        const n = intParam(u, 'n', 0, 0, Number.MAX_SAFE_INTEGER);
        if (n >= store.count) throw new HttpError(404, `no exchange ${n}`);
        const stored = await store.line(n);
        const detail = source.detail ? await source.detail(n, stored) : undefined;
        return json(res, 200, { row: store.columns.row(n), route: routeOf(String(stored.request.target)), exchange: stored, ...(detail !== undefined ? { detail } : {}) });
      }
      case 'save': {
        if (req.method !== 'POST') throw new HttpError(405, 'save takes POST');
        if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) throw new HttpError(415, 'send JSON');
        const body = JSON.parse((await readBody(req)) || '{}') as { q?: string; name?: string; out?: string };
        const sel = await search.select(body.q ?? '');
        const saved = await source.save({
          spec: sel.query.spec,
          query: sel.query.canonical,
          ...(body.name ? { name: body.name } : {}),
          ...(body.out ? { out: body.out } : {}),
          lines: () => selectionLines(sel),
        });
        log.info(`saved ${saved.written} exchanges as ${saved.name}@v${saved.version} → ${saved.path}`);
        return json(res, 200, { ...saved, selected: sel.count });
      }
      case 'events': {
        res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
        res.write(`retry: 1000\n\n`);
        streams.add(res);
        let last = -1;
        const push = () => {
          if (store.generation === last) return;
          last = store.generation;
          res.write(`event: state\ndata: ${JSON.stringify(state())}\n\n`);
        };
        push();
        // at most four updates a second while rows arrive; health once a second regardless
        const fast = setInterval(push, 250);
        const slow = setInterval(() => {
          last = -1;
          push();
        }, 1000);
        req.on('close', () => {
          clearInterval(fast);
          clearInterval(slow);
          streams.delete(res);
        });
        return;
      }
      default:
        throw new HttpError(404, `no API ${path}`);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const hostHeader = String(req.headers.host ?? '');
    const hostName = hostHeader.replace(/:\d+$/, '');
    if (loopback && (!LOOPBACK.has(hostName) || hostHeader !== `${hostName}:${port}`)) {
      return send(res, 421, 'text/plain', 'this viewer answers only to its loopback address\n');
    }
    const u = new URL(req.url ?? '/', `http://${hostHeader || 'localhost'}`);
    const parts = u.pathname.split('/');
    const given = Buffer.from(parts[1] ?? '');
    if (given.length !== tokenBuf.length || !timingSafeEqual(given, tokenBuf)) return send(res, 404, 'text/plain', 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const origin = req.headers.origin;
      if (origin === undefined || origin !== `http://${hostHeader}`) return send(res, 403, 'text/plain', 'cross-origin request refused\n');
    }
    const rest = parts.slice(2).join('/');
    if (parts.length === 2) return send(res, 308, 'text/plain', '', { location: `/${token}/${u.search}` });
    if (rest === '' || rest === 'index.html') {
      const page = assets.get('index.html')!;
      return send(res, 200, page.type, page.body, { 'content-security-policy': CSP });
    }
    if (rest.startsWith('assets/')) {
      const a = assets.get(rest.slice('assets/'.length));
      if (!a) return send(res, 404, 'text/plain', 'not found\n');
      return send(res, 200, a.type, a.body);
    }
    if (rest.startsWith('api/')) return api(req, res, rest.slice(4), u);
    return send(res, 404, 'text/plain', 'not found\n');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof AbortedError) return;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof HttpError) return json(res, e.status, { error: { code: 'RETAP_USAGE', message: e.message } });
      if (isRetapError(e)) return json(res, e.code === ErrorCodes.USAGE ? 400 : 500, { error: e.toJSON() });
      if (e instanceof SyntaxError) return json(res, 400, { error: { code: 'RETAP_USAGE', message: `bad JSON: ${e.message}` } });
      log.warn(`view: ${(e as Error).stack ?? String(e)}`);
      return json(res, 500, { error: { code: 'RETAP_INTERNAL', message: (e as Error).message } });
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new RetapError(ErrorCodes.USAGE, `cannot listen on ${opts.host}:${opts.port}: ${e.message}`, {
          hint: e.code === 'EADDRINUSE' ? 'Choose another --port, or 0 for any free one.' : 'Check --host and --port.',
          cause: e,
        }),
      ),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const shown = opts.host.includes(':') ? `[${opts.host}]` : opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host;
  return {
    url: `http://${shown}:${port}/${token}/`,
    token,
    server,
    async close() {
      for (const s of streams) s.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
