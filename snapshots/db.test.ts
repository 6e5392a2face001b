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
import { postgres, redis } from '../capture/protocols/index.js';
import { encodeResp } from '../capture/protocols/redis/resp.js';
import type { DbCall } from '../core/db.js';
import type { Exchange } from '../core/exchange.js';
import { compileFilter } from './filter.js';
import { encodeExchange } from './format.js';
import { exportHar, importHar } from './har.js';
import { createRedactor, createSnapshotWriter, openSnapshot } from './index.js';

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

async function write(exs: Exchange[], redaction: false | undefined = false): Promise<string> {
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

  // Needs the value-keyed redactor that walks extras (wave3/redact, landing on main): enabled at that merge.
  it.skip('redaction: a secret known from elsewhere gets the same placeholder in SQL text, parameters and Redis values', () => {
    const r = createRedactor({ patterns: [{ id: 'session-token', regex: 'tok-[0-9a-f]{16}' }] });
    const [, sel, , set] = exchanges().map((e) => r.redact(e));
    const text = (sel!.extras!.db as DbCall).text!;
    const key = (set!.extras!.db as DbCall).params![0] as string;
    expect(text).not.toContain('tok-9f8a7b6c5d4e3f2a');
    expect(key).not.toContain('tok-9f8a7b6c5d4e3f2a');
    const ph = /REDACTED-[0-9a-f]{16}/.exec(text)![0];
    expect(key).toBe(`session:${ph}`);
  });
});
