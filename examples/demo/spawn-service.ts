/**
 * Starts one demo service as its own process and waits for its ready line. Works from the
 * compiled `.js` files and, under tests, from the `.ts` sources (through dev-loader.mjs).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { READY_PREFIX, type ReadyLine } from './http-kit.js';

export const READY_TIMEOUT_MS = 30_000;
export const STOP_TIMEOUT_MS = 5_000;
const STDERR_TAIL_LINES = 20;

export interface Service {
  name: string;
  pid: number;
  port: number;
  url: string;
  child: ChildProcess;
  /** Last lines the service wrote to stderr (for error messages). */
  stderrTail: string[];
}

export interface SpawnOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Receives every line the service prints after it is ready (stdout and stderr). */
  log?: (service: string, line: string) => void;
  /** Host name put into the service's URL (it listens on 127.0.0.1). */
  urlHost?: string;
}

/** The command line that runs a demo service, from `dist/` or from the sources. */
export function serviceCommand(name: string): { execPath: string; argv: string[] } {
  const fromSources = import.meta.url.endsWith('.ts');
  const script = fileURLToPath(new URL(`./${name}.${fromSources ? 'ts' : 'js'}`, import.meta.url));
  const loader = fromSources ? ['--import', new URL('./dev-loader.mjs', import.meta.url).href] : [];
  return { execPath: process.execPath, argv: [...loader, script] };
}

export function spawnService(name: string, options: SpawnOptions = {}): Promise<Service> {
  const { execPath, argv } = serviceCommand(name);
  const child = spawn(execPath, [...argv, '--exit-with-parent', ...(options.args ?? [])], {
    env: options.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderrTail: string[] = [];
  return new Promise<Service>((resolve, reject) => {
    let settled = false;
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const tail = stderrTail.length ? `\n  ${name} said: ${stderrTail.join('\n  ')}` : '';
      reject(new Error(`demo service ${name}: ${message}${tail}`));
    };
    const timer = setTimeout(() => fail(`not ready within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    child.once('error', (e) => fail(`cannot start: ${e.message}`));
    child.once('exit', (code, signal) => fail(`exited before it was ready (code ${code}, signal ${signal})`));
    child.stdin?.on('error', () => {});

    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
      if (settled) options.log?.(name, line);
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!settled && line.startsWith(READY_PREFIX)) {
        const ready = JSON.parse(line.slice(READY_PREFIX.length)) as ReadyLine;
        settled = true;
        clearTimeout(timer);
        const host = options.urlHost ?? '127.0.0.1';
        resolve({
          name,
          pid: child.pid!,
          port: ready.port,
          url: `${ready.protocol}://${host}:${ready.port}`,
          child,
          stderrTail,
        });
        return;
      }
      if (settled) options.log?.(name, line);
    });
  });
}

/** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; resolves once the process is gone. */
export function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
