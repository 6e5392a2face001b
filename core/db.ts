/**
 * The database call model: one query or command a client sent to PostgreSQL, MySQL/MariaDB or
 * Redis, with its parameters and the full answer. It rides in `Exchange.extras.db`; the exchange's
 * request/response carry a projection so listings, filters and routes work unchanged
 * (docs/protocols.md "Databases"):
 *
 *   request.method   SQL verb (`SELECT`, `INSERT`, `BEGIN`…), Redis command (`GET`), or `STARTUP`
 *   request.target   the SQL text / the Redis command line (arguments shortened)
 *   request.version  `postgres/3.0`, `mysql/10`, `RESP2`, `RESP3`
 *   response.status  200 when the server answered without an error, 500 when it answered an error
 *   response.reason  command tag / OK info / error code and message
 *
 * Values (parameters, cells, Redis arguments) are JSON: a string when the bytes are printable
 * UTF-8, `{ b64 }` otherwise, `null` for SQL NULL. Redis replies keep their RESP type (DbResp).
 */

export type DbSystem = 'postgres' | 'mysql' | 'redis';

/** `session`: connection start and authentication; `setup`: session settings (SET, SELECT db, HELLO); `query`: the rest; `push`: an unsolicited server message. */
export type DbKind = 'session' | 'setup' | 'query' | 'push';

/** A cell, parameter or argument: text, bytes (`b64`) or SQL NULL. MySQL binary rows may carry numbers. */
export type DbValue = string | number | null | { b64: string };

/** A RESP value with its type kept (so a mock answers byte for byte). */
export type DbResp =
  | string // bulk string, printable UTF-8
  | number // integer within 2^53
  | null // RESP2 null bulk string, RESP3 null
  | { b64: string } // bulk string, binary
  | { simple: string }
  | { error: string }
  | { int: string } // integer beyond 2^53
  | { nullArray: true }
  | { double: string }
  | { bool: boolean }
  | { big: string }
  | { verbatim: string; format: string }
  | { blobError: string }
  | DbResp[]
  | { map: Array<[DbResp, DbResp]> }
  | { set: DbResp[] }
  | { push: DbResp[] }
  | { attribute: Array<[DbResp, DbResp]>; value: DbResp };

export interface DbColumn {
  name: string;
  /** Type name when known (`int4`, `text`, `VARCHAR`, `LONGLONG`…). */
  type: string;
  /** PostgreSQL type OID / MySQL column type byte. */
  typeId?: number;
  /** PostgreSQL: 0 text, 1 binary. */
  format?: number;
  /** Protocol details a mock needs to answer byte for byte (table OIDs, charset, flags…). */
  meta?: Record<string, number | string>;
}

export interface DbError {
  /** SQLSTATE (PostgreSQL, MySQL), MySQL error number as text, Redis error prefix (`ERR`, `WRONGTYPE`). */
  code: string;
  message: string;
  severity?: string;
  /** Every field of a PostgreSQL ErrorResponse, by its one-letter code. */
  fields?: Record<string, string>;
}

/** One result of a query: a row set and/or a completion (command tag, OK packet). */
export interface DbResult {
  columns?: DbColumn[];
  rows?: DbValue[][];
  /** PostgreSQL command tag (`SELECT 3`, `INSERT 0 1`). */
  tag?: string;
  /** MySQL OK: affected rows, last insert id, status flags, warnings, info. */
  ok?: { affectedRows: number; insertId: number; status: number; warnings: number; info?: string };
  /** PostgreSQL: the statement's parameter types (Describe statement). */
  paramTypes?: number[];
  /** PostgreSQL EmptyQueryResponse. */
  empty?: true;
  /** PostgreSQL: COPY data rows exchanged (base64 of each CopyData, in order) and the COPY format. */
  copy?: { direction: 'in' | 'out'; format: number; columnFormats: number[]; data: DbValue[] };
  /** Rows were cut at the decoder's limit (the count in `rowCount` is the real one). */
  rowsTruncated?: true;
  rowCount?: number;
}

