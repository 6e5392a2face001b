/**
 * The GitHub Action under a real workflow runner: nektos/act (built by ci/act from the Go module
 * proxy) runs test/e2e/act/retap-gate.yml — actions/checkout (act copies the workspace, nothing is
 * downloaded) and `uses: ./` — on this host (`-P self-hosted=-self-hosted`), against a snapshot of
 * the demo's orders service recorded here. Each run asserts what a workflow sees: the action's
 * outputs (read by the workflow's next step), the step summary, the annotations and the job result.
 *
 * Runs as root (with a `sudo` on PATH that fails: the action must not call it), as a user with
 * password-less sudo (a system user the test makes and removes) and as a user with neither (nobody).
 * act runs in a network namespace that has only loopback, under strace recording connect(): the
 * test proves nothing but loopback (and unix sockets) was contacted.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../core/paths.js';
import { type OrdersSnapshot, recordOrdersSnapshot } from '../helpers/demo-snapshot.js';
import { skipPrivileged } from '../helpers/privileged.js';

const root = packageRoot();
const workflow = join(root, 'test', 'e2e', 'act', 'retap-gate.yml');
/** Made in beforeAll (password-less sudo) and removed in afterAll: nothing of it outlives the test. */
const SUDO_USER = `retap-act-${process.pid}`;
const SUDOERS = `/etc/sudoers.d/${SUDO_USER}`;
const ACT_TIMEOUT_MS = 150_000;

function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

const actBin = tryRun(join(root, 'ci', 'act'), ['--path']);

/** What this machine lacks for these tests (ci/setup provides all of it). */
function missing(): string | undefined {
  if (!actBin) return 'act is not built (run ci/act or ci/setup)';
  for (const tool of ['strace', 'unshare', 'setpriv', 'sudo', 'git'])
    if (!tryRun('sh', ['-c', `command -v ${tool}`])) return `${tool} is not installed`;
  for (const tool of ['useradd', 'userdel', 'visudo'])
    if (!tryRun('sh', ['-c', `command -v ${tool}`])) return `${tool} is not installed`;
  return undefined;
}

interface Account {
  name: string;
  uid: number;
  gid: number;
}

function account(name: string): Account {
  return {
    name,
    uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' })),
  };
}

interface ActRun {
  code: number | null;
  /** Every JSON log line act printed. */
  log: Array<Record<string, unknown>>;
  /** Raw lines the steps printed. */
  output: string[];
  /** `name=value` lines of the Verdict step: the action's outputs as the workflow sees them. */
  outputs: Record<string, string>;
  /** The Verdict step's note on each report file: its size, or undefined when missing. */
  sizes: Record<string, number | undefined>;
  annotations: string[];
  summaries: string[];
  jobResult: unknown;
  trace: string;
}

const parseJson = (line: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};

interface Connect {
  family: string;
  address: string;
  port: number;
  result: string;
}

/** connect() calls from an `strace -f -e trace=connect` log, unfinished calls joined with their end. */
function connects(trace: string): Connect[] {
  const pending = new Map<string, string>();
  const calls: string[] = [];
  for (const line of trace.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, rest] = m as unknown as [string, string, string];
    if (rest.startsWith('connect(') && rest.includes('<unfinished ...>'))
      pending.set(pid, rest.replace(' <unfinished ...>', ''));
    else if (rest.startsWith('<... connect resumed>')) {
      calls.push(`${pending.get(pid) ?? 'connect(?'}${rest.replace('<... connect resumed>', '')}`);
      pending.delete(pid);
    } else if (rest.startsWith('connect(')) calls.push(rest);
  }
  return calls.map((c) => {
    const family = /sa_family=(\w+)/.exec(c)?.[1] ?? '?';
    const address =
      /inet_addr\("([^"]+)"\)/.exec(c)?.[1] ??
      /inet_pton\(AF_INET6, "([^"]+)"/.exec(c)?.[1] ??
      /sun_path=(@?"[^"]*")/.exec(c)?.[1] ??
      '';
    const port = Number(/htons\((\d+)\)/.exec(c)?.[1] ?? 0);
    const result = /\)\s+=\s+(.*)$/.exec(c)?.[1] ?? '?';
    return { family, address, port, result };
  });
}

