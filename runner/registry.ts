/**
 * Registry of replay runs, so `retap gc` can remove what a killed run left behind: one JSON file
 * per run under /run/retap/runs (tmpfs: a reboot clears it together with what it lists).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const RUNS_DIR = process.env.RETAP_RUNS_DIR ?? '/run/retap/runs';

export interface RunRecord {
  id: string;
  /** The retap process that owns the run. */
  pid: number;
  createdAt: string;
  netns?: string;
  cgroup?: string;
  dirs: string[];
}

export async function register(rec: RunRecord): Promise<void> {
  await mkdir(RUNS_DIR, { recursive: true, mode: 0o700 });
  await writeFile(join(RUNS_DIR, `${rec.id}.json`), JSON.stringify(rec), { mode: 0o600 });
}

export async function unregister(id: string): Promise<void> {
  await rm(join(RUNS_DIR, `${id}.json`), { force: true });
}

export function listRuns(): RunRecord[] {
  if (!existsSync(RUNS_DIR)) return [];
  const out: RunRecord[] = [];
  for (const f of readdirSync(RUNS_DIR)) {
    if (!f.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(readFileSync(join(RUNS_DIR, f), 'utf8')) as RunRecord);
    } catch {
      /* a half-written record: its run is gone too; gc removes the file */
      out.push({ id: f.slice(0, -5), pid: 0, createdAt: '', dirs: [] });
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
