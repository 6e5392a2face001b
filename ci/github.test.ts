import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluate } from '../assertions/index.js';
import { shopResults } from '../assertions/testing/fixtures.js';
import { actionArgs } from './entry.js';
import {
  escapeData,
  escapeProperty,
  formatAnnotation,
  githubEnv,
  verdictAnnotations,
  workspacePath,
  writeOutputs,
} from './github.js';

const dir = mkdtempSync(join(tmpdir(), 'retap-github-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('workflow commands', () => {
  it('escapes data and properties as the runner expects', () => {
    expect(escapeData('50% done\r\nnext')).toBe('50%25 done%0D%0Anext');
    expect(escapeProperty('retap: GET /a, b')).toBe('retap%3A GET /a%2C b');
    expect(
      formatAnnotation({ level: 'error', title: 'retap: x', message: 'a\nb', file: 'retap.yaml', line: 3 }),
    ).toBe('::error file=retap.yaml,line=3,title=retap%3A x::a%0Ab');
  });

  it('reads the runner variables and makes paths relative to the workspace', () => {
    const g = githubEnv({
      GITHUB_ACTIONS: 'true',
      GITHUB_OUTPUT: '/o',
      GITHUB_STEP_SUMMARY: '/s',
      GITHUB_WORKSPACE: '/w',
    });
    expect(g).toEqual({ actions: true, output: '/o', summary: '/s', workspace: '/w' });
    expect(workspacePath('/w/svc/retap.yaml', '/w')).toBe('svc/retap.yaml');
    expect(workspacePath('/elsewhere/retap.yaml', '/w')).toBe('/elsewhere/retap.yaml');
  });

  it('writes outputs, multi-line ones with a heredoc delimiter', async () => {
    const file = join(dir, 'output');
    await writeOutputs(file, { verdict: 'pass', note: 'a\nb' });
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^verdict=pass\nnote<<(retap_[0-9a-f]{16})\na\nb\n\1\n$/);
  });
});

describe('annotations', () => {
  it('none for a passing verdict', () => {
    const v = evaluate(shopResults({ sessions: 6, candidateRuns: 2 }));
    expect(v.status).toBe('pass');
    expect(verdictAnnotations(v).filter((a) => a.level === 'error')).toEqual([]);
  });

  it('one per failing route, naming the difference and how many requests show it', () => {
    const v = evaluate(
      shopResults({ sessions: 6, candidateRuns: 2, baselineRuns: 1, variants: ['changed-field', 'error'] }),
    );
    expect(v.status).toBe('fail-assertions');
    const list = verdictAnnotations(v, { file: 'retap.yaml' });
    const failing = v.routes.filter((r) => r.failed + r.errors > 0).map((r) => `retap: ${r.route}`);
    expect(list.map((a) => a.title)).toEqual(expect.arrayContaining(failing));
    for (const a of list) expect(a.file).toBe('retap.yaml');
    const changed = list.find((a) => a.message.includes('total'));
    expect(changed?.message).toMatch(/requests fail\nbreaking: .*total.*\(\d+ of \d+\)/);
  });

  it('one for a replay that did not reproduce the recording, naming the route and the cause', () => {
    const v = evaluate(shopResults({ sessions: 6, variants: ['error'] }));
    expect(v.status).toBe('error');
    const first = verdictAnnotations(v)[0];
    expect(first?.title).toBe('retap: the replay did not reproduce the recording');
    expect(first?.message).toMatch(
      /GET \/orders: 6\/6 answers in another status class \(100%\) — likely the build answers with server errors/,
    );
    expect(first?.message).toMatch(/--baseline-cmd/);
  });

  it('caps the count and says how many were left out', () => {
    const v = evaluate(shopResults({ sessions: 6, variants: ['changed-field', 'error', 'extra-call'] }));
    const all = verdictAnnotations(v, { max: 50 });
    const capped = verdictAnnotations(v, { max: 2 });
    expect(all.length).toBeGreaterThan(2);
    expect(capped).toHaveLength(2);
    expect(capped[1]?.message).toMatch(new RegExp(`^${all.length - 1} more failures`));
  });
});

describe('action inputs → retap ci flags', () => {
  it('maps inputs in both spellings, splits lists, leaves empty ones to retap.yaml', () => {
    const args = actionArgs({
      INPUT_SNAPSHOT: 'snaps/orders@2',
      'INPUT_BUILD-COMMAND': 'node dist/server.js',
      INPUT_PORT: '8080',
      INPUT_READY: '',
      INPUT_BUDGETS: 'p95 < 250ms\n\n# comment\nGET /orders/{id}: p99 < +10%\n',
      INPUT_ENV: 'A=1\nB=two words',
      INPUT_WARN_ONLY: 'budgets, assertions',
      INPUT_REPORT_DIR: 'out',
      INPUT_STEP_SUMMARY: 'false',
    });
    expect(args).toEqual([
      '--snapshot',
      'snaps/orders@2',
      '--cmd',
      'node dist/server.js',
      '--port',
      '8080',
      '--out',
      'out',
      '--budget',
      'p95 < 250ms',
      '--budget',
      'GET /orders/{id}: p99 < +10%',
      '--env',
      'A=1',
      '--env',
      'B=two words',
      '--warn-only',
      'budgets',
      '--warn-only',
      'assertions',
      '--no-step-summary',
    ]);
  });
});
