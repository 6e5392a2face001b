/**
 * Admission into a snapshot. Every exchange a writer takes (capture, demo, filter, merge, HAR
 * import, accepting a replay's answers) goes through `admitStored`: redacted, stored, checked once
 * against the schema. One that fails is kept as a quarantined exchange — protocol `unknown`,
 * `quarantine: { protocol, reason }`, its request and response reduced to what is valid (sizes
 * always, bytes when they are whole) — and the snapshot is written. Bad input costs nothing but
 * itself. The replay's own capture uses `admit` (the same rules, without storing).
 *
 * Besides the schema, new exchanges of the HTTP family must have a status in 100–599 and a
 * method that is an HTTP token (a replay sends it). Readers stay lenient (the schema alone), so
 * snapshots written before these rules still open.
 */
import { ErrorCodes, RetapError } from '../core/errors.js';
import {
  type Body,
  type Exchange,
  type HeaderList,
  isQuarantined,
  type Request,
  type Response,
  UNKNOWN_METHOD,
} from '../core/exchange.js';
import { toStored } from './format.js';
import { issuesFrom, validator } from './schema.js';

const HTTP_FAMILY = new Set(['http1', 'http2', 'grpc']);
const EMPTY = new Uint8Array(0);
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export interface Admitted {
  /** The exchange as it goes into the snapshot (redacted; quarantined when it had to be). */
  exchange: Exchange;
  /** Its stored form (format.ts: toStored), valid against exchange.schema.json. */
  stored: Record<string, unknown>;
}

/**
 * Redacts, stores and checks one exchange, once; quarantines it when that fails. `redact` may
 * throw on odd input: that quarantines too. Throws only if the quarantined form itself is
 * invalid, which is a bug here.
 */
export function admitStored(ex: Exchange, redact: (ex: Exchange) => Exchange = (e) => e): Admitted {
  let reason: string;
  try {
    reason = bodiesProblem(ex) ?? '';
    if (!reason) {
      const exchange = redact(ex);
      const stored = toStored(exchange);
      reason = schemaProblem(stored) ?? rulesProblem(exchange) ?? '';
      if (!reason) return { exchange, stored };
    }
  } catch (e) {
    reason = `cannot be stored: ${(e as Error).message}`;
  }
  const q = quarantined(ex, reason);
  for (const candidate of [() => redact(q), () => stripped(q)]) {
    try {
      const exchange = candidate();
      const stored = toStored(exchange);
      if (!schemaProblem(stored)) return { exchange, stored };
    } catch {
      // next, barer form
    }
  }
  throw new RetapError(ErrorCodes.INTERNAL, `cannot quarantine exchange ${String(ex?.id)} (${reason})`);
}

/** The exchange itself when it is valid, else its quarantined form. Never throws on bad input. */
export function admit(ex: Exchange): Exchange {
  const reason = problemOf(ex);
  if (reason === undefined) return ex;
  return quarantined(ex, reason);
}

/** What keeps `ex` out of a snapshot, or undefined when nothing does. */
export function problemOf(ex: Exchange): string | undefined {
  try {
    return bodiesProblem(ex) ?? schemaProblem(toStored(withoutBodyBytes(ex))) ?? rulesProblem(ex);
  } catch (e) {
    return `cannot be stored: ${(e as Error).message}`;
  }
}

function schemaProblem(stored: Record<string, unknown>): string | undefined {
  const check = validator('exchange');
  if (check(stored)) {
    // JSON must be able to hold what the schema leaves open
    if (stored.extras !== undefined) JSON.stringify(stored.extras);
    return undefined;
  }
  const issue = issuesFrom(check.errors, 'exchange')[0];
  return issue ? `${issue.path} ${issue.message}` : 'does not match the exchange schema';
}

/** Rules for new exchanges beyond the schema (checked on the model; cheap). */
function rulesProblem(ex: Exchange): string | undefined {
  if (isQuarantined(ex)) {
    return ex.protocol === 'unknown' ? undefined : `$.protocol is ${ex.protocol} on a quarantined exchange`;
  }
  if (!HTTP_FAMILY.has(ex.protocol)) return undefined;
  if (!TCHAR.test(ex.request.method))
    return `$.request.method ${JSON.stringify(ex.request.method.slice(0, 40))} is not an HTTP method`;
  const status = ex.response?.status;
  if (status !== undefined && (status < 100 || status > 599)) return `$.response.status ${status} is outside 100–599`;
  return undefined;
}

function bodiesProblem(ex: Exchange): string | undefined {
  return (
    bodyProblem(ex.request?.body, '$.request.body') ??
    (ex.response === undefined ? undefined : bodyProblem(ex.response?.body, '$.response.body'))
  );
}

function bodyProblem(b: unknown, path: string): string | undefined {
  if (typeof b !== 'object' || b === null) return `${path} is missing`;
  const body = b as Partial<Body>;
  if (!(body.data instanceof Uint8Array)) return `${path}.data is not bytes`;
  if (body.decoded !== undefined && !(body.decoded instanceof Uint8Array)) return `${path}.decoded is not bytes`;
  if (!Number.isSafeInteger(body.size) || (body.size as number) < 0)
    return `${path}.size must be an integer >= 0 (found ${String(body.size)})`;
  if (typeof body.truncated !== 'boolean') return `${path}.truncated must be boolean`;
  return undefined;
}