const loopback = (c: Connect): boolean =>
  c.family === 'AF_UNIX' ||
  c.family === 'AF_UNSPEC' ||
  (c.family === 'AF_INET' && c.address.startsWith('127.')) ||
  (c.family === 'AF_INET6' && (c.address === '::1' || c.address.startsWith('::ffff:127.')));

describe.skipIf(skipPrivileged(missing))('the action under a real workflow runner (act)', () => {
  let base: string;
  let recorded: OrdersSnapshot;
  let shadowSudo: string;
  const runsDir = (): string => join(base, 'runs');

  beforeAll(async () => {
    // The workspaces link this tree (node_modules, dist…): were it not set up, the action's
    // `setup: auto` would run ci/setup — npm ci — inside it. Refuse instead of touching it.
    try {
      execFileSync(join(root, 'ci', 'setup'), ['--runtime', '--check'], { stdio: 'pipe' });
    } catch (e) {
      throw new Error(
        `this tree is not set up (ci/setup --runtime --check failed): run ci/setup first — ${String((e as { stderr?: Buffer }).stderr ?? e)}`,
      );
    }
    base = mkdtempSync(join(tmpdir(), 'retap-act-'));
    chmodSync(base, 0o755);
    mkdirSync(runsDir());
    execFileSync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      SUDO_USER,
    ]);
    writeFileSync(`${SUDOERS}.tmp`, `${SUDO_USER} ALL=(root) NOPASSWD: ALL\n`, { mode: 0o440 });
    execFileSync('visudo', ['-cqf', `${SUDOERS}.tmp`]);
    renameSync(`${SUDOERS}.tmp`, SUDOERS);
    recorded = await recordOrdersSnapshot(join(base, 'snapshots'));
    // root must not need sudo: a sudo that fails, first on PATH, catches any call
    shadowSudo = join(base, 'no-sudo-bin');
    mkdirSync(shadowSudo);
    writeFileSync(
      join(shadowSudo, 'sudo'),
      '#!/bin/sh\necho "shadow-sudo: the action called sudo as root: $*" >&2\nexit 97\n',
      { mode: 0o755 },
    );
  }, 120_000);

  afterAll(() => {
    rmSync(SUDOERS, { force: true });
    rmSync(`${SUDOERS}.tmp`, { force: true });
    if (tryRun('id', ['-u', SUDO_USER]) !== undefined) execFileSync('userdel', [SUDO_USER]);
    if (!base) return;
    // nothing left behind by the replays (namespaces, cgroups: retap's runs folder is empty)
    expect(readdirSync(runsDir())).toEqual([]);
    rmSync(base, { recursive: true, force: true });
  });

  /**
   * A checkout of this repository with a service in it: the repository's files (linked to the
   * tree under test, so the action runs this build of retap), retap.yaml and the snapshot.
   */
  function workspace(name: string, yaml: string[], owner?: Account): { dir: string; reports: string } {
    const dir = join(base, name);
    mkdirSync(dir);
    const own = new Set(['.git', '.gitignore', '.github', '.retap', 'retap.yaml', 'action.yml']);
    for (const e of readdirSync(root)) {
      if (own.has(e) || e.startsWith('retap-')) continue;
      symlinkSync(join(root, e), join(dir, e));
    }
    // act reads action.yml through the workspace, where an absolute link would not resolve
    copyFileSync(join(root, 'action.yml'), join(dir, 'action.yml'));
    mkdirSync(join(dir, '.retap', 'snapshots'), { recursive: true });
    symlinkSync(recorded.store, join(dir, '.retap', 'snapshots', 'orders'));
    const reports = join(base, `${name}-reports`);
    writeFileSync(join(dir, 'retap.yaml'), [...yaml, 'ci:', `  reports: ${reports}`, ''].join('\n'));
    const git = (...args: string[]): void => {
      execFileSync('git', ['-c', 'user.name=retap', '-c', 'user.email=retap@localhost', ...args], {
        cwd: dir,
        stdio: 'ignore',
      });
    };
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('commit', '-q', '-m', 'service with retap');
    if (owner) {
      // this user's runner writes the reports itself (no root to hand them back)
      mkdirSync(reports);
      chownSync(reports, owner.uid, owner.gid);
    }
    return { dir, reports };
  }

  /** retap.yaml of the service: the orders build of this tree, started from the workspace. */
  function service(command: string, budgets: string[], extra: string[] = []): string[] {
    return [
      'version: 1',
      'snapshots:',
      '  dir: .retap/snapshots',
      'replay:',
      '  snapshot: orders',
      '  build:',
      `    command: ${command}`,
      '    port: 8080',
      '    readyTimeout: 20s',
      '    env:',
      `      INVENTORY_URL: ${recorded.env.INVENTORY_URL}`,
      `      PAYMENTS_URL: ${recorded.env.PAYMENTS_URL}`,
      // the demo client's passwords, redacted in the snapshot
      `  secrets: ${recorded.secrets}`,
      ...extra,
      'assertions:',
      `  budgets: [${budgets.map((b) => JSON.stringify(b)).join(', ')}]`,
    ];
  }

  /** Runs the workflow with act in a loopback-only network namespace, connect() traced. */
  async function act(dir: string, as?: Account): Promise<ActRun> {
    const home = join(base, `home-${dir.split('/').pop()}`);
    mkdirSync(home);
    if (as) chownSync(home, as.uid, as.gid);
    const tracePath = join(base, `${dir.split('/').pop()}.trace`);
    const argv = [
      'strace',
      // --seccomp-bpf stops only at connect(), but sets no_new_privs, which disables sudo
      ...['-f', ...(as ? [] : ['--seccomp-bpf']), '-qq', '-e', 'trace=connect', '-o', tracePath, '--'],
      ...(as ? ['setpriv', `--reuid=${as.uid}`, `--regid=${as.gid}`, '--init-groups'] : []),
      actBin as string,
      'workflow_dispatch',
      ...['-C', dir, '-W', workflow, '-P', 'self-hosted=-self-hosted'],
      // no cache server (it binds the machine's outbound address), no Docker, no fetches
      ...['--no-cache-server', '--action-offline-mode', '--container-daemon-socket', '-', '--json'],
    ];
    const env: NodeJS.ProcessEnv = {
      PATH: as ? process.env.PATH : `${shadowSudo}:${process.env.PATH}`,
      HOME: home,
      LANG: 'C.UTF-8',
      ACT_DISABLE_VERSION_CHECK: '1',
      RETAP_RUNS_DIR: runsDir(),
    };
    const child = spawn(
      'unshare',
      ['--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...argv],
      {
        cwd: dir,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => child.pid && process.kill(-child.pid, 'SIGKILL'), ACT_TIMEOUT_MS);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    clearTimeout(timer);

    const log = text
      .split('\n')
      .map(parseJson)
      .filter((l): l is Record<string, unknown> => l !== undefined);
    const output = log.filter((l) => l.raw_output === true).map((l) => String(l.msg).replace(/\n$/, ''));
    const verdictLines = log
      .filter((l) => l.raw_output === true && l.step === 'Verdict')
      .map((l) => String(l.msg).replace(/\n$/, ''));
    const outputs: Record<string, string> = {};
    const sizes: Record<string, number | undefined> = {};
    for (const line of verdictLines) {
      const m = /^([a-z-]+)=(.*?)(?: \((\d+) bytes\)| \(missing\))?$/.exec(line);
      if (!m) continue;
      outputs[m[1] as string] = m[2] as string;
      if (line.endsWith(' bytes)') || line.endsWith('(missing)'))
        sizes[m[1] as string] = m[3] === undefined ? undefined : Number(m[3]);
    }
    return {
      code,
      log,
      output,
      outputs,
      sizes,
      annotations: [
        ...new Set(
          log
            .filter((l) => l.command === 'error' || l.command === 'warning')
            .map((l) => String(l.raw).replace(/\n$/, '')),
        ),
      ],
      summaries: [...new Set(log.filter((l) => l.command === 'summary').map((l) => String(l.content)))],
      jobResult: log.find((l) => 'jobResult' in l)?.jobResult,
      trace: existsSync(tracePath) ? readFileSync(tracePath, 'utf8') : '',
    };
  }

  /** Only loopback and unix sockets; act's outbound-address probe fails in the namespace. */
  function expectLoopbackOnly(run: ActRun): void {
    const all = connects(run.trace);
    expect(all.length, 'connect() calls were traced').toBeGreaterThan(0);
    const outside = all.filter((c) => !loopback(c));
    // act v0.2.89 connect()s a UDP socket to 8.8.8.8:80 at start to learn its outbound address
    // (flag defaults; no datagram is sent); in a namespace with only loopback it is unreachable
    for (const c of outside)
      expect(c, 'a connect() beyond loopback').toMatchObject({ address: '8.8.8.8', port: 80 });
    for (const c of outside) expect(c.result).toMatch(/ENETUNREACH/);
  }

  const REPORTS = ['junit', 'summary', 'html', 'json', 'results'] as const;

  function expectEveryOutput(run: ActRun, reports: string): void {
    expect(Object.keys(run.outputs).sort()).toEqual(['exit-code', 'verdict', ...REPORTS].sort());
    expect(run.outputs).toMatchObject({
      junit: join(reports, 'report.junit.xml'),
      summary: join(reports, 'report.md'),
      html: join(reports, 'report.html'),
      json: join(reports, 'report.json'),
      results: join(reports, 'results.json'),
    });
    for (const k of REPORTS) expect(run.sizes[k], `${k} written`).toBeGreaterThan(0);
  }

  /** The summary retap appended, which must also be the Markdown report. */
  function summary(run: ActRun, reports: string): string {
    expect(run.summaries).toHaveLength(1);
    const s = run.summaries[0] as string;
    expect(s.trimEnd()).toBe(readFileSync(join(reports, 'report.md'), 'utf8').trimEnd());
    return s;
  }

  const titles = (run: ActRun): Array<string | undefined> =>
    run.annotations.map((a) => /title=([^:]*)::/.exec(a)?.[1]);

  it('a passing gate: outputs, job summary, no annotations, job succeeds (as root, no sudo)', async () => {
    const ws = workspace('pass', service('node dist/examples/demo/orders.js --port 8080', ['mocks >= 100%']));
    const run = await act(ws.dir);
    expect(run.code, run.output.join('\n')).toBe(0);
    expect(run.jobResult).toBe('success');
    expect(run.outputs).toMatchObject({ verdict: 'pass', 'exit-code': '0' });
    expectEveryOutput(run, ws.reports);
    expect(readFileSync(join(ws.reports, 'report.junit.xml'), 'utf8')).toMatch(
      /<testsuites[^>]*failures="0"/,
    );
    expect(summary(run, ws.reports)).toMatch(/^## ✅ retap: pass — orders v1/);
    expect(run.annotations).toEqual([]);
    expect(run.output).toContain('retap action: the step runs as root (uid 0): retap runs without sudo');
    expect(run.output.join('\n')).not.toContain('shadow-sudo');
    expect(run.output.some((l) => l.startsWith('retap action: retap is set up in'))).toBe(true);
    expectLoopbackOnly(run);
    // the replay itself went through the traced loopback: the build's port in its namespace
    expect(connects(run.trace).some((c) => c.port === 8080 && c.address.startsWith('127.'))).toBe(true);
  }, 180_000);

  it('a regressed build: exit 1, an annotation per failing route and budget, job fails', async () => {
    const ws = workspace(
      'regressed',
      service(
        'node dist/examples/demo/orders.js --port 8080 --variant all',
        ['mocks >= 100%', 'errors < 1%'],
        // judged against the unchanged build: without a baseline a route failing as a whole cannot
        // be told from a replay that did not reproduce its recording (exit 3)
        ['  baseline:', '    command: node dist/examples/demo/orders.js --port 8080'],
      ),
    );
    const run = await act(ws.dir);
    expect(run.code).toBe(1);
    expect(run.jobResult).toBe('failure');
    expect(run.outputs).toMatchObject({ verdict: 'fail-assertions', 'exit-code': '1' });
    expectEveryOutput(run, ws.reports);
    expect(titles(run)).toEqual(
      expect.arrayContaining([
        'retap%3A GET /orders/{id}',
        'retap%3A GET /orders',
        'retap budget%3A errors < 1%25',
      ]),
    );
    for (const a of run.annotations) expect(a).toMatch(/^::error file=retap\.yaml,title=/);
    expect(run.annotations.find((a) => a.includes('title=retap%3A GET /orders/{id}::'))).toMatch(
      /requests fail%0Abreaking: \$\.total changed type: number .* → string/,
    );
    expect(summary(run, ws.reports)).toMatch(/^## ❌ retap: assertion failures — orders v1/);
    expect(readFileSync(join(ws.reports, 'report.junit.xml'), 'utf8')).toMatch(/<failure/);
    expectLoopbackOnly(run);
  }, 180_000);

  it('a budget failure: exit 2, the budget annotated, answers still match', async () => {
    const ws = workspace(
      'budget',
      service('node dist/examples/demo/orders.js --port 8080 --variant slow', [
        'GET /orders/{id}: p95 < 100ms',
      ]),
    );
    const run = await act(ws.dir);
    expect(run.code).toBe(1);
    expect(run.jobResult).toBe('failure');
    expect(run.outputs).toMatchObject({ verdict: 'fail-budgets', 'exit-code': '2' });
    expectEveryOutput(run, ws.reports);
    expect(titles(run)).toEqual(['retap budget%3A GET /orders/{id} p95 < 100ms']);
    expect(run.annotations[0]).toMatch(/over \d+ requests \(allowed < 100ms\)$/);
    const s = summary(run, ws.reports);
    expect(s).toMatch(/^## ⏱️ retap: budget failures — orders v1/);
    expect(s).toContain('No differences beyond noise.');
    expectLoopbackOnly(run);
  }, 180_000);

  it('a build that never starts: exit 3, verdict error, still every output and the summary', async () => {
    const ws = workspace('never-starts', service('echo the build is broken >&2; exit 7', ['mocks >= 100%']));
    const run = await act(ws.dir);
    expect(run.code).toBe(1);
    expect(run.jobResult).toBe('failure');
    expect(run.outputs).toMatchObject({ verdict: 'error', 'exit-code': '3' });
    expectEveryOutput(run, ws.reports);
    expect(titles(run)).toContain('retap%3A infrastructure error (candidate)');
    expect(run.annotations.join('\n')).toMatch(/RETAP_BUILD_\w+/);
    expect(summary(run, ws.reports)).toMatch(/^## 🛑 retap: infrastructure error — orders v1/);
    expect(readFileSync(join(ws.reports, 'report.junit.xml'), 'utf8')).toMatch(/<(error|failure)/);
    expectLoopbackOnly(run);
  }, 180_000);

  it('a broken retap.yaml (bad input): verdict error, the line annotated, every output', async () => {
    const yaml = service('node dist/examples/demo/orders.js --port 8080', ['mocks >= 100%']);
    const line = yaml.indexOf('    port: 8080');
    yaml[line] = '    port: "8080"';
    const ws = workspace('bad-yaml', yaml);
    const run = await act(ws.dir);
    expect(run.code).toBe(1);
    expect(run.jobResult).toBe('failure');
    expect(run.outputs).toMatchObject({ verdict: 'error', 'exit-code': '3' });
    // retap.yaml could not be read, so its ci.reports is unknown: the default folder in the workspace
    for (const k of REPORTS) expect(run.sizes[k], `${k} written`).toBeGreaterThan(0);
    expect(run.outputs.junit).toMatch(/\/hostexecutor\/retap-reports\/report\.junit\.xml$/);
    expect(run.annotations).toHaveLength(1);
    expect(run.annotations[0]).toMatch(
      new RegExp(
        `^::error file=retap\\.yaml,line=${line + 1},title=retap ci::retap\\.yaml:${line + 1}: \\$\\.replay\\.build\\.port must be integer`,
      ),
    );
    expect(run.summaries).toHaveLength(1);
    expect(run.summaries[0]).toMatch(/^## 🛑 retap: infrastructure error\n/);
    expect(run.summaries[0]).toContain('RETAP_CONFIG_INVALID');
    expect(run.summaries[0]).toContain('Nothing was replayed.');
    expectLoopbackOnly(run);
  }, 180_000);

  it('as a user with password-less sudo: retap runs as root through sudo, reports handed back', async () => {
    const user = account(SUDO_USER);
    const ws = workspace('sudo', service('node dist/examples/demo/orders.js --port 8080', ['mocks >= 100%']));
    const run = await act(ws.dir, user);
    expect(run.code, run.output.join('\n')).toBe(0);
    expect(run.jobResult).toBe('success');
    expect(run.output).toContain(
      `retap action: the step runs as ${SUDO_USER} (uid ${user.uid}): retap runs as root through password-less sudo`,
    );
    expect(run.outputs).toMatchObject({ verdict: 'pass', 'exit-code': '0' });
    expectEveryOutput(run, ws.reports);
    expect(summary(run, ws.reports)).toMatch(/^## ✅ retap: pass — orders v1/);
    // written as root, handed back to the runner's user so later steps can read and clean them
    for (const f of [ws.reports, ...readdirSync(ws.reports).map((f) => join(ws.reports, f))])
      expect(statSync(f).uid, f).toBe(user.uid);
    expectLoopbackOnly(run);
  }, 180_000);

  it('as a user without root or sudo: says what is missing, verdict error, every output', async () => {
    const nobody = account('nobody');
    const ws = workspace(
      'no-root',
      service('node dist/examples/demo/orders.js --port 8080', ['mocks >= 100%']),
      nobody,
    );
    const run = await act(ws.dir, nobody);
    expect(run.code).toBe(1);
    expect(run.jobResult).toBe('failure');
    expect(run.outputs).toMatchObject({ verdict: 'error', 'exit-code': '3' });
    expectEveryOutput(run, ws.reports);
    const why = `retap needs root (eBPF, network namespaces, cgroups): this step runs as nobody (uid ${nobody.uid}) and 'sudo -n -E true' failed: sudo: a password is required`;
    expect(run.annotations).toHaveLength(1);
    expect(run.annotations[0]).toContain(`title=retap ci::${why}`);
    expect(run.annotations[0]).toContain('NOPASSWD');
    const s = summary(run, ws.reports);
    expect(s).toMatch(/^## 🛑 retap: infrastructure error\n/);
    expect(s).toContain('RETAP_PERMISSION');
    expect(s).toContain(why);
    // nothing was replayed: no namespace, no build
    expect(connects(run.trace).some((c) => c.port === 8080)).toBe(false);
    expectLoopbackOnly(run);
  }, 180_000);
});
