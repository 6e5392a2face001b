/**
 * capture/record.ts through the real kernel path: one call records a target into any sink until
 * a stop condition; every kind of recording counts the same counters.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { countersOf, recordUntil } from '../../capture/record.js';
import type { Exchange } from '../../core/exchange.js';
import { skipPrivileged } from '../helpers/privileged.js';
import { freePort, run, start, stopAll, waitForPort } from '../helpers/procs.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-record-'));
  writeFileSync(join(dir, 'a.txt'), 'record me\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(stopAll);

/** A command that serves one file over HTTP, fetches it three times, and exits. */
const serveAndFetch = (port: number): string[] => [
  'sh',
  '-c',
  `python3 -m http.server ${port} --bind 127.0.0.1 --directory ${dir} >/dev/null 2>&1 & s=$!; ` +
    `for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:${port}/ && break; sleep 0.1; done; ` +
    `for i in 1 2 3; do curl -s -o /dev/null http://127.0.0.1:${port}/a.txt; done; kill $s; wait $s 2>/dev/null; exit 0`,
];

describe.skipIf(skipPrivileged())('recordUntil', () => {
  it('records a command and its children until it exits, in order, with the manifest counters', async () => {
    const port = await freePort();
    const got: Exchange[] = [];
    const r = await recordUntil({ command: serveAndFetch(port) }, { append: (ex) => void got.push(ex) });
    expect(r.commandExit).toBe(0);
    const files = got.filter((e) => e.direction === 'inbound' && e.request.target === '/a.txt');
    expect(files).toHaveLength(3);
    for (const e of files) expect(Buffer.from(e.response?.body.data ?? []).toString()).toBe('record me\n');
    // inbound (server side) and outbound (curl's side) of every request
    expect(r.inbound).toBe(got.filter((e) => e.direction === 'inbound').length);
    expect(r.outbound).toBe(got.filter((e) => e.direction === 'outbound').length);
    expect(r.outbound).toBeGreaterThanOrEqual(3);
    expect(Object.keys(r.counters).sort()).toEqual(Object.keys(countersOf(r.stats)).sort());
    expect(r.counters.connections).toBeGreaterThanOrEqual(4);
  });

  it('stops when the caller aborts, draining what is in flight', async () => {
    const port = await freePort();
    const srv = start('python3', [
      '-m',
      'http.server',
      String(port),
      '--bind',
      '127.0.0.1',
      '--directory',
      dir,
    ]);
    await waitForPort(port);
    const stop = new AbortController();
    const got: Exchange[] = [];
    const done = recordUntil({ pids: [srv.pid] }, { append: (ex) => void got.push(ex) }, stop.signal, {
      onReady: async () => {
        await run('curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${port}/a.txt`]);
        stop.abort(); // the answer may still be in the ring buffer: stopping must drain it
      },
    });
    const r = await done;
    expect(got.filter((e) => e.request.target === '/a.txt')).toHaveLength(1);
    expect(r.inbound).toBe(1);
  });

  it('holds at exec only what retap started: a --pid target execing a new program is never stopped', async () => {
    const p = start('sh', ['-c', 'sleep 1; exec /bin/sleep 0.2']);
    const stop = new AbortController();
    const r = await recordUntil({ pids: [p.pid] }, { append: () => undefined }, stop.signal, {
      onReady: async () => {
        await new Promise((res) => setTimeout(res, 2000));
        stop.abort();
      },
    });
    expect(r.stats.kernel.heldAtExec).toBe(0);
    // the command target is retap's own: held until its executable was looked at
    const own = await recordUntil(
      { command: ['sh', '-c', 'exec /bin/sleep 0.2'] },
      { append: () => undefined },
    );
    expect(own.stats.kernel.heldAtExec).toBeGreaterThanOrEqual(1);
  });

  it('a sink that fails ends the recording with its error, after detaching', async () => {
    const port = await freePort();
    const failing = { append: () => Promise.reject(new Error('disk full')) };
    await expect(recordUntil({ command: serveAndFetch(port) }, failing)).rejects.toThrow('disk full');
  });
});
