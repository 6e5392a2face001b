/**
 * cgroup v2 groups for captured commands: created under the v2 hierarchy (pure v2 at
 * /sys/fs/cgroup, or the hybrid layout's /sys/fs/cgroup/unified), identified to BPF by their id
 * (the directory's inode number), emptied and removed at the end.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, RetapError } from '../core/errors.js';

export function cgroup2Root(): string {
  let mounts = '';
  try {
    mounts = readFileSync('/proc/mounts', 'utf8');
  } catch {
    /* not Linux */
  }
  for (const line of mounts.split('\n')) {
    const [, dir, type] = line.split(' ');
    if (type === 'cgroup2' && dir) return dir;
  }
  throw new RetapError(ErrorCodes.CAPTURE_UNAVAILABLE, 'no cgroup v2 hierarchy is mounted', {
    hint: 'Mount one: mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified',
  });
}

/** The cgroup id BPF sees (bpf_get_current_cgroup_id) for a v2 cgroup directory. */
export function cgroupId(dir: string): bigint {
  return statSync(dir, { bigint: true }).ino;
}

/** Resolve a user-given cgroup: absolute directory, or a path relative to the v2 root. */
export function resolveCgroup(path: string): string {
  const dir = path.startsWith('/sys/') ? path : join(cgroup2Root(), path);
  if (!existsSync(join(dir, 'cgroup.procs'))) {
    throw new RetapError(ErrorCodes.USAGE, `--cgroup ${path}: ${dir} is not a cgroup v2 directory`, {
      hint: `Give a directory under ${cgroup2Root()} (e.g. system.slice/nginx.service).`,
    });
  }
  return dir;
}

export interface Cgroup {
  dir: string;
  id: bigint;
  /** Kill every process still inside and remove the directory. Idempotent. */
  destroy(): void;
  pids(): number[];
}

export function createCgroup(name: string): Cgroup {
  const parent = join(cgroup2Root(), 'retap');
  const dir = join(parent, name);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new RetapError(ErrorCodes.PERMISSION, `cannot create cgroup ${dir}: ${(e as Error).message}`, {
      hint: 'Run as root (retap doctor checks this).',
      cause: e,
    });
  }
  const pids = (): number[] => {
    try {
      return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  return { dir, id: cgroupId(dir), pids, destroy: () => destroyCgroup(dir, pids) };
}

/** Kill what is left in a cgroup directory and remove it (for `retap gc`). */
export function destroyCgroupDir(dir: string): void {
  destroyCgroup(dir, () => {
    try {
      return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

function destroyCgroup(dir: string, pids: () => number[]): void {
  if (!existsSync(dir)) return;
  try {
    writeFileSync(join(dir, 'cgroup.kill'), '1');
  } catch {
    for (const pid of pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  // rmdir fails while the kernel still reaps the killed tasks: retry briefly (bounded)
  const deadline = Date.now() + 3000;
  for (;;) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      if (Date.now() > deadline) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/** Starts a command that moves itself into the cgroup before exec, so it never runs outside it. */
export function spawnInCgroup(dir: string, command: string[], stdio: StdioOptions = 'inherit'): ChildProcess {
  const script = 'echo $$ > "$RETAP_CGROUP_PROCS" && exec "$@"';
  return spawn('/bin/sh', ['-c', script, 'retap-capture', ...command], {
    stdio,
    env: { ...process.env, RETAP_CGROUP_PROCS: join(dir, 'cgroup.procs') },
  });
}
