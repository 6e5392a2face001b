/**
 * Drives the notes example (Python, examples/notes/*.py) from Node for tests and benchmarks:
 * start its dependencies, record the service with `retap capture` under its client traffic, and
 * cut the one recording into a snapshot per traffic phase with `retap snapshot filter`.
 *
 *   const deps = await startNotesDependencies(dir);
 *   const rec = await recordNotes({ dir, deps });        // eBPF capture, redaction on by default
 *   const snaps = await splitRecording(rec, dir);       // { main, unmockable, unsigned }
 *   await writeNotesSecrets(snaps.main, 'secrets.yaml') // the redacted passwords, for --secrets
 *   notesCommand(8080, 'slow')                          // the build to replay, with a variant
 *
 * Needs root (capture) and python3 with the openssl command (its throwaway certificate).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../core/paths.js';
import { captureWhile, freePort, placeholdersOf, retap, run, stopChild, writeSecrets } from '../harness.js';

export const NOTES_DIR = join(packageRoot(), 'examples', 'notes');
const READY_MS = 20_000;

/** The notes build as `retap replay --cmd` / `retap ci --cmd` take it. */
export function notesCommand(port: number, variant?: string): string {
  return [
    'python3',
    join(NOTES_DIR, 'notes_service.py'),
    '--port',
    String(port),
    ...(variant ? ['--variant', variant] : []),
  ].join(' ');
}

export interface NotesDependencies {
  /** DIRECTORY_URL, AUDIT_URL and SSL_CERT_FILE, as the service needs them. */
  env: Record<string, string>;
  pid: number;
  stop(): Promise<void>;
}

function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-2000);
    });
    const timer = setTimeout(
      () => reject(new Error(`${what}: no ready line within ${READY_MS} ms\n${err}`)),
      READY_MS,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready\n${err}`));
    });
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
  });
}

/** The directory (HTTP) and the audit log (HTTPS) on free ports of 127.0.0.1. */
export async function startNotesDependencies(dir: string): Promise<NotesDependencies> {
  const child = spawn(
    'python3',
    [join(NOTES_DIR, 'dependencies.py'), '--cert-dir', join(dir, 'certs'), '--watch-stdin'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  try {
    const env = JSON.parse(await firstLine(child, 'notes dependencies')) as Record<string, string>;
    return { env, pid: child.pid as number, stop: () => stopChild(child) };
  } catch (e) {
    await stopChild(child, 'SIGKILL');
    throw e;
  }
}

export interface TrafficSummary {
  requests: number;
  unexpected: string[];
  /** Wall-clock span of each phase, epoch ms. */
  phases: Record<string, [number, number]>;
}

export interface Recording {
  /** Snapshot version directory written by the capture. */
  snapshot: string;
  traffic: TrafficSummary;
  summary: { path: string; inbound: number; outbound: number };
  /** Seconds the capture took, traffic included. */
  seconds: number;
}

export interface RecordOptions {
  dir: string;
  deps: NotesDependencies;
  sessions?: number;
  sideSessions?: number;
  seed?: number;
  /** Redaction at capture (default on, as `retap capture` does). */
  redact?: boolean;
  phases?: string[];
}

/** Records the notes service with `retap capture -- python3 notes_service.py` under its client traffic. */
export async function recordNotes(o: RecordOptions): Promise<Recording> {
  const port = await freePort();
  const r = await captureWhile(
    {
      out: join(o.dir, 'capture'),
      name: 'notes',
      command: ['python3', join(NOTES_DIR, 'notes_service.py'), '--port', String(port)],
      port,
      env: { ...process.env, ...o.deps.env },
      ...(o.redact === false ? { redact: false } : {}),
    },
    async () => {
      const t = await run('python3', [
        join(NOTES_DIR, 'traffic.py'),
        '--url',
        `http://127.0.0.1:${port}`,
        '--sessions',
        String(o.sessions ?? 10),
        '--side-sessions',
        String(o.sideSessions ?? 4),
        '--seed',
        String(o.seed ?? 7),
        '--phase',
        (o.phases ?? ['main', 'unmockable', 'unsigned']).join(','),
      ]);
      if (t.code !== 0) throw new Error(`the notes traffic exited ${t.code}:\n${t.stdout}${t.stderr}`);
      return JSON.parse(t.stdout.trim().split('\n').pop() as string) as TrafficSummary;
    },
  );
  return { snapshot: r.summary.path, traffic: r.traffic, summary: r.summary, seconds: r.seconds };
}

/**
 * One snapshot per traffic phase (each phase has its own sessions): `main` for the unchanged
 * build and the regressions, `unmockable` and `unsigned` for the broken replay environments.
 */
export async function splitRecording(rec: Recording, dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [phase, [from, to]] of Object.entries(rec.traffic.phases)) {
    const r = await retap([
      'snapshot',
      'filter',
      rec.snapshot,
      '--from',
      String(from - 50),
      '--to',
      String(to + 150),
      '--out',
      join(dir, 'snapshots', phase),
      '--name',
      `notes-${phase}`,
      '--json',
    ]);
    if (r.code !== 0) throw new Error(`retap snapshot filter (${phase}) exited ${r.code}:\n${r.stderr}`);
    out[phase] = (JSON.parse(r.stdout) as { path: string }).path;
  }
  return out;
}

/** The passwords the notes client logs in with (traffic.py --credentials). */
export async function notesPasswords(): Promise<Record<string, string>> {
  const r = await run('python3', [join(NOTES_DIR, 'traffic.py'), '--credentials']);
  if (r.code !== 0) throw new Error(`traffic.py --credentials exited ${r.code}:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, string>;
}

/**
 * A secrets file for replays of `snapshot`: the placeholder each login password got at capture
 * → the password, as `retap replay/ci --secrets FILE` reads it. Returns how many it holds.
 */
export async function writeNotesSecrets(snapshot: string, file: string): Promise<number> {
  const found = await placeholdersOf(snapshot, Object.values(await notesPasswords()));
  await writeSecrets(file, found, "the notes client's passwords, by the placeholder redaction gave each");
  return found.size;
}
