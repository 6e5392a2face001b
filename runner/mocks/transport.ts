/**
 * One listening endpoint that speaks HTTP/1.1 and HTTP/2 on the same port: plaintext connections
 * are told apart by the HTTP/2 preface (h2c with prior knowledge), TLS ones by ALPN. Every request
 * is read whole and handed to `handle` as a LiveCall; its Answer is written back with trailers.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { HeaderList } from '../../core/exchange.js';
import { isGrpc } from '../../core/http.js';
import type { Answer } from './answer.js';
import type { MockProtocol } from './types.js';

export interface LiveCall {
  protocol: MockProtocol;
  method: string;
  target: string;
  headers: HeaderList;
  body: Uint8Array;
  /**
   * HTTP/1 only: the connection it came on (the build's end is `remote`), and the monotonic time
   * (process.hrtime, ns) this mock last answered on it (0 before the first answer): the call was
   * written after that, which is how capture's link for it is found (runner/links.ts).
   */
  conn?: MockConnection;
}

export interface MockConnection {
  local: { addr: string; port: number };
  remote: { addr: string; port: number };
  answeredNs: number;
}

const answered = new WeakMap<object, number>();

export type Handler = (call: LiveCall) => Promise<Answer>;

export interface Listener {
  addr: string;
  port: number;
  close(): Promise<void>;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');
const MAX_BODY = 64 * 1024 * 1024;

function pairs(raw: string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

function onHttp1(handle: Handler) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy(new Error('request body over 64 MiB'));
      else chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const headers = pairs(req.rawHeaders);
      const sock = req.socket;
      const call: LiveCall = {
        protocol: isGrpc(headers) ? 'grpc' : 'http1',
        method: req.method ?? 'GET',
        target: req.url ?? '/',
        headers,
        body: Buffer.concat(chunks),
        conn: {
          local: { addr: sock.localAddress ?? '', port: sock.localPort ?? 0 },
          remote: { addr: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 },
          answeredNs: answered.get(sock) ?? 0,
        },
      };
      handle(call).then(
        (a) => {
          // before a byte of the answer leaves: the build's next call on this connection comes after
          answered.set(sock, Number(process.hrtime.bigint()));
          const flat: string[] = [];
          for (const [n, v] of a.headers) flat.push(n, v);
          res.writeHead(a.status, a.reason ?? http.STATUS_CODES[a.status] ?? 'Unknown', flat);
          if (a.trailers) res.addTrailers(a.trailers);
          res.end(a.body);
        },
        (e: Error) => {
          answered.set(sock, Number(process.hrtime.bigint()));
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`retap mock: internal error: ${e.message}\n`);
        },
      );
    });
  };
}

function toH2Headers(list: HeaderList): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [n, v] of list) {
    const k = n.toLowerCase();
    if (k.startsWith(':') || k === 'host') continue;
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else out[k] = [String(prev), v];
  }
  return out;
}

function onHttp2Stream(handle: Handler) {
  return (stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders) => {
    const headers: HeaderList = [];
    for (const [k, v] of Object.entries(h)) {
      if (k.startsWith(':') || v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) headers.push([k, one]);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      else chunks.push(c);
    });
    stream.on('error', () => {});
    stream.on('end', () => {
      const call: LiveCall = {
        protocol: isGrpc(headers) ? 'grpc' : 'http2',
        method: String(h[':method'] ?? 'GET'),
        target: String(h[':path'] ?? '/'),
        headers,
        body: Buffer.concat(chunks),
      };
      handle(call).then(
        (a) => {
          if (stream.destroyed || stream.closed) return;
          const trailers = a.trailers?.length ? toH2Headers(a.trailers) : undefined;
          const empty = a.body.length === 0;
          stream.respond(
            { ...toH2Headers(a.headers), ':status': a.status },
            { endStream: empty && !trailers, waitForTrailers: trailers !== undefined },
          );
          if (trailers) stream.once('wantTrailers', () => stream.sendTrailers(trailers));
          if (!empty || trailers) stream.end(a.body);
        },
        (e: Error) => {
          if (stream.destroyed) return;
          stream.respond({ ':status': 500, 'content-type': 'text/plain' });
          stream.end(`retap mock: internal error: ${e.message}\n`);
        },
      );
    });
  };
}

export interface ListenOptions {
  addr: string;
  port: number;
  /** Certificate and key for TLS endpoints. */
  tls?: { cert: string; key: string };
}

export async function listenEndpoint(opts: ListenOptions, handle: Handler): Promise<Listener> {
  const h1 = http.createServer({ keepAliveTimeout: 30_000 }, onHttp1(handle));
  const h2 = http2.createServer();
  h2.on('stream', onHttp2Stream(handle));
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
  });
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };

  let front: net.Server;
  if (opts.tls) {
    front = tls.createServer(
      { cert: opts.tls.cert, key: opts.tls.key, ALPNProtocols: ['h2', 'http/1.1'] },
      (socket) => {
        track(socket);
        if (socket.alpnProtocol === 'h2') h2.emit('connection', socket);
        else h1.emit('connection', socket);
      },
    );
    front.on('connection', (raw: net.Socket) => track(raw));
    front.on('tlsClientError', (_e, socket) => socket.destroy());
  } else {
    front = net.createServer((socket) => {
      track(socket);
      socket.once('data', (first: Buffer) => {
        socket.pause();
        socket.unshift(first);
        const n = Math.min(first.length, PREFACE.length);
        const h2c = n > 0 && first.subarray(0, n).equals(PREFACE.subarray(0, n));
        (h2c ? h2 : h1).emit('connection', socket);
        process.nextTick(() => socket.resume());
      });
    });
  }

  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(opts.port, opts.addr, () => {
      front.off('error', reject);
      resolve();
    });
  });
  const bound = front.address() as net.AddressInfo;
  return {
    addr: bound.address,
    port: bound.port,
    close: async () => {
      const closed = new Promise<void>((r) => front.close(() => r()));
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      h1.closeAllConnections();
      await closed;
    },
  };
}
