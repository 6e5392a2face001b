/**
 * PostgreSQL v3 stream decoder. Client messages are queued as they arrive; server messages answer
 * the head of the queue (the server answers every message in order: Parse→1, Bind→2, Describe→t/T/n,
 * Execute→rows+C/I/s, Close→3, Sync→Z, Query→…Z). Calls are what a reader cares about:
 *
 *   session   SSLRequest/GSSENCRequest, StartupMessage, authentication, up to the first ReadyForQuery
 *   query     a simple Query (all its statements' results), or an extended-protocol call: the
 *             Parse/Bind/Describe messages before an Execute, the Execute, and the Sync or Close
 *             that follow it; a Parse/Describe/Sync without an Execute is a call of its own
 *   setup     the same, for SET/RESET/DISCARD statements
 *
 * Statements and portals are tracked per connection, so an Execute of a statement prepared long
 * before (JDBC's server-side cache, pgx's statement cache) still names its SQL text. After an error
 * the server skips to Sync, and so does the pairing. Passwords, MD5 hashes and SCRAM messages are
 * never kept: only the method and the steps. TLS (SSLRequest answered `S`) turns the rest of this
 * stream into ciphertext, counted raw; the plaintext arrives as its own stream.
 *
 * Gaps: a message cut by a gap is dropped and the side resyncs on two plausible message headers in
 * a row; calls whose messages or answers may have been lost are marked `gap`, never guessed.
 */
import type { DbCall, DbColumn, DbError, DbResult, DbSession, DbValue } from '../../../core/db.js';
import { dbExchange, SideBuffer, sqlVerb } from '../db-common.js';
import { latin1, RowStore, setRows, textValue } from '../db-rows.js';
import type { DecoderOptions, DecoderSink, Side, StreamDecoder } from '../types.js';
import { binaryParam, pgTypeName } from './types.js';

export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;
export const PROTOCOL_3 = 196608;

/** Message type bytes each side may send (a table: one load per message). */
const typeTable = (types: string): Uint8Array => {
  const t = new Uint8Array(256);
  for (const c of types) t[c.charCodeAt(0)] = 1;
  return t;
};
const CLIENT_TYPES = typeTable('QPBDESHCXpdcfF');
const SERVER_TYPES = typeTable('RKSZTDCENAI123ntsGHWdcVv');
const MAX_MESSAGE = 1 << 30;
const MAX_QUEUE = 100_000;
const SETUP_VERBS = new Set(['SET', 'RESET', 'DISCARD']);

const AUTH_NAMES: Record<number, string> = {
  0: 'ok',
  2: 'kerberos-v5',
  3: 'cleartext',
  5: 'md5',
  7: 'gss',
  8: 'gss-continue',
  9: 'sspi',
  10: 'sasl',
  11: 'sasl-continue',
  12: 'sasl-final',
};

interface Call {
  call: DbCall;
  notes: string[];
  reqStart: number;
  reqEnd: number;
  respStart?: number;
  respEnd?: number;
  /** Messages of this call still waiting for their answer. */
  open: number;
  /** No more client messages will join this call. */
  closed: boolean;
  hasExecute: boolean;
  answered: boolean;
  sent?: boolean;
  /** Result being filled (simple query: one per statement). */
  cur?: DbResult;
  /** Rows kept so far (bytes), for the body cap. */
  kept: number;
}

interface Msg {
  type: number;
  call: Call;
  /** Describe: 'S' or 'P'; Close: 'S' or 'P'. */
  target?: number;
  name?: string;
  /** Describe: the text of the statement described, when the client sent it (pipelines re-parse). */
  text?: string;
  /** An error made the server skip this message. */
  skipped?: boolean;
}

interface Statement {
  text: string;
  paramTypes: number[];
  /** `setup` or `query`, from the text's verb. */
  kind: 'setup' | 'query';
  /** Some parameter type was given (not all 0). */
  typed: boolean;
  columns?: DbColumn[] | null;
  /** The columns with the result formats last bound (Executes of one statement share them). */
  formatted?: { source: DbColumn[]; formats: number[]; columns: DbColumn[] };
}

const STEP: string[] = Array.from({ length: 128 }, (_, i) => String.fromCharCode(i));

