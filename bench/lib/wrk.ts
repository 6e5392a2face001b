/** Runs wrk and reads its summary (`--latency` percentiles, request count, errors). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runToEnd } from './procs.js';

export interface WrkLoad {
  threads: number;
  connections: number;
  seconds: number;
  /** Milliseconds each connection waits before each request (wrk's Lua `delay()`): a fixed offered rate. */
  delayMs?: number;
}

export interface WrkResult {
  /** Completed responses wrk counted (`N requests in`). */
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  socketErrors: number;
  non2xx: number;
}

const UNIT_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`wrk: cannot read the duration "${text}"`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

export function parseWrk(out: string): WrkResult {
  const req = /(\d+) requests in ([\d.]+\w+),/.exec(out);
  const p50 = /^\s*50%\s+(\S+)/m.exec(out);
  const p99 = /^\s*99%\s+(\S+)/m.exec(out);
  if (!req || !p50 || !p99) throw new Error(`wrk: unexpected output:\n${out.slice(-1500)}`);
  const seconds = ms(req[2]!) / 1000;
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    requests: Number(req[1]),
    seconds,
    rps: Number(req[1]) / seconds,
    p50Ms: ms(p50[1]!),
    p99Ms: ms(p99[1]!),
    socketErrors: errs ? errs.slice(1).reduce((s, x) => s + Number(x), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/** Runs `wrk --latency` against url; dir holds the Lua script for a fixed delay. */
export async function runWrk(url: string, load: WrkLoad, dir: string): Promise<WrkResult> {
  const args = [
    `-t${load.threads}`,
    `-c${load.connections}`,
    `-d${load.seconds}s`,
    '--latency',
    '--timeout',
    '5s',
  ];
  if (load.delayMs) {
    const script = join(dir, `delay-${load.delayMs}.lua`);
    writeFileSync(script, `function delay() return ${Math.round(load.delayMs)} end\n`);
    args.push('-s', script);
  }
  return parseWrk(await runToEnd('wrk', [...args, url]));
}
