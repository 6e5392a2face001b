/** Builds exchanges for unit tests of discovery and the engine. */
import type { Exchange, HeaderList } from '../../core/exchange.js';

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

export interface Spec {
  id?: string;
  conn?: string;
  direction?: 'inbound' | 'outbound';
  method: string;
  target: string;
  headers?: HeaderList;
  body?: unknown;
  status?: number;
  resHeaders?: HeaderList;
  resBody?: unknown;
  peerHost?: string;
}

let clock = 1_700_000_000_000_000;

export function exchange(s: Spec, order = 0): Exchange {
  const reqBody = s.body === undefined ? '' : typeof s.body === 'string' ? s.body : JSON.stringify(s.body);
  const resBody = s.resBody === undefined ? '' : typeof s.resBody === 'string' ? s.resBody : JSON.stringify(s.resBody);
  clock += 1000;
  const conn = s.conn ?? 'c1';
  const ex: Exchange = {
    id: s.id ?? `${conn}#${order}`,
    protocol: 'http1',
    direction: s.direction ?? 'inbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 8080, pid: 10 },
    peer: { addr: '127.0.0.1', port: 40000, ...(s.peerHost ? { host: s.peerHost } : {}) },
    connection: { id: conn, order },
    request: {
      method: s.method,
      target: s.target,
      version: 'HTTP/1.1',
      headers: s.headers ?? [],
      body: { data: bytes(reqBody), size: reqBody.length, truncated: false },
    },
    timing: { startUs: clock, requestEndNs: 1000 },
  };
  if (s.status !== undefined) {
    ex.response = {
      status: s.status,
      version: 'HTTP/1.1',
      headers: s.resHeaders ?? (resBody ? [['content-type', 'application/json']] : []),
      body: { data: bytes(resBody), size: resBody.length, truncated: false },
    };
  }
  return ex;
}

/** Exchanges numbered in order, each on its own id `e<N>`. */
export function traffic(specs: Spec[]): Exchange[] {
  return specs.map((s, i) => exchange({ id: `e${i}`, conn: s.conn ?? `c${i % 2}`, ...s }, i));
}
