/**
 * Real processes for end-to-end tests: start, wait until they listen, stop by pid (always).
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';

export interface Proc {
  pid: number;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

const running = new Set<Proc>();

export function start(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  if (child.pid === undefined) throw new Error(`cannot start ${cmd}`);
  const proc: Proc = {
    pid: child.pid,
    child,
    output: () => out,
    stop: async () => {
      running.delete(proc);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
  running.add(proc);
  return proc;
}

/** Stops every process started through this module that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/**
 * A port a test server can be told to listen on.
 *
 * Picked below the kernel's ephemeral range (32768 and up by default) and below Kubernetes'
 * NodePort range: no client's source port and no bind(0) elsewhere can take it between this pick
 * and the server's own bind. Each vitest worker takes its ports from its own block of 1,000, so
 * two test files running at once never pick the same one. Where the ephemeral range has been
 * lowered into that space, the kernel's choice is used instead.
 */
export async function freePort(): Promise<number> {
  if (ephemeralLow() <= PICK_BASE + PICK_BLOCK * PICK_BLOCKS) return kernelPort();
  const pool = Number(process.env.VITEST_POOL_ID ?? '1') || 1;
  const start = PICK_BASE + ((pool - 1) % PICK_BLOCKS) * PICK_BLOCK;
  for (let tries = 0; tries < PICK_BLOCK; tries++) {
    const port = start + (picked++ % PICK_BLOCK);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${start}–${start + PICK_BLOCK - 1} for this test worker`);
}

const PICK_BASE = 20_000;
const PICK_BLOCK = 1_000;
const PICK_BLOCKS = 8;
let picked = Math.floor(Math.random() * PICK_BLOCK);

function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 0;
  } catch {
    return 0;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves when something accepts TCP connections on 127.0.0.1:port (bounded wait). */
export async function waitForPort(port: number, timeoutMs = 10_000, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ port, host }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a command to completion; rejects with its output when it fails. */
export function run(
  cmd: string,
  args: string[],
  opts: SpawnOptions = {},
): Promise<{ stdout: Buffer; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    const out: Buffer[] = [];
    let err = '';
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ stdout: Buffer.concat(out), stderr: err, code: code ?? -1 }));
  });
}
