/**
 * Drives the notes example (Python, examples/notes/*.py) from Node for tests and benchmarks:
 * start its dependencies, record the service with `retap capture` under its client traffic, and
 * cut the one recording into a snapshot per traffic phase with `retap snapshot filter`.
 *
 *   const deps = await startNotesDependencies(dir);
 *   const rec = await recordNotes({ dir, deps });        // eBPF capture, redaction on by default
 *   const snaps = await splitRecording(rec, dir);       // { main, unmockable, unsigned }
 *   notesCommand(8080, 'slow')                          // the build to replay, with a variant
 *
 * Needs root (capture) and python3 with the openssl command (its throwaway certificate).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../core/paths.js';

export const NOTES_DIR = join(packageRoot(), 'examples', 'notes');
const RETAP = join(packageRoot(), 'bin', 'retap.js');
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

function lineOf(child: ChildProcess, what: string): Promise<string> {
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

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** The directory (HTTP) and the audit log (HTTPS) on free ports of 127.0.0.1. */
export async function startNotesDependencies(dir: string): Promise<NotesDependencies> {
  const child = spawn(
    'python3',
    [join(NOTES_DIR, 'dependencies.py'), '--cert-dir', join(dir, 'certs'), '--watch-stdin'],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  try {
    const env = JSON.parse(await lineOf(child, 'notes dependencies')) as Record<string, string>;
    return { env, pid: child.pid as number, stop: () => stopChild(child) };
  } catch (e) {
    await stopChild(child, 'SIGKILL');
    throw e;
  }
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

async function waitPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const until = Date.now() + READY_MS;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`retap capture exited (${child.exitCode}) early:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the notes service did not listen on ${port} within ${READY_MS} ms:\n${log()}`);
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
  /** What `retap capture --json` printed. */
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
  const t0 = performance.now();
  const port = await freePort();
  const out = join(o.dir, 'capture');
  const args = [
    RETAP,
    'capture',
    '--out',
    out,
    '--name',
    'notes',
    '--json',
    ...(o.redact === false ? ['--no-redact'] : []),
  ];
  const capture = spawn(
    process.execPath,
    [...args, '--', 'python3', join(NOTES_DIR, 'notes_service.py'), '--port', String(port)],
    {
      env: { ...process.env, ...o.deps.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  capture.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  capture.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  try {
    await waitPort(port, capture, () => stderr);
    const traffic = spawn(
      'python3',
      [
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
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let tout = '';
    let terr = '';
    traffic.stdout?.on('data', (d: Buffer) => {
      tout += d.toString();
    });
    traffic.stderr?.on('data', (d: Buffer) => {
      terr += d.toString();
    });
    const [code] = (await once(traffic, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`the notes traffic exited ${code}:\n${tout}${terr}`);
    const summary = JSON.parse(tout.trim().split('\n').pop() as string) as TrafficSummary;
    await new Promise((r) => setTimeout(r, 300)); // let the last answers reach the ring buffer
    const exited = once(capture, 'exit');
    capture.kill('SIGINT');
    const [ccode] = (await exited) as [number | null];
    if (ccode !== 0) throw new Error(`retap capture exited ${ccode}:\n${stderr}`);
    // the capture prints the service's ready line too; its summary is the JSON object
    const json = JSON.parse(stdout.slice(stdout.indexOf('{'))) as Recording['summary'];
    return { snapshot: json.path, traffic: summary, summary: json, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await stopChild(capture, 'SIGINT');
  }
}

function retap(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [RETAP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
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
  const child = spawn('python3', [join(NOTES_DIR, 'traffic.py'), '--credentials'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  child.stdout?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`traffic.py --credentials exited ${code}`);
  return JSON.parse(text) as Record<string, string>;
}

/**
 * A secrets file for replays of `snapshot`: the placeholder each login password got at capture
 * (`retap snapshot secrets --lookup`) → the password, as `retap replay/ci --secrets FILE` reads it.
 */
export async function writeNotesSecrets(snapshot: string, file: string): Promise<number> {
  const passwords = Object.values(await notesPasswords());
  const child = spawn(process.execPath, [RETAP, 'snapshot', 'secrets', snapshot, '--lookup', '--json'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin?.end(`${passwords.join('\n')}\n`);
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`retap snapshot secrets --lookup exited ${code}:\n${stderr}`);
  const rows = (
    JSON.parse(stdout) as { values: Array<{ line: number; placeholder: string; inSnapshot: boolean }> }
  ).values;
  const lines = rows
    .filter((r) => r.inSnapshot)
    .map((r) => `${r.placeholder}: ${JSON.stringify(passwords[r.line - 1])}`);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(
    file,
    `# the notes client's passwords, by the placeholder redaction gave each\n${lines.join('\n')}\n`,
    {
      mode: 0o600,
    },
  );
  return lines.length;
}
