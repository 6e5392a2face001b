/**
 * A PostgreSQL v3 server that answers from the recording. Startup: SSLRequest and GSSENCRequest are
 * refused with `N` (PostgreSQL's own "no", clients then go on in plaintext) unless the recording was
 * TLS, in which case `S` and TLS with the run's CA; any password is accepted (AuthenticationOk
 * straight away), and the recorded server parameters are reported. Simple queries and the extended
 * protocol (Parse/Bind/Describe/Execute/Close/Sync/Flush, named and unnamed statements and portals,
 * pipelined) are answered message by message: statements are known by their text, whatever their
 * name, and an Execute is matched on text + bound parameters. A miss is an ErrorResponse (SQLSTATE
 * XX000) naming the nearest recorded query; the extended protocol then skips to Sync, as a server does.
 */
import type net from 'node:net';
import { type DbCall, type DbColumn, type DbResult, type DbValue, valueBytes } from '../../../core/db.js';
import { binaryParam } from '../../../capture/protocols/postgres/types.js';
import { textValue } from '../../../capture/protocols/postgres/decoder.js';
import { normaliseSql } from '../db/book.js';
import type { DbContext } from '../db/index.js';
import { upgradeToTls } from '../db/tls-upgrade.js';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

function msg(type: string, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + payload.length);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(payload.length + 4, 1);
  payload.copy(b, 5);
  return b;
}

const cstring = (s: string): Buffer => Buffer.from(`${s}\u0000`, 'utf8');

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}
function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0);
  return b;
}

function rowDescription(cols: DbColumn[], formats?: number[]): Buffer {
  const parts: Buffer[] = [int16(cols.length)];
  cols.forEach((c, k) => {
    const m = c.meta ?? {};
    const f = Buffer.alloc(18);
    f.writeUInt32BE(Number(m.table ?? 0), 0);
    f.writeInt16BE(Number(m.attr ?? 0), 4);
    f.writeUInt32BE(c.typeId ?? 25, 6);
    f.writeInt16BE(Number(m.size ?? -1), 10);
    f.writeInt32BE(Number(m.mod ?? -1), 12);
    const fmt =
      formats && formats.length > 0
        ? formats.length === 1
          ? formats[0]!
          : (formats[k] ?? 0)
        : (c.format ?? 0);
    f.writeInt16BE(fmt, 16);
    parts.push(cstring(c.name), f);
  });
  return msg('T', Buffer.concat(parts));
}

function dataRow(row: DbValue[]): Buffer {
  const parts: Buffer[] = [int16(row.length)];
  for (const v of row) {
    if (v === null) parts.push(int32(-1));
    else {
      const b = valueBytes(v);
      parts.push(int32(b.length), b);
    }
  }
  return msg('D', Buffer.concat(parts));
}

function errorResponse(fields: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields))
    if (k.length === 1) parts.push(Buffer.from(k, 'latin1'), cstring(v));
  parts.push(Buffer.from([0]));
  return msg('E', Buffer.concat(parts));
}

function missError(message: string): Buffer {
  return errorResponse({ S: 'ERROR', V: 'ERROR', C: 'XX000', M: message });
}

/** The answer to an Execute / a simple query's statements, from the recorded call. */
function results(call: DbCall, withDescription: boolean, formats?: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (const r of call.results ?? []) out.push(...result(r, withDescription, formats));
  if (call.error)
    out.push(
      errorResponse(
        call.error.fields ?? { S: 'ERROR', V: 'ERROR', C: call.error.code, M: call.error.message },
      ),
    );
  return out;
}

function result(r: DbResult, withDescription: boolean, formats?: number[]): Buffer[] {
  const out: Buffer[] = [];
  if (r.copy) {
    // COPY is answered as recorded: the response, the data (TO STDOUT), CopyDone
    const cf = r.copy.columnFormats;
    const head = Buffer.concat([Buffer.from([r.copy.format]), int16(cf.length), ...cf.map(int16)]);
    out.push(msg(r.copy.direction === 'in' ? 'G' : 'H', head));
    if (r.copy.direction === 'out') {
      for (const d of r.copy.data) out.push(msg('d', valueBytes(d)));
      out.push(msg('c', Buffer.alloc(0)));
    }
    if (r.tag !== undefined && r.copy.direction === 'out') out.push(msg('C', cstring(r.tag)));
    return out;
  }
  if (r.empty) return [msg('I', Buffer.alloc(0))];
  if (withDescription && r.columns) out.push(rowDescription(r.columns, formats));
  for (const row of r.rows ?? []) out.push(dataRow(row));
  if (r.tag === 'suspended') out.push(msg('s', Buffer.alloc(0)));
  else if (r.tag !== undefined) out.push(msg('C', cstring(r.tag)));
  return out;
}

interface LiveStatement {
  text: string;
  types: number[];
}

