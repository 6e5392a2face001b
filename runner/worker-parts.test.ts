import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeExchange } from '../snapshots/format.js';
import { sampleExchange } from '../snapshots/sample.js';
import type { WorkerOutput } from './spec.js';
import { outputReader, readLines, sealOutput, writeLines } from './worker-parts.js';

const off = { enabled: false, secrets: new Map(), rules: {} as never, recorded: new Map() };

const output = (n: number): WorkerOutput => ({
  items: Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    method: 'GET',
    target: `/x/${i}`,
    headers: [['host', 'x']],
    status: 200,
    responseBody: Buffer.from(`answer ${i}`).toString('base64'),
    durationMs: 1,
  })),
  mocks: { calls: 2, matched: 1, misses: [] },
  warnings: [{ code: 'w', message: 'm', item: 'r1' }],
  buildLog: 'log',
});

const readAll = (lines: Iterable<string>): WorkerOutput | undefined => {
  const r = outputReader();
  for (const l of lines) expect(r.line(JSON.parse(l))).toBe(true);
  return r.result();
};

describe("the worker's output as JSON Lines", () => {
  it('one line per item, then the rest with the count; read back whole', () => {
    const lines = [...sealOutput(output(3), off as never)];
    expect(lines).toHaveLength(4);
    expect(JSON.parse(lines[3]!)).toMatchObject({ t: 'output', items: 3, output: { items: [] } });
    expect(readAll(lines)).toEqual(output(3));
  });

  it('an output cut short is not an output; a count that disagrees is an error', () => {
    const lines = [...sealOutput(output(3), off as never)];
    expect(readAll(lines.slice(0, -1))).toBeUndefined();
    expect(() => readAll([lines[0]!, lines[2]!, lines[3]!])).toThrow(
      /counts 3 answers but 2 arrived: answers were lost/,
    );
    expect(outputReader().line({ t: 'progress' })).toBe(false);
  });

  it('what cannot be redacted leaves no answers, only the error', () => {
    const lines = [...sealOutput(output(2), { ...off, enabled: true, recorded: undefined } as never)];
    const back = readAll(lines);
    expect(back?.items).toEqual([]);
    expect(back?.error?.message).toMatch(/cannot redact the replay's answers/);
  });
});

describe('exchange files for the worker', () => {
  it('written and read line by line, a last line without its newline included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'retap-lines-'));
    try {
      const file = join(dir, 'x.jsonl');
      const exs = Array.from({ length: 3000 }, (_, i) => sampleExchange(i));
      await writeLines(file, exs.map(encodeExchange));
      expect(readFileSync(file, 'utf8').split('\n')).toHaveLength(3001);
      expect(readLines(file)).toEqual(exs);
      appendFileSync(file, encodeExchange(sampleExchange(3000)));
      expect(readLines(file).at(-1)).toEqual(sampleExchange(3000));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
