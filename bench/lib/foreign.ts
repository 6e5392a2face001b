/**
 * Other BPF tracers on the machine: a capture someone else runs (tests on a shared machine) makes
 * every syscall and every libssl call pay its filter too, in every arm. Benchmarks record which
 * runs had company so a reader can tell noise from cost.
 */
import { execFileSync } from 'node:child_process';

/** pids holding perf-attached BPF programs (tracepoints, uprobes), except `ours`. */
export function otherTracers(ours: number[] = []): number[] {
  const pids = new Set(tracerPids());
  for (const p of ours) pids.delete(p);
  return [...pids].sort((a, b) => a - b);
}

/** pids holding perf-attached BPF programs, from `bpftool perf list` (empty without bpftool). */
export function tracerPids(): number[] {
  let out = '';
  try {
    out = execFileSync('bpftool', ['perf', 'list'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return [];
  }
  const pids = new Set<number>();
  for (const m of out.matchAll(/^pid (\d+)/gm)) pids.add(Number(m[1]));
  return [...pids];
}