export interface DbSession {
  user?: string;
  database?: string;
  /** Startup parameters (PostgreSQL), connection attributes (MySQL). */
  params?: Record<string, string>;
  /** Authentication as seen: method and outcome, never the password. */
  auth?: { method: string; ok: boolean; steps?: string[] };
  /** TLS asked for and what the server said (`S`/`N` for PostgreSQL). */
  tls?: { requested: string; answer: string };
  /** What the server told about itself: version, ParameterStatus, capability flags, thread id… */
  server?: Record<string, string | number>;
  /** Protocol version (PostgreSQL `3.0`, MySQL handshake 10, RESP 2/3). */
  protocol?: string;
}

export interface DbCall {
  system: DbSystem;
  kind: DbKind;
  /** The command: PostgreSQL `query` (simple) or `extended`; MySQL `COM_QUERY`, `COM_STMT_EXECUTE`…; Redis the command name. */
  command: string;
  /** SQL text (PostgreSQL, MySQL). */
  text?: string;
  /** Bound parameters (extended query, COM_STMT_EXECUTE) or Redis arguments after the command name. */
  params?: DbValue[];
  /** PostgreSQL: parameter type OIDs given at Parse; parameter/result format codes at Bind. */
  paramTypes?: number[];
  paramFormats?: number[];
  resultFormats?: number[];
  /** Statement name (PostgreSQL, "" = unnamed) or MySQL statement id, as recorded. */
  statement?: string;
  portal?: string;
  /** PostgreSQL: the extended-protocol messages of this call, in order (`P`,`B`,`D`,`E`,`S`…). */
  steps?: string[];
  /** Redis MULTI/EXEC: transaction number on the connection. */
  tx?: number;
  results?: DbResult[];
  error?: DbError;
  /** Redis reply with its type. */
  reply?: DbResp;
  /** PostgreSQL NoticeResponse / NotificationResponse / ParameterStatus seen during this call. */
  notices?: Array<Record<string, string>>;
  /** PostgreSQL ReadyForQuery status after the call (`I` idle, `T` in transaction, `E` failed). */
  txStatus?: string;
  session?: DbSession;
  /**
   * One of its connection's opening calls (start-up, session settings, a Redis client's
   * handshake, up to the first other call): marked when a replay is planned and when its capture
   * is joined (snapshots/links.ts), so assertions read them as the connection's, not a request's.
   */
  opening?: true;
}

export function isDbProtocol(p: string): p is DbSystem {
  return p === 'postgres' || p === 'mysql' || p === 'redis';
}

/** The DbCall of an exchange (undefined for non-database exchanges). */
export function dbCallOf(ex: { protocol: string; extras?: Record<string, unknown> }): DbCall | undefined {
  if (!isDbProtocol(ex.protocol)) return undefined;
  return ex.extras?.db as DbCall | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const BINARY = /[\u0000-\u0008\u000b\u000e-\u001f\u007f]/;

/** Bytes as a DbValue: printable UTF-8 as a string, anything else base64. */
export function bytesValue(b: Uint8Array): DbValue {
  if (b.length === 0) return '';
  // fast path: printable ASCII (the usual key, value and SQL text)
  let ascii = true;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c >= 0x7f || (c < 0x20 && c !== 9 && c !== 10 && c !== 13 && c !== 12)) {
      ascii = false;
      break;
    }
  }
  if (ascii) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
  try {
    const s = utf8.decode(b);
    if (!BINARY.test(s)) return s;
  } catch {
    /* not UTF-8 */
  }
  return { b64: Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') };
}

/** A DbValue back to bytes (numbers as their decimal text). */
export function valueBytes(v: DbValue): Buffer {
  if (v === null) return Buffer.alloc(0);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (typeof v === 'number') return Buffer.from(String(v), 'latin1');
  return Buffer.from(v.b64, 'base64');
}

/** Short readable form of a value for messages and targets. */
/** A Redis command as an exchange's target: `GET "user:1"`, eight arguments at most, each shortened. */
export function redisCommandLine(name: string, args: DbValue[]): string {
  const shown = args.slice(0, 8).map((a) => showValue(a, 40));
  if (args.length > 8) shown.push(`…(${args.length - 8} more)`);
  return [name, ...shown].join(' ');
}

export function showValue(v: DbValue, max = 60): string {
  if (v === null) return 'NULL';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > max ? `${v.slice(0, max)}…` : v);
  return `<${Buffer.from(v.b64, 'base64').length} bytes>`;
}
