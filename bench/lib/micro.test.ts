import { afterEach, describe, expect, it, vi } from 'vitest';
import { run as events } from '../capture/events.bench.js';
import { run as head } from '../capture/protocols/http1/head.bench.js';
import { run as hpack } from '../capture/protocols/http2/hpack.bench.js';
import { run as reassembly } from '../capture/reassembly.bench.js';
import { run as driver } from '../runner/h1.bench.js';
import { run as redaction } from '../snapshots/redaction.bench.js';
import { type MicroCase, measure, runCases } from './micro.js';
import type { Row } from './rows.js';

/** One short round: the benches run end to end, no figure is judged. */
const short = { quick: true, rounds: 1, timeMs: 5 };

function wellFormed(rows: Row[]): void {
  expect(rows.length).toBeGreaterThanOrEqual(3);
  for (const r of rows) {
    expect(r.figure).toMatch(/^[^:|]+\(.+\): (MB\/s|ns per [a-z ]+|[a-z ]+s\/s)$/);
    expect(typeof r.value).toBe('number');
    expect(Number.isFinite(r.value) && (r.value as number) > 0).toBe(true);
    if (r.ratio !== undefined) {
      expect(typeof r.peer).toBe('string');
      expect(Number.isFinite(r.ratio) && r.ratio > 0).toBe(true);
      expect(r.spread![0]).toBeLessThanOrEqual(r.ratio);
      expect(r.spread![1]).toBeGreaterThanOrEqual(r.ratio);
    }
  }
  // every hot path reports MB/s, ns per op and ops/s
  const paths = new Set(rows.map((r) => r.figure.replace(/: [^:]+$/, '')));
  for (const p of paths) {
    const kinds = rows.filter((r) => r.figure.startsWith(`${p}: `)).map((r) => r.figure.slice(p.length + 2));
    expect(kinds).toContain('MB/s');
    expect(kinds.some((k) => k.startsWith('ns per '))).toBe(true);
    expect(kinds.some((k) => k.endsWith('s/s') && k !== 'MB/s')).toBe(true);
  }
}

/** The printed table of a case: a header, a rule, one line per arm with 4 numbers. */
function printedTables(lines: string[]): string[][] {
  const tables: string[][] = [];
  for (const l of lines) {
    if (l.startsWith('| arm |')) tables.push([l]);
    else if (l.startsWith('|') && tables.length) tables[tables.length - 1]!.push(l);
  }
  return tables;
}

describe('micro-benchmarks (tinybench)', () => {
  let log: ReturnType<typeof vi.spyOn>;
  const printed = (): string[] => log.mock.calls.flatMap((c: unknown[]) => String(c[0]).split('\n'));
  afterEach(() => log?.mockRestore());

  it.each([
    ['capture/events', events, 1],
    ['capture/reassembly', reassembly, 1],
    ['capture/protocols/http1/head', head, 2],
    ['capture/protocols/http2/hpack', hpack, 0],
    ['runner/h1', driver, 2],
    ['snapshots/redaction', redaction, 1],
  ] as const)(
    '%s runs one short round and returns well-formed rows',
    async (_name, run, peers) => {
      log = vi.spyOn(console, 'log').mockImplementation(() => {});
      const rows = await run(short);
      wellFormed(rows);
      // llhttp is reachable on the node this project supports: its rows must be there
      expect(rows.filter((r) => r.ratio !== undefined)).toHaveLength(peers);
      if (peers === 0) expect(rows[0]!.peer).toMatch(/^none/);
      const tables = printedTables(printed());
      expect(tables).toHaveLength(1);
      const [header, rule, ...arms] = tables[0]!;
      expect(header).toMatch(/^\| arm \| .+s\/s \| ns\/.+ \| MB\/s \| ours\/arm/);
      expect(rule).toBe('|---|---:|---:|---:|---:|');
      expect(arms).toHaveLength(1 + peers);
      for (const a of arms) expect(a).toMatch(/^\| [^|]+ \| [\d,.]+ \| [\d,.]+ \| [\d,.]+ \| [\d.]* \|$/);
    },
    60_000,
  );

  it('fails the case when its check finds the work not done, and when an arm throws', async () => {
    const base: MicroCase = {
      path: 'demo (x)',
      input: 'nothing',
      op: 'item',
      opsPerCall: 10,
      bytesPerCall: 100,
      ours: { name: 'ours', fn: () => 1 },
      peers: [{ name: 'peer', fn: () => 2 }],
    };
    await expect(
      measure(
        {
          ...base,
          check: () => {
            throw new Error('only 3 of 10 items');
          },
        },
        short,
      ),
    ).rejects.toThrow('only 3 of 10 items');
    await expect(
      measure(
        {
          ...base,
          ours: {
            name: 'ours',
            fn: () => {
              throw new Error('broken arm');
            },
          },
        },
        short,
      ),
    ).rejects.toThrow('broken arm');
  });

  it('reports per op and per byte from the same timing, ratios per round', async () => {
    log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const c: MicroCase = {
      path: 'demo (x)',
      input: 'nothing',
      op: 'item',
      opsPerCall: 1000,
      bytesPerCall: 2_000_000,
      ours: { name: 'ours', fn: () => 1 },
      peers: [{ name: 'peer', fn: () => 2 }],
    };
    const r = await measure(c, { quick: true, rounds: 3, timeMs: 5 });
    expect(r.ours.opsPerSec).toHaveLength(3);
    expect(r.ratios[0]).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      // ops/s × ns/op = 1e9, MB/s = ops/s × bytes per op / 1e6
      expect(r.ours.opsPerSec[i]! * r.ours.nsPerOp[i]!).toBeCloseTo(1e9, -3);
      expect(r.ours.mbps[i]!).toBeCloseTo((r.ours.opsPerSec[i]! * 2000) / 1e6, 6);
      expect(r.ratios[0]![i]!).toBeCloseTo(r.ours.mbps[i]! / r.peers[0]!.mbps[i]!, 9);
    }
    const rows = await runCases([{ ...c, peers: [], noPeer: 'none here' }], {
      quick: true,
      rounds: 1,
      timeMs: 5,
    });
    expect(rows.map((x) => x.figure)).toEqual([
      'demo (x): MB/s',
      'demo (x): ns per item',
      'demo (x): items/s',
    ]);
    expect(rows[0]!.peer).toBe('none here');
    expect(rows[0]!.ratio).toBeUndefined();
  });
});
