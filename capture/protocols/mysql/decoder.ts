/**
 * MySQL/MariaDB stream decoder (client/server protocol 4.1, handshake v10). Packets are framed by
 * their 3-byte length and sequence id (16 MiB packets joined). The server's handshake and the
 * client's response (capabilities, user, database, attributes), any auth switch or auth-more-data
 * rounds, up to OK/ERR are one `session` exchange; the scramble, auth responses and passwords are
 * never kept. Each command (sequence id 0) then gets its answer in order: OK/ERR, a text result set
 * (COM_QUERY) or a binary one (COM_STMT_EXECUTE), the statement description (COM_STMT_PREPARE),
 * with and without CLIENT_DEPRECATE_EOF, and every further result while the server says
 * SERVER_MORE_RESULTS_EXISTS (multi-statements, stored procedures). COM_STMT_CLOSE and
 * SEND_LONG_DATA have no answer. Statement ids map to their SQL text for the life of the connection.
 *
 * Joined mid-connection (no handshake seen) the decoder waits for a command packet (sequence 0)
 * and marks what follows `session-unknown`: capabilities are assumed to be a modern client's.
 * After a gap, pairing resumes with commands sent after the gap, marked `gap`.
 */
import type { DbCall, DbColumn, DbResult, DbSession, DbValue } from '../../../core/db.js';
import { bytesValue } from '../../../core/db.js';
import { dbExchange, SideBuffer, sqlVerb } from '../db-common.js';
import { textValue } from '../postgres/decoder.js';
import type { DecoderOptions, DecoderSink, Side, StreamDecoder } from '../types.js';
import {
  binaryLength,
  binaryValue,
  CAP,
  COM,
  lenenc,
  SERVER_MORE_RESULTS_EXISTS,
  TYPE_NAMES,
} from './packets.js';

const MAX_PACKET = 0xffffff;
const NO_ANSWER = new Set([0x01, 0x18, 0x19]);
const SETUP_COMMANDS = new Set([0x02, 0x1b, 0x1f, 0x11]);
const SETUP_VERBS = new Set(['SET', 'USE']);
const UNSIGNED = 0x20;
const MARIADB_EXTENDED_METADATA = 8;
const MARIADB_CACHE_METADATA = 16;

type Phase =
  | 'first' // OK / ERR / column count
  | 'columns'
  | 'columnsEof'
  | 'rows'
  | 'prepParams'
  | 'prepParamsEof'
  | 'prepColumns'
  | 'prepColumnsEof'
  | 'fieldList'
  | 'infile';

interface Cmd {
  code: number;
  call: DbCall;
  notes: string[];
  reqStart: number;
  reqEnd: number;
  respStart?: number;
  respEnd?: number;
  phase: Phase;
  left: number;
  cur?: DbResult;
  kept: number;
  /** COM_STMT_PREPARE: columns and params being read. */
  prep?: { id: number; params: number; columns: number; paramDefs: DbColumn[]; columnDefs: DbColumn[] };
  binary: boolean;
}

interface Stmt {
  text: string;
  params: number;
  paramTypes?: Array<[number, boolean]>;
  columns: DbColumn[];
}

export class MysqlDecoder implements StreamDecoder {
  private readonly client = new SideBuffer();
  private readonly server = new SideBuffer();
  private caps = CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.DEPRECATE_EOF;
  private serverCaps = 0;
  /** MariaDB extended capabilities both sides have (EXTENDED_METADATA 8, CACHE_METADATA 16). */
  private mariaExt = 0;
  private serverMariaExt = 0;
  private session:
    | {
        call: DbCall;
        notes: string[];
        reqStart: number;
        reqEnd: number;
        respStart: number;
        respEnd: number;
        done: boolean;
      }
    | undefined;
  private sawHandshake = false;
  private tls = false;
  private joined = false;
  private afterGap = false;
  private clientResync = false;
  private serverResync = false;
  private pending: Cmd[] = [];
  private readonly stmts = new Map<number, Stmt>();
  private clientStartTs = 0;
  private serverStartTs = 0;
  private readonly maxBody: number;
  private readonly maxBuffer: number;
  /** A 16 MiB+ payload being joined, per side. */
  private big: [Buffer[], Buffer[]] = [[], []];

