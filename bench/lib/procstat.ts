/** CPU time and memory of processes from /proc (Linux). */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat; 100 on every Linux we run on. */
const TICKS = 100;

/**
 * CPU seconds (user + system) of a process's live threads, in nanosecond resolution from
 * /proc/<pid>/task/<tid>/schedstat; threads that already exited are not counted, so use it for
 * processes whose threads live through the measurement (nginx, tcpdump, mitmdump).
 */
export function cpuSeconds(pid: number): number {
  try {
    let ns = 0;
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    }
    return ns / 1e9;
  } catch {
    return cpuTicksSeconds(pid);
  }
}

/** user + system CPU seconds from /proc/<pid>/stat (all threads, dead ones too; 10 ms ticks). */
export function cpuTicksSeconds(pid: number | 'self'): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the `(comm)`: state is field 3, utime 14, stime 15
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return Number.NaN;
  }
}

export function cpuSecondsOf(pids: number[]): number {
  return pids.reduce((s, p) => s + cpuSeconds(p), 0);
}

/** Peak resident set (VmHWM) in MiB, or NaN. */
export function peakRssMiB(pid: number | 'self'): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The process and its descendants (e.g. an nginx master and its workers). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && i < 256; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        const kids = readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(' ').map(Number));
      } catch {
        // thread ended meanwhile
      }
    }
  }
  return out;
}

/** CPU seconds per live thread of a process, keyed `tid comm` (schedstat, nanosecond resolution). */
export function threadCpu(pid: number | 'self'): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      out.set(`${t} ${comm}`, ns / 1e9);
    } catch {
      // thread ended meanwhile
    }
  }
  return out;
}
