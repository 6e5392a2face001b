/**
 * What a mock sends back: the recorded status, headers (hop-by-hop ones dropped, content-length
 * fixed to the body served), the raw recorded body bytes and trailers. Also the fail-closed
 * answer for a call with no recording.
 */
import type { HeaderList, Response } from '../../core/exchange.js';
import { HOP_BY_HOP, isGrpc } from '../../core/http.js';

export interface Answer {
  status: number;
  reason?: string;
  headers: HeaderList;
  body: Uint8Array;
  trailers?: HeaderList;
  warnings: string[];
}

/**
 * Not copied from a recorded answer: the hop-by-hop fields (they describe the recorded
 * connection) and Content-Length (fixed to the body served). `trailer` stays: the mock serves
 * the recorded trailers it announces.
 */
const NOT_SERVED = new Set([...HOP_BY_HOP, 'content-length']);

export const MISS_STATUS = 599;
export const MISS_REASON = 'Retap Mock Miss';

/** Statuses that never carry a body (and so no content-length of ours). */
function bodyless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

export function answerFrom(res: Response, method: string): Answer {
  const warnings: string[] = [];
  const named = new Set<string>();
  for (const [n, v] of res.headers)
    if (n.toLowerCase() === 'connection') for (const t of v.split(',')) named.add(t.trim().toLowerCase());
  const headers: HeaderList = [];
  let recordedLength: string | undefined;
  for (const [n, v] of res.headers) {
    const lower = n.toLowerCase();
    if (lower === 'content-length') recordedLength = v;
    if (lower.startsWith(':') || NOT_SERVED.has(lower) || named.has(lower)) continue;
    headers.push([n, v]);
  }
  const body = res.body.data;
  if (res.body.truncated || res.body.size > body.length) {
    warnings.push(`recorded response body is truncated: serving ${body.length} of ${res.body.size} bytes`);
    headers.push(['x-retap-warning', 'recorded body truncated']);
  }
  const head = method.toUpperCase() === 'HEAD';
  const grpc = isGrpc(headers);
  if (grpc) {
    // gRPC frames its own messages; no content-length.
  } else if (head && recordedLength !== undefined) headers.push(['content-length', recordedLength]);
  else if (!head && !bodyless(res.status) && !res.trailers?.length)
    headers.push(['content-length', String(body.length)]);
  return {
    status: res.status,
    ...(res.reason ? { reason: res.reason } : {}),
    headers,
    body: head || bodyless(res.status) ? new Uint8Array(0) : body,
    ...(res.trailers?.length ? { trailers: res.trailers } : {}),
    warnings,
  };
}

export interface MissInfo {
  method: string;
  host: string;
  target: string;
  reason: string;
  closest?: string;
}

/** The fail-closed answer: status 599 and a JSON body that says what was asked and what is nearest. */
export function missAnswer(miss: MissInfo): Answer {
  const body = Buffer.from(
    `${JSON.stringify({ retap: 'mock-miss', method: miss.method, host: miss.host, target: miss.target, reason: miss.reason, closest: miss.closest ?? null })}\n`,
  );
  return {
    status: MISS_STATUS,
    reason: MISS_REASON,
    headers: [
      ['content-type', 'application/json'],
      ['x-retap-mock', 'miss'],
      ['content-length', String(body.length)],
    ],
    body,
    warnings: [],
  };
}

/** gRPC's fail-closed answer: trailers-only, grpc-status 14 (UNAVAILABLE) with the reason. */
export function grpcMissAnswer(miss: MissInfo): Answer {
  const text = `retap mock miss: no recorded answer for ${miss.target} on ${miss.host} (${miss.reason})${miss.closest ? `; closest: ${miss.closest}` : ''}`;
  return {
    status: 200,
    headers: [
      ['content-type', 'application/grpc'],
      ['x-retap-mock', 'miss'],
      ['grpc-status', '14'],
      ['grpc-message', grpcPercentEncode(text)],
    ],
    body: new Uint8Array(0),
    warnings: [],
  };
}

/** grpc-message encoding (gRPC over HTTP/2 spec): bytes outside 0x20–0x7E, and '%', as %XX. */
export function grpcPercentEncode(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out +=
      b >= 0x20 && b <= 0x7e && b !== 0x25
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