  constructor(
    private readonly sink: DecoderSink,
    options?: DecoderOptions,
  ) {
    this.maxBody = options?.maxBodyBytes ?? 16 * 1024 * 1024;
    this.maxBuffer = options?.maxBufferBytes ?? 8 * 1024 * 1024;
  }

  bufferedBytes(): number {
    return this.client.length + this.server.length;
  }

  push(side: Side, data: Uint8Array, tsNs: number): void {
    if (data.length === 0) return;
    if (this.tls) {
      this.sink.raw?.(side, data.length, 'tls');
      return;
    }
    const b = side === 'client' ? this.client : this.server;
    if (b.length === 0) {
      if (side === 'client') this.clientStartTs = tsNs;
      else this.serverStartTs = tsNs;
    }
    b.push(data);
    try {
      this.drain(side, tsNs);
    } catch {
      this.lose(side, tsNs, 'decoder-error');
    }
    b.settle();
  }

  gap(side: Side, _length: number, tsNs: number): void {
    if (!this.tls) this.lose(side, tsNs, 'gap');
  }

  end(tsNs: number): void {
    for (const side of ['client', 'server'] as const) {
      const b = side === 'client' ? this.client : this.server;
      if (b.length > 0) this.sink.raw?.(side, b.length, 'incomplete');
      b.clear();
    }
    if (this.session && !this.session.done) this.emitSession(tsNs, ['no-response']);
    for (const c of this.pending.splice(0))
      this.emitCmd(c, tsNs, c.respStart !== undefined ? ['truncated'] : ['no-response']);
  }

  private lose(side: Side, ts: number, reason: string): void {
    this.afterGap = true;
    const b = side === 'client' ? this.client : this.server;
    if (b.length > 0) this.sink.raw?.(side, b.length, reason);
    b.clear();
    this.big[side === 'client' ? 0 : 1] = [];
    if (side === 'client') this.clientResync = true;
    else {
      this.serverResync = true;
      if (this.session && !this.session.done) this.emitSession(ts, ['gap', 'no-response']);
      for (const c of this.pending.splice(0))
        this.emitCmd(c, ts, ['gap', c.respStart !== undefined ? 'truncated' : 'no-response']);
    }
  }

  private drain(side: Side, ts: number): void {
    const b = side === 'client' ? this.client : this.server;
    for (;;) {
      const { buf, start, end } = b;
      const avail = end - start;
      if (avail < 4) return;
      if (side === 'client' ? this.clientResync : this.serverResync) {
        const at = side === 'client' ? resyncCommand(buf, start, end) : resyncReply(buf, start, end);
        if (at < 0) {
          const drop = Math.max(0, avail - 8);
          if (drop) this.sink.raw?.(side, drop, 'resync');
          b.consume(drop);
          return;
        }
        if (at > start) this.sink.raw?.(side, at - start, 'resync');
        b.consume(at - start);
        if (side === 'client') this.clientResync = false;
        else this.serverResync = false;
        continue;
      }
      const len = buf.readUIntLE(start, 3);
      const seq = buf[start + 3]!;
      if (avail < 4 + len) {
        if (4 + len > this.maxBuffer) this.lose(side, ts, 'too-large');
        return;
      }
      const payload = buf.subarray(start + 4, start + 4 + len);
      const parts = this.big[side === 'client' ? 0 : 1];
      if (len === MAX_PACKET) {
        parts.push(Buffer.from(payload));
        b.consume(4 + len);
        continue;
      }
      let whole = payload;
      if (parts.length) {
        whole = Buffer.concat([...parts, payload]);
        this.big[side === 'client' ? 0 : 1] = [];
      }
      if (side === 'client') this.clientPacket(whole, seq, ts);
      else this.serverPacket(whole, seq, ts);
      b.consume(4 + len);
      if (this.tls) {
        const left = b.length;
        if (left) this.sink.raw?.(side, left, 'tls');
        b.clear();
        return;
      }
      if (side === 'client') this.clientStartTs = ts;
      else this.serverStartTs = ts;
    }
  }

