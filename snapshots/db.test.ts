/**
 * Database exchanges in snapshots: written and read back through the schema, filtered by verb and
 * status, diffed, exported to HAR (entries whose database call rides in `_retap`) and imported back
 * to the same exchanges; redaction replaces a known secret inside a Redis value and SQL parameters.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeEvents } from '../capture/protocols/collect.js';
import { mysql, postgres, redis } from '../capture/protocols/index.js';
import { encodeResp } from '../capture/protocols/redis/resp.js';
import type { DbCall } from '../core/db.js';
import { type Exchange, emptyBody } from '../core/exchange.js';
import { compileFilter } from './filter.js';
import { encodeExchange } from './format.js';
import { exportHar, importHar } from './har.js';
import { createRedactor, createSnapshotWriter, openSnapshot } from './index.js';
import { PLACEHOLDER_IN_TEXT } from './redaction/rules.js';
import type { RedactionConfig } from './redaction.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-dbsnap-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const pgMsg = (type: string, payload: Buffer): Buffer => {
  const b = Buffer.alloc(5);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(payload.length + 4, 1);
  return Buffer.concat([b, payload]);
};
const cs = (s: string): Buffer => Buffer.from(`${s}\u0000`);

/** Decodes one connection's events and appends its exchanges, as capture would hand them over. */
function decodedInto(
  out: Exchange[],
  protocol: typeof postgres,
  events: Parameters<typeof decodeEvents>[1],
  conn: string,
  port: number,
): void {
  decodeEvents(protocol, events).exchanges.forEach((d, order) => {
    out.push({
      id: `${conn}#${order}`,
      protocol: d.protocol,
      direction: 'outbound',
      tls: false,
      service: { addr: '127.0.0.1', port: 50000, name: 'api' },
      peer: { addr: '10.0.0.5', port },
      connection: { id: conn, order },
      request: d.request,
      ...(d.response ? { response: d.response } : {}),
      timing: {
        startUs: 1_700_000_000_000_000 + out.length,
        requestEndNs: 10,
        responseStartNs: 20,
        responseEndNs: 30,
      },
      ...(d.notes ? { notes: d.notes } : {}),
      ...(d.extras ? { extras: d.extras } : {}),
    });
  });
}

function exchanges(): Exchange[] {
  const out: Exchange[] = [];
  const add = (protocol: typeof postgres, client: Buffer, server: Buffer, conn: string, port: number) => {
    const r = decodeEvents(protocol, [
      { side: 'client', data: client, ts: 1_000 },
      { side: 'server', data: server, ts: 2_000 },
    ]);
    r.exchanges.forEach((d, order) => {
      out.push({
        id: `${conn}#${order}`,
        protocol: d.protocol,
        direction: 'outbound',
        tls: false,
        service: { addr: '127.0.0.1', port: 50000, name: 'api' },
        peer: { addr: '10.0.0.5', port },
        connection: { id: conn, order },
        request: d.request,
        ...(d.response ? { response: d.response } : {}),
        timing: {
          startUs: 1_700_000_000_000_000 + out.length,
          requestEndNs: 10,
          responseStartNs: 20,
          responseEndNs: 30,
        },
        ...(d.notes ? { notes: d.notes } : {}),
        ...(d.extras ? { extras: d.extras } : {}),
      });
    });
  };
  const startup = Buffer.concat([
    Buffer.alloc(4),
    Buffer.from([0, 3, 0, 0]),
    cs('user'),
    cs('app'),
    cs('database'),
    cs('shop'),
    Buffer.from([0]),
  ]);
  startup.writeInt32BE(startup.length, 0);
  add(
    postgres,
    Buffer.concat([
      startup,
      pgMsg('Q', cs("select id, token from sessions where token = 'tok-9f8a7b6c5d4e3f2a'")),
      pgMsg('Q', cs('select nope')),
    ]),
    Buffer.concat([
      pgMsg('R', Buffer.from([0, 0, 0, 0])),
      pgMsg('Z', Buffer.from('I')),
      pgMsg(
        'T',
        Buffer.concat([
          Buffer.from([0, 1]),
          cs('id'),
          Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 255, 255, 255, 255, 0, 0]),
        ]),
      ),
      pgMsg('D', Buffer.from([0, 1, 0, 0, 0, 1, 0x37])),
      pgMsg('C', cs('SELECT 1')),
      pgMsg('Z', Buffer.from('I')),
      pgMsg(
        'E',
        Buffer.concat([
          Buffer.from('C'),
          cs('42703'),
          Buffer.from('M'),
          cs('column "nope" does not exist'),
          Buffer.from([0]),
        ]),
      ),
      pgMsg('Z', Buffer.from('I')),
    ]),
    'p1',
    5432,
  );
  add(
    redis,
    Buffer.concat([
      ...encodeResp(['SET', 'session:tok-9f8a7b6c5d4e3f2a', '{"user":7}']),
      ...encodeResp(['GET', 'cart:7']),
    ]),
    Buffer.concat([...encodeResp({ simple: 'OK' }), ...encodeResp(null)]),
    'r1',
    6379,
  );
  return out;
}

