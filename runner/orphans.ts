/**
 * Network namespaces that replay runs left behind without a run record `retap gc` can read (the
 * record was in another RETAP_RUNS_DIR, or it is gone) and without a live owner.
 *
 * A run's namespace is named `retap-<creation time: ms, base 36, 8 digits><owner pid, base 36>`
 * (runner/replay.ts), so the owner is known from the name alone: the namespace is an orphan when no
 * process has that pid, or the process with it started after the namespace was made (the pid was
 * reused). What the run left with it goes too: processes still inside the namespace (a build
 * outliving its killed runner keeps the namespace alive), the run's cgroup and temp directory.
 * Names of another shape are never touched.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroup2Root, destroyCgroupDir } from '../capture/cgroup.js';
import { deleteNetns } from './netns.js';

const NETNS_DIR = '/run/netns';
const NAME = /^retap-([0-9a-z]{8})([0-9a-z]{1,8})$/;
/** USER_HZ: /proc's clock ticks per second (100 on every Linux architecture retap runs on). */
const TICKS = 100;

export interface OrphanNamespace {
  netns: string;
  /** The run id (the name without `retap-`). */
  run: string;
  /** The retap process that made it (gone). */
  owner: number;
  createdAt: string;
  /** Processes still inside it. */
  processes: number[];
  cgroup?: string;
  dirs: string[];
}

/** The creation time and owner pid a run namespace's name carries, or undefined for other names. */
export function parseRunNamespace(name: string): { createdMs: number; pid: number } | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const createdMs = Number.parseInt(m[1]!, 36);
  const pid = Number.parseInt(m[2]!, 36);
  if (!Number.isSafeInteger(createdMs) || !(pid > 0)) return undefined;
  return { createdMs, pid };
}

/** Is `pid` alive and the same process as the one that existed at `sinceMs`? */
export function ownerAlive(pid: number, sinceMs: number): boolean {
  const started = startedMs(pid);
  if (started === undefined) return false;
  // a process started after the namespace was made cannot have made it (1 s for clock grain)
  return started <= sinceMs + 1000;
}

function startedMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name (which may hold spaces and parentheses)
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22: starttime
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return undefined;
    return btime * 1000 + (ticks * 1000) / TICKS;
  } catch {
    return undefined;
  }
}

/** Run namespaces not in `recorded` whose owner is gone. */
export function findOrphanNamespaces(recorded: ReadonlySet<string>): OrphanNamespace[] {
  let names: string[];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
  const out: OrphanNamespace[] = [];
  for (const netns of names.sort()) {
    if (recorded.has(netns)) continue;
    const p = parseRunNamespace(netns);
    if (!p || ownerAlive(p.pid, p.createdMs)) continue;
    const run = netns.slice('retap-'.length);
    const cgroup = join(cgroup2Root(), 'retap', `replay-${run}`);
    out.push({
      netns,
      run,
      owner: p.pid,
      createdAt: new Date(p.createdMs).toISOString(),
      processes: processesIn(join(NETNS_DIR, netns)),
      ...(existsSync(cgroup) ? { cgroup } : {}),
      dirs: runDirs(run),
    });
  }
  return out;
}

/** Removes an orphan: its processes (SIGKILL), its cgroup, the namespace and its temp directory. */
export async function sweepOrphan(o: OrphanNamespace): Promise<void> {
  if (o.cgroup) destroyCgroupDir(o.cgroup);
  for (const pid of processesIn(join(NETNS_DIR, o.netns))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  await deleteNetns(o.netns);
  for (const d of o.dirs) rmSync(d, { recursive: true, force: true });
}

/** Processes whose network namespace is the one mounted at `path`. */
function processesIn(path: string): number[] {
  let ino: bigint;
  let dev: bigint;
  try {
    const st = statSync(path, { bigint: true });
    ino = st.ino;
    dev = st.dev;
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = statSync(`/proc/${e}/ns/net`, { bigint: true });
      if (st.ino === ino && st.dev === dev) out.push(Number(e));
    } catch {
      /* gone, or not ours to look at */
    }
  }
  return out;
}

/** The run's temp directories (`retap-run-<run>-*` in the temp folder). */
function runDirs(run: string): string[] {
  try {
    return readdirSync(tmpdir())
      .filter((f) => f.startsWith(`retap-run-${run}-`))
      .map((f) => join(tmpdir(), f));
  } catch {
    return [];
  }
}