export class PostgresDecoder implements StreamDecoder {
  private readonly client = new SideBuffer();
  private readonly server = new SideBuffer();
  /** Client is before (or between) untyped startup-phase messages. */
  private clientStartup = true;
  /** Server owes a one-byte answer to SSLRequest/GSSENCRequest. */
  private serverByte = 0;
  private tls = false;
  private session: Call | undefined;
  private queue: Msg[] = [];
  private current: Call | undefined;
  private readonly statements = new Map<string, Statement>();
  private readonly portals = new Map<string, { statement: string; resultFormats: number[] }>();
  private skipToSync = false;
  private clientResync = false;
  private serverResync = false;
  private afterGap = false;
  private clientStartTs = 0;
  private serverStartTs = 0;
  private readonly maxBody: number;
  private readonly maxBuffer: number;
  /** Row bytes of the result being read (one at a time: the server answers in order). */
  private readonly store = new RowStore();
  private open: { r: DbResult; call: Call; total: number } | undefined;
  private lastRowDesc: { bytes: Buffer; cols: DbColumn[] } | undefined;

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
      if (side === 'client') this.drainClient(tsNs);
      else this.drainServer(tsNs);
    } catch {
      this.lose(side, tsNs, 'decoder-error');
    }
    // rows noted in the pushed memory are copied before it goes back to the caller
    this.store.flush();
    b.settle();
  }

  gap(side: Side, _length: number, tsNs: number): void {
    if (this.tls) return;
    this.lose(side, tsNs, 'gap');
  }

  end(tsNs: number): void {
    if (this.client.length > 0) this.sink.raw?.('client', this.client.length, 'incomplete');
    if (this.server.length > 0) this.sink.raw?.('server', this.server.length, 'incomplete');
    this.client.clear();
    this.server.clear();
    if (this.session) {
      const s = this.session;
      this.session = undefined;
      this.emit(s, tsNs, s.answered ? ['truncated'] : ['no-response']);
    }
    const calls = new Set<Call>();
    for (const m of this.queue) calls.add(m.call);
    if (this.current) calls.add(this.current);
    this.queue = [];
    this.current = undefined;
    for (const c of calls) {
      c.closed = true;
      if (c.open > 0) this.emit(c, tsNs, c.answered ? ['truncated'] : ['no-response']);
      else this.emit(c, tsNs, []);
    }
  }

  /** Bytes lost on one side: what was in flight is marked and the side resyncs. */
  private lose(side: Side, ts: number, reason: string): void {
    this.afterGap = true;
    const b = side === 'client' ? this.client : this.server;
    if (b.length > 0) this.sink.raw?.(side, b.length, reason);
    b.clear();
    if (side === 'client') {
      this.clientResync = !this.clientStartup;
      if (this.current) {
        this.current.notes.push('gap', 'truncated');
        this.current.closed = true;
        this.current = undefined;
      }
    } else {
      this.serverResync = true;
      // any answer may have been lost: what waits for one is reported without it
      const calls = new Set<Call>();
      for (const m of this.queue) calls.add(m.call);
      this.queue = [];
      if (this.current) {
        this.current.closed = true;
        this.current = undefined;
      }
      for (const c of calls) {
        c.closed = true;
        c.open = 0;
        this.emit(c, ts, ['gap', ...(c.answered ? ['truncated'] : ['no-response'])]);
      }
      if (this.session) {
        const s = this.session;
        this.session = undefined;
        this.emit(s, ts, ['gap', 'no-response']);
      }
      this.skipToSync = false;
    }
  }

  // ---------------------------------------------------------------- client

  private drainClient(ts: number): void {
    for (;;) {
      const { buf, start, end } = this.client;
      const avail = end - start;
      if (avail <= 0) return;
      if (this.clientResync) {
        const at = resync(buf, start, end, CLIENT_TYPES);
        if (at < 0) {
          const drop = Math.max(0, avail - 16);
          if (drop > 0) this.sink.raw?.('client', drop, 'resync');
          this.client.consume(drop);
          return;
        }
        if (at > start) this.sink.raw?.('client', at - start, 'resync');
        this.client.consume(at - start);
        this.clientResync = false;
        continue;
      }
      if (this.clientStartup) {
        if (avail < 8) return;
        const len = buf.readInt32BE(start);
        const code = buf.readInt32BE(start + 4);
        if (len < 8 || len > 10000) {
          // not a startup message: we joined after the startup phase
          this.clientStartup = false;
          this.afterGap = true;
          this.clientResync = true;
          continue;
        }
        if (avail < len) return;
        this.startupMessage(buf, start + 8, start + len, code, ts);
        this.client.consume(len);
        continue;
      }
      if (avail < 5) return;
      const type = buf[start]!;
      const len = buf.readInt32BE(start + 1);
      if (CLIENT_TYPES[type] === 0 || len < 4 || len > MAX_MESSAGE) {
        this.lose('client', ts, 'not-postgres');
        continue;
      }
      if (avail < len + 1) {
        if (len + 1 > this.maxBuffer) this.lose('client', ts, 'too-large');
        return;
      }
      this.clientMessage(type, buf, start + 5, start + 1 + len, ts);
      this.client.consume(len + 1);
      this.clientStartTs = ts;
    }
  }

  private startupMessage(buf: Buffer, s: number, e: number, code: number, ts: number): void {
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      const sess = this.sessionCall(ts);
      const requested = code === SSL_REQUEST ? 'SSL' : 'GSSENC';
      sess.call.session!.tls = { requested, answer: '' };
      this.serverByte = code;
      sess.open++;
      return;
    }
    if (code === CANCEL_REQUEST) {
      const call: DbCall = { system: 'postgres', kind: 'session', command: 'cancel', session: {} };
      if (e - s >= 4) call.session!.server = { pid: buf.readInt32BE(s) };
      this.sink.exchange(
        dbExchange(call, { reqStart: this.clientStartTs || ts, reqEnd: ts }, ['cancel'], {
          method: 'CANCEL',
          target: 'CancelRequest',
          answered: false,
        }),
      );
      this.clientStartup = true;
      return;
    }
    const sess = this.sessionCall(ts);
    const params: Record<string, string> = {};
    let i = s;
    while (i < e && buf[i] !== 0) {
      const k0 = buf.indexOf(0, i);
      if (k0 === -1 || k0 >= e) break;
      const v0 = buf.indexOf(0, k0 + 1);
      if (v0 === -1 || v0 >= e) break;
      params[buf.toString('utf8', i, k0)] = buf.toString('utf8', k0 + 1, v0);
      i = v0 + 1;
    }
    const session = sess.call.session!;
    session.protocol = `${code >>> 16}.${code & 0xffff}`;
    if (params.user !== undefined) session.user = params.user;
    session.database = params.database ?? params.user ?? '';
    const rest = { ...params };
    delete rest.user;
    delete rest.database;
    session.params = rest;
    sess.open++;
    sess.reqEnd = ts;
    this.clientStartup = false;
  }

  private sessionCall(ts: number): Call {
    if (!this.session) {
      const session: DbSession = {};
      this.session = {
        call: { system: 'postgres', kind: 'session', command: 'startup', session },
        notes: this.afterGap ? ['gap'] : [],
        reqStart: this.clientStartTs || ts,
        reqEnd: ts,
        open: 0,
        closed: false,
        hasExecute: false,
        answered: false,
        kept: 0,
      };
    }
    this.session.reqEnd = ts;
    return this.session;
  }

  private clientMessage(type: number, buf: Buffer, s: number, e: number, ts: number): void {
    switch (type) {
      case 0x70: {
        // p: password / SASL response during authentication — only the step is kept
        if (this.session) {
          const auth = (this.session.call.session!.auth ??= { method: 'unknown', ok: false, steps: [] });
          auth.steps!.push(auth.method === 'sasl' ? 'client-sasl' : 'client-password');
          this.session.reqEnd = ts;
        }
        return;
      }
      case 0x58: // X: Terminate
        this.closeCurrent();
        return;
      case 0x64: // d: CopyData
      case 0x63: // c: CopyDone
      case 0x66: {
        // f: CopyFail — belongs to the call whose COPY FROM STDIN is running
        const c = this.copyCall();
        if (!c) return;
        const r = c.cur;
        if (type === 0x64 && r?.copy) this.keepCopy(c, r, buf, s, e);
        if (type === 0x66) c.notes.push('copy-fail');
        c.reqEnd = ts;
        return;
      }
      case 0x51: {
        // Q: simple query
        this.closeCurrent();
        const text = cstr(buf, s, e);
        const call = this.newCall({ system: 'postgres', kind: kindOf(text), command: 'query', text }, ts);
        call.closed = true;
        this.enqueue({ type, call });
        return;
      }
      case 0x46: {
        // F: FunctionCall (legacy): answered by V then Z
        this.closeCurrent();
        const call = this.newCall({ system: 'postgres', kind: 'query', command: 'function-call' }, ts);
        if (e - s >= 4) call.call.text = `function ${buf.readUInt32BE(s)}`;
        call.closed = true;
        this.enqueue({ type, call });
        return;
      }
    }
    // extended protocol
    let call = this.current;
    const joinsAfterExecute = type === 0x53 || type === 0x43 || type === 0x48;
    if (call?.hasExecute && !joinsAfterExecute) {
      this.closeCurrent();
      call = undefined;
    }
    if (!call && type === 0x53 && this.lastOpen()) {
      // a Sync after a call that has no Sync yet: part of it
      call = this.lastOpen();
    }
    if (!call) {
      call = this.newCall({ system: 'postgres', kind: 'query', command: 'extended', steps: [] }, ts);
      this.current = call;
    }
    call.reqEnd = ts;
    const c = call.call;
    c.steps!.push(STEP[type]!);
    switch (type) {
      case 0x50: {
        // P: Parse name, text, param types
        const n0 = zero(buf, s, e);
        const name = cname(buf, s, n0);
        const t0 = zero(buf, n0 + 1, e);
        const text = buf.toString('utf8', n0 + 1, t0);
        const count = buf.readInt16BE(t0 + 1);
        const types: number[] = [];
        let typed = false;
        for (let k = 0; k < count; k++) {
          const t = buf.readUInt32BE(t0 + 3 + k * 4);
          if (t !== 0) typed = true;
          types.push(t);
        }
        const kind = kindOf(text);
        this.statements.set(name, { text, paramTypes: types, kind, typed });
        c.text = text;
        c.statement = name;
        c.paramTypes = types;
        c.kind = kind;
        this.enqueue({ type, call, name });
        return;
      }
      case 0x42: {
        // B: Bind portal, statement, formats, values, result formats
        let i = zero(buf, s, e);
        const portal = cname(buf, s, i);
        const j = zero(buf, i + 1, e);
        const stmtName = cname(buf, i + 1, j);
        i = j + 1;
        const nf = buf.readInt16BE(i);
        i += 2;
        const formats: number[] = [];
        for (let k = 0; k < nf; k++, i += 2) formats.push(buf.readInt16BE(i));
        const np = buf.readInt16BE(i);
        i += 2;
        const stmt = this.statements.get(stmtName);
        const values: DbValue[] = [];
        for (let k = 0; k < np; k++) {
          const len = buf.readInt32BE(i);
          i += 4;
          if (len === -1) {
            values.push(null);
            continue;
          }
          const fmt = nf === 0 ? 0 : nf === 1 ? formats[0]! : (formats[k] ?? 0);
          values.push(
            fmt === 1
              ? binaryParam(stmt?.paramTypes[k] ?? 0, buf.subarray(i, i + len))
              : textValue(buf, i, i + len),
          );
          i += len;
        }
        const nr = buf.readInt16BE(i);
        i += 2;
        const resultFormats: number[] = [];
        for (let k = 0; k < nr; k++, i += 2) resultFormats.push(buf.readInt16BE(i));
        this.portals.set(portal, { statement: stmtName, resultFormats });
        c.portal = portal;
        c.statement = stmtName;
        c.params = values;
        if (formats.length) c.paramFormats = formats;
        if (resultFormats.length) c.resultFormats = resultFormats;
        if (stmt) {
          c.text = stmt.text;
          c.kind = stmt.kind;
          if (stmt.typed) c.paramTypes = stmt.paramTypes;
        } else if (c.text === undefined) call.notes.push('statement-unknown');
        this.enqueue({ type, call, name: portal });
        return;
      }
      case 0x44: {
        // D: Describe S|P name
        const target = buf[s]!;
        const name = cname(buf, s + 1, zero(buf, s + 1, e));
        const stmt =
          target === 0x53
            ? this.statements.get(name)
            : this.statements.get(this.portals.get(name)?.statement ?? '\u0000');
        if (c.text === undefined && stmt) {
          c.text = stmt.text;
          c.kind = stmt.kind;
          c.statement = target === 0x53 ? name : this.portals.get(name)!.statement;
        }
        this.enqueue({ type, call, target, name, text: stmt?.text });
        return;
      }
      case 0x45: {
        // E: Execute portal, max rows
        const portal = cname(buf, s, zero(buf, s, e));
        const p = this.portals.get(portal);
        c.portal = portal;
        if (c.text === undefined) {
          const stmt = p ? this.statements.get(p.statement) : undefined;
          if (stmt) {
            c.text = stmt.text;
            c.kind = stmt.kind;
            c.statement = p!.statement;
          } else call.notes.push('statement-unknown');
        }
        call.hasExecute = true;
        const result: DbResult = {};
        const stmt = p ? this.statements.get(p.statement) : undefined;
        if (stmt?.columns) result.columns = formatted(stmt, stmt.columns, p!.resultFormats);
        (c.results ??= []).push(result);
        this.enqueue({ type, call, name: portal });
        return;
      }
      case 0x43: {
        // C: Close S|P name
        const target = buf[s]!;
        const name = cstr(buf, s + 1, e);
        if (target === 0x53) this.statements.delete(name);
        else this.portals.delete(name);
        if (c.statement === undefined && target === 0x53) c.statement = name;
        this.enqueue({ type, call, target, name });
        return;
      }
      case 0x53: // S: Sync
        this.enqueue({ type, call });
        call.closed = true;
        if (this.current === call) this.current = undefined;
        this.maybeEmit(call, ts);
        return;
      case 0x48: // H: Flush — no answer of its own
        return;
    }
  }

  private lastOpen(): Call | undefined {
    const last = this.queue[this.queue.length - 1];
    if (last?.call.call.command !== 'extended') return undefined;
    return last.call.call.steps?.includes('S') ? undefined : last.call;
  }

  private copyCall(): Call | undefined {
    for (const m of this.queue) if (m.call.cur?.copy?.direction === 'in') return m.call;
    return undefined;
  }

  private newCall(call: DbCall, ts: number): Call {
    return {
      call,
      notes: this.afterGap ? ['gap'] : [],
      reqStart: this.clientStartTs || ts,
      reqEnd: ts,
      open: 0,
      closed: false,
      hasExecute: false,
      answered: false,
      kept: 0,
    };
  }

  private closeCurrent(): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    c.closed = true;
    this.maybeEmit(c, c.respEnd ?? c.reqEnd);
  }

  private enqueue(m: Msg): void {
    if (this.skipToSync && m.type !== 0x53) {
      m.skipped = true;
      return;
    }
    m.call.open++;
    if (this.queue.length >= MAX_QUEUE) {
      const old = this.queue.shift()!;
      old.call.open--;
      old.call.notes.push('no-response');
    }
    this.queue.push(m);
  }

  // ---------------------------------------------------------------- server

  private drainServer(ts: number): void {
    for (;;) {
      const { buf, start, end } = this.server;
      const avail = end - start;
      if (avail <= 0) return;
      if (this.serverByte !== 0) {
        const answer = String.fromCharCode(buf[start]!);
        const code = this.serverByte;
        this.serverByte = 0;
        const sess = this.session;
        if (sess) {
          sess.answered = true;
          sess.respStart ??= ts;
          sess.respEnd = ts;
          sess.open = Math.max(0, sess.open - 1);
          if (sess.call.session?.tls) sess.call.session.tls.answer = answer;
        }
        this.server.consume(1);
        if (answer === 'S' || (answer === 'G' && code === GSSENC_REQUEST)) {
          // the rest of this stream is encrypted
          this.tls = true;
          if (sess) {
            this.session = undefined;
            this.emit(sess, ts, []);
          }
          const left = this.server.length;
          if (left > 0) this.sink.raw?.('server', left, 'tls');
          this.server.clear();
          return;
        }
        this.clientStartup = true;
        continue;
      }
      if (this.serverResync) {
        const at = resync(buf, start, end, SERVER_TYPES);
        if (at < 0) {
          const drop = Math.max(0, avail - 16);
          if (drop > 0) this.sink.raw?.('server', drop, 'resync');
          this.server.consume(drop);
          return;
        }
        if (at > start) this.sink.raw?.('server', at - start, 'resync');
        this.server.consume(at - start);
        this.serverResync = false;
        continue;
      }
      if (avail < 5) return;
      const type = buf[start]!;
      const len = buf.readInt32BE(start + 1);
      if (SERVER_TYPES[type] === 0 || len < 4 || len > MAX_MESSAGE) {
        this.lose('server', ts, 'not-postgres');
        continue;
      }
      if (avail < len + 1) {
        // DataRows stream through without being held whole only when they fit
        if (len + 1 > this.maxBuffer) this.lose('server', ts, 'too-large');
        return;
      }
      this.serverMessage(type, buf, start + 5, start + 1 + len, ts);
      this.server.consume(len + 1);
      this.serverStartTs = ts;
    }
  }

  private serverMessage(type: number, buf: Buffer, s: number, e: number, ts: number): void {
    // startup phase: everything up to ReadyForQuery (or a fatal error) answers the StartupMessage
    const sess = this.session;
    if (sess) {
      sess.answered = true;
      sess.respStart ??= this.serverStartTs || ts;
      sess.respEnd = ts;
      const session = sess.call.session!;
      switch (type) {
        case 0x52: {
          // R: Authentication*
          const code = buf.readInt32BE(s);
          const name = AUTH_NAMES[code] ?? `auth-${code}`;
          const auth = (session.auth ??= { method: 'trust', ok: false, steps: [] });
          if (code === 0) auth.ok = true;
          else if (code === 3 || code === 5 || code === 10 || code === 2 || code === 7 || code === 9)
            auth.method = name;
          if (code === 10) {
            const mechs: string[] = [];
            let i = s + 4;
            while (i < e && buf[i] !== 0) {
              const z = buf.indexOf(0, i);
              mechs.push(buf.toString('utf8', i, z));
              i = z + 1;
            }
            auth.steps!.push(`sasl ${mechs.join(',')}`);
          } else auth.steps!.push(name);
          return;
        }
        case 0x53: {
          // S: ParameterStatus
          const k = buf.indexOf(0, s);
          (session.server ??= {})[buf.toString('utf8', s, k)] = cstr(buf, k + 1, e);
          return;
        }
        case 0x4b: // K: BackendKeyData — the pid, never the secret key
          (session.server ??= {}).pid = buf.readInt32BE(s);
          return;
        case 0x76: // v: NegotiateProtocolVersion
          (session.server ??= {}).negotiatedMinor = buf.readInt32BE(s);
          return;
        case 0x4e: // N: notice during startup
          (sess.call.notices ??= []).push(errorFields(buf, s, e));
          return;
        case 0x45: {
          // E: fatal error (bad password, no such database)
          sess.call.error = toError(errorFields(buf, s, e));
          this.session = undefined;
          this.emit(sess, ts, []);
          return;
        }
        case 0x5a: // Z: ReadyForQuery
          sess.call.txStatus = String.fromCharCode(buf[s]!);
          this.session = undefined;
          this.emit(sess, ts, []);
          return;
      }
      return;
    }
    // asynchronous messages
    if (
      type === 0x41 ||
      (type === 0x4e && this.queue.length === 0) ||
      (type === 0x53 && this.queue.length === 0)
    ) {
      this.asyncMessage(type, buf, s, e, ts);
      return;
    }
    const head = this.headMessage();
    if (!head) {
      this.sink.raw?.('server', e - s + 5, 'no-request');
      return;
    }
    const call = head.call;
    if (!call.answered) {
      call.answered = true;
      call.respStart = this.serverStartTs || ts;
    }
    call.respEnd = ts;
    const c = call.call;
    switch (type) {
      case 0x4e: // N: NoticeResponse
        (c.notices ??= []).push(errorFields(buf, s, e));
        return;
      case 0x53: {
        // S: ParameterStatus (after SET of a reported parameter)
        const k = buf.indexOf(0, s);
        (c.notices ??= []).push({ parameter: buf.toString('utf8', s, k), value: cstr(buf, k + 1, e) });
        return;
      }
      case 0x31: // 1 ParseComplete
      case 0x32: // 2 BindComplete
      case 0x33: // 3 CloseComplete
        this.done(head, ts);
        return;
      case 0x74: {
        // t: ParameterDescription — the statement's real parameter types
        const n = buf.readInt16BE(s);
        const types: number[] = [];
        for (let k = 0; k < n; k++) types.push(buf.readUInt32BE(s + 2 + k * 4));
        const stmt = head.name !== undefined ? this.statements.get(head.name) : undefined;
        if (stmt) {
          stmt.paramTypes = types;
          stmt.typed = types.some((t) => t !== 0);
        }
        // several statements prepared before one Sync (pgx batches): the call is the last one's
        if (head.text === undefined || c.text === undefined || head.text === c.text) c.paramTypes = types;
        return;
      }
      case 0x6e: // n: NoData
        if (head.type === 0x44) {
          this.describe(head, null);
          this.done(head, ts);
        }
        return;
      case 0x54: {
        // T: RowDescription
        const cols = this.rowDescription(buf, s, e);
        if (head.type === 0x44) {
          this.describe(head, cols);
          this.done(head, ts);
          return;
        }
        // simple query (or an Execute of a portal described elsewhere): a new result set
        let r: DbResult = { columns: cols };
        const last = head.type === 0x45 ? c.results?.[c.results.length - 1] : undefined;
        if (last && !this.hasRows(last)) {
          last.columns = cols;
          r = last;
        } else (c.results ??= []).push(r);
        call.cur = r;
        this.openRows(call, r);
        return;
      }
      case 0x44: {
        // D: DataRow
        let r = call.cur;
        if (!r) {
          r = c.results?.[c.results.length - 1];
          if (!r || r.tag !== undefined) {
            r = {};
            (c.results ??= []).push(r);
          }
          call.cur = r;
        }
        const o = this.open?.r === r ? this.open : this.openRows(call, r);
        o.total++;
        if (call.kept + (e - s) > this.maxBody) {
          r.rowsTruncated = true;
          if (!call.notes.includes('truncated')) call.notes.push('truncated');
          return;
        }
        call.kept += e - s;
        this.store.add(buf, s - 5, e);
        return;
      }
      case 0x43: {
        // C: CommandComplete
        const tag = cstr(buf, s, e);
        let r = call.cur ?? (head.type === 0x45 ? c.results?.[c.results.length - 1] : undefined);
        if (!r || r.tag !== undefined) {
          r = {};
          (c.results ??= []).push(r);
        }
        r.tag = tag;
        if (this.open?.r === r) this.closeRows();
        else if (r.columns && !this.hasRows(r)) r.rows = [];
        call.cur = undefined;
        if (head.type === 0x45) this.done(head, ts);
        return;
      }
      case 0x49: {
        // I: EmptyQueryResponse
        this.closeRows();
        if (head.type === 0x45 && c.results?.length) c.results[c.results.length - 1]!.empty = true;
        else (c.results ??= []).push({ empty: true });
        call.cur = undefined;
        if (head.type === 0x45) this.done(head, ts);
        return;
      }
      case 0x73: // s: PortalSuspended (row limit reached)
        this.closeRows();
        call.notes.push('portal-suspended');
        if (c.results?.length) c.results[c.results.length - 1]!.tag ??= 'suspended';
        call.cur = undefined;
        this.done(head, ts);
        return;
      case 0x47: // G: CopyInResponse
      case 0x48: // H: CopyOutResponse
      case 0x57: {
        // W: CopyBothResponse
        const format = buf[s]!;
        const n = buf.readInt16BE(s + 1);
        const columnFormats: number[] = [];
        for (let k = 0; k < n; k++) columnFormats.push(buf.readInt16BE(s + 3 + k * 2));
        const r: DbResult = {
          copy: { direction: type === 0x47 ? 'in' : 'out', format, columnFormats, data: [] },
        };
        const last = head.type === 0x45 ? c.results?.[c.results.length - 1] : undefined;
        if (last && !this.hasRows(last) && !last.tag) Object.assign(last, r);
        else (c.results ??= []).push(r);
        call.cur = c.results![c.results!.length - 1];
        return;
      }
      case 0x64: {
        // d: CopyData (COPY TO STDOUT)
        const r = call.cur;
        if (r?.copy) this.keepCopy(call, r, buf, s, e);
        return;
      }
      case 0x63: // c: CopyDone
        return;
      case 0x56: {
        // V: FunctionCallResponse
        const len = buf.readInt32BE(s);
        (c.results ??= []).push({ rows: [[len < 0 ? null : textValue(buf, s + 4, s + 4 + len)]] });
        return;
      }
      case 0x45: {
        // E: ErrorResponse — in the extended protocol the server now skips to Sync
        c.error = toError(errorFields(buf, s, e));
        this.closeRows();
        call.cur = undefined;
        if (head.type === 0x51 || head.type === 0x46 || head.type === 0x53) return; // Z follows
        this.done(head, ts);
        this.skipToSync = true;
        this.skipQueued(ts);
        return;
      }
      case 0x5a: {
        // Z: ReadyForQuery ends a Query, FunctionCall or Sync
        c.txStatus = String.fromCharCode(buf[s]!);
        this.skipToSync = false;
        this.done(head, ts);
        return;
      }
    }
  }

  private asyncMessage(type: number, buf: Buffer, s: number, e: number, ts: number): void {
    const head = this.headMessage();
    let fields: Record<string, string>;
    if (type === 0x41) {
      const pid = buf.readInt32BE(s);
      const c0 = buf.indexOf(0, s + 4);
      fields = {
        notification: buf.toString('utf8', s + 4, c0),
        payload: cstr(buf, c0 + 1, e),
        pid: String(pid),
      };
    } else if (type === 0x53) {
      const k = buf.indexOf(0, s);
      fields = { parameter: buf.toString('utf8', s, k), value: cstr(buf, k + 1, e) };
    } else fields = errorFields(buf, s, e);
    if (head) {
      (head.call.call.notices ??= []).push(fields);
      return;
    }
    const call: DbCall = {
      system: 'postgres',
      kind: 'push',
      command: type === 0x41 ? 'notification' : type === 0x53 ? 'parameter-status' : 'notice',
      notices: [fields],
    };
    const start = this.serverStartTs || ts;
    this.sink.exchange(
      dbExchange(call, { reqStart: start, reqEnd: start, respStart: start, respEnd: ts }, [], {
        method: 'PUSH',
        target: type === 0x41 ? `NOTIFY ${fields.notification}` : call.command,
        answered: true,
      }),
    );
  }

  /**
   * RowDescription → columns; the same bytes as the last one give the same array (a statement run
   * again is described again: node pg describes every Execute). Columns are shared, never changed.
   */
  private rowDescription(buf: Buffer, s: number, e: number): DbColumn[] {
    const n = e - s;
    const last = this.lastRowDesc;
    if (last?.bytes.length === n) {
      const b = last.bytes;
      let i = 0;
      while (i < n && b[i] === buf[s + i]) i++;
      if (i === n) return last.cols;
    }
    const cols = rowDescription(buf, s);
    if (n <= 8192) this.lastRowDesc = { bytes: Buffer.from(buf.subarray(s, e)), cols };
    return cols;
  }

  /** `r` starts receiving rows (the previous result's rows are settled first). */
  private openRows(call: Call, r: DbResult): { r: DbResult; call: Call; total: number } {
    if (this.open) this.closeRows();
    this.open = { r, call, total: 0 };
    return this.open;
  }

  /** The open result gets its rows (decoded when first read if large); rowCount when some were not kept. */
  private closeRows(): void {
    const o = this.open;
    if (!o) return;
    this.open = undefined;
    const kept = this.store.count;
    setRows(o.r, this.store.take(), kept, pgRows, o.r.columns);
    if (o.total !== kept) o.r.rowCount = o.total;
  }

  /** The result has a row set (decoded or not), or is receiving one. */
  private hasRows(r: DbResult): boolean {
    return this.open?.r === r || Object.hasOwn(r, 'rows');
  }

  private headMessage(): Msg | undefined {
    return this.queue[0];
  }

  /** The message at the head of the queue got its whole answer. */
  private done(m: Msg, ts: number): void {
    if (this.queue[0] === m) this.queue.shift();
    m.call.open--;
    this.maybeEmit(m.call, ts);
  }

  /** After an error: queued messages up to the next Sync get no answer. */
  private skipQueued(ts: number): void {
    while (this.queue.length > 0 && this.queue[0]!.type !== 0x53) {
      const m = this.queue.shift()!;
      m.skipped = true;
      m.call.open--;
      this.maybeEmit(m.call, ts);
    }
    if (this.queue.length > 0) this.skipToSync = false;
  }

  private describe(m: Msg, cols: DbColumn[] | null): void {
    const c = m.call.call;
    let stmtName = m.name ?? '';
    if (m.target === 0x50) stmtName = this.portals.get(m.name ?? '')?.statement ?? '\u0000';
    const stmt = this.statements.get(stmtName);
    if (stmt) stmt.columns = cols;
    if (cols === null) return;
    // several statements described before one Sync: the call carries its own statement's columns
    if (m.text !== undefined && c.text !== undefined && m.text !== c.text) return;
    const formats = m.target === 0x50 ? this.portals.get(m.name ?? '')?.resultFormats : undefined;
    const described = formats ? (stmt ? formatted(stmt, cols, formats) : withFormats(cols, formats)) : cols;
    // a described portal's Execute follows: give its result the columns
    const last = c.results?.[c.results.length - 1];
    if (last && !last.columns && !last.tag) last.columns = described;
    else if (!c.results?.length) c.results = [{ columns: described }];
  }

  private keepCopy(call: Call, r: DbResult, buf: Buffer, s: number, e: number): void {
    if (call.kept + (e - s) > this.maxBody) {
      r.rowsTruncated = true;
      if (!call.notes.includes('truncated')) call.notes.push('truncated');
      return;
    }
    call.kept += e - s;
    r.copy!.data.push(textValue(buf, s, e));
  }

  private maybeEmit(call: Call, ts: number): void {
    if (!call.closed || call.open > 0) return;
    this.emit(call, ts, []);
  }

  private emit(call: Call, ts: number, more: string[]): void {
    if (call.sent) return;
    call.sent = true;
    if (this.open?.call === call) this.closeRows();
    const c = call.call;
    // a prepared-only call (Parse/Describe/Sync) still says which results it described
    if (c.results?.length === 0) delete c.results;
    const answered = call.answered || c.error !== undefined;
    const notes = more.length ? [...call.notes, ...more] : call.notes;
    if (!answered && !notes.includes('no-response') && c.command !== 'cancel') notes.push('no-response');
    let method: string | undefined;
    let target: string | undefined;
    if (c.kind === 'session') {
      method = 'STARTUP';
      const s = c.session!;
      target = s.user !== undefined ? `${s.user}@${s.database ?? ''}` : `${s.tls?.requested ?? ''}Request`;
    } else if (c.text === undefined) {
      method =
        c.command === 'extended' ? (c.steps?.includes('C') ? 'CLOSE' : 'SYNC') : c.command.toUpperCase();
      target = c.steps?.join('') ?? c.command;
    }
    this.sink.exchange(
      dbExchange(
        c,
        {
          reqStart: call.reqStart,
          reqEnd: call.reqEnd,
          respStart: answered ? (call.respStart ?? ts) : undefined,
          respEnd: answered ? (call.respEnd ?? ts) : undefined,
        },
        notes,
        { method, target, answered },
      ),
    );
  }
}