  // ------------------------------------------------------------------ client

  private clientPacket(p: Buffer, seq: number, ts: number): void {
    const sess = this.session;
    if (sess && !sess.done) {
      // handshake response, SSL request, or an auth round: only shapes are kept
      sess.reqEnd = ts;
      if (seq === 1 && this.sawHandshake && !sess.call.session!.user && p.length >= 32)
        this.handshakeResponse(p, ts);
      else
        ((sess.call.session!.auth ??= { method: 'unknown', ok: false }).steps ??= []).push(
          'client-auth-data',
        );
      return;
    }
    if (!this.sawHandshake && !this.joined) {
      // no handshake seen: joined mid-connection
      this.joined = true;
      this.afterGap = true;
    }
    if (seq !== 0) {
      // LOCAL INFILE data, or something we cannot place
      const head = this.pending[this.pending.length - 1];
      if (head?.phase === 'infile') return;
      this.sink.raw?.('client', p.length + 4, 'unexpected-packet');
      return;
    }
    const code = p[0]!;
    const name = COM[code] ?? `COM_0x${code.toString(16)}`;
    const call: DbCall = {
      system: 'mysql',
      kind: SETUP_COMMANDS.has(code) ? 'setup' : 'query',
      command: name,
    };
    const cmd: Cmd = {
      code,
      call,
      notes: this.joined ? ['session-unknown'] : [],
      reqStart: this.clientStartTs || ts,
      reqEnd: ts,
      phase: 'first',
      left: 0,
      kept: 0,
      binary: false,
    };
    if (this.afterGap) cmd.notes.push('gap');
    switch (code) {
      case 0x03: {
        let i = 1;
        if (this.caps & CAP.QUERY_ATTRIBUTES) {
          // parameter_count, parameter_set_count, then (if any) typed attributes: keep only the text
          const [n, u1] = lenenc(p, i);
          i += u1;
          const [, u2] = lenenc(p, i);
          i += u2;
          if (n > 0) {
            cmd.notes.push('query-attributes');
            i = p.length - queryTextFromEnd(p, i);
          }
        }
        call.text = p.toString('utf8', i);
        if (SETUP_VERBS.has(sqlVerb(call.text))) call.kind = 'setup';
        break;
      }
      case 0x02:
        call.text = `USE ${p.toString('utf8', 1)}`;
        call.params = [p.toString('utf8', 1)];
        break;
      case 0x16:
        call.text = p.toString('utf8', 1);
        break;
      case 0x17:
        this.execute(p, cmd);
        cmd.binary = true;
        break;
      case 0x1c: {
        const id = p.readUInt32LE(1);
        call.statement = String(id);
        call.text = this.stmts.get(id)?.text;
        cmd.binary = true;
        break;
      }
      case 0x18:
      case 0x19:
      case 0x1a: {
        const id = p.readUInt32LE(1);
        call.statement = String(id);
        const st = this.stmts.get(id);
        if (st) call.text = st.text;
        if (code === 0x19) this.stmts.delete(id);
        break;
      }
      case 0x1b:
        call.params = [p.readUInt16LE(1)];
        break;
      case 0x04:
        call.text = p.toString('utf8', 1, p.indexOf(0, 1) === -1 ? p.length : p.indexOf(0, 1));
        cmd.phase = 'fieldList';
        break;
      case 0x11: {
        const z = p.indexOf(0, 1);
        call.session = { user: p.toString('utf8', 1, z), auth: { method: 'change-user', ok: false } };
        call.kind = 'session';
        break;
      }
    }
    if (NO_ANSWER.has(code)) {
      this.emitCmd(cmd, ts, []);
      return;
    }
    this.pending.push(cmd);
  }

