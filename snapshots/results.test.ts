import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Exchange } from '../core/exchange.js';
import type { ReplayResults } from '../core/results.js';
import { shopResults } from '../assertions/testing/fixtures.js';
import { packageRoot } from '../core/paths.js';
import {
  decodeResults,
  entriesOf,
  headerOf,
  openResults,
  readResults,
  tooLarge,
  writeResults,
  writeResultsStream,
} from './results.js';

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

const tmp = (): string => mkdtempSync(join(tmpdir(), 'retap-results-'));

async function expectError(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const e = (await p.then(
    () => undefined,
    (x: unknown) => x,
  )) as (Error & { code?: string }) | undefined;
  expect(e, 'an error').toBeInstanceOf(Error);
  expect(e?.code).toBe(code);
  expect(e?.message).toMatch(message);
}

describe('results file (format 2, JSON Lines)', () => {
  it('round-trips exchanges and binary client bodies, atomically with 0600, from the directory', async () => {
    const dir = tmp();
    try {
      const path = await writeResults(join(dir, 'out'), sample());
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(readdirSync(join(dir, 'out'))).toEqual(['results.json']);
      expect(await readResults(join(dir, 'out'))).toEqual({ ...sample(), formatVersion: 2 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is a header, one line per recorded item holding every run, and a trailer with the counts', async () => {
    const dir = tmp();
    try {
      const r = shopResults({ sessions: 2 });
      r.runs.push({ ...shopResults({ sessions: 2, seed: 3 }).runs[0]!, label: 'candidate#2' });
      const path = await writeResults(dir, r);
      const lines = readFileSync(path, 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines[0]).toMatchObject({ t: 'header', format: 'retap-results', formatVersion: 2 });
      expect(lines[0].runs.map((x: { label: string }) => x.label)).toEqual(['candidate', 'candidate#2']);
      expect(lines[0].runs[0].items).toBeUndefined();
      const items = lines.slice(1, -1);
      expect(items).toHaveLength(r.recorded.length);
      expect(items.map((l) => l.n)).toEqual(r.recorded.map((_, i) => i));
      expect(items.every((l) => l.t === 'item' && l.runs.length === 2)).toBe(true);
      expect(lines.at(-1)).toEqual({
        t: 'end',
        items: r.recorded.length,
        runItems: [r.runs[0]!.items.length, r.runs[1]!.items.length],
      });
      expect(await readResults(path)).toEqual({ ...r, formatVersion: 2 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a run item no recorded item names, and a run that ended early', async () => {
    const dir = tmp();
    try {
      const r = sample();
      const stray = { ...r.runs[0]!.items[0]!, id: 'nowhere' };
      r.runs[0]!.items.push(stray);
      r.runs.push({ ...r.runs[0]!, label: 'candidate#2', items: [], error: { code: 'X', message: 'died' } });
      await writeResults(dir, r);
      const back = await readResults(dir);
      expect(back.runs[0]!.items.map((i) => i.id)).toEqual(['r1', 'nowhere']);
      expect(back.runs[1]!.items).toEqual([]);
      expect(back.runs[1]!.error?.message).toBe('died');
      expect(back.recorded.map((i) => i.id)).toEqual(['r1']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('streams: items are read one at a time, and the stream writer takes them as they come', async () => {
    const dir = tmp();
    try {
      const r = shopResults({ sessions: 3 });
      async function* slowly() {
        for (const e of entriesOf(r)) {
          await new Promise((res) => setImmediate(res));
          yield e;
        }
      }
      await writeResultsStream(dir, headerOf(r), slowly());
      const s = await openResults(dir);
      expect(s.header.runs[0]!.label).toBe('candidate');
      const ids: string[] = [];
      for await (const e of s.entries()) ids.push(e.id);
      expect(ids).toEqual(r.recorded.map((i) => i.id));
      expect(s.trailer()).toEqual({ items: ids.length, runItems: [r.runs[0]!.items.length] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a write whose counts fail the check leaves no file and no temp file', async () => {
    const dir = tmp();
    try {
      const r = sample();
      const err = await writeResultsStream(dir, headerOf(r), entriesOf(r), (t) => {
        expect(t).toEqual({ items: 1, runItems: [1] });
        throw new Error('lost one');
      }).catch((e: unknown) => e as Error);
      expect((err as Error).message).toBe('lost one');
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a file without its trailer (cut short) is an error that says so, never a partial pass', async () => {
    const dir = tmp();
    try {
      const path = await writeResults(dir, shopResults({ sessions: 2 }));
      const text = readFileSync(path, 'utf8');
      const lines = text.trimEnd().split('\n');
      // cut after a whole line: the trailer is missing
      writeFileSync(path, `${lines.slice(0, -1).join('\n')}\n`);
      await expectError(
        readResults(path),
        'RETAP_RESULTS_INCOMPLETE',
        /ends after 8 items without its trailer line.*not judged/,
      );
      // cut inside a line
      truncateSync(path, text.length - lines.at(-1)!.length - 40);
      await expectError(
        readResults(path),
        'RETAP_RESULTS_INCOMPLETE',
        /ends inside line 9 after 7 items, without its trailer/,
      );
      // the header alone
      writeFileSync(path, `${lines[0]}\n`);
      await expectError(readResults(path), 'RETAP_RESULTS_INCOMPLETE', /ends after 0 items/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a lost or repeated item line, or a trailer that disagrees, is an error', async () => {
    const dir = tmp();
    try {
      const path = await writeResults(dir, shopResults({ sessions: 2 }));
      const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
      writeFileSync(path, `${[...lines.slice(0, 3), ...lines.slice(4)].join('\n')}\n`);
      await expectError(
        readResults(path),
        'RETAP_SNAPSHOT_INVALID',
        /:4: item 2 expected, found item 3: a line is missing or repeated/,
      );
      const end = JSON.parse(lines.at(-1)!);
      writeFileSync(
        path,
        `${[...lines.slice(0, -1), JSON.stringify({ ...end, runItems: [7] })].join('\n')}\n`,
      );
      await expectError(
        readResults(path),
        'RETAP_RESULTS_INCOMPLETE',
        /trailer counts 8 items \(per run \[7\]\) but 8 were read \(per run \[8\]\)/,
      );
      writeFileSync(path, `${lines.join('\n')}\n`);
      appendFileSync(path, `${lines[1]}\n`);
      await expectError(readResults(path), 'RETAP_SNAPSHOT_INVALID', /:11: a line after the trailer/);
      writeFileSync(path, `${[...lines.slice(0, 2), 'nope', ...lines.slice(2)].join('\n')}\n`);
      await expectError(readResults(path), 'RETAP_SNAPSHOT_INVALID', /:3: not JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses files that are not results, or of a newer format', async () => {
    const dir = tmp();
    try {
      const f = join(dir, 'f.json');
      writeFileSync(f, '{"format":"x"}');
      await expectError(readResults(f), 'RETAP_SNAPSHOT_INVALID', /f.json: not a retap results file/);
      writeFileSync(f, 'nope');
      await expectError(readResults(f), 'RETAP_SNAPSHOT_INVALID', /not JSON/);
      writeFileSync(f, '{"t":"header","format":"retap-results","formatVersion":3,"runs":[]}\n');
      const e = await readResults(f).catch((x: unknown) => x as Error & { hint: string });
      expect((e as Error & { hint: string }).hint).toMatch(/written by a newer retap/);
      await expectError(readResults(join(dir, 'nothing')), 'RETAP_SNAPSHOT_NOT_FOUND', /cannot read results/);
      await expectError(readResults(dir), 'RETAP_SNAPSHOT_NOT_FOUND', /no results.json in/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('results file (format 1, one JSON document)', () => {
  // written by the version 1 writer (retap before JSON Lines) from the shop fixture below
  const v1 = join(packageRoot(), 'test', 'fixtures', 'results', 'v1-shop.json');
  const expected = () => {
    const r = shopResults({ sessions: 3, variants: ['slow'] });
    r.runs.push({ ...shopResults({ sessions: 3, seed: 9 }).runs[0]!, label: 'candidate#2' });
    return r;
  };

  it('still reads, whole and item by item', async () => {
    expect(readFileSync(v1, 'utf8').startsWith('{\n "format": "retap-results",\n "formatVersion": 1,')).toBe(
      true,
    );
    expect(await readResults(v1)).toEqual(expected());
    const s = await openResults(v1);
    let n = 0;
    for await (const e of s.entries()) {
      expect(e.runs).toHaveLength(2);
      n++;
    }
    expect(n).toBe(12);
    expect(s.trailer()).toEqual({ items: 12, runItems: [12, 12] });
    expect(decodeResults(readFileSync(v1, 'utf8')).formatVersion).toBe(1);
  });

  it('reads back as format 2 with nothing lost', async () => {
    const dir = tmp();
    try {
      await writeResults(dir, await readResults(v1));
      expect(await readResults(dir)).toEqual({ ...expected(), formatVersion: 2 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('results too large', () => {
  it("turns V8's string-length RangeError into what happened and the fix; other errors pass through", () => {
    const e = tooLarge(new RangeError('Invalid string length'), 1) as Error & {
      code: string;
      hint: string;
    };
    expect(e.code).toBe('RETAP_RESULTS_TOO_LARGE');
    expect(e.message).toMatch(/one replayed request and its answers do not fit in one line/);
    expect(e.hint).toMatch(/retap snapshot filter/);
    const other = new Error('disk full');
    expect(tooLarge(other, 1)).toBe(other);
  });
});