/** Columns and parameter types recorded for a statement text (from any call with that text). */
function describeFor(ctx: DbContext, text: string): { types?: number[]; columns?: DbColumn[] | null } {
  const list = ctx.book.withText('query', text);
  let types: number[] | undefined;
  let columns: DbColumn[] | null | undefined;
  for (const e of list) {
    if (!types && e.call.paramTypes && e.call.paramTypes.some((t) => t !== 0)) types = e.call.paramTypes;
    const withCols = e.call.results?.find((r) => r.columns);
    if (columns === undefined && withCols) columns = withCols.columns!;
    if (columns === undefined && e.call.results?.some((r) => r.tag !== undefined && !r.columns))
      columns = null;
  }
  return { ...(types ? { types } : {}), ...(columns !== undefined ? { columns } : {}) };
}

export function servePostgres(socket: net.Socket, ctx: DbContext): void {
  let sock: net.Socket = socket;
  let buf: Buffer = Buffer.alloc(0);
  let startup = true;
  let skipToSync = false;
  let txStatus = 'I';
  const statements = new Map<string, LiveStatement>();
  const portals = new Map<string, { text: string; params: DbValue[]; formats: number[] }>();
  const out: Buffer[] = [];
  const session = ctx.book.sessions.find((s) => s.system === 'postgres' && s.session?.server)?.session;
  const recordedTls = ctx.hooks.tls !== undefined;

  const flush = (): void => {
    if (out.length) sock.write(Buffer.concat(out.splice(0)));
  };

  const onData = (d: Buffer): void => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    let i = 0;
    try {
      for (;;) {
        if (startup) {
          if (buf.length - i < 8) break;
          const len = buf.readInt32BE(i);
          if (len < 8 || len > 10000) {
            sock.destroy();
            return;
          }
          if (buf.length - i < len) break;
          const code = buf.readInt32BE(i + 4);
          const body = buf.subarray(i + 8, i + len);
          i += len;
          if (code === SSL_REQUEST) {
            if (recordedTls) {
              sock.write('S');
              buf = buf.subarray(i);
              upgrade();
              return;
            }
            sock.write('N');
            continue;
          }
          if (code === GSSENC_REQUEST) {
            sock.write('N');
            continue;
          }
          if (code === CANCEL_REQUEST) {
            sock.end();
            return;
          }
          void body;
          startup = false;
          out.push(msg('R', int32(0)));
          const params: Record<string, string> = {
            server_version: '15.0',
            server_encoding: 'UTF8',
            client_encoding: 'UTF8',
            DateStyle: 'ISO, MDY',
            integer_datetimes: 'on',
            standard_conforming_strings: 'on',
            TimeZone: 'UTC',
            IntervalStyle: 'postgres',
          };
          for (const [k, v] of Object.entries(session?.server ?? {}))
            if (k !== 'pid' && k !== 'negotiatedMinor') params[k] = String(v);
          for (const [k, v] of Object.entries(params))
            out.push(msg('S', Buffer.concat([cstring(k), cstring(v)])));
          out.push(msg('K', Buffer.concat([int32(process.pid), int32(0x5e7a9)])));
          out.push(msg('Z', Buffer.from('I')));
          flush();
          continue;
        }
        if (buf.length - i < 5) break;
        const type = String.fromCharCode(buf[i]!);
        const len = buf.readInt32BE(i + 1);
        if (len < 4) {
          sock.destroy();
          return;
        }
        if (buf.length - i < len + 1) break;
        const body = buf.subarray(i + 5, i + 1 + len);
        i += len + 1;
        if (message(type, body) === 'close') {
          flush();
          sock.end();
          return;
        }
      }
    } finally {
      buf = i >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(i));
    }
    flush();
  };

  const upgrade = (): void => {
    socket.removeListener('data', onData);
    const t = upgradeToTls(socket, ctx.hooks.tls!, Buffer.alloc(0));
    sock = t;
    t.on('data', onData);
    t.on('error', () => socket.destroy());
  };

  const message = (type: string, b: Buffer): 'close' | undefined => {
    if (skipToSync && type !== 'S') return undefined;
    switch (type) {
      case 'Q': {
        const text = cstr(b, 0);
        const statementsIn = text.trim() === '' ? [] : [text];
        if (statementsIn.length === 0) {
          out.push(msg('I', Buffer.alloc(0)), msg('Z', Buffer.from(txStatus)));
          return undefined;
        }
        const kind = /^\s*(SET|RESET|DISCARD)\b/i.test(text) ? 'setup' : 'query';
        const r = ctx.lookup({ kind, text: normaliseSql(text), params: [] }, 'QUERY');
        if (r.entry) {
          out.push(...results(r.entry.call, true));
          txStatus = r.entry.call.txStatus ?? txStatus;
        } else out.push(missError(r.missMessage!));
        out.push(msg('Z', Buffer.from(txStatus)));
        return undefined;
      }
      case 'P': {
        const z = b.indexOf(0);
        const name = b.toString('utf8', 0, z);
        const z2 = b.indexOf(0, z + 1);
        const text = b.toString('utf8', z + 1, z2);
        const n = b.readInt16BE(z2 + 1);
        const types: number[] = [];
        for (let k = 0; k < n; k++) types.push(b.readUInt32BE(z2 + 3 + k * 4));
        const known = describeFor(ctx, normaliseSql(text)).types;
        statements.set(name, { text, types: types.some((t) => t !== 0) ? types : (known ?? types) });
        out.push(msg('1', Buffer.alloc(0)));
        return undefined;
      }
      case 'B': {
        let i = b.indexOf(0);
        const portal = b.toString('utf8', 0, i);
        const j = b.indexOf(0, i + 1);
        const stmtName = b.toString('utf8', i + 1, j);
        i = j + 1;
        const nf = b.readInt16BE(i);
        i += 2;
        const formats: number[] = [];
        for (let k = 0; k < nf; k++, i += 2) formats.push(b.readInt16BE(i));
        const np = b.readInt16BE(i);
        i += 2;
        const st = statements.get(stmtName);
        if (!st) {
          out.push(
            errorResponse({
              S: 'ERROR',
              V: 'ERROR',
              C: '26000',
              M: `prepared statement "${stmtName}" does not exist`,
            }),
          );
          skipToSync = true;
          return undefined;
        }
        const params: DbValue[] = [];
        for (let k = 0; k < np; k++) {
          const len = b.readInt32BE(i);
          i += 4;
          if (len < 0) {
            params.push(null);
            continue;
          }
          const fmt = nf === 0 ? 0 : nf === 1 ? formats[0]! : (formats[k] ?? 0);
          params.push(
            fmt === 1 ? binaryParam(st.types[k] ?? 0, b.subarray(i, i + len)) : textValue(b, i, i + len),
          );
          i += len;
        }
        const nr = b.readInt16BE(i);
        i += 2;
        const rf: number[] = [];
        for (let k = 0; k < nr; k++, i += 2) rf.push(b.readInt16BE(i));
        portals.set(portal, { text: st.text, params, formats: rf });
        out.push(msg('2', Buffer.alloc(0)));
        return undefined;
      }
      case 'D': {
        const which = String.fromCharCode(b[0]!);
        const name = cstr(b, 1);
        const text = which === 'S' ? statements.get(name)?.text : portals.get(name)?.text;
        if (text === undefined) {
          out.push(
            errorResponse({
              S: 'ERROR',
              V: 'ERROR',
              C: which === 'S' ? '26000' : '34000',
              M: `${which === 'S' ? 'prepared statement' : 'portal'} "${name}" does not exist`,
            }),
          );
          skipToSync = true;
          return undefined;
        }
        const d = describeFor(ctx, normaliseSql(text));
        if (which === 'S') {
          const types = d.types ?? statements.get(name)!.types;
          out.push(msg('t', Buffer.concat([int16(types.length), ...types.map(int32)])));
        }
        if (d.columns) out.push(rowDescription(d.columns, which === 'P' ? portals.get(name)!.formats : [0]));
        else out.push(msg('n', Buffer.alloc(0)));
        return undefined;
      }
      case 'E': {
        const name = cstr(b, 0);
        const p = portals.get(name);
        if (!p) {
          out.push(
            errorResponse({ S: 'ERROR', V: 'ERROR', C: '34000', M: `portal "${name}" does not exist` }),
          );
          skipToSync = true;
          return undefined;
        }
        const kind = /^\s*(SET|RESET|DISCARD)\b/i.test(p.text) ? 'setup' : 'query';
        const r = ctx.lookup(
          { kind, text: normaliseSql(p.text), params: p.params, resultFormats: p.formats },
          'EXECUTE',
        );
        if (!r.entry) {
          out.push(missError(r.missMessage!));
          skipToSync = true;
          return undefined;
        }
        const parts = results(r.entry.call, false);
        out.push(...parts);
        if (r.entry.call.error) skipToSync = true;
        txStatus = r.entry.call.txStatus ?? txStatus;
        return undefined;
      }
      case 'C': {
        const which = String.fromCharCode(b[0]!);
        const name = cstr(b, 1);
        if (which === 'S') statements.delete(name);
        else portals.delete(name);
        out.push(msg('3', Buffer.alloc(0)));
        return undefined;
      }
      case 'S':
        skipToSync = false;
        out.push(msg('Z', Buffer.from(txStatus)));
        return undefined;
      case 'H':
        flush();
        return undefined;
      case 'X':
        return 'close';
      case 'p':
        return undefined;
      default:
        out.push(
          errorResponse({
            S: 'ERROR',
            V: 'ERROR',
            C: '0A000',
            M: `retap mock: message ${type} is not served`,
          }),
        );
        return undefined;
    }
  };

  socket.on('data', onData);
}

function cstr(b: Buffer, s: number): string {
  const z = b.indexOf(0, s);
  return b.toString('utf8', s, z === -1 ? b.length : z);
}