/** The exchange with empty body bytes: the schema check never pays for encoding bodies. */
function withoutBodyBytes(ex: Exchange): Exchange {
  const light = (b: Body): Body => ({ data: EMPTY, size: b.size, truncated: b.truncated });
  const out: Exchange = { ...ex, request: { ...ex.request, body: light(ex.request.body) } };
  if (ex.response !== undefined) out.response = { ...ex.response, body: light(ex.response.body) };
  return out;
}

// ---- the quarantined form -----------------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback);
const count = (v: unknown, max = Number.MAX_SAFE_INTEGER): number =>
  Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max ? (v as number) : 0;

function headers(v: unknown): HeaderList {
  if (!Array.isArray(v)) return [];
  return v.filter(
    (h): h is [string, string] =>
      Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string',
  );
}

function body(v: unknown): Body {
  const b = isObject(v) ? v : {};
  const whole = b.data instanceof Uint8Array;
  const data = whole ? (b.data as Uint8Array) : EMPTY;
  const out: Body = {
    data,
    size: Math.max(count(b.size), data.length),
    truncated: b.truncated === true || !whole,
  };
  if (b.decoded instanceof Uint8Array) out.decoded = b.decoded;
  return out;
}

function request(v: unknown): Request {
  const r = isObject(v) ? v : {};
  const out: Request = {
    method: str(r.method) || UNKNOWN_METHOD,
    target: str(r.target),
    version: str(r.version),
    headers: headers(r.headers),
    body: body(r.body),
  };
  if (Array.isArray(r.trailers)) out.trailers = headers(r.trailers);
  return out;
}

function response(v: unknown): Response {
  const r = isObject(v) ? v : {};
  const out: Response = {
    // 0: no valid status was seen (allowed on quarantined exchanges only)
    status: count(r.status, 999),
    version: str(r.version),
    headers: headers(r.headers),
    body: body(r.body),
  };
  if (typeof r.reason === 'string') out.reason = r.reason;
  if (Array.isArray(r.trailers)) out.trailers = headers(r.trailers);
  if (Array.isArray(r.interim)) {
    const interim = (r.interim as unknown[]).filter(isObject).flatMap((i) => {
      const status = count(i.status, 199);
      return status >= 100 ? [{ status, headers: headers(i.headers) }] : [];
    });
    if (interim.length > 0) out.interim = interim;
  }
  return out;
}

function endpoint(v: unknown): { addr: string; port: number } & Record<string, unknown> {
  const e = isObject(v) ? v : {};
  const out: { addr: string; port: number } & Record<string, unknown> = {
    addr: str(e.addr),
    port: count(e.port, 65535),
  };
  for (const k of ['comm', 'name', 'host']) if (typeof e[k] === 'string') out[k] = e[k];
  if (Number.isSafeInteger(e.pid) && (e.pid as number) >= 0) out.pid = e.pid;
  return out;
}

function jsonable(v: unknown): boolean {
  try {
    return isObject(v) && !Array.isArray(v) && JSON.stringify(v) !== undefined;
  } catch {
    return false;
  }
}

function quarantined(ex: Exchange, reason: string): Exchange {
  const e = ex as unknown as Record<string, unknown>;
  const conn = isObject(e.connection) ? e.connection : {};
  const t = isObject(e.timing) ? e.timing : {};
  const before = isObject(e.quarantine) ? str(e.quarantine.protocol) : str(e.protocol);
  const q: Exchange = {
    id: str(e.id) || `${str(conn.id, 'unknown')}#${count(conn.order)}`,
    protocol: 'unknown',
    direction: e.direction === 'outbound' ? 'outbound' : 'inbound',
    tls: e.tls === true,
    service: endpoint(e.service),
    peer: endpoint(e.peer),
    connection: { id: str(conn.id), order: count(conn.order) },
    request: request(e.request),
    timing: { startUs: count(t.startUs), requestEndNs: count(t.requestEndNs) },
    quarantine: { protocol: before, reason },
  };
  if (t.responseStartNs !== undefined) q.timing.responseStartNs = count(t.responseStartNs);
  if (t.responseEndNs !== undefined) q.timing.responseEndNs = count(t.responseEndNs);
  if (e.response !== undefined) q.response = response(e.response);
  if (Array.isArray(e.notes)) {
    const notes = (e.notes as unknown[]).filter((n): n is string => typeof n === 'string');
    if (notes.length > 0) q.notes = notes;
  }
  if (jsonable(e.extras)) q.extras = e.extras as Record<string, unknown>;
  if (problemOf(q) === undefined) return q;
  return stripped(q);
}

/** Only a bug in the repairs above needs this: identity and sizes, nothing else. */
function stripped(q: Exchange): Exchange {
  const out: Exchange = {
    ...q,
    request: {
      method: q.request.method,
      target: q.request.target,
      version: q.request.version,
      headers: [],
      body: { data: EMPTY, size: q.request.body.size, truncated: true },
    },
  };
  delete out.extras;
  if (q.response) {
    out.response = {
      status: q.response.status,
      version: '',
      headers: [],
      body: { data: EMPTY, size: q.response.body.size, truncated: true },
    };
  }
  return out;
}
