/**
 * Processes a benchmark starts (servers, load generators, peers): started here, stopped by pid,
 * also when the benchmark fails or is interrupted.
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { connect, createServer } from 'node:net';

export interface Proc {
  pid: number;
  name: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** Signal, then SIGKILL after graceMs; resolves once it has exited. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const running = new Set<Proc>();

export function start(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (child.pid === undefined) throw new Error(`cannot start ${cmd}: is it installed?`);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    if (out.length < 1 << 20) out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    if (out.length < 1 << 20) out += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const proc: Proc = {
    pid: child.pid,
    name: cmd,
    child,
    output: () => out,
    exited,
    stop: async (signal = 'SIGTERM', graceMs = 5000) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
      }
      running.delete(proc);
    },
  };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

/** Runs to completion; rejects when the exit code is not 0. */
export async function runToEnd(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<string> {
  const p = start(cmd, args, opts);
  const code = await p.exited;
  if (code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${p.output().slice(-2000)}`);
  return p.output();
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGTERM', 2000)));
}

let installed = false;
/** Stop everything we started when interrupted (Ctrl-C, the runner's timeout). */
export function stopAllOnSignal(): void {
  if (installed) return;
  installed = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void stopAll().finally(() => process.exit(130));
    });
  }
}

/** A port nobody listens on right now (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once 127.0.0.1:port accepts connections; rejects after timeoutMs or if proc exits. */
export async function waitForPort(port: number, proc?: Proc, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) {
      throw new Error(`${proc.name} exited before listening on ${port}:\n${proc.output().slice(-2000)}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(
    `nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms${proc ? `:\n${proc.output()}` : ''}`,
  );
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
