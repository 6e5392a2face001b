/**
 * A MySQL/MariaDB server that answers from the recording. It sends a handshake v10 with the
 * recorded server version, without CLIENT_SSL unless the recording was TLS (a client then stays in
 * plaintext, or stops if it requires TLS: MySQL's own "no"; with a TLS recording an SSLRequest
 * turns the socket into TLS with the run's CA and the handshake goes on inside), accepts any
 * credentials with OK (an
 * auth switch is never asked for), and answers COM_QUERY with text result sets, COM_STMT_PREPARE
 * with the recorded statement description (a fresh statement id mapped to the text) and
 * COM_STMT_EXECUTE with binary result sets, with or without CLIENT_DEPRECATE_EOF as the client
 * asks, and every recorded result of a multi-statement query (SERVER_MORE_RESULTS_EXISTS).
 * A miss is ERR 1105 (HY000) naming the nearest recorded query.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import {
  binaryLength,
  binaryValue,
  CAP,
  encodeBinary,
  lenenc,
  lenencBytes,
  writeLenenc,
} from '../../../capture/protocols/mysql/packets.js';
import { textValue } from '../../../capture/protocols/postgres/decoder.js';
import type { DbColumn, DbResult, DbValue } from '../../../core/db.js';
import { normaliseSql } from '../db/book.js';
import type { DbContext } from '../db/index.js';
import { upgradeToTls } from '../db/tls-upgrade.js';

const MORE_RESULTS = 0x0008;
// session-state info is only sent with CLIENT_SESSION_TRACK, which the mock does not offer
const SESSION_STATE_CHANGED = 0x4000;
const SERVER_CAPS =
  1 | // CLIENT_MYSQL/LONG_PASSWORD (also: no MariaDB extended capabilities)
  4 |
  CAP.CONNECT_WITH_DB |
  CAP.PROTOCOL_41 |
  0x2000 | // TRANSACTIONS
  CAP.SECURE_CONNECTION |
  CAP.MULTI_STATEMENTS |
  CAP.MULTI_RESULTS |
  CAP.PS_MULTI_RESULTS |
  CAP.PLUGIN_AUTH |
  CAP.CONNECT_ATTRS |
  CAP.PLUGIN_AUTH_LENENC |
  CAP.DEPRECATE_EOF;

export function serveMysql(socket: net.Socket, ctx: DbContext): void {
  const session = ctx.book.sessions.find((s) => s.system === 'mysql' && s.session?.server)?.session;
  const version = String(session?.server?.version ?? '5.5.5-10.11.0-MariaDB-retap-mock');
  const tlsPair = ctx.hooks.tls;
  // TLS is offered only when the recording was made over TLS (then with the run's CA)
  const offered = tlsPair ? SERVER_CAPS | CAP.SSL : SERVER_CAPS;
  let sock: net.Socket = socket;
  let caps = SERVER_CAPS;
  let authed = false;
  let buf: Buffer = Buffer.alloc(0);
  let nextId = 1;
  const stmts = new Map<
    number,
    { text: string; params: number; types?: Array<[number, boolean]>; columns: DbColumn[] }
  >();

  const packet = (seq: number, payload: Buffer): Buffer => {
    const h = Buffer.alloc(4);
    h.writeUIntLE(payload.length, 0, 3);
    h[3] = seq & 0xff;
    return Buffer.concat([h, payload]);
  };
  const ok = (affected = 0, insertId = 0, status = 2, info = '', header = 0): Buffer =>
    Buffer.concat([
      Buffer.from([header]),
      writeLenenc(affected),
      writeLenenc(insertId),
      u16(status),
      u16(0),
      // servers write the info length-encoded (MariaDB's and MySQL's net_send_ok), clients read it so
      info ? lenencBytes(Buffer.from(info, 'utf8')) : Buffer.alloc(0),
    ]);
  const err = (code: number, state: string, message: string): Buffer =>
    Buffer.concat([
      Buffer.from([0xff]),
      u16(code),
      Buffer.from(`#${state}`, 'latin1'),
      Buffer.from(message.slice(0, 400), 'utf8'),
    ]);
  const eof = (status = 2): Buffer => Buffer.concat([Buffer.from([0xfe]), u16(0), u16(status)]);
  const deprecateEof = (): boolean => (caps & CAP.DEPRECATE_EOF) !== 0;

  // handshake v10
  const scramble = randomBytes(20).map((b) => b & 0x7f || 1);
  socket.write(
    packet(
      0,
      Buffer.concat([
        Buffer.from([10]),
        Buffer.from(`${version}\u0000`, 'latin1'),
        u32(Number(session?.server?.threadId ?? 1)),
        scramble.subarray(0, 8),
        Buffer.from([0]),
        u16(offered & 0xffff),
        Buffer.from([45]),
        u16(2),
        u16((offered >>> 16) & 0xffff),
        Buffer.from([21]),
        Buffer.alloc(10),
        scramble.subarray(8),
        Buffer.from([0]),
        Buffer.from('mysql_native_password\u0000', 'latin1'),
      ]),
    ),
  );

  const columnDef = (c: DbColumn): Buffer => {
    const m = c.meta ?? {};
    const s = (v: unknown): Buffer => lenencBytes(Buffer.from(String(v ?? ''), 'utf8'));
    const fixed = Buffer.alloc(12);
    fixed.writeUInt16LE(Number(m.charset ?? 33), 0);
    fixed.writeUInt32LE(Number(m.length ?? 0), 2);
    fixed[6] = c.typeId ?? 253;
    fixed.writeUInt16LE(Number(m.flags ?? 0), 7);
    fixed[9] = Number(m.decimals ?? 0);
    return Buffer.concat([
      s(m.catalog ?? 'def'),
      s(m.schema),
      s(m.table),
      s(m.orgTable),
      s(c.name),
      s(m.orgName),
      Buffer.from([0x0c]),
      fixed,
    ]);
  };

  /** Packets of one recorded answer (all results), sequence ids from 1. */
  const resultPackets = (results: DbResult[], binary: boolean): Buffer[] => {
    const out: Buffer[] = [];
    results.forEach((r, k) => {
      const more = k < results.length - 1 ? MORE_RESULTS : 0;
      if (r.columns) {
        out.push(writeLenenc(r.columns.length));
        for (const c of r.columns) out.push(columnDef(c));
        if (!deprecateEof()) out.push(eof(2 | more));
        for (const row of r.rows ?? []) out.push(binary ? binaryRow(row, r.columns) : textRow(row));
        out.push(deprecateEof() ? ok(0, 0, 2 | more, '', 0xfe) : eof(2 | more));
      } else if (r.ok) {
        out.push(
          ok(
            r.ok.affectedRows,
            r.ok.insertId,
            (r.ok.status & ~(MORE_RESULTS | SESSION_STATE_CHANGED)) | more,
            r.ok.info ?? '',
          ),
        );
      }
    });
    return out;
  };

  const send = (payloads: Buffer[]): void => {
    sock.write(Buffer.concat(payloads.map((p, i) => packet(i + 1, p))));
  };

  const command = (p: Buffer): void => {
    const code = p[0]!;
    switch (code) {
      case 0x01:
        sock.end();
        return;
      case 0x0e:
      case 0x1f:
        send([ok()]);
        return;
      case 0x1b:
        send([deprecateEof() ? ok() : eof()]);
        return;
      case 0x02: {
        const db = p.toString('utf8', 1);
        const r = ctx.lookup({ kind: 'setup', text: `USE ${db}`, params: [db] }, 'INIT_DB');
        send([
          r.entry?.call.error
            ? err(
                Number(r.entry.call.error.severity ?? 1049),
                r.entry.call.error.code,
                r.entry.call.error.message,
              )
            : ok(),
        ]);
        return;
      }
      case 0x03: {
        const text = p.toString('utf8', 1);
        const kind = /^\s*(SET|USE)\b/i.test(text) ? 'setup' : 'query';
        const r = ctx.lookup({ kind, text: normaliseSql(text), params: [] }, 'QUERY');
        if (!r.entry) {
          send([err(1105, 'HY000', r.missMessage!)]);
          return;
        }
        answer(r.entry.call.results ?? [], r.entry.call.error, false);
        return;
      }
      case 0x16: {
        const text = p.toString('utf8', 1);
        const rec = ctx.book
          .withText('query', normaliseSql(text))
          .concat(ctx.book.withText('setup', normaliseSql(text)));
        const prep = rec.find((e) => e.call.command === 'COM_STMT_PREPARE' && !e.call.error);
        if (!prep) {
          const r = ctx.lookup({ kind: 'query', text: normaliseSql(text), params: [] }, 'PREPARE');
          if (r.entry?.call.error) {
            send([
              err(
                Number(r.entry.call.error.severity ?? 1064),
                r.entry.call.error.code,
                r.entry.call.error.message,
              ),
            ]);
            return;
          }
          if (!r.entry) {
            send([err(1105, 'HY000', r.missMessage!)]);
            return;
          }
        } else ctx.lookup({ kind: 'query', text: normaliseSql(text), params: [] }, 'PREPARE');
        const desc = (prep?.call.results?.[0] ?? {}) as DbResult & { params?: DbColumn[] };
        const params =
          desc.params ?? (desc.paramTypes ?? []).map((t) => ({ name: '?', type: '', typeId: t }));
        const columns = desc.columns ?? [];
        const id = nextId++;
        stmts.set(id, { text, params: params.length, columns });
        const out: Buffer[] = [
          Buffer.concat([
            Buffer.from([0]),
            u32(id),
            u16(columns.length),
            u16(params.length),
            Buffer.from([0]),
            u16(0),
          ]),
        ];
        for (const c of params) out.push(columnDef(c));
        if (params.length && !deprecateEof()) out.push(eof());
        for (const c of columns) out.push(columnDef(c));
        if (columns.length && !deprecateEof()) out.push(eof());
        send(out);
        return;
      }
      case 0x17: {
        const id = p.readUInt32LE(1);
        const st = stmts.get(id);
        if (!st) {
          send([
            err(1243, 'HY000', `Unknown prepared statement handler (${id}) given to mysqld_stmt_execute`),
          ]);
          return;
        }
        const params: DbValue[] = [];
        if (st.params > 0) {
          let i = 10;
          const nb = (st.params + 7) >> 3;
          const nulls = p.subarray(i, i + nb);
          i += nb;
          if (p[i++] === 1) {
            st.types = [];
            for (let k = 0; k < st.params; k++, i += 2) st.types.push([p[i]!, (p[i + 1]! & 0x80) !== 0]);
          }
          for (let k = 0; k < st.params; k++) {
            if (nulls[k >> 3]! & (1 << (k & 7))) {
              params.push(null);
              continue;
            }
            const [t, u] = st.types?.[k] ?? [253, false];
            params.push(binaryValue(p, i, t, u));
            i += binaryLength(p, i, t);
          }
        }
        const kind = /^\s*(SET|USE)\b/i.test(st.text) ? 'setup' : 'query';
        const r = ctx.lookup({ kind, text: normaliseSql(st.text), params }, 'EXECUTE');
        if (!r.entry) {
          send([err(1105, 'HY000', r.missMessage!)]);
          return;
        }
        answer(r.entry.call.results ?? [], r.entry.call.error, true);
        return;
      }
      case 0x19:
        stmts.delete(p.readUInt32LE(1));
        return;
      case 0x18:
        return;
      case 0x1a:
        send([ok()]);
        return;
      default:
        send([err(1047, '08S01', `retap mock: command 0x${code.toString(16)} is not served`)]);
    }
  };

  const answer = (
    results: DbResult[],
    error: { code: string; message: string; severity?: string } | undefined,
    binary: boolean,
  ): void => {
    const out = resultPackets(results, binary);
    if (error)
      out.push(
        err(
          Number(error.severity ?? 1105) || 1105,
          error.code.length === 5 ? error.code : 'HY000',
          error.message,
        ),
      );
    if (out.length === 0) out.push(ok());
    send(out);
  };

  const onData = (d: Buffer): void => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    let i = 0;
    while (buf.length - i >= 4) {
      const len = buf.readUIntLE(i, 3);
      if (buf.length - i < 4 + len) break;
      const p = buf.subarray(i + 4, i + 4 + len);
      const seq = buf[i + 3]!;
      i += 4 + len;
      if (!authed && tlsPair && sock === socket && len === 32 && (p.readUInt32LE(0) & CAP.SSL) !== 0) {
        // SSLRequest: the rest of the handshake comes inside TLS
        socket.removeListener('data', onData);
        // the client's ClientHello may have come in the same read: TLS gets it first
        const t = upgradeToTls(socket, tlsPair, Buffer.from(buf.subarray(i)));
        sock = t;
        t.on('data', onData);
        t.on('error', () => socket.destroy());
        buf = Buffer.alloc(0);
        return;
      }
      if (!authed) {
        // handshake response: accept whatever the credentials
        caps = p.length >= 4 ? p.readUInt32LE(0) & SERVER_CAPS : SERVER_CAPS;
        authed = true;
        ctx.hooks.counted(true);
        sock.write(packet(seq + 1, ok()));
        continue;
      }
      command(Buffer.from(p));
    }
    buf = i >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(i));
  };
  socket.on('data', onData);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n & 0xffff);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function textRow(row: DbValue[]): Buffer {
  return Buffer.concat(
    row.map((v) =>
      v === null
        ? Buffer.from([0xfb])
        : lenencBytes(typeof v === 'object' ? Buffer.from(v.b64, 'base64') : Buffer.from(String(v), 'utf8')),
    ),
  );
}

function binaryRow(row: DbValue[], cols: DbColumn[]): Buffer {
  const nb = (cols.length + 9) >> 3;
  const nulls = Buffer.alloc(nb);
  const parts: Buffer[] = [];
  row.forEach((v, k) => {
    if (v === null) {
      const bit = k + 2;
      nulls[bit >> 3]! |= 1 << (bit & 7);
      return;
    }
    const c = cols[k]!;
    parts.push(encodeBinary(v, c.typeId ?? 253, (Number(c.meta?.flags ?? 0) & 0x20) !== 0));
  });
  return Buffer.concat([Buffer.from([0]), nulls, ...parts]);
}

export { lenenc, textValue };
