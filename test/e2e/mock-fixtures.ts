/** Recorded outbound exchanges for the mock tests, built by hand. */
import type { Exchange, HeaderList } from '../../core/exchange.js';

let seq = 0;

export interface FixtureSpec {
  host?: string;
  port?: number;
  tls?: boolean;
  protocol?: 'http1' | 'http2' | 'grpc';
  method?: string;
  target: string;
  reqHeaders?: HeaderList;
  reqBody?: string | Uint8Array;
  reqTruncated?: boolean;
  status?: number;
  resHeaders?: HeaderList;
  resBody?: string | Uint8Array;
  resTrailers?: HeaderList;
  resTruncatedSize?: number;
}

const bytes = (b: string | Uint8Array | undefined) =>
  b === undefined ? new Uint8Array(0) : typeof b === 'string' ? new Uint8Array(Buffer.from(b)) : b;

export function outbound(spec: FixtureSpec): Exchange {
  const n = seq++;
  const req = bytes(spec.reqBody);
  const res = bytes(spec.resBody);
  const version = spec.protocol && spec.protocol !== 'http1' ? 'HTTP/2' : 'HTTP/1.1';
  return {
    id: `c${n}#0`,
    protocol: spec.protocol ?? 'http1',
    direction: 'outbound',
    tls: spec.tls ?? false,
    service: { addr: '127.0.0.1', port: 40000 + n, comm: 'orders' },
    peer: { addr: '10.1.2.3', port: spec.port ?? 80, host: spec.host ?? 'inventory.internal' },
    connection: { id: `c${n}`, order: 0 },
    request: {
      method: spec.method ?? 'GET',
      target: spec.target,
      version,
      headers: spec.reqHeaders ?? (req.length ? [['content-type', 'application/json']] : []),
      body: {
        data: req,
        size: spec.reqTruncated ? req.length + 100 : req.length,
        truncated: spec.reqTruncated ?? false,
      },
    },
    response: {
      status: spec.status ?? 200,
      ...(version === 'HTTP/1.1' ? { reason: 'OK' } : {}),
      version,
      headers: spec.resHeaders ?? [
        ['Content-Type', 'application/json'],
        ['Content-Length', String(res.length)],
        ['Connection', 'keep-alive'],
      ],
      body: {
        data: res,
        size: spec.resTruncatedSize ?? res.length,
        truncated: spec.resTruncatedSize !== undefined,
      },
      ...(spec.resTrailers ? { trailers: spec.resTrailers } : {}),
    },
    timing: {
      startUs: 1_700_000_000_000_000 + n * 1000,
      requestEndNs: 1000,
      responseStartNs: 2000,
      responseEndNs: 3000,
    },
  };
}
