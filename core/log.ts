/**
 * Logging through node:diagnostics_channel so embedders and tests can subscribe, plus
 * `NODE_DEBUG=retap` for developers (util.debuglog). Nothing is printed unless someone listens:
 * the CLI subscribes and decides what reaches the terminal.
 */
import diagnostics from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogRecord {
  level: LogLevel;
  /** Component that logged: `capture`, `runner`, `snapshots`… */
  scope: string;
  message: string;
  fields?: Record<string, unknown>;
  time: number;
}

export const logChannel = diagnostics.channel('retap:log');
const debug = debuglog('retap');

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function logger(scope: string): Logger {
  const emit = (level: LogLevel, message: string, fields?: Record<string, unknown>): void => {
    if (debug.enabled) debug('%s %s %s %j', level, scope, message, fields ?? {});
    if (!logChannel.hasSubscribers) return;
    const record: LogRecord = { level, scope, message, time: Date.now() };
    if (fields) record.fields = fields;
    logChannel.publish(record);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/** Subscribe to log records; returns the unsubscribe function. */
export function onLog(listener: (record: LogRecord) => void): () => void {
  const handler = (message: unknown): void => listener(message as LogRecord);
  logChannel.subscribe(handler);
  return () => logChannel.unsubscribe(handler);
}
