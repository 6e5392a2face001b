import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Exchange } from '../core/exchange.js';
import type { ReplayResults } from '../core/results.js';
import { decodeResults, encodeResults, readResults, tooLarge, writeResults } from './results.js';

const ex = (id: string, body: Uint8Array): Exchange => ({
  id,
  protocol: 'http1',
  direction: 'inbound',
  tls: false,
  service: { addr: '127.0.0.1', port: 80 },
  peer: { addr: '127.0.0.1', port: 5000 },
  connection: { id: 'c', order: 0 },
  request: {
    method: 'GET',
    target: '/x',
    version: 'HTTP/1.1',
    headers: [['a', 'b']],
    body: { data: new Uint8Array(0), size: 0, truncated: false },
  },
  response: {
    status: 200,
    version: 'HTTP/1.1',
    headers: [],
    body: { data: body, size: body.length, truncated: false },
  },
  timing: { startUs: 1, requestEndNs: 2, responseStartNs: 3, responseEndNs: 4 },
});

const sample = (): ReplayResults => ({
  format: 'retap-results',
  formatVersion: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  snapshot: { path: '/s', name: 's', version: 1, hash: 'sha256:x' },
  environment: { kind: 'local', namespace: 'retap-1' },
  options: { concurrency: 1 },
  recorded: [
    {
      id: 'r1',
      route: 'GET /x',
      session: 's1',
      exchange: ex('r1', new Uint8Array(Buffer.from('hi'))),
      outbound: [],
    },
  ],
  runs: [
    {
      label: 'candidate',
      role: 'candidate',
      build: { command: 'node x', port: 80 },
      startedAt: '2026-01-01T00:00:00.000Z',
      durationMs: 5,
      items: [
        {
          id: 'r1',
          client: {
            method: 'GET',
            target: '/x',
            headers: [],
            status: 200,
            responseBody: Uint8Array.from([0, 255, 1]),
            durationMs: 1,
          },
          live: ex('l1', Uint8Array.from([0, 1, 2, 250])),
          outbound: [],
        },
      ],
      mocks: { calls: 0, matched: 0, misses: [] },
      capture: { exchanges: 1, ringbufDrops: 0, userBatchDrops: 0, gapBytes: 0 },
      warnings: [],
    },
  ],
});

describe('results file', () => {
  it('round-trips exchanges and binary client bodies', () => {
    const back = decodeResults(encodeResults(sample()));
    expect(back).toEqual(sample());
  });

  it('writes atomically with 0600 and reads from the directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'retap-results-'));
    try {
      const path = await writeResults(join(dir, 'out'), sample());
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect((await readResults(join(dir, 'out'))).runs[0]!.items[0]!.live?.id).toBe('l1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses files that are not results', () => {
    expect(() => decodeResults('{"format":"x"}', 'f.json')).toThrow(/f.json: not a retap results file/);
    expect(() => decodeResults('nope', 'f.json')).toThrow(/not JSON/);
  });
});

describe('results too large for one file', () => {
  it("turns V8's string-length RangeError into what happened and the fix; other errors pass through", () => {
    const e = tooLarge(new RangeError('Invalid string length'), 250_000) as Error & {
      code: string;
      hint: string;
    };
    expect(e.code).toBe('RETAP_RESULTS_TOO_LARGE');
    expect(e.message).toMatch(/250000 replayed requests do not fit in one results file/);
    expect(e.hint).toMatch(/retap snapshot filter/);
    const other = new Error('disk full');
    expect(tooLarge(other, 1)).toBe(other);
  });
});
