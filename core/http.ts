/**
 * The HTTP vocabulary every stage shares, written once: which host an exchange went to, which
 * headers belong to a connection rather than a message, what a path looks like with its
 * identifiers taken out, how long a duration is, and whether a message is gRPC.
 */
import { isIP } from 'node:net';
import { type Exchange, type HeaderList, headerValue, targetPath } from './exchange.js';

/** The headers say gRPC: `content-type: application/grpc` (`+proto`, `+json`, …), any case. */
export function isGrpc(headers: HeaderList): boolean {
  return /^application\/grpc/i.test(headerValue(headers, 'content-type') ?? '');
}

// ── hosts ──────────────────────────────────────────────────────────────────────────────────────

/**
 * The authority a request named: its Host header (HTTP/1.1), else `:authority` (HTTP/2: a header
 * of a HAR import, or the pseudo-header the decoder keeps in `extras.pseudo`). As written, port
 * included.
 */
export function requestAuthority(headers: HeaderList, extras?: Record<string, unknown>): string | undefined {
  return (
    headerValue(headers, 'host') ??
    headerValue(headers, ':authority') ??
    (extras?.pseudo as Record<string, string> | undefined)?.[':authority']
  );
}

/**
 * Where an exchange went, as recorded: the host name capture saw (`peer.host`), else the
 * request's authority, else the peer's address. As written (case and any port kept).
 */
export function exchangeAuthority(ex: Pick<Exchange, 'peer' | 'request' | 'extras'>): string {
  return ex.peer.host ?? requestAuthority(ex.request.headers, ex.extras) ?? ex.peer.addr;
}

/**
 * `shop.example:8080` → `shop.example`, `[::1]:443` → `::1`, `::1` → `::1`: the host of an
 * authority, without port or IPv6 brackets (a bare IPv6 address is left whole); case kept.
 */
export function hostName(authority: string): string {
  let host = authority.trim();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host.slice(1) : host.slice(1, end);
  }
  const colon = host.indexOf(':');
  if (colon === -1) return host; // the common case, without isIP's regular expressions (hot in capture)
  // one colon: `name:port`; more: a bare IPv6 address stays whole
  if (host.indexOf(':', colon + 1) === -1 || isIP(host) !== 6) host = host.replace(/:\d*$/, '');
  return host;
}

// ── headers ────────────────────────────────────────────────────────────────────────────────────

/**
 * Connection-specific fields (RFC 9110 §7.6.1): they describe one connection, and HTTP/2
 * forbids them in a message (RFC 9113 §8.2.2).
 */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Hop-by-hop fields: the connection-specific ones, `te` and an h2c upgrade's `http2-settings`.
 * What a sender that makes its own connection (a pooled replay, a mock, a pass-through proxy)
 * never copies from a recorded message. Names are lower case; a field listed in a message's own
 * `Connection` header is hop-by-hop too (the caller reads that one).
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([...CONNECTION_SPECIFIC, 'te', 'http2-settings']);

// ── paths ──────────────────────────────────────────────────────────────────────────────────────

/**
 * A path segment that names one thing rather than a kind of thing: a number, a UUID, 16+ hex
 * digits, or 24+ characters of an opaque id (base64url, a redaction placeholder
 * `REDACTED-<16 hex>`).
 */
const ID_SEGMENT =
  /^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|[0-9A-Za-z_-]{24,})$/i;

export function isIdSegment(segment: string): boolean {
  return segment !== '' && ID_SEGMENT.test(segment);
}

/**
 * `/orders/7/items/3f2a…?full=1` → `/orders/{id}/items/{id}`: the path without its query, each
 * identifier segment replaced by `{id}`. A target that is not a path (`*`, an authority) is
 * returned without its query. One segment at a time, by its own look: the snapshot's route
 * table (snapshots/routes.ts) also learns parameters from many targets and known tokens.
 */
export function pathTemplate(target: string): string {
  const path = targetPath(target);
  if (!path.startsWith('/')) return path;
  return path
    .split('/')
    .map((s) => (isIdSegment(s) ? '{id}' : s))
    .join('/');
}

// ── durations ──────────────────────────────────────────────────────────────────────────────────

const DURATION = /^([+-])?(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export interface DurationOptions {
  /** Unit of a bare number (`30` → 30 s); without it a unit is required. */
  bare?: keyof typeof UNIT_MS;
  /** Accept a sign (`-5m`, `+1h`): shifts rather than lengths. */
  signed?: boolean;
}

/**
 * `500ms`, `30s`, `1.5m`, `2h`, `1d` → milliseconds (not rounded); undefined when the text is
 * not a duration.
 */
export function parseDurationMs(text: string, opts: DurationOptions = {}): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  if (m[1] !== undefined && !opts.signed) return undefined;
  const unit = (m[3] ?? opts.bare) as keyof typeof UNIT_MS | undefined;
  if (unit === undefined) return undefined;
  return (m[1] === '-' ? -1 : 1) * Number(m[2]) * UNIT_MS[unit];
}
