/**
 * `retap gc` sweeps run namespaces no run record lists and no live retap process owns (a killed
 * run whose record was in another RETAP_RUNS_DIR, or lost): the namespace, a process still inside
 * it, and the run's temp directory go; a namespace whose owner is alive stays, and --dry-run only
 * lists. Namespaces are made by the test with names of the runner's shape and removed whatever
 * happens.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ownerAlive, parseRunNamespace } from '../../runner/orphans.js';
import { skipPrivileged } from '../helpers/privileged.js';

const runsDir = mkdtempSync(join(tmpdir(), 'retap-gc-orphans-runs-'));
process.env.RETAP_RUNS_DIR = runsDir; // an empty registry: no record lists these namespaces

/** A pid that no process has any more. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

const name = (ms: number, pid: number): string =>
  `retap-${ms.toString(36).padStart(8, '0')}${pid.toString(36)}`;

async function gc(args: string[]): Promise<{ code: number; out: string }> {
  const { default: command } = await import('../../cli/commands/gc.js');
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    return { code: await command.run(args), out };
  } finally {
    spy.mockRestore();
  }
}

describe('owner of a run namespace', () => {
  it('is read from the name, and a process started after the namespace is not it', () => {
    expect(parseRunNamespace(name(1_764_400_000_000, 4242))).toEqual({
      createdMs: 1_764_400_000_000,
      pid: 4242,
    });
    expect(parseRunNamespace('retap-run-abc')).toBeUndefined();
    expect(parseRunNamespace('other-mio2x4k01')).toBeUndefined();
    expect(ownerAlive(process.pid, Date.now())).toBe(true);
    // this process did not exist a day ago: a namespace that old with its pid is not its
    expect(ownerAlive(process.pid, Date.now() - 86_400_000)).toBe(false);
    expect(ownerAlive(deadPid(), Date.now())).toBe(false);
  });
});

describe.skipIf(skipPrivileged())('retap gc and orphaned run namespaces', () => {
  const orphan = name(Date.now(), deadPid());
  const live = name(Date.now(), process.pid);
  const runDir = join(tmpdir(), `retap-run-${orphan.slice('retap-'.length)}-x`);
  let inside: ReturnType<typeof spawn> | undefined;

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', orphan]);
    execFileSync('ip', ['netns', 'add', live]);
    mkdirSync(runDir);
    // a build that outlived its runner: it keeps the namespace alive
    inside = spawn('ip', ['netns', 'exec', orphan, 'sleep', '120'], { stdio: 'ignore' });
  });

  afterAll(() => {
    if (inside?.exitCode === null) inside.kill('SIGKILL');
    for (const ns of [orphan, live]) spawnSync('ip', ['netns', 'delete', ns]);
    rmSync(runDir, { recursive: true, force: true });
    rmSync(runsDir, { recursive: true, force: true });
  });

  it('lists the orphan with --dry-run and removes nothing', async () => {
    // the process is inside once `ip netns exec` has switched
    const deadline = Date.now() + 10_000;
    let listed: { orphans: Array<{ netns: string; processes: number[]; dirs: string[] }> } = { orphans: [] };
    for (;;) {
      const r = await gc(['--dry-run', '--json']);
      expect(r.code).toBe(0);
      listed = JSON.parse(r.out);
      if (
        (listed.orphans.find((o) => o.netns === orphan)?.processes.length ?? 0) > 0 ||
        Date.now() > deadline
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const o = listed.orphans.find((x) => x.netns === orphan);
    expect(o).toMatchObject({ processes: [inside!.pid], dirs: [runDir] });
    expect(listed.orphans.map((x) => x.netns)).not.toContain(live);
    expect(existsSync(`/run/netns/${orphan}`)).toBe(true);
    expect(inside!.exitCode).toBeNull();
  });

  it('removes the orphan, the process inside and its temp directory; the live one stays', async () => {
    const exited = new Promise<NodeJS.Signals | null>((r) => inside!.once('exit', (_c, s) => r(s)));
    const r = await gc([]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`removed orphaned namespace ${orphan}`);
    expect(r.out).toContain('1 process inside killed');
    expect(await exited).toBe('SIGKILL');
    expect(existsSync(`/run/netns/${orphan}`)).toBe(false);
    expect(existsSync(`/etc/netns/${orphan}`)).toBe(false);
    expect(existsSync(runDir)).toBe(false);
    expect(existsSync(`/run/netns/${live}`)).toBe(true);
    expect(r.out).not.toContain(live);
  });
});
