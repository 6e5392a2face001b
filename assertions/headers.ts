/**
 * Response header comparison. Names are compared case-insensitively, repeated headers joined in
 * order. Headers that change on every answer are ignored by default (listed as noise).
 */
import type { HeaderList } from '../core/exchange.js';
import type { Difference } from './types.js';

/** Ignored unless `headers.compare` names them. */
export const VOLATILE_HEADERS: readonly string[] = [
  'date',
  'age',
  'expires',
  'last-modified',
  'etag',
  'server',
  'set-cookie',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'x-request-id',
  'x-correlation-id',
  'x-trace-id',
  'traceparent',
  'tracestate',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-amzn-trace-id',
  'x-response-time',
  'x-runtime',
  'server-timing',
  'x-envoy-upstream-service-time',
  'report-to',
  'nel',
];

/** Headers whose change alters how a client reads the answer. */
const BREAKING_HEADERS = new Set(['content-type', 'content-encoding', 'location', 'www-authenticate']);

function collect(headers: HeaderList): Map<string, string> {
  const out = new Map<string, string>();
  for (const [n, v] of headers) {
    const k = n.toLowerCase();
    if (k.startsWith(':')) continue; // HTTP/2 pseudo-headers
    const prev = out.get(k);
    out.set(k, prev === undefined ? v : `${prev}, ${v}`);
  }
  return out;
}

function normalise(name: string, value: string): string {
  return name === 'content-type' ? value.toLowerCase().replace(/\s+/g, '') : value.trim();
}

export function compareHeaders(recorded: HeaderList, candidate: HeaderList): Difference[] {
  const a = collect(recorded);
  const b = collect(candidate);
  const out: Difference[] = [];
  const rating = (name: string): 'breaking' | 'warning' =>
    BREAKING_HEADERS.has(name) ? 'breaking' : 'warning';
  for (const [name, va] of a) {
    const vb = b.get(name);
    const path = `header:${name}`;
    if (vb === undefined) {
      out.push({
        target: 'header',
        path,
        kind: 'missing-header',
        rating: rating(name),
        recorded: va,
        message: `header ${name} is gone (was '${va}')`,
      });
    } else if (normalise(name, va) !== normalise(name, vb)) {
      out.push({
        target: 'header',
        path,
        kind: 'changed-header',
        rating: rating(name),
        recorded: va,
        candidate: vb,
        message: `header ${name}: '${va}' → '${vb}'`,
      });
    }
  }
  for (const [name, vb] of b) {
    if (!a.has(name)) {
      out.push({
        target: 'header',
        path: `header:${name}`,
        kind: 'new-header',
        rating: 'warning',
        candidate: vb,
        message: `new header ${name}: '${vb}'`,
      });
    }
  }
  return out;
}
