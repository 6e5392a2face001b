import { describe, expect, it } from 'vitest';
import { ErrorCodes, ExitCodes, formatError, isRetapError, RetapError, usageError } from './errors.js';
import { type Exchange, emptyBody, headerValue, serverLatencyNs, targetPath } from './exchange.js';
import { type LogRecord, logger, onLog } from './log.js';
import { packageRoot } from './paths.js';

const ex = (timing: Exchange['timing']): Exchange => ({
  id: 'c#0',
  protocol: 'http1',
  direction: 'inbound',
  tls: false,
  service: { addr: '127.0.0.1', port: 80 },
  peer: { addr: '127.0.0.1', port: 5000 },
  connection: { id: 'c', order: 0 },
  request: {
    method: 'GET',
    target: '/a?b=1',
    version: 'HTTP/1.1',
    headers: [
      ['Host', 'x'],
      ['X-Dup', '1'],
      ['x-dup', '2'],
    ],
    body: emptyBody(),
  },
  timing,
});

describe('Exchange helpers', () => {
  it('finds headers case-insensitively, first of duplicates', () => {
    const e = ex({ startUs: 1, requestEndNs: 0 });
    expect(headerValue(e.request.headers, 'host')).toBe('x');
    expect(headerValue(e.request.headers, 'X-DUP')).toBe('1');
    expect(headerValue(e.request.headers, 'missing')).toBeUndefined();
  });

  it('server latency is request end to response start, never negative, undefined without answer', () => {
    expect(serverLatencyNs(ex({ startUs: 1, requestEndNs: 1000, responseStartNs: 5000 }))).toBe(4000);
    expect(serverLatencyNs(ex({ startUs: 1, requestEndNs: 5000, responseStartNs: 1000 }))).toBe(0);
    expect(serverLatencyNs(ex({ startUs: 1, requestEndNs: 1000 }))).toBeUndefined();
  });

  it('strips the query from targets', () => {
    expect(targetPath('/orders/7?full=1&x=2')).toBe('/orders/7');
    expect(targetPath('/plain')).toBe('/plain');
  });
});

describe('errors', () => {
  it('carry a stable code, a hint, details and the cause chain', () => {
    const root = new Error('ENOENT: no such file');
    const e = new RetapError(ErrorCodes.SNAPSHOT_NOT_FOUND, 'snapshot snaps/x not found', {
      hint: 'Run retap capture first.',
      cause: root,
      details: { path: 'snaps/x' },
    });
    expect(isRetapError(e)).toBe(true);
    expect(e.exitCode).toBe(ExitCodes.INFRASTRUCTURE);
    expect(e.toJSON()).toEqual({
      code: 'RETAP_SNAPSHOT_NOT_FOUND',
      message: 'snapshot snaps/x not found',
      hint: 'Run retap capture first.',
      details: { path: 'snaps/x' },
    });
    expect(formatError(e)).toBe(
      'snapshot snaps/x not found [RETAP_SNAPSHOT_NOT_FOUND]\n  → Run retap capture first.\n  caused by: ENOENT: no such file',
    );
  });

  it('usage errors exit 64 and say how to get help', () => {
    const e = usageError('retap x: bad flag');
    expect(e.exitCode).toBe(ExitCodes.USAGE);
    expect(e.hint).toMatch(/--help/);
    expect(formatError('plain string')).toBe('plain string');
  });
});

describe('log', () => {
  it('publishes records to subscribers only while subscribed', () => {
    const seen: LogRecord[] = [];
    const off = onLog((r) => seen.push(r));
    logger('test').warn('disk almost full', { free: 3 });
    off();
    logger('test').warn('not seen');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      level: 'warn',
      scope: 'test',
      message: 'disk almost full',
      fields: { free: 3 },
    });
  });
});

describe('packageRoot', () => {
  it('finds the retap package from inside it', () => {
    expect(packageRoot()).toMatch(/\/[^/]+$/);
  });
});
