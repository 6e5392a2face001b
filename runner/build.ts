/**
 * The build under test: started with the user's command inside the run's cgroup, watched until
 * ready (TCP port or HTTP URL), stopped at the end. Its output is kept (last 64 KiB) for errors.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { ErrorCodes, RetapError } from '../core/errors.js';

export interface BuildOptions {
  command: string;
  port: number;
  ready?: string | undefined;
  readyTimeoutMs: number;
  env: Record<string, string>;
  cwd: string;
  cgroupProcs: string;
}

export interface RunningBuild {
  child: ChildProcess;
  log(): string;
  exited(): { code: number | null; signal: string | null } | undefined;
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  stop(): Promise<void>;
}

const LOG_KEEP = 64 * 1024;

export function startBuild(opts: BuildOptions): RunningBuild {
  // The shell joins the cgroup, then becomes the user's command: nothing runs outside the group.
  const child = spawn(
    '/bin/sh',
    ['-c', 'echo $$ > "$RETAP_CGROUP_PROCS" && exec /bin/sh -c "$RETAP_BUILD_COMMAND"'],
    {
      cwd: opts.cwd,
      env: {
        ...process.env,
        ...opts.env,
        RETAP_CGROUP_PROCS: opts.cgroupProcs,
        RETAP_BUILD_COMMAND: opts.command,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  const keep = (d: Buffer): void => {
    log += d.toString();
    if (log.length > LOG_KEEP) log = log.slice(-LOG_KEEP);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exit: { code: number | null; signal: string | null } | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  child.once('error', (e) => keep(Buffer.from(`retap: cannot start the build: ${e.message}\n`)));
  return {
    child,
    log: () => log,
    exited: () => exit,
    onExit: (cb) => child.once('exit', cb),
    stop: async () => {
      if (exit) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

export function tail(log: string, lines = 20): string {
  return log.trimEnd().split('\n').slice(-lines).join('\n');
}

async function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

async function httpReady(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status < 500;
  } catch {
    return false;
  }
}

/** Resolves when the build accepts connections (or its ready URL answers below 500). */
export async function waitReady(build: RunningBuild, opts: BuildOptions): Promise<void> {
  const deadline = Date.now() + opts.readyTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    const exit = build.exited();
    if (exit) {
      throw new RetapError(
        ErrorCodes.BUILD_NOT_READY,
        `the build exited before it was ready (${exit.signal ?? `code ${exit.code}`}): ${opts.command}\n--- last lines of its output ---\n${tail(build.log())}`,
        { hint: 'Check the command and its environment (--env); the output above is the build’s own.' },
      );
    }
    const ok = opts.ready ? await httpReady(opts.ready) : await tcpOpen(opts.port);
    if (ok) return;
    if (Date.now() > deadline) {
      throw new RetapError(
        ErrorCodes.BUILD_NOT_READY,
        `the build was not ready after ${opts.readyTimeoutMs / 1000} s (${opts.ready ? `GET ${opts.ready}` : `TCP port ${opts.port}`}): ${opts.command}\n--- last lines of its output ---\n${tail(build.log()) || '(no output)'}`,
        {
          hint: 'Is --port the port the build listens on (inside the namespace, on 127.0.0.1 or 0.0.0.0)? Raise --ready-timeout for slow starts.',
        },
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(250, 25 * (attempt + 1))));
  }
}