  private handshakeResponse(p: Buffer, ts: number): void {
    const sess = this.session!;
    const s = sess.call.session!;
    const caps = p.readUInt32LE(0);
    if (!(caps & CAP.PROTOCOL_41)) {
      sess.notes.push('protocol-320');
      return;
    }
    this.caps = caps & (this.serverCaps || 0xffffffff);
    (s.server ??= {}).clientCapabilities = caps;
    if (!(caps & 1) && this.serverMariaExt) this.mariaExt = p.readUInt32LE(28) & this.serverMariaExt;
    if (p.length === 32 && caps & CAP.SSL) {
      s.tls = { requested: 'SSL', answer: 'accepted' };
      this.tls = true;
      sess.reqEnd = ts;
      this.emitSession(ts, []);
      return;
    }
    let i = 32;
    let z = p.indexOf(0, i);
    s.user = p.toString('utf8', i, z);
    i = z + 1;
    let authLen: number;
    if (caps & CAP.PLUGIN_AUTH_LENENC) {
      const [n, used] = lenenc(p, i);
      authLen = n;
      i += used;
    } else if (caps & CAP.SECURE_CONNECTION) {
      authLen = p[i]!;
      i++;
    } else {
      authLen = p.indexOf(0, i) - i + 1;
    }
    i += Math.max(0, authLen); // the auth response is never kept
    if (caps & CAP.CONNECT_WITH_DB && i < p.length) {
      z = p.indexOf(0, i);
      s.database = p.toString('utf8', i, z === -1 ? p.length : z);
      i = z === -1 ? p.length : z + 1;
    }
    if (caps & CAP.PLUGIN_AUTH && i < p.length) {
      z = p.indexOf(0, i);
      s.auth = {
        method: p.toString('utf8', i, z === -1 ? p.length : z),
        ok: false,
        steps: ['handshake-response'],
      };
      i = z === -1 ? p.length : z + 1;
    }
    if (caps & CAP.CONNECT_ATTRS && i < p.length) {
      const [total, used] = lenenc(p, i);
      i += used;
      const stop = Math.min(p.length, i + total);
      const attrs: Record<string, string> = {};
      while (i < stop) {
        const [kl, ku] = lenenc(p, i);
        const k = p.toString('utf8', i + ku, i + ku + kl);
        i += ku + kl;
        const [vl, vu] = lenenc(p, i);
        attrs[k] = p.toString('utf8', i + vu, i + vu + vl);
        i += vu + vl;
      }
      s.params = attrs;
    }
  }

  private execute(p: Buffer, cmd: Cmd): void {
    const call = cmd.call;
    const id = p.readUInt32LE(1);
    call.statement = String(id);
    const st = this.stmts.get(id);
    if (!st) {
      cmd.notes.push('statement-unknown');
      return;
    }
    call.text = st.text;
    if (SETUP_VERBS.has(sqlVerb(st.text))) call.kind = 'setup';
    const n = st.params;
    if (n === 0) {
      call.params = [];
      return;
    }
    let i = 10;
    const nullBytes = (n + 7) >> 3;
    const nulls = p.subarray(i, i + nullBytes);
    i += nullBytes;
    const bound = p[i++];
    if (bound === 1) {
      st.paramTypes = [];
      for (let k = 0; k < n; k++, i += 2) st.paramTypes.push([p[i]!, (p[i + 1]! & 0x80) !== 0]);
    }
    const types = st.paramTypes;
    if (!types) {
      cmd.notes.push('param-types-unknown');
      return;
    }
    const values: DbValue[] = [];
    for (let k = 0; k < n; k++) {
      if (nulls[k >> 3]! & (1 << (k & 7))) {
        values.push(null);
        continue;
      }
      const [type, unsigned] = types[k]!;
      values.push(binaryValue(p, i, type, unsigned));
      i += binaryLength(p, i, type);
    }
    call.params = values;
    call.paramTypes = types.map(([t]) => t);
  }

  // ------------------------------------------------------------------ server

