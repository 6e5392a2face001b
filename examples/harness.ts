/**
 * Process plumbing shared by the example systems' drivers (examples/notes/system.ts,
 * examples/httpbin/system.ts): free ports, waiting for a listener, stopping a child, running the
 * retap CLI, recording a command with `retap capture -- CMD` while traffic runs against it, and
 * mapping secret values to the placeholders redaction gave them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { packageRoot } from '../core/paths.js';

export const RETAP = join(packageRoot(), 'bin', 'retap.js');
const READY_MS = 30_000;

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

/** Waits until 127.0.0.1:port accepts; fails early when `child` exits. */
export async function waitPort(
  port: number,
  child?: ChildProcess,
  log: () => string = () => '',
): Promise<void> {
  const until = Date.now() + READY_MS;
  while (Date.now() < until) {
    if (child && child.exitCode !== null)
      throw new Error(`exited (${child.exitCode}) before port ${port} listened:\n${log()}`);
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
  throw new Error(`nothing listened on ${port} within ${READY_MS} ms:\n${log()}`);
}

/** Stops a child we started (signal, then SIGKILL after 5 s) and waits for it. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (stdin from `input` when given). */
export async function run(
  command: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Ran> {
  const child = spawn(command, args, {
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    ...(opts.env ? { env: opts.env } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** The retap CLI of this checkout. */
export const retap = (args: string[], input?: string): Promise<Ran> =>
  run(process.execPath, [RETAP, ...args], input === undefined ? {} : { input });

export interface CaptureSummary {
  path: string;
  inbound: number;
  outbound: number;
}

/**
 * Records `command` with `retap capture --out OUT -- command…` (its own cgroup: it and its
 * children, nothing else) while `traffic()` runs against it on 127.0.0.1:port, then stops the
 * capture with SIGINT (which stops the command) and returns the capture's summary.
 */
export async function captureWhile<T>(
  o: {
    out: string;
    name: string;
    command: string[];
    port: number;
    env?: NodeJS.ProcessEnv;
    redact?: boolean;
  },
  traffic: () => Promise<T>,
): Promise<{ summary: CaptureSummary; traffic: T; seconds: number }> {
  const t0 = performance.now();
  const args = [
    RETAP,
    'capture',
    '--out',
    o.out,
    '--name',
    o.name,
    '--json',
    ...(o.redact === false ? ['--no-redact'] : []),
  ];
  const capture = spawn(process.execPath, [...args, '--', ...o.command], {
    env: o.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  capture.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  capture.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  try {
    await waitPort(o.port, capture, () => stderr);
    const result = await traffic();
    await new Promise((r) => setTimeout(r, 300)); // the last answers reach the ring buffer
    const exited = once(capture, 'exit');
    capture.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    if (code !== 0) throw new Error(`retap capture exited ${code}:\n${stderr}`);
    // the command's own output shares stdout: the summary is the JSON object at the end
    const summary = JSON.parse(
      stdout.slice(stdout.indexOf('\n{') + 1 || stdout.indexOf('{')),
    ) as CaptureSummary;
    return { summary, traffic: result, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await stopChild(capture, 'SIGINT');
  }
}

/** The placeholder redaction gave each value (`retap snapshot secrets --lookup`), for values the snapshot holds. */
export async function placeholdersOf(snapshot: string, values: string[]): Promise<Map<string, string>> {
  const r = await retap(['snapshot', 'secrets', snapshot, '--lookup', '--json'], `${values.join('\n')}\n`);
  if (r.code !== 0) throw new Error(`retap snapshot secrets --lookup exited ${r.code}:\n${r.stderr}`);
  const rows = (
    JSON.parse(r.stdout) as { values: Array<{ line: number; placeholder: string; inSnapshot: boolean }> }
  ).values;
  const out = new Map<string, string>();
  for (const row of rows) if (row.inSnapshot) out.set(row.placeholder, values[row.line - 1] as string);
  return out;
}

/** Writes a secrets file (`retap replay/ci --secrets FILE`): placeholder → value, mode 0600. */
export async function writeSecrets(
  file: string,
  secrets: Map<string, string>,
  comment: string,
): Promise<void> {
  const lines = [...secrets].map(([p, v]) => `${p}: ${JSON.stringify(v)}`);
  await writeFile(file, `# ${comment}\n${lines.join('\n')}\n`, { mode: 0o600 });
}
