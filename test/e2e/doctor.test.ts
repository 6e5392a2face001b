/**
 * `retap doctor` from dist/, as root (capture can work here) and as an unprivileged user
 * (it cannot, and the output says how to fix it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../core/paths.js';
import { skipPrivileged } from '../helpers/privileged.js';

interface Report {
  ok: boolean;
  checks: { name: string; status: 'ok' | 'warn' | 'fail'; detail: string; fix?: string }[];
}

const root = packageRoot();
const SYSTEM_CHECKS = ['kernel', 'btf', 'privileges', 'tracefs', 'uprobes', 'cgroup2', 'netns'];
const ALL_CHECKS = [...SYSTEM_CHECKS, 'libssl', 'node-tls', 'addon', 'selftest'];

function buildDist(): void {
  const r = spawnSync('flock', ['/tmp/retap-build-ts.lock', 'npm', 'run', '-s', 'build:ts'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 180_000,
  });
  // Others' work in progress may carry type errors; what matters is that our files were emitted.
  for (const f of ['dist/cli/main.js', 'dist/cli/commands/doctor.js', 'dist/capture/doctor-checks.js']) {
    if (!existsSync(join(root, f)))
      throw new Error(`npm run build:ts did not produce ${f}:\n${r.stdout}${r.stderr}`);
  }
}

function doctor(args: string[], asNobody = false): { status: number | null; stdout: string; stderr: string } {
  const cmd = [process.execPath, join(root, 'bin/retap.js'), 'doctor', ...args];
  // Not root already: the unprivileged run is the plain one.
  const [file, argv] =
    asNobody && process.getuid?.() === 0
      ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd]]
      : [cmd[0]!, cmd.slice(1)];
  const env = { ...process.env };
  delete env.RETAP_NATIVE_PATH;
  return spawnSync(file as string, argv as string[], { cwd: root, encoding: 'utf8', timeout: 120_000, env });
}

function byName(report: Report): Map<string, Report['checks'][number]> {
  return new Map(report.checks.map((c) => [c.name, c]));
}

beforeAll(() => buildDist(), 200_000);

describe.skipIf(skipPrivileged())('retap doctor as root', () => {
  it('as root: the system checks pass and the exit code follows the checks', () => {
    const r = doctor(['--json']);
    const report = JSON.parse(r.stdout) as Report;
    const checks = byName(report);
    expect(report.checks.map((c) => c.name)).toEqual(ALL_CHECKS);
    for (const name of SYSTEM_CHECKS) expect(checks.get(name), name).toMatchObject({ status: 'ok' });
    for (const name of ['libssl', 'node-tls']) expect(checks.get(name)?.status, name).not.toBe('fail');
    expect(checks.get('cgroup2')?.detail).toMatch(/^\/sys\/fs\/cgroup/);
    expect(checks.get('node-tls')?.detail).toContain(process.execPath);

    // ci/setup builds everything: as root the whole path must be green, the self-test included
    expect(existsSync(join(root, 'build/Release/retap_native.node'))).toBe(true);
    expect(checks.get('addon')?.status).toBe('ok');
    expect(checks.get('selftest')).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/captured on both ends/),
    });
    expect(report.ok).toBe(true);

    const failed = report.checks.filter((c) => c.status === 'fail');
    expect(report.ok).toBe(failed.length === 0);
    expect(r.status).toBe(report.ok ? 0 : 3);
    for (const c of failed) expect(c.fix, c.name).toBeTruthy();
  });

  it('leaves no network namespace behind', () => {
    doctor(['--json']);
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    expect(list.stdout).not.toMatch(/retap-doctor-/);
  });

  it('prints an aligned table without --json', () => {
    const r = doctor([]);
    const lines = r.stdout.trimEnd().split('\n');
    const rows = lines.slice(0, ALL_CHECKS.length);
    const width = Math.max(...ALL_CHECKS.map((n) => n.length));
    for (const [i, name] of ALL_CHECKS.entries()) {
      const row = rows[i] ?? '';
      expect(row.slice(0, 6)).toMatch(/^(ok {4}|warn {2}|FAIL {2})$/);
      expect(row.slice(6, 6 + width + 2)).toBe(name.padEnd(width + 2));
      expect(row[6 + width + 2]).toMatch(/\S/);
    }
    expect(lines.at(-1)).toMatch(/^retap (can|cannot) capture/);
  });
});

describe('retap doctor as an unprivileged user', () => {
  it('exits non-zero and names the fix', () => {
    const r = doctor(['--json'], true);
    expect(r.status).toBe(3);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.ok).toBe(false);
    const privileges = byName(report).get('privileges');
    expect(privileges?.status).toBe('fail');
    expect(privileges?.detail).toMatch(/uid \d+ without CAP_BPF/);
    expect(privileges?.fix).toBe('run as root: sudo retap doctor');
    expect(byName(report).get('netns')).toMatchObject({
      status: 'fail',
      fix: 'run as root: sudo retap doctor',
    });

    const text = doctor([], true);
    expect(text.status).toBe(3);
    expect(text.stdout).toMatch(/^FAIL {2}privileges .*→ run as root: sudo retap doctor$/m);
  });
});