export { textValue };

function kindOf(text: string): 'setup' | 'query' {
  return SETUP_VERBS.has(sqlVerb(text)) ? 'setup' : 'query';
}

function cstr(buf: Buffer, s: number, e: number): string {
  const z = buf.indexOf(0, s);
  return buf.toString('utf8', s, z === -1 || z > e ? e : z);
}

/** DataRow messages kept by RowStore → rows (binary-format columns as base64). */
function pgRows(bytes: Buffer, cols: DbColumn[] | undefined): DbValue[][] {
  const rows: DbValue[][] = [];
  const n = bytes.length;
  let m = 0;
  while (m + 7 <= n) {
    // 'D', int32 length (itself included), int16 cells, then per cell int32 length and bytes
    const e = Math.min(
      n,
      m + 1 + ((bytes[m + 1]! << 24) | (bytes[m + 2]! << 16) | (bytes[m + 3]! << 8) | bytes[m + 4]!),
    );
    const count = e >= m + 7 ? (bytes[m + 5]! << 8) | bytes[m + 6]! : 0;
    const row: DbValue[] = new Array(count);
    let i = m + 7;
    for (let k = 0; k < count; k++) {
      if (i + 4 > e) {
        row[k] = null;
        continue;
      }
      const len = (bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!;
      i += 4;
      if (len < 0) {
        row[k] = null;
        continue;
      }
      const end = Math.min(i + len, e);
      row[k] = cols?.[k]?.format === 1 ? { b64: bytes.toString('base64', i, end) } : textValue(bytes, i, end);
      i = end;
    }
    rows.push(row);
    m = Math.max(e, m + 5);
  }
  return rows;
}

function rowDescription(buf: Buffer, s: number): DbColumn[] {
  const n = buf.readInt16BE(s);
  const cols: DbColumn[] = [];
  let i = s + 2;
  for (let k = 0; k < n; k++) {
    const z = buf.indexOf(0, i);
    const name = buf.toString('utf8', i, z);
    i = z + 1;
    const table = buf.readUInt32BE(i);
    const attr = buf.readInt16BE(i + 4);
    const oid = buf.readUInt32BE(i + 6);
    const size = buf.readInt16BE(i + 10);
    const mod = buf.readInt32BE(i + 12);
    const format = buf.readInt16BE(i + 16);
    i += 18;
    cols.push({ name, type: pgTypeName(oid), typeId: oid, format, meta: { table, attr, size, mod } });
  }
  return cols;
}

/** A statement's columns with `formats` applied, the same array for Executes bound alike. */
function formatted(stmt: Statement, cols: DbColumn[], formats: number[]): DbColumn[] {
  const f = stmt.formatted;
  if (
    f?.source === cols &&
    f.formats.length === formats.length &&
    f.formats.every((x, k) => x === formats[k])
  )
    return f.columns;
  const columns = withFormats(cols, formats);
  stmt.formatted = { source: cols, formats, columns };
  return columns;
}

/** Offset of the NUL ending a C string at `s` (or `e`). */
function zero(buf: Buffer, s: number, e: number): number {
  for (let i = s; i < e; i++) if (buf[i] === 0) return i;
  return e;
}

/** A statement or portal name (usually empty or short ASCII). */
function cname(buf: Buffer, s: number, z: number): string {
  if (z <= s) return '';
  for (let i = s; i < z; i++) if (buf[i]! >= 0x80) return buf.toString('utf8', s, z);
  return latin1(buf, s, z);
}

function withFormats(cols: DbColumn[], formats: number[]): DbColumn[] {
  if (formats.length === 0) return cols;
  return cols.map((c, k) => ({ ...c, format: formats.length === 1 ? formats[0]! : (formats[k] ?? 0) }));
}

function errorFields(buf: Buffer, s: number, e: number): Record<string, string> {
  const out: Record<string, string> = {};
  let i = s;
  while (i < e && buf[i] !== 0) {
    const code = String.fromCharCode(buf[i]!);
    const z = buf.indexOf(0, i + 1);
    if (z === -1 || z > e) break;
    out[code] = buf.toString('utf8', i + 1, z);
    i = z + 1;
  }
  return out;
}

function toError(f: Record<string, string>): DbError {
  const err: DbError = { code: f.C ?? '', message: f.M ?? '', fields: f };
  const sev = f.V ?? f.S;
  if (sev) err.severity = sev;
  return err;
}

/** First offset where two plausible messages follow each other (or one ends exactly at `end`). */
function resync(buf: Buffer, start: number, end: number, types: Uint8Array): number {
  for (let i = start; i + 5 <= end; i++) {
    if (types[buf[i]!] === 0) continue;
    const len = buf.readInt32BE(i + 1);
    if (len < 4 || len > 1 << 24) continue;
    const next = i + 1 + len;
    if (next === end) return i;
    if (next + 5 <= end) {
      const len2 = buf.readInt32BE(next + 1);
      if (types[buf[next]!] === 1 && len2 >= 4 && len2 <= 1 << 24) return i;
    }
    if (next > end) return -1;
  }
  return -1;
}