const RESET = 'Zq8v3LmP0xR7tK2wYb5nC9dF';
const SESSION = 'c0ffee5e55104aa7b2d94e61f3a8b7c2';
const API = 'ak_live_7Hq2Xw9Lm3Pz8Rt5Vn1B';
const PG_PW = 'pg-pass-1';
const REDIS_PW = 'hunter2';
const ACL_PW = 'app-pw-77';
const MY_PW = 'my-pw-42';

/**
 * A service whose secrets live in its databases: Redis keeps a reset token under a key named for
 * it and a session under a key that is the token; SQL sets a password, inserts an API key and binds
 * the session token; later requests present them where no HTTP rule would know them as secrets.
 */
function credentialFlow(): Exchange[] {
  const out: Exchange[] = [];
  const push = (protocol: typeof postgres, client: Buffer, server: Buffer, conn: string, port: number) =>
    decodedInto(
      out,
      protocol,
      [
        { side: 'client', data: client, ts: 1_000 },
        { side: 'server', data: server, ts: 2_000 },
      ],
      conn,
      port,
    );
  push(
    redis,
    Buffer.concat([
      ...encodeResp(['SETEX', 'reset_token:7', '900', RESET]),
      ...encodeResp(['SET', `session:${SESSION}`, '{"user":7}']),
      ...encodeResp(['GET', `session:${SESSION}`]),
      ...encodeResp(['CONFIG', 'SET', 'requirepass', REDIS_PW]),
      ...encodeResp(['ACL', 'SETUSER', 'app', 'on', `>${ACL_PW}`]),
      ...encodeResp(['GET', 'cart:7']),
    ]),
    Buffer.concat([
      ...encodeResp({ simple: 'OK' }),
      ...encodeResp({ simple: 'OK' }),
      ...encodeResp('{"user":7}'),
      ...encodeResp({ simple: 'OK' }),
      ...encodeResp({ simple: 'OK' }),
      ...encodeResp(null),
    ]),
    'r2',
    6379,
  );
  const bind = (stmt: string, values: string[]): Buffer => {
    const parts = [cs(''), cs(stmt), Buffer.from([0, 0]), Buffer.alloc(2)];
    parts[3]!.writeInt16BE(values.length);
    for (const v of values) {
      const len = Buffer.alloc(4);
      len.writeInt32BE(Buffer.byteLength(v));
      parts.push(len, Buffer.from(v));
    }
    parts.push(Buffer.from([0, 0]));
    return pgMsg('B', Buffer.concat(parts));
  };
  const startup = Buffer.concat([
    Buffer.alloc(4),
    Buffer.from([0, 3, 0, 0]),
    cs('user'),
    cs('app'),
    Buffer.from([0]),
  ]);
  startup.writeInt32BE(startup.length, 0);
  const ok = (tag: string): Buffer => Buffer.concat([pgMsg('C', cs(tag)), pgMsg('Z', Buffer.from('I'))]);
  push(
    postgres,
    Buffer.concat([
      startup,
      pgMsg('Q', cs(`ALTER ROLE app PASSWORD '${PG_PW}'`)),
      pgMsg('Q', cs(`insert into api_keys (user_id, api_key) values (7, '${API}')`)),
      pgMsg(
        'P',
        Buffer.concat([
          cs('s1'),
          cs('update sessions set token = $1 where user_id = $2'),
          Buffer.from([0, 0]),
        ]),
      ),
      bind('s1', [SESSION, '7']),
      pgMsg('E', Buffer.concat([cs(''), Buffer.alloc(4)])),
      pgMsg('S', Buffer.alloc(0)),
    ]),
    Buffer.concat([
      pgMsg('R', Buffer.from([0, 0, 0, 0])),
      pgMsg('Z', Buffer.from('I')),
      ok('ALTER ROLE'),
      ok('INSERT 0 1'),
      pgMsg('1', Buffer.alloc(0)),
      pgMsg('2', Buffer.alloc(0)),
      ok('UPDATE 1'),
    ]),
    'p2',
    5432,
  );
  // MySQL: handshake v10, the client's answer, OK; then the query and its OK
  const myPacket = (seq: number, p: Buffer): Buffer => {
    const h = Buffer.alloc(4);
    h.writeUIntLE(p.length, 0, 3);
    h[3] = seq;
    return Buffer.concat([h, p]);
  };
  const caps = 512 | (1 << 15) | (1 << 19) | 8;
  const le = (n: number, bytes: number): Buffer => {
    const b = Buffer.alloc(bytes);
    b.writeUIntLE(n, 0, bytes);
    return b;
  };
  const greeting = Buffer.concat([
    Buffer.from([10]),
    Buffer.from('10.11.0-MariaDB\u0000'),
    le(5, 4),
    Buffer.alloc(8, 1),
    Buffer.from([0]),
    le(caps & 0xffff, 2),
    Buffer.from([33]),
    le(2, 2),
    le(caps >>> 16, 2),
    Buffer.from([21]),
    Buffer.alloc(10),
    Buffer.alloc(13, 2),
    Buffer.from('mysql_native_password\u0000'),
  ]);
  const answer = Buffer.concat([
    le(caps | 1, 4),
    le(1 << 24, 4),
    Buffer.from([33]),
    Buffer.alloc(23),
    Buffer.from('app\u0000'),
    Buffer.from([20]),
    Buffer.alloc(20, 3),
    Buffer.from('db\u0000'),
    Buffer.from('mysql_native_password\u0000'),
  ]);
  const myOk = (seq: number): Buffer => myPacket(seq, Buffer.from([0, 0, 0, 2, 0, 0, 0]));
  decodedInto(
    out,
    mysql,
    [
      { side: 'server', data: myPacket(0, greeting), ts: 1_000 },
      { side: 'client', data: myPacket(1, answer), ts: 1_100 },
      { side: 'server', data: myOk(2), ts: 1_200 },
      {
        side: 'client',
        data: myPacket(0, Buffer.from(`\u0003CREATE USER 'app'@'%' IDENTIFIED BY '${MY_PW}'`)),
        ts: 1_300,
      },
      { side: 'server', data: myOk(1), ts: 1_400 },
    ],
    'm2',
    3306,
  );
  const inbound = (target: string, headers: Array<[string, string]>): Exchange => {
    const n = out.length;
    return {
      id: `h1#${n}`,
      protocol: 'http/1.1',
      direction: 'inbound',
      tls: false,
      service: { addr: '127.0.0.1', port: 8080, name: 'api' },
      peer: { addr: '127.0.0.1', port: 41000 },
      connection: { id: 'h1', order: n },
      request: { method: 'GET', target, version: 'HTTP/1.1', headers, body: emptyBody() },
      response: { status: 200, reason: 'OK', version: 'HTTP/1.1', headers: [], body: emptyBody() },
      timing: {
        startUs: 1_700_000_000_000_000 + n,
        requestEndNs: 10,
        responseStartNs: 20,
        responseEndNs: 30,
      },
    };
  };
  out.push(inbound(`/reset/${RESET}`, []));
  out.push(inbound(`/s/${SESSION}`, []));
  out.push(inbound('/me', [['x-client', API]]));
  return out;
}

