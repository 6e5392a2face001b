/**
 * Store layout: a store directory per snapshot name holding immutable versions `v1/`, `v2/`, …
 * A version is written in a hidden temp directory inside the store and renamed into place, so a
 * reader sees a whole version or none. Files are 0600, directories 0700.
 */
import { constants, existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ErrorCodes, RetapError } from '../core/errors.js';
import { MANIFEST_FILE } from './format.js';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;
const VERSION_DIR = /^v([1-9]\d*)$/;
const TEMP_PREFIX = '.tmp-';

/** Folder holding stores when a bare name is given: RETAP_SNAPSHOT_DIR or ./.retap/snapshots. */
export function snapshotRoot(): string {
  return resolve(process.env.RETAP_SNAPSHOT_DIR ?? join('.retap', 'snapshots'));
}

export function versionOfDir(name: string): number | undefined {
  const m = VERSION_DIR.exec(name);
  return m ? Number(m[1]) : undefined;
}

export interface VersionRef {
  version: number;
  path: string;
}

/** Versions of a store, oldest first (only complete ones: those holding a manifest). */
export async function listVersions(storeDir: string): Promise<VersionRef[]> {
  let names: string[];
  try {
    names = await readdir(storeDir);
  } catch {
    return [];
  }
  const out: VersionRef[] = [];
  for (const n of names) {
    const v = versionOfDir(n);
    if (v !== undefined && existsSync(join(storeDir, n, MANIFEST_FILE))) out.push({ version: v, path: join(storeDir, n) });
  }
  return out.sort((a, b) => a.version - b.version);
}

export function isVersionDir(path: string): boolean {
  return existsSync(join(path, MANIFEST_FILE));
}

/**
 * A version directory from: a version dir, a store dir (its latest version), `store@vN` or
 * `store@N`, or a bare name looked up under snapshotRoot().
 */
export async function resolveSnapshot(pathOrName: string): Promise<string> {
  let spec = pathOrName;
  let wanted: number | undefined;
  const at = /^(.*)@v?(\d+)$/.exec(spec);
  if (at) {
    spec = at[1]!;
    wanted = Number(at[2]);
  }
  const candidates = [resolve(spec)];
  if (!spec.includes('/') && !existsSync(spec)) candidates.push(join(snapshotRoot(), spec));
  for (const dir of candidates) {
    if (!existsSync(dir)) continue;
    if (wanted === undefined && isVersionDir(dir)) return dir;
    const versions = await listVersions(dir);
    if (versions.length === 0) continue;
    if (wanted === undefined) return versions[versions.length - 1]!.path;
    const hit = versions.find((v) => v.version === wanted);
    if (hit) return hit.path;
    throw new RetapError(ErrorCodes.SNAPSHOT_NOT_FOUND, `${dir} has no version ${wanted}`, {
      hint: `Versions there: ${versions.map((v) => `v${v.version}`).join(', ')}.`,
    });
  }
  throw new RetapError(ErrorCodes.SNAPSHOT_NOT_FOUND, `no snapshot at '${pathOrName}'`, {
    hint: `Give a version directory (holding ${MANIFEST_FILE}), a store directory (holding v1/, v2/…), or a name under ${snapshotRoot()}.`,
  });
}

/** The store a version directory belongs to (its parent folder). */
export function storeOf(versionDir: string): string {
  return dirname(resolve(versionDir));
}

export async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: DIR_MODE });
}

/** Remove temp directories left by writers that died (their pid is gone). */
export async function cleanStaleTemps(storeDir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(storeDir);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (!n.startsWith(TEMP_PREFIX)) continue;
    const pid = Number(n.slice(TEMP_PREFIX.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) continue;
    await rm(join(storeDir, n), { recursive: true, force: true });
    removed.push(n);
  }
  return removed;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function makeTempDir(storeDir: string): Promise<string> {
  await ensureDir(storeDir);
  const dir = join(storeDir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: DIR_MODE });
  return dir;
}

export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY);
  try {
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  } finally {
    await fh.close();
  }
}

/**
 * Target of a writer's `dir`: a path named `vN` is that exact version (must not exist); any other
 * path is a store directory and the version is the next free number at commit time.
 */
export function writeTarget(dir: string): { storeDir: string; version?: number } {
  const abs = resolve(dir);
  const v = versionOfDir(basename(abs));
  if (v !== undefined) return { storeDir: dirname(abs), version: v };
  return { storeDir: abs };
}

export async function nextVersion(storeDir: string): Promise<number> {
  const versions = await listVersions(storeDir);
  let max = 0;
  try {
    for (const n of await readdir(storeDir)) max = Math.max(max, versionOfDir(n) ?? 0);
  } catch {}
  return Math.max(max, versions[versions.length - 1]?.version ?? 0) + 1;
}

/** Rename the finished temp dir to `v<version>`; false when that name was taken meanwhile. */
export async function commitVersion(tempDir: string, storeDir: string, version: number): Promise<string | undefined> {
  const target = join(storeDir, `v${version}`);
  if (existsSync(target)) return undefined;
  try {
    await rename(tempDir, target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTEMPTY') return undefined;
    throw e;
  }
  await fsyncPath(storeDir);
  return target;
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
