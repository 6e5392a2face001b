/**
 * Throwaway database servers for tests and benchmarks: Debian's PostgreSQL, MariaDB and Redis, each
 * in its own temp dir, on a free loopback port, stopped by pid. Never a system instance: the data
 * dirs are made here (initdb / mariadb-install-db), sockets live in them, and nothing is installed
 * as a service. PostgreSQL refuses to run as root, so its cluster belongs to the `postgres` user
 * that Debian's package creates; MariaDB and Redis run as root.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, type Proc, start, waitForPort } from './procs.js';

export interface DbServer {
  port: number;
  host: string;
  user: string;
  password: string;
  database: string;
  dir: string;
  proc: Proc;
  stop(): Promise<void>;
}

const PG_BIN = (() => {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const v = readdirSync(base).sort((a, b) => Number(b) - Number(a))[0];
  return v ? join(base, v, 'bin') : undefined;
})();

/** Why a database server cannot be started here (undefined when it can). */
export function databaseUnavailable(kind: 'postgres' | 'mariadb' | 'redis'): string | undefined {
  if (kind === 'postgres') {
    if (!PG_BIN || !existsSync(join(PG_BIN, 'postgres')))
      return 'postgresql is not installed (apt-get install postgresql)';
    if (spawnSync('id', ['postgres']).status !== 0)
      return 'the postgres user is missing (it comes with the postgresql package)';
    return undefined;
  }
  if (kind === 'mariadb')
    return existsSync('/usr/sbin/mariadbd') ? undefined : 'mariadb-server is not installed';
  return existsSync('/usr/bin/redis-server') ? undefined : 'redis-server is not installed';
}

function uidOf(name: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', name]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', name]).toString().trim());
  return { uid, gid };
}

async function until(
  what: string,
  proc: Proc,
  check: () => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (proc.child.exitCode !== null) throw new Error(`${what} exited: ${proc.output().slice(-2000)}`);
    if (Date.now() > deadline)
      throw new Error(`${what} not ready after ${ms} ms: ${proc.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * PostgreSQL 15 with password (scram-sha-256) auth for `retap`/`retap-pw` on database `retap`,
 * md5 for `md5user`, cleartext (`password`) for `clearuser`, trust for the superuser on the socket.
 */
export async function startPostgres(
  opts: { auth?: 'scram-sha-256' | 'md5' | 'password' | 'trust' } = {},
): Promise<DbServer> {
  const dir = mkdtempSync('/tmp/retap-pg-');
  const { uid, gid } = uidOf('postgres');
  chownSync(dir, uid, gid);
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, 'super-pw\n');
  chownSync(pwfile, uid, gid);
  const asPg = { uid, gid, env: { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' } };
  execFileSync(
    join(PG_BIN!, 'initdb'),
    ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '-A', 'trust', '-E', 'UTF8', '--no-sync'],
    {
      ...asPg,
      stdio: 'pipe',
    },
  );
  const method = opts.auth ?? 'scram-sha-256';
  writeFileSync(
    join(data, 'pg_hba.conf'),
    [
      'local all postgres trust',
      'host all md5user 127.0.0.1/32 md5',
      'host all clearuser 127.0.0.1/32 password',
      `host all all 127.0.0.1/32 ${method}`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const proc = start(
    join(PG_BIN!, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'max_connections=60',
      '-c',
      'shared_buffers=16MB',
    ],
    asPg,
  );
  const psql = (sql: string, db = 'postgres'): string =>
    execFileSync(
      'psql',
      ['-h', dir, '-p', String(port), '-U', 'postgres', '-d', db, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql],
      {
        ...asPg,
        stdio: 'pipe',
      },
    ).toString();
  await until('postgres', proc, async () => {
    try {
      await waitForPort(port, 200);
      psql('select 1');
      return true;
    } catch {
      return false;
    }
  });
  try {
    psql("SET password_encryption = 'scram-sha-256'; CREATE ROLE retap LOGIN PASSWORD 'retap-pw';");
    psql('CREATE DATABASE retap OWNER retap');
    psql(
      "SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'md5-pw'; CREATE ROLE clearuser LOGIN PASSWORD 'clear-pw'; GRANT ALL ON DATABASE retap TO md5user, clearuser;",
    );
    psql('GRANT ALL ON SCHEMA public TO PUBLIC', 'retap');
  } catch (e) {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    port,
    host: '127.0.0.1',
    user: 'retap',
    password: 'retap-pw',
    database: 'retap',
    dir,
    proc,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** MariaDB with a `retap`/`retap-pw` user (mysql_native_password) owning database `retap`. */
export async function startMariadb(): Promise<DbServer> {
  const dir = mkdtempSync('/tmp/retap-maria-');
  const data = join(dir, 'data');
  const sock = join(dir, 'sock');
  execFileSync(
    'mariadb-install-db',
    [
      `--datadir=${data}`,
      `--user=${userInfo().username}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      '--skip-name-resolve',
    ],
    { stdio: 'pipe' },
  );
  const port = await freePort();
  const proc = start('/usr/sbin/mariadbd', [
    '--no-defaults',
    `--datadir=${data}`,
    `--socket=${sock}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--user=${userInfo().username}`,
    `--pid-file=${join(dir, 'pid')}`,
    '--skip-name-resolve',
    '--innodb-buffer-pool-size=16M',
    '--innodb-log-file-size=8M',
    '--skip-log-bin',
  ]);
  const sql = (q: string): string =>
    execFileSync('mariadb', ['--no-defaults', `--socket=${sock}`, '-uroot', '-N', '-e', q], {
      stdio: 'pipe',
    }).toString();
  await until('mariadbd', proc, () => {
    try {
      sql('select 1');
      return true;
    } catch {
      return false;
    }
  });
  sql(
    "CREATE DATABASE retap; CREATE USER 'retap'@'127.0.0.1' IDENTIFIED BY 'retap-pw'; GRANT ALL ON retap.* TO 'retap'@'127.0.0.1';",
  );
  return {
    port,
    host: '127.0.0.1',
    user: 'retap',
    password: 'retap-pw',
    database: 'retap',
    dir,
    proc,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Redis with `requirepass` (user `default`, password `redis-pw`) when `password` is set. */
export async function startRedis(opts: { password?: boolean } = {}): Promise<DbServer> {
  const dir = mkdtempSync('/tmp/retap-redis-');
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
  ];
  if (opts.password) args.push('--requirepass', 'redis-pw');
  const proc = start('/usr/bin/redis-server', args);
  await until('redis-server', proc, async () => {
    try {
      await waitForPort(port, 200);
      return true;
    } catch {
      return false;
    }
  });
  return {
    port,
    host: '127.0.0.1',
    user: 'default',
    password: opts.password ? 'redis-pw' : '',
    database: '0',
    dir,
    proc,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
