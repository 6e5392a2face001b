/**
 * `--mock-miss passthrough`: forward an unmatched call to the real host it was recorded against.
 * Only useful outside the replay namespace; inside it there is no route out, so the forward fails
 * by design and the call still counts as a miss.
 */
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { HeaderList } from '../../core/exchange.js';
import { HOP_BY_HOP } from '../../core/http.js';
import type { Answer } from './answer.js';
import type { LiveCall } from './transport.js';

const TIMEOUT_MS = 15_000;
/** Not forwarded upstream: the hop-by-hop fields, and Host (the upstream's own is sent). */
const SKIP = new Set(['host', ...HOP_BY_HOP]);

export interface Upstream {
  host: string;
  port: number;
  tls: boolean;
}

function pairs(raw: string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

function viaHttp1(up: Upstream, call: LiveCall): Promise<Answer> {
  const headers: Record<string, string | string[]> = { host: `${up.host}:${up.port}` };
  for (const [n, v] of call.headers) {
    const k = n.toLowerCase();
    if (SKIP.has(k)) continue;
    const prev = headers[k];
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const request = up.tls ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: up.host,
        port: up.port,
        method: call.method,
        path: call.target,
        headers,
        timeout: TIMEOUT_MS,
        servername: up.host,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const trailers = pairs(res.rawTrailers);
          resolve({
            status: res.statusCode ?? 502,
            ...(res.statusMessage ? { reason: res.statusMessage } : {}),
            headers: pairs(res.rawHeaders).filter(
              ([n]) => !SKIP.has(n.toLowerCase()) && n.toLowerCase() !== 'content-length',
            ),
            body: Buffer.concat(chunks),
            ...(trailers.length ? { trailers } : {}),
            warnings: [],
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(call.body);
  });
}

function viaHttp2(up: Upstream, call: LiveCall): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`${up.tls ? 'https' : 'http'}://${up.host}:${up.port}`);
    session.on('error', reject);
    const out: http2.OutgoingHttpHeaders = { ':method': call.method, ':path': call.target };
    for (const [n, v] of call.headers) if (!SKIP.has(n.toLowerCase())) out[n.toLowerCase()] = v;
    const stream = session.request(out);
    stream.setTimeout(TIMEOUT_MS, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    let status = 502;
    const headers: HeaderList = [];
    const trailers: HeaderList = [];
    const collect = (into: HeaderList, h: http2.IncomingHttpHeaders) => {
      for (const [k, v] of Object.entries(h)) {
        if (k.startsWith(':') || v === undefined) continue;
        for (const one of Array.isArray(v) ? v : [v]) into.push([k, one]);
      }
    };
    stream.on('response', (h) => {
      status = Number(h[':status'] ?? 502);
      collect(headers, h);
    });
    stream.on('trailers', (h) => collect(trailers, h));
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (e) => {
      session.close();
      reject(e);
    });
    stream.on('end', () => {
      session.close();
      resolve({
        status,
        headers,
        body: Buffer.concat(chunks),
        ...(trailers.length ? { trailers } : {}),
        warnings: [],
      });
    });
    stream.end(call.body);
  });
}

export function passThrough(up: Upstream, call: LiveCall): Promise<Answer> {
  return call.protocol === 'http1' ? viaHttp1(up, call) : viaHttp2(up, call);
}
