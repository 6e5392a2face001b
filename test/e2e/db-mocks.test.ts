/**
 * Database mocks against real clients: each client runs its workload against the real server
 * (recorded through the loopback relay, decoded), then the same workload against the mock started
 * from that recording, and must see the same answers; a changed query or parameter is refused with
 * the protocol's own error naming the closest recording and what differs.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Exchange } from '../../core/exchange.js';
import { packageRoot } from '../../core/paths.js';
import { planMocks, type RunningMocks, startMocks } from '../../runner/mocks/index.js';
import { createEphemeralCa } from '../../runner/tls/ca.js';
import { createSnapshotWriter } from '../../snapshots/index.js';
import {
  type DbServer,
  databaseUnavailable,
  startMariadb,
  startPostgres,
  startRedis,
} from '../helpers/databases.js';
import { record } from '../helpers/db-record.js';
import { skipWithoutTool } from '../helpers/privileged.js';

const run = promisify(execFile);
const clients = join(packageRoot(), 'test', 'fixtures', 'db', 'clients.py');

/** A Python client's workload against `port`: what it saw, as JSON text. */
async function python(
  kind: 'psycopg' | 'pymysql' | 'mysqlconn' | 'redis' | 'pubsub',
  port: number,
): Promise<string> {
  return (await run('python3', [clients, kind, String(port)])).stdout;
}

/** Records `drive` against the real server, then runs it against the mock: both outputs and the misses. */
async function sameThroughMock(
  protocol: 'postgres' | 'mysql' | 'redis',
  server: DbServer,
  drive: (port: number) => Promise<string>,
) {
  let real = '';
  const rec = await record(protocol, server, async (port) => {
    real = await drive(port);
  });
  const { mocks, port } = await mock(rec.exchanges);
  try {
    const live = await drive(port);
    return { real, live, misses: mocks.stats().misses, raw: rec.raw };
  } finally {
    await mocks.stop();
  }
}

async function mock(exchanges: Exchange[]): Promise<{ mocks: RunningMocks; port: number }> {
  const plan = planMocks(exchanges);
  const mocks = await startMocks(plan, exchanges, {
    miss: 'fail',
    bindAddr: () => '127.0.0.1',
    bindPort: () => 0,
  });
  return { mocks, port: mocks.endpoints[0]!.port };
}