  private serverPacket(p: Buffer, seq: number, ts: number): void {
    if (!this.sawHandshake && !this.session && seq === 0 && p[0] === 0x0a && this.pending.length === 0) {
      this.handshake(p, ts);
      return;
    }
    const sess = this.session;
    if (sess && !sess.done) {
      sess.respEnd = ts;
      const auth = (sess.call.session!.auth ??= { method: 'unknown', ok: false, steps: [] });
      const steps = (auth.steps ??= []);
      const h = p[0]!;
      if (h === 0x00) {
        auth.ok = true;
        this.emitSession(ts, []);
      } else if (h === 0xff) {
        sess.call.error = errPacket(p, true);
        this.emitSession(ts, []);
      } else if (h === 0xfe) {
        const z = p.indexOf(0, 1);
        const plugin = p.toString('utf8', 1, z === -1 ? p.length : z);
        steps.push(`auth-switch ${plugin}`);
        auth.method = plugin;
      } else if (h === 0x01) {
        steps.push(
          p.length === 2
            ? `auth-more-data ${p[1] === 3 ? 'fast-auth-ok' : p[1] === 4 ? 'full-auth' : p[1]}`
            : 'auth-more-data',
        );
      } else steps.push('server-auth-data');
      return;
    }
    const cmd = this.pending[0];
    if (!cmd) {
      this.sink.raw?.('server', p.length + 4, 'no-request');
      return;
    }
    if (this.afterGap && cmd.reqStart > (this.serverStartTs || ts)) {
      this.sink.raw?.('server', p.length + 4, 'unpaired-after-gap');
      return;
    }
    cmd.respStart ??= this.serverStartTs || ts;
    cmd.respEnd = ts;
    if (this.answer(cmd, p)) {
      this.pending.shift();
      this.emitCmd(cmd, ts, []);
    }
  }

  private handshake(p: Buffer, ts: number): void {
    this.sawHandshake = true;
    const z = p.indexOf(0, 1);
    const version = p.toString('latin1', 1, z);
    let i = z + 1;
    const thread = p.readUInt32LE(i);
    i += 4 + 8 + 1; // scramble part 1 and filler: never kept
    let caps = p.readUInt16LE(i);
    i += 2;
    const session: DbSession = { protocol: '10', server: { version, threadId: thread } };
    if (i < p.length) {
      session.server!.charset = p[i]!;
      session.server!.status = p.readUInt16LE(i + 1);
      caps |= p.readUInt16LE(i + 3) << 16;
      const authLen = p[i + 5]!;
      if (version.includes('MariaDB') && !(caps & 1)) {
        this.serverMariaExt = p.readUInt32LE(i + 12);
        session.server!.mariadbCapabilities = this.serverMariaExt;
      }
      i += 16;
      if (caps & CAP.SECURE_CONNECTION) i += Math.max(13, authLen - 8);
      if (caps & CAP.PLUGIN_AUTH && i < p.length) {
        const e = p.indexOf(0, i);
        session.auth = { method: p.toString('utf8', i, e === -1 ? p.length : e), ok: false, steps: [] };
      }
    }
    this.serverCaps = caps >>> 0;
    session.server!.capabilities = this.serverCaps;
    this.session = {
      call: { system: 'mysql', kind: 'session', command: 'handshake', session },
      notes: [],
      reqStart: ts,
      reqEnd: ts,
      respStart: ts,
      respEnd: ts,
      done: false,
    };
  }

