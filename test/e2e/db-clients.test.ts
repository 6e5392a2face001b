/**
 * PostgreSQL clients in other languages against the mock: Go pgx (pgxpool, its per-connection
 * statement cache, statements prepared by hand, a pipelined batch) and Java JDBC (the PostgreSQL
 * driver's server-side prepared statements after prepareThreshold, behind a HikariCP pool that
 * evicts every connection mid-run). Each runs its workload against the real server through the
 * recording relay, then against the mock started from that recording with a wrong password, and
 * must print the same document; a changed parameter is refused with the mock's own error.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbCall } from '../../core/db.js';
import type { Exchange } from '../../core/exchange.js';
import { planMocks, type RunningMocks, startMocks } from '../../runner/mocks/index.js';
import { type DbServer, databaseUnavailable, startPostgres } from '../helpers/databases.js';
import { record } from '../helpers/db-record.js';
import { goPeers, skipWithoutGoPeers } from '../helpers/go-peers.js';
import { jdbcClassPath, skipWithoutJavaPeers } from '../helpers/java-peers.js';
import { skipWithoutTool } from '../helpers/privileged.js';

const run = promisify(execFile);

async function mock(exchanges: Exchange[]): Promise<{ mocks: RunningMocks; port: number }> {
  const mocks = await startMocks(planMocks(exchanges), exchanges, {
    miss: 'fail',
    bindAddr: () => '127.0.0.1',
    bindPort: () => 0,
  });
  return { mocks, port: mocks.endpoints[0]!.port };
}

const calls = (exs: Exchange[]): DbCall[] => exs.map((e) => e.extras?.db as DbCall).filter(Boolean);

describe.skipIf(
  skipWithoutTool('postgresql', '/usr/lib/postgresql', 'apt-get install postgresql') ||
    databaseUnavailable('postgres') !== undefined,
)('PostgreSQL clients in Go and Java against the mock', () => {
  let server: DbServer;
  beforeAll(async () => {
    server = await startPostgres();
    const setup = new pg.Client({
      host: '127.0.0.1',
      port: server.port,
      user: 'retap',
      password: 'retap-pw',
      database: 'retap',
    });
    await setup.connect();
    await setup.query(
      "create table items(id int primary key, name text, price numeric(8,2), stock int); insert into items values (1,'pen',1.50,10),(2,'cup',4.25,5),(3,'lamp',19.90,2)",
    );
    await setup.end();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  describe.skipIf(skipWithoutGoPeers())('Go pgx', () => {
    const gopgx = (port: number, password: string, extra: string[] = []) =>
      run(
        goPeers().gopgx,
        ['-dsn', `postgres://retap:${password}@127.0.0.1:${port}/retap?sslmode=disable`, ...extra],
        {
          timeout: 60_000,
        },
      ).then((r) => r.stdout);

    it('pgxpool with its statement cache, statements prepared under other names, a batch: the mock answers the same', async () => {
      let real = '';
      const rec = await record('postgres', server, async (port) => {
        real = await gopgx(port, 'retap-pw', ['-tag', 'rec']);
      });
      expect(rec.raw).toBe(0);
      const doc = JSON.parse(real) as Record<string, unknown>;
      expect(doc.first).toEqual(['cup', '4.25']);
      expect(doc.prepared).toEqual(['pen=1@1.50', 'cup=2@4.25', 'lamp=3@19.90', 'pen=1@1.50']);
      expect(doc.error).toBe('42703');
      // what pgx did on the wire: cached statements (stmtcache_…), ours by name, more than one connection
      const recorded = calls(rec.exchanges);
      expect(recorded.some((c) => c.statement?.startsWith('stmtcache_'))).toBe(true);
      expect(recorded.some((c) => c.statement === 'by_name_rec')).toBe(true);
      expect(new Set(rec.exchanges.map((e) => e.connection.id)).size).toBeGreaterThan(1);
      expect(JSON.stringify(rec.exchanges)).not.toContain('retap-pw');

      const { mocks, port } = await mock(rec.exchanges);
      try {
        // another statement name, a wrong password: the same answers
        expect(await gopgx(port, 'wrong', ['-tag', 'replay'])).toBe(real);
        expect(mocks.stats().misses).toEqual([]);
        // a changed parameter is not in the recording
        const changed = await gopgx(port, 'wrong', ['-id', '3']).then(
          () => 'no error',
          (e: { stderr?: string }) => e.stderr ?? '',
        );
        expect(changed).toMatch(/retap mock: no recorded answer/);
        expect(changed).toMatch(/parameter 1 differs/);
      } finally {
        await mocks.stop();
      }
    }, 120_000);
  });

  describe.skipIf(skipWithoutJavaPeers())('Java JDBC', () => {
    const jdbc = (port: number, extra: string[] = []) =>
      run('java', ['-cp', jdbcClassPath(), 'dev.retap.test.JdbcPeer', String(port), ...extra], {
        timeout: 90_000,
      }).then((r) => r.stdout);

    it('server-side prepared statements after prepareThreshold, a pool that evicts: the mock answers the same', async () => {
      let real = '';
      const rec = await record('postgres', server, async (port) => {
        real = await jdbc(port);
      });
      expect(rec.raw).toBe(0);
      expect(real).toContain('first: cup@4.25\n');
      expect(real).toContain('error: 42703\n');
      const recorded = calls(rec.exchanges);
      // the driver switched to named statements (S_1, S_2…) once the threshold was reached
      expect(recorded.some((c) => /^S_\d+$/.test(c.statement ?? ''))).toBe(true);
      // eviction: the run opened new connections after the first ones
      const sessions = rec.exchanges.filter((e) => e.request.method === 'STARTUP');
      expect(sessions.length).toBeGreaterThanOrEqual(3);

      const { mocks, port } = await mock(rec.exchanges);
      try {
        expect(await jdbc(port)).toBe(real);
        expect(mocks.stats().misses).toEqual([]);
        const changed = await jdbc(port, ['7']).then(
          () => 'no error',
          (e: { stderr?: string }) => e.stderr ?? '',
        );
        expect(changed).toMatch(/retap mock: no recorded answer/);
      } finally {
        await mocks.stop();
      }
    }, 180_000);
  });
});
