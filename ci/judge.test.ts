import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { defaultConfig, evaluate } from '../assertions/index.js';
import { shopResults } from '../assertions/testing/fixtures.js';
import { ExitCodes } from '../core/errors.js';
import { gate } from './gate.js';
import { verdictAnnotations } from './github.js';
import { judge, writeReports } from './judge.js';
import { publish, type Published } from './publish.js';

const dir = mkdtempSync(join(tmpdir(), 'retap-judge-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

describe('judge', () => {
  it('is the verdict and the gate of it, policy included', () => {
    const results = shopResults({ sessions: 6, variants: ['changed-field'] });
    const j = judge(results, defaultConfig());
    const g = gate(evaluate(results, defaultConfig()));
    expect(j.exitCode).toBe(ExitCodes.ASSERTIONS_FAILED);
    expect({ exitCode: j.exitCode, status: j.status, line: j.line }).toEqual(g);
    expect(j.verdict.status).toBe('fail-assertions');
    const warned = judge(results, defaultConfig(), { warnOnly: ['assertions'] });
    expect(warned.exitCode).toBe(ExitCodes.OK);
    expect(warned.verdict.status).toBe('fail-assertions');
  });

  it('writes one report file per format and names each', async () => {
    const results = shopResults({ sessions: 6 });
    const { verdict } = judge(results, defaultConfig());
    const written = await writeReports(dir, ['junit', 'markdown'], verdict, results);
    expect(written).toEqual({ junit: join(dir, 'report.junit.xml'), markdown: join(dir, 'report.md') });
    expect(readFileSync(written.junit!, 'utf8')).toMatch(/^<\?xml/);
    expect(existsSync(join(dir, 'report.html'))).toBe(false);
  });

  it('a failed write leaves the reports already written named', async () => {
    const results = shopResults({ sessions: 6 });
    const { verdict } = judge(results, defaultConfig());
    const written = {};
    await expect(writeReports(join(dir, 'missing'), ['json'], verdict, results, written)).rejects.toThrow(/ENOENT/);
    expect(written).toEqual({});
  });
});

describe('publish', () => {
  const results = shopResults({ sessions: 6, variants: ['changed-field', 'error', 'extra-call'] });
  const j = judge(results, defaultConfig());
  const done: Published = {
    verdict: j.verdict,
    exitCode: j.exitCode,
    status: j.status,
    reports: { junit: '/r/report.junit.xml' },
    results: '/r/results.json',
  };

  it('writes the summary, the outputs and the annotations GitHub asks for', async () => {
    const summary = join(dir, 'summary.md');
    const output = join(dir, 'output');
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => lines.push(String(s)) > 0);
    await publish(
      done,
      { actions: true, summary, output, workspace: dir },
      { stepSummary: true, annotations: true, maxAnnotations: 2, configFile: join(dir, 'retap.yaml') },
    );
    expect(readFileSync(summary, 'utf8')).toMatch(/^#/);
    const out = readFileSync(output, 'utf8');
    expect(out).toContain(`verdict=${j.status}\n`);
    expect(out).toContain(`exit-code=${j.exitCode}\n`);
    expect(out).toContain('junit=/r/report.junit.xml\n');
    expect(out).toContain('html=\n');
    // capped at maxAnnotations, of more than that
    expect(verdictAnnotations(j.verdict, { max: 50 }).length).toBeGreaterThan(2);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^::error file=retap\.yaml/);
  });

  it('writes nothing the settings turn off, and outside Actions no annotations', async () => {
    const summary = join(dir, 'summary-off.md');
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => lines.push(String(s)) > 0);
    await publish(done, { actions: true, summary }, { stepSummary: false, annotations: false, maxAnnotations: 10 });
    await publish(done, { actions: false }, { stepSummary: true, annotations: true, maxAnnotations: 10 });
    expect(existsSync(summary)).toBe(false);
    expect(lines).toEqual([]);
  });

  it('given annotations replace the verdict’s own', async () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => lines.push(String(s)) > 0);
    await publish(done, { actions: true }, { stepSummary: true, annotations: true, maxAnnotations: 10 }, [
      { level: 'error', title: 'retap ci', message: 'bad' },
    ]);
    expect(lines).toEqual(['::error title=retap ci::bad\n']);
  });
});