describe.skipIf(
  skipWithoutTool('postgresql', '/usr/lib/postgresql', 'apt-get install postgresql') ||
    databaseUnavailable('postgres') !== undefined,
)('postgres mock', () => {
  let server: DbServer;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  const workload = async (port: number, id = 2): Promise<unknown[]> => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'retap',
      password: 'retap-pw',
      database: 'retap',
    });
    const seen: unknown[] = [];
    await c.connect();
    try {
      await c.query("SET application_name = 'db-mocks'");
      seen.push((await c.query('select id, name, price from items where id = $1', [id])).rows);
      seen.push(
        (await c.query({ name: 'by-name', text: 'select id from items where name = $1', values: ['pen'] }))
          .rows,
      );
      seen.push(
        (await c.query({ name: 'by-name', text: 'select id from items where name = $1', values: ['cup'] }))
          .rows,
      );
      seen.push((await c.query('select count(*)::int as n from items')).rows);
      await c.query('BEGIN');
      seen.push(
        (await c.query('update items set price = price + 1 where id = $1 returning price', [1])).rows,
      );
      await c.query('ROLLBACK');
      seen.push(
        await c.query('select nope from items').then(
          () => 'no error',
          (e: { code?: string }) => e.code,
        ),
      );
    } finally {
      await c.end();
    }
    return seen;
  };

  it('node pg: the mock answers what the server answered, a changed parameter is refused', async () => {
    const setup = new pg.Client({
      host: '127.0.0.1',
      port: server.port,
      user: 'retap',
      password: 'retap-pw',
      database: 'retap',
    });
    await setup.connect();
    await setup.query(
      "create table if not exists items(id int primary key, name text, price numeric(8,2)); delete from items; insert into items values (1,'pen',1.50),(2,'cup',4.25)",
    );
    await setup.end();
    let real: unknown[] = [];
    const rec = await record('postgres', server, async (port) => {
      real = await workload(port);
    });
    expect(rec.raw).toBe(0);
    expect(real[0]).toEqual([{ id: 2, name: 'cup', price: '4.25' }]);
    const { mocks, port } = await mock(rec.exchanges);
    try {
      expect(await workload(port)).toEqual(real);
      expect(mocks.stats().misses).toEqual([]);
      // the same workload with another id: that query is not in the recording
      await expect(workload(port, 3)).rejects.toThrow(
        /retap mock: no recorded answer .*parameter 1 differs \(recorded "2", live "3"\)/,
      );
      expect(mocks.stats().misses.length).toBeGreaterThan(0);
    } finally {
      await mocks.stop();
    }
  }, 60_000);

  it('psql: simple queries, SSLRequest refused with N', async () => {
    const sql = "select 1 as one; select 'x' as two";
    const env = { ...process.env, PGPASSWORD: 'retap-pw', PGSSLMODE: 'prefer' };
    let real = '';
    const rec = await record('postgres', server, async (port) => {
      real = (
        await run(
          'psql',
          ['-h', '127.0.0.1', '-p', String(port), '-U', 'retap', '-d', 'retap', '-Atc', sql],
          { env },
        )
      ).stdout;
    });
    const session = rec.exchanges.find((e) => e.request.method === 'STARTUP');
    expect(JSON.stringify(session?.extras)).not.toContain('retap-pw');
    const { mocks, port } = await mock(rec.exchanges);
    try {
      const live = (
        await run(
          'psql',
          ['-h', '127.0.0.1', '-p', String(port), '-U', 'retap', '-d', 'retap', '-Atc', sql],
          { env: { ...env, PGPASSWORD: 'wrong' } },
        )
      ).stdout;
      expect(live).toBe(real);
      expect(live).toBe('1\nx\n');
    } finally {
      await mocks.stop();
    }
  }, 60_000);

  it('retap mock serves a snapshot holding PostgreSQL calls standalone (postgres:// URL, stats)', async () => {
    const sql = 'select 40 + 2 as answer';
    const env = { ...process.env, PGPASSWORD: 'retap-pw', PGSSLMODE: 'disable' };
    const psql = (port: number) =>
      run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'retap', '-d', 'retap', '-Atc', sql], {
        env,
      });
    const rec = await record('postgres', server, async (port) => {
      await psql(port);
    });
    const dir = mkdtempSync(join(tmpdir(), 'retap-dbmock-'));
    try {
      const w = await createSnapshotWriter({
        dir: join(dir, 'store'),
        name: 'pg',
        source: { host: 'h', filters: {} },
      });
      for (const e of rec.exchanges) await w.append(e);
      await w.finish({});
      const child = spawn(
        process.execPath,
        [
          join(packageRoot(), 'bin', 'retap.js'),
          'mock',
          w.path,
          '--ports',
          'auto',
          '--json',
          '--duration',
          '60s',
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      const lines = createInterface({ input: child.stdout! });
      const it = lines[Symbol.asyncIterator]();
      const first = JSON.parse((await it.next()).value as string) as {
        endpoints: Array<{ url: string; port: number; protocols: string[] }>;
      };
      expect(first.endpoints).toHaveLength(1);
      expect(first.endpoints[0]!.url).toMatch(/^postgres:\/\/127\.0\.0\.1:\d+$/);
      expect((await psql(first.endpoints[0]!.port)).stdout).toBe('42\n');
      child.kill('SIGTERM');
      const stats = JSON.parse((await it.next()).value as string) as {
        stats: { calls: number; matched: number };
      };
      expect(stats.stats.calls).toBeGreaterThan(0);
      expect(stats.stats.matched).toBe(stats.stats.calls);
      await new Promise((r) => child.once('exit', r));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('psycopg 3: parameters, a server-side prepared statement after prepare_threshold, a transaction, an error', async () => {
    const r = await sameThroughMock('postgres', server, (port) => python('psycopg', port));
    expect(r.raw).toBe(0);
    expect(r.live).toBe(r.real);
    expect(JSON.parse(r.real).at(-1)).toBe('42703');
    expect(r.misses).toEqual([]);
  }, 60_000);
});

describe.skipIf(skipWithoutTool('redis-server', '/usr/bin/redis-server', 'apt-get install redis-server'))(
  'redis mock',
  () => {
    let server: DbServer;
    beforeAll(async () => {
      server = await startRedis({ password: true });
    }, 60_000);
    afterAll(async () => {
      await server?.stop();
    });

    const workload = async (port: number, key = 'user:1'): Promise<unknown[]> => {
      const c = new Redis({
        host: '127.0.0.1',
        port,
        password: 'redis-pw',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: true,
      });
      await c.connect();
      const seen: unknown[] = [];
      try {
        seen.push(await c.set(key, JSON.stringify({ name: 'Ada' }), 'EX', 60));
        seen.push(await c.get(key));
        seen.push(await c.hset('h', 'a', '1', 'b', '2'));
        seen.push(await c.hgetall('h'));
        seen.push(await c.multi().incr('n').incr('n').exec());
        const p = c.pipeline();
        p.get('missing');
        p.del('h');
        seen.push(await p.exec());
        seen.push(await c.hget('nope', 'x').catch((e: Error) => e.message));
      } finally {
        c.disconnect();
      }
      return seen;
    };

    it('ioredis: the mock answers what the server answered (AUTH accepted without the password), a changed key is refused', async () => {
      let real: unknown[] = [];
      const rec = await record('redis', server, async (port) => {
        real = await workload(port);
      });
      expect(JSON.stringify(rec.exchanges)).not.toContain('redis-pw');
      const { mocks, port } = await mock(rec.exchanges);
      try {
        expect(await workload(port)).toEqual(real);
        expect(mocks.stats().misses).toEqual([]);
        await expect(workload(port, 'user:2')).rejects.toThrow(
          /retap mock: no recorded answer for SET.*parameter 1 differs \(recorded "user:1", live "user:2"\)/,
        );
      } finally {
        await mocks.stop();
      }
    }, 60_000);

    it('redis-py: RESP2, MULTI/EXEC pipeline, then a RESP3 connection', async () => {
      const r = await sameThroughMock('redis', server, (port) => python('redis', port));
      expect(r.live).toBe(r.real);
      expect(r.misses).toEqual([]);
    }, 60_000);

    it('redis-py pub/sub: the subscribe confirmation and the published messages come back from the mock', async () => {
      const r = await sameThroughMock('redis', server, (port) => python('pubsub', port));
      expect(JSON.parse(r.real).map((m: { data: unknown }) => m?.data)).toEqual([1, 'hello', 'world']);
      expect(r.live).toBe(r.real);
      expect(r.misses).toEqual([]);
    }, 60_000);

    it('redis-cli: RESP3 after HELLO 3', async () => {
      const args = (port: number) => [
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-3',
        '--no-auth-warning',
        '-a',
        'redis-pw',
      ];
      let real = '';
      const rec = await record('redis', server, async (port) => {
        await run('redis-cli', [...args(port), 'set', 'k', 'v']);
        real = (await run('redis-cli', [...args(port), 'hgetall', 'h2'])).stdout;
      });
      expect(rec.exchanges.some((e) => e.request.version === 'RESP3')).toBe(true);
      const { mocks, port } = await mock(rec.exchanges);
      try {
        await run('redis-cli', [...args(port), 'set', 'k', 'v']);
        expect((await run('redis-cli', [...args(port), 'hgetall', 'h2'])).stdout).toBe(real);
        expect(mocks.stats().misses).toEqual([]);
      } finally {
        await mocks.stop();
      }
    }, 60_000);
  },
);

describe.skipIf(skipWithoutTool('mariadb-server', '/usr/sbin/mariadbd', 'apt-get install mariadb-server'))(
  'mysql mock',
  () => {
    let server: DbServer;
    beforeAll(async () => {
      server = await startMariadb();
    }, 120_000);
    afterAll(async () => {
      await server?.stop();
    });

    it('PyMySQL: parameters, NULL, multi-statement results, an error', async () => {
      const r = await sameThroughMock('mysql', server, (port) => python('pymysql', port));
      expect(r.raw).toBe(0);
      expect(r.live).toBe(r.real);
      expect(JSON.parse(r.real).at(-1)).toBe(1054);
      expect(r.misses).toEqual([]);
    }, 60_000);

    it('mysql-connector (prepared=True): COM_STMT_PREPARE/EXECUTE, binary rows with bigint, double, NULL, datetime', async () => {
      const r = await sameThroughMock('mysql', server, (port) => python('mysqlconn', port));
      expect(r.raw).toBe(0);
      expect(r.live).toBe(r.real);
      expect(r.real).toContain('9007199254740993');
      expect(r.misses).toEqual([]);
    }, 60_000);

    it('mariadb client: text result sets and multi-statements, any password accepted', async () => {
      const sql =
        'create table if not exists t(id int, n varchar(10)); delete from t; insert into t values (1,"x"),(2,NULL); select * from t order by id; select 1+1 as two';
      const args = (port: number, pw: string) => [
        '--no-defaults',
        '-h127.0.0.1',
        `-P${port}`,
        '-uretap',
        `-p${pw}`,
        'retap',
        '-e',
        sql,
      ];
      let real = '';
      const rec = await record('mysql', server, async (port) => {
        real = (await run('mariadb', args(port, 'retap-pw'))).stdout;
      });
      expect(rec.raw).toBe(0);
      const { mocks, port } = await mock(rec.exchanges);
      try {
        const live = (await run('mariadb', args(port, 'not-the-password'))).stdout;
        expect(live).toBe(real);
        expect(mocks.stats().misses).toEqual([]);
      } finally {
        await mocks.stop();
      }
    }, 120_000);

    it('a recording made over TLS is mocked over TLS with the run CA (the client verifies it)', async () => {
      const sql = 'select 40 + 2 as answer';
      const base = (port: number) => [
        '--no-defaults',
        '-h127.0.0.1',
        `-P${port}`,
        '-uretap',
        '-pretap-pw',
        'retap',
        '-N',
        '-e',
        sql,
      ];
      let real = '';
      const rec = await record('mysql', server, async (port) => {
        real = (await run('mariadb', [...base(port), '--skip-ssl'])).stdout;
      });
      expect(real.trim()).toBe('42');
      // the same calls as the TLS plaintext hooks deliver them: marked TLS
      const overTls = rec.exchanges.map((e) => ({ ...e, tls: true }));
      const dir = mkdtempSync(join(tmpdir(), 'retap-mytls-'));
      try {
        const ca = await createEphemeralCa(dir);
        const mocks = await startMocks(planMocks(overTls), overTls, {
          miss: 'fail',
          ca,
          bindAddr: () => '127.0.0.1',
          bindPort: () => 0,
        });
        try {
          const port = mocks.endpoints[0]!.port;
          const verified = ['--ssl', `--ssl-ca=${ca.caCertPath}`, '--ssl-verify-server-cert'];
          // --ssl-verify-server-cert: TLS is required and the certificate must chain to the run's CA
          // bounded: a mock that loses the ClientHello leaves the client waiting for ever
          const live = await run('mariadb', [...base(port), ...verified], { timeout: 30_000 });
          expect(live.stdout).toBe(real);
          expect(mocks.stats().misses).toEqual([]);
        } finally {
          await mocks.stop();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  },
);