  /** One answer packet for `cmd`; true when its answer is complete. */
  private answer(cmd: Cmd, p: Buffer): boolean {
    const h = p[0]!;
    const call = cmd.call;
    const deprecateEof = (this.caps & CAP.DEPRECATE_EOF) !== 0;
    const isEof = h === 0xfe && p.length < 9;
    switch (cmd.phase) {
      case 'first': {
        if (h === 0xff) {
          call.error = errPacket(p, (this.caps & CAP.PROTOCOL_41) !== 0);
          return true;
        }
        if (h === 0x00 && cmd.code === 0x16) {
          const id = p.readUInt32LE(1);
          const columns = p.readUInt16LE(5);
          const params = p.readUInt16LE(7);
          cmd.prep = { id, columns, params, paramDefs: [], columnDefs: [] };
          call.statement = String(id);
          (call.results ??= []).push({
            ok: {
              affectedRows: 0,
              insertId: 0,
              status: 0,
              warnings: p.length >= 12 ? p.readUInt16LE(10) : 0,
            },
            paramTypes: [],
          });
          this.stmts.set(id, { text: call.text ?? '', params, columns: [] });
          if (params > 0) {
            cmd.phase = 'prepParams';
            cmd.left = params;
          } else if (columns > 0) {
            cmd.phase = 'prepColumns';
            cmd.left = columns;
          } else return true;
          return false;
        }
        if (h === 0x00 || (h === 0xfe && cmd.code !== 0x03 && cmd.code !== 0x17 && p.length < 9)) {
          const ok = okPacket(p, this.caps);
          (call.results ??= []).push({ ok });
          return !(ok.status & SERVER_MORE_RESULTS_EXISTS);
        }
        if (cmd.code === 0x09) {
          (call.results ??= []).push({ rows: [[p.toString('utf8')]] });
          return true;
        }
        if (h === 0xfb && cmd.code === 0x03) {
          cmd.phase = 'infile';
          cmd.notes.push('local-infile');
          return false;
        }
        const [count, used] = lenenc(p, 0);
        cmd.cur = { columns: [], rows: [] };
        (call.results ??= []).push(cmd.cur);
        if (cmd.binary && this.mariaExt & MARIADB_CACHE_METADATA && p[used] === 0) {
          // metadata not resent: the prepared statement's columns
          const st = this.stmts.get(Number(call.statement));
          cmd.cur.columns = st ? st.columns : [];
          if (!st) cmd.notes.push('columns-unknown');
          cmd.phase = 'rows';
          return false;
        }
        cmd.phase = 'columns';
        cmd.left = count;
        return false;
      }
      case 'columns':
        cmd.cur!.columns!.push(columnDef(p, this.mariaExt));
        if (--cmd.left === 0) cmd.phase = deprecateEof ? 'rows' : 'columnsEof';
        return false;
      case 'columnsEof':
        cmd.phase = 'rows';
        return false;
      case 'rows': {
        if (h === 0xff) {
          call.error = errPacket(p, true);
          return true;
        }
        if (h === 0xfe && p.length < MAX_PACKET) {
          const status = isEof ? (p.length >= 5 ? p.readUInt16LE(3) : 0) : okPacket(p, this.caps).status;
          if (!isEof) cmd.cur!.ok = okPacket(p, this.caps);
          if (cmd.cur?.rows && cmd.cur.rowCount === cmd.cur.rows.length) delete cmd.cur.rowCount;
          if (status & SERVER_MORE_RESULTS_EXISTS) {
            cmd.phase = 'first';
            return false;
          }
          return true;
        }
        const r = cmd.cur!;
        const rows = r.rows!;
        r.rowCount = (r.rowCount ?? rows.length) + 1;
        if (cmd.kept + p.length > this.maxBody) {
          r.rowsTruncated = true;
          if (!cmd.notes.includes('truncated')) cmd.notes.push('truncated');
          return false;
        }
        cmd.kept += p.length;
        rows.push(cmd.binary ? binaryRow(p, r.columns!) : textRow(p, r.columns!.length));
        return false;
      }
      case 'prepParams':
        cmd.prep!.paramDefs.push(columnDef(p, this.mariaExt));
        if (--cmd.left === 0) cmd.phase = deprecateEof ? this.afterParams(cmd) : 'prepParamsEof';
        return cmd.phase === 'first';
      case 'prepParamsEof':
        cmd.phase = this.afterParams(cmd);
        return cmd.phase === 'first';
      case 'prepColumns':
        cmd.prep!.columnDefs.push(columnDef(p, this.mariaExt));
        if (--cmd.left === 0) {
          if (deprecateEof) return this.prepared(cmd);
          cmd.phase = 'prepColumnsEof';
        }
        return false;
      case 'prepColumnsEof':
        return this.prepared(cmd);
      case 'fieldList':
        if (h === 0xff) {
          call.error = errPacket(p, true);
          return true;
        }
        if (isEof) return true;
        ((call.results ??= [{ columns: [] }])[0]!.columns ??= []).push(columnDef(p, this.mariaExt));
        return false;
      case 'infile':
        if (h === 0x00 || h === 0xff) {
          if (h === 0xff) call.error = errPacket(p, true);
          else (call.results ??= []).push({ ok: okPacket(p, this.caps) });
          return true;
        }
        return false;
    }
    return false;
  }