async function write(exs: Exchange[], redaction: RedactionConfig | false = false): Promise<string> {
  const w = await createSnapshotWriter({
    dir: join(dir, 'store'),
    name: 'api',
    source: { host: 'h', service: 'api', filters: {} },
    redaction,
  });
  for (const ex of exs) await w.append(ex);
  await w.finish({});
  return w.path;
}

async function readAll(path: string): Promise<Exchange[]> {
  const snap = await openSnapshot(path);
  const out: Exchange[] = [];
  for await (const ex of snap.exchanges()) out.push(ex);
  return out;
}

const plain = (x: unknown): unknown =>
  JSON.parse(JSON.stringify(x, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)));

describe('database exchanges in snapshots', () => {
  it('validate, round-trip, and count by protocol and status', async () => {
    const exs = exchanges();
    expect(exs.map((e) => `${e.protocol} ${e.request.method} ${e.response?.status}`)).toEqual([
      'postgres STARTUP 200',
      'postgres SELECT 200',
      'postgres SELECT 500',
      'redis SET 200',
      'redis GET 200',
    ]);
    const path = await write(exs);
    const back = await readAll(path);
    expect(plain(back)).toEqual(plain(exs));
    const manifest = readFileSync(join(path, 'snapshot.yaml'), 'utf8');
    expect(manifest).toMatch(/postgres: 3/);
    expect(manifest).toMatch(/redis: 2/);
  });

  it('an invalid database call is quarantined with the schema path, and the snapshot is written', async () => {
    const all = exchanges();
    (all[1]!.extras!.db as DbCall).kind = 'nonsense' as DbCall['kind'];
    const back = await readAll(await write(all));
    expect(back).toHaveLength(all.length);
    const q = back.find((e) => e.id === all[1]!.id)!;
    expect(q.protocol).toBe('unknown');
    expect(q.quarantine).toMatchObject({
      protocol: 'postgres',
      reason: expect.stringMatching(/extras\.db\.kind/),
    });
    // the others are kept as they were
    expect(
      back.filter((e) => e.id !== q.id).every((e) => e.protocol === 'postgres' || e.protocol === 'redis'),
    ).toBe(true);
  });

  it('filters by verb and status like HTTP exchanges', () => {
    const stored = exchanges().map((e) => JSON.parse(encodeExchange(e)));
    const errors = stored.filter(compileFilter({ statuses: ['5xx'] }));
    expect(errors.map((e) => e.extras.db.error?.code)).toEqual(['42703']);
    expect(stored.filter(compileFilter({ methods: ['SET'] })).map((e) => e.id)).toEqual(['r1#0']);
    expect(stored.filter(compileFilter({ text: 'from sessions' })).map((e) => e.id)).toEqual(['p1#1']);
  });

  it('HAR export carries the call in _retap and imports back to the same exchanges', async () => {
    const path = await write(exchanges());
    const har = join(dir, 'out.har');
    await exportHar(path, har);
    const doc = JSON.parse(readFileSync(har, 'utf8'));
    expect(doc.log.entries[1].request.url).toBe('postgres://10.0.0.5:5432/');
    expect(doc.log.entries[1]._retap.extras.db.text).toContain('select id, token');
    const imported = await importHar(har, {
      dir: join(dir, 'imp'),
      name: 'api',
      redaction: false,
      direction: 'outbound',
    });
    expect(imported.skipped).toEqual([]);
    expect(plain(await readAll(imported.path))).toEqual(plain(await readAll(path)));
  });

  it('redaction: a secret known from elsewhere gets the same placeholder in SQL text, parameters and Redis values', () => {
    const r = createRedactor({ patterns: [{ id: 'session-token', regex: 'tok-[0-9a-f]{16}' }] });
    const [, sel, , set] = exchanges().map((e) => r.redact(e));
    const text = (sel!.extras!.db as DbCall).text!;
    const key = (set!.extras!.db as DbCall).params![0] as string;
    expect(text).not.toContain('tok-9f8a7b6c5d4e3f2a');
    expect(key).not.toContain('tok-9f8a7b6c5d4e3f2a');
    const ph = /REDACTED-[0-9a-f]{16}/.exec(text)![0];
    expect(key).toBe(`session:${ph}`);
  });

  it('redaction by default: database credential positions and a token kept in Redis share one placeholder with the requests that present it', async () => {
    const written = await write(credentialFlow(), {});
    const back = await readAll(written);
    const all = JSON.stringify(back);
    for (const s of [RESET, SESSION, API, PG_PW, REDIS_PW, ACL_PW, MY_PW]) expect(all, s).not.toContain(s);
    const call = (id: string): DbCall => back.find((e) => e.id === id)!.extras!.db as DbCall;
    const ph = (s: string): string => {
      const m = s.match(PLACEHOLDER_IN_TEXT);
      expect(m, s).toHaveLength(1);
      return m![0];
    };
    const byTarget = (t: string): Exchange => back.find((e) => e.request.target.startsWith(t))!;
    // a reset token stored under a key named for it, presented later in a URL path
    const reset = ph(call('r2#0').params![2] as string);
    expect(byTarget('/reset/').request.target).toBe(`/reset/${reset}`);
    // a session token that is the key itself: stored, read back, presented in a path
    const session = ph(call('r2#1').params![0] as string);
    expect(call('r2#1').params).toEqual([`session:${session}`, '{"user":7}']);
    expect(call('r2#2').params).toEqual([`session:${session}`]);
    expect(byTarget('/s/').request.target).toBe(`/s/${session}`);
    // the Redis targets are rebuilt from the redacted arguments
    expect(back.find((e) => e.id === 'r2#1')!.request.target).toBe(
      `SET "session:${session}" "{\\"user\\":7}"`,
    );
    // passwords set through Redis, however short
    expect(call('r2#3').params!.slice(0, 2)).toEqual(['SET', 'requirepass']);
    expect(call('r2#3').params![2]).toMatch(/^REDACTED-[0-9a-f]{16}$/);
    expect(call('r2#4').params![3]).toMatch(/^>REDACTED-[0-9a-f]{16}$/);
    // SQL: a password literal, an inserted token, a bound API key
    expect(call('p2#1').text).toMatch(/^ALTER ROLE app PASSWORD 'REDACTED-[0-9a-f]{16}'$/);
    const api = ph(call('p2#2').text!);
    expect(call('p2#2').text).toBe(`insert into api_keys (user_id, api_key) values (7, '${api}')`);
    expect(back.find((e) => e.id === 'p2#2')!.request.target).toBe(call('p2#2').text);
    expect(byTarget('/me').request.headers).toContainEqual(['x-client', api]);
    expect(call('p2#3').params).toEqual([session, '7']);
    expect(call('m2#1').text).toMatch(/^CREATE USER 'app'@'%' IDENTIFIED BY 'REDACTED-[0-9a-f]{16}'$/);
    // what is not a credential stays
    expect(call('r2#5').params).toEqual(['cart:7']);
    expect(call('p2#3').text).toBe('update sessions set token = $1 where user_id = $2');
    // the in-memory path (redact(), as a live capture uses it) gives the same placeholders
    const live = createRedactor({});
    const flow = credentialFlow();
    for (const ex of flow) live.learn(ex);
    const redacted = flow.map((ex) => live.apply(ex));
    expect(JSON.stringify(redacted)).not.toContain(SESSION);
    expect((redacted.find((e) => e.id === 'r2#2')!.extras!.db as DbCall).params).toEqual([
      `session:${session}`,
    ]);
    expect((redacted.find((e) => e.id === 'p2#1')!.extras!.db as DbCall).text).toBe(call('p2#1').text);
    const summary = (await openSnapshot(written)).manifest.redaction;
    expect(summary.rules).toContain('secret-value');
    expect(summary.redacted.map((r) => r.rule)).toEqual(
      expect.arrayContaining(['db-key', 'db-field', 'db-password']),
    );
  });
});
