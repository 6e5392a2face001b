/** The compiled CLI (bin/retap.js) as a child process, for end-to-end tests of commands. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../core/paths.js';

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `retap ARGS…` (env added to this process's): the child (to signal it) and its end. */
export function retapChild(
  args: string[],
  env: NodeJS.ProcessEnv,
  stdin?: string,
): { child: ChildProcess; done: Promise<Finished> } {
  const child: ChildProcess = spawn(process.execPath, [join(packageRoot(), 'bin', 'retap.js'), ...args], {
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  if (stdin !== undefined) child.stdin?.end(stdin);
  const done = new Promise<Finished>((resolve) =>
    child.once('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done };
}

/** Runs `retap ARGS…` to its end. */
export const retap = (args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<Finished> =>
  retapChild(args, env, stdin).done;

/** The last JSON document a command printed (a captured service's own lines may come first). */
export function lastJson<T>(stdout: string): T {
  const at = stdout.lastIndexOf('\n{');
  return JSON.parse(at < 0 ? stdout : stdout.slice(at + 1)) as T;
}