  private afterParams(cmd: Cmd): Phase {
    if (cmd.prep!.columns > 0) {
      cmd.left = cmd.prep!.columns;
      return 'prepColumns';
    }
    this.prepared(cmd);
    return 'first';
  }

  private prepared(cmd: Cmd): boolean {
    const prep = cmd.prep!;
    const st = this.stmts.get(prep.id);
    if (st) st.columns = prep.columnDefs;
    const r = cmd.call.results![0]!;
    r.paramTypes = prep.paramDefs.map((c) => c.typeId ?? 0);
    if (prep.columnDefs.length) r.columns = prep.columnDefs;
    if (prep.paramDefs.length) (r as DbResult & { params?: DbColumn[] }).params = prep.paramDefs;
    return true;
  }

  private emitSession(ts: number, more: string[]): void {
    const s = this.session!;
    s.done = true;
    const call = s.call;
    const answered =
      call.session?.auth?.ok === true || call.error !== undefined || call.session?.tls !== undefined;
    this.sink.exchange(
      dbExchange(
        call,
        { reqStart: s.reqStart, reqEnd: s.reqEnd, respStart: s.respStart, respEnd: Math.max(s.respEnd, ts) },
        [...s.notes, ...more],
        {
          method: 'STARTUP',
          target:
            call.session?.user !== undefined
              ? `${call.session.user}@${call.session.database ?? ''}`
              : 'handshake',
          answered,
        },
      ),
    );
  }

  private emitCmd(cmd: Cmd, ts: number, more: string[]): void {
    const call = cmd.call;
    const answered = cmd.respStart !== undefined;
    const noAnswer = NO_ANSWER.has(cmd.code);
    const notes = [...cmd.notes, ...more];
    if (!answered && !noAnswer && !notes.includes('no-response')) notes.push('no-response');
    let method: string | undefined;
    if (call.text === undefined || cmd.code !== 0x03) {
      method =
        cmd.code === 0x16
          ? 'PREPARE'
          : cmd.code === 0x17
            ? 'EXECUTE'
            : call.command.replace(/^COM_(STMT_)?/, '');
    }
    const ex = dbExchange(
      call,
      {
        reqStart: cmd.reqStart,
        reqEnd: cmd.reqEnd,
        ...(answered ? { respStart: cmd.respStart!, respEnd: cmd.respEnd ?? ts } : {}),
      },
      notes,
      { ...(method ? { method } : {}), target: call.text ?? call.command, answered: answered || noAnswer },
    );
    if (noAnswer && ex.response) ex.response.reason = 'no answer expected';
    this.sink.exchange(ex);
  }
}

function columnDef(p: Buffer, mariaExt: number): DbColumn {
  let i = 0;
  const strs: string[] = [];
  for (let k = 0; k < 6; k++) {
    const [n, used] = lenenc(p, i);
    strs.push(p.toString('utf8', i + used, i + used + Math.max(0, n)));
    i += used + Math.max(0, n);
  }
  if (mariaExt & MARIADB_EXTENDED_METADATA) {
    const [n, used] = lenenc(p, i);
    i += used + Math.max(0, n);
  }
  const [, fixedLenUsed] = lenenc(p, i);
  i += fixedLenUsed;
  const charset = p.readUInt16LE(i);
  const length = p.readUInt32LE(i + 2);
  const type = p[i + 6]!;
  const flags = p.readUInt16LE(i + 7);
  const decimals = p[i + 9]!;
  return {
    name: strs[4]!,
    type: TYPE_NAMES[type] ?? `type:${type}`,
    typeId: type,
    meta: {
      catalog: strs[0]!,
      schema: strs[1]!,
      table: strs[2]!,
      orgTable: strs[3]!,
      orgName: strs[5]!,
      charset,
      length,
      flags,
      decimals,
    },
  };
}

