/**
 * Thin layer over node:util parseArgs: strict options, errors that say which flag was wrong,
 * and the usual `--help` handling.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usageError } from '../core/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed<T> {
  values: T;
  positionals: string[];
  /** Arguments after a bare `--` (a command to run), untouched. */
  rest: string[];
}

export function parse<T = Record<string, unknown>>(
  command: string,
  argv: string[],
  options: Options,
  allowPositionals = false,
): Parsed<T> {
  const dashdash = argv.indexOf('--');
  const head = dashdash === -1 ? argv : argv.slice(0, dashdash);
  const rest = dashdash === -1 ? [] : argv.slice(dashdash + 1);
  try {
    const { values, positionals } = parseArgs({
      args: head,
      options: { help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals,
      strict: true,
    });
    return { values: values as T, positionals, rest };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw usageError(`retap ${command}: ${msg}`, `Run 'retap ${command} --help' for the usage.`);
  }
}

/** `30s`, `2m`, `500ms`, `1h` or bare seconds → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m)
    throw usageError(`${flag}: '${text}' is not a duration`, 'Use a number with ms, s, m or h, e.g. 30s.');
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(n * factor);
}

export function parseIntFlag(text: string, flag: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw usageError(`${flag}: '${text}' must be a whole number from ${min} to ${max}`);
  }
  return n;
}

/** `--client NAME`: the replay driver's HTTP client. */
export function parseClient(text: string | undefined): 'h1' | 'undici' | undefined {
  if (text === undefined || text === 'h1' || text === 'undici') return text;
  throw usageError(`--client ${text}: expected h1 (retap's HTTP/1.1 client, the default) or undici`);
}

export function parseConnections(text: string | undefined): 'recorded' | 'pooled' | undefined {
  if (text === undefined || text === 'recorded' || text === 'pooled') return text;
  throw usageError(
    `--connections ${text}: expected recorded (each recorded connection replayed on one of its own, the default) or pooled (shared keep-alive connections)`,
  );
}

export function parseProtocol(text: string | undefined): 'auto' | 'h1' | 'h2' | undefined {
  if (text === undefined || text === 'auto' || text === 'h1' || text === 'h2') return text;
  throw usageError(
    `--protocol ${text}: expected auto (each exchange over the protocol it was recorded with, the default), h1 or h2`,
  );
}

/** Values of a `multiple: true` option, whatever parseArgs returned. */
export function many(value: unknown): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? (value as string[]) : [String(value)];
}