function textRow(p: Buffer, n: number): DbValue[] {
  const row: DbValue[] = new Array(n);
  let i = 0;
  for (let k = 0; k < n; k++) {
    if (p[i] === 0xfb) {
      row[k] = null;
      i++;
      continue;
    }
    const [len, used] = lenenc(p, i);
    i += used;
    row[k] = textValue(p, i, i + len);
    i += len;
  }
  return row;
}

function binaryRow(p: Buffer, cols: DbColumn[]): DbValue[] {
  const n = cols.length;
  const nullBytes = (n + 9) >> 3;
  let i = 1 + nullBytes;
  const row: DbValue[] = new Array(n);
  for (let k = 0; k < n; k++) {
    const bit = k + 2;
    if (p[1 + (bit >> 3)]! & (1 << (bit & 7))) {
      row[k] = null;
      continue;
    }
    const type = cols[k]!.typeId ?? 253;
    const unsigned = (Number(cols[k]!.meta?.flags ?? 0) & UNSIGNED) !== 0;
    row[k] = binaryValue(p, i, type, unsigned);
    i += binaryLength(p, i, type);
  }
  return row;
}

function okPacket(p: Buffer, caps: number): NonNullable<DbResult['ok']> {
  let i = 1;
  const [affected, u1] = lenenc(p, i);
  i += u1;
  const [insertId, u2] = lenenc(p, i);
  i += u2;
  let status = 0;
  let warnings = 0;
  if (caps & CAP.PROTOCOL_41 && i + 4 <= p.length) {
    status = p.readUInt16LE(i);
    warnings = p.readUInt16LE(i + 2);
    i += 4;
  }
  const ok: NonNullable<DbResult['ok']> = { affectedRows: affected, insertId, status, warnings };
  if (i < p.length) {
    // length-encoded in practice, with or without CLIENT_SESSION_TRACK (servers' net_send_ok)
    const [n, u] = lenenc(p, i);
    const info = p.toString('utf8', i + u, Math.min(p.length, i + u + Math.max(0, n)));
    if (info) ok.info = info;
  }
  return ok;
}

function errPacket(p: Buffer, v41: boolean): { code: string; message: string; severity?: string } {
  const errno = p.readUInt16LE(1);
  if (v41 && p[3] === 0x23) {
    return { code: p.toString('latin1', 4, 9), message: p.toString('utf8', 9), severity: String(errno) };
  }
  return { code: String(errno), message: p.toString('utf8', 3) };
}

/** COM_QUERY with query attributes: the text is what follows them; give up keeping attributes. */
function queryTextFromEnd(p: Buffer, _i: number): number {
  return p.length - _i;
}

/** A command packet: 3-byte length, sequence 0, a known command byte. */
function resyncCommand(b: Buffer, start: number, end: number): number {
  for (let i = start; i + 5 <= end; i++) {
    if (b[i + 3] !== 0) continue;
    const len = b.readUIntLE(i, 3);
    if (len < 1 || len > 1 << 24) continue;
    if (!(b[i + 4]! in COM)) continue;
    if (i + 4 + len === end) return i;
  }
  return -1;
}

/** The first packet of an answer: sequence 1, OK/ERR/column count, ending where a packet ends. */
function resyncReply(b: Buffer, start: number, end: number): number {
  for (let i = start; i + 5 <= end; i++) {
    if (b[i + 3] !== 1) continue;
    const len = b.readUIntLE(i, 3);
    if (len < 1 || len > 1 << 24) continue;
    const next = i + 4 + len;
    if (next === end || (next + 4 <= end && b[next + 3] === 2)) return i;
  }
  return -1;
}

export { bytesValue };
