/**
 * Golden files for the JUnit and Markdown reports of the mixed fixture. Volatile fields
 * (timestamps, durations) are normalised first. A missing or changed golden file fails; after an
 * intended change refresh them with `npm run test:update-golden` and review the diff. Never in CI.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig, evaluate, type Verdict, withBudgets } from '../../assertions/index.js';
import { brokenResults, mixedResults } from '../../assertions/testing/fixtures.js';
import { renderHtml } from './html.js';
import { renderJson } from './json.js';
import { renderJunit } from './junit.js';
import { renderMarkdown } from './markdown.js';
import { normaliseReport as normalise } from './normalise.js';

const GOLDEN = resolve(import.meta.dirname, '../../test/golden');

const updating = process.env.UPDATE_GOLDEN === '1';
if (updating && (process.env.CI || process.env.RETAP_REQUIRE_EBPF === '1'))
  throw new Error('UPDATE_GOLDEN=1 in CI: golden files are only rewritten on purpose, by a person');

function golden(name: string, actual: string): void {
  const path = join(GOLDEN, name);
  if (updating) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(path, actual);
  }
  if (!existsSync(path))
    throw new Error(`golden file ${path} is missing: run npm run test:update-golden and commit it`);
  expect(actual, `${name} differs from its golden file (npm run test:update-golden after an intended change)`).toBe(
    readFileSync(path, 'utf8'),
  );
}

const verdict = () =>
  evaluate(mixedResults(), withBudgets(defaultConfig(), ['GET /reports/{id}: p95 < 250ms', 'p95 < +10%']));

describe('reports (golden files)', () => {
  it('JUnit', () => golden('mixed.junit.xml', normalise(renderJunit(verdict()))));
  it('Markdown', () => golden('mixed.md', normalise(renderMarkdown(verdict()))));

  // a replay that did not reproduce the recording: the validity section leads, with causes
  const broken = () =>
    evaluate(brokenResults(), {
      ...defaultConfig(),
      tokens: [0, 1, 2].map((s) => ({
        id: `session-${s}`,
        kind: 'session',
        origin: { exchange: `s${s}#0`, in: 'response' as const, where: 'jsonpath:$.session' },
      })),
    });
  it('JUnit, replay not reproduced', () => golden('broken.junit.xml', normalise(renderJunit(broken()))));
  it('Markdown, replay not reproduced', () => golden('broken.md', normalise(renderMarkdown(broken()))));
  it('HTML, replay not reproduced', () => {
    const html = renderHtml(broken());
    expect(html).toContain('<h2>Replay validity</h2>');
    expect(html).toContain('a credential not carried');
    expect(html).toContain('connection reuse');
  });

  it('renders the same verdict the same way every time', () => {
    expect(renderJunit(verdict())).toBe(renderJunit(verdict()));
    expect(renderJson(verdict())).toBe(renderJson(verdict()));
  });

  it('JSON carries what scripts read: status, exit code, counts that add up, every difference', () => {
    const j = JSON.parse(renderJson(verdict())) as Verdict;
    expect(j.status).toBe('fail-assertions');
    expect(j.exitCode).toBe(1);
    expect(j.summary.items).toBe(9);
    expect(j.summary.passed + j.summary.failed + j.summary.errors).toBe(j.items.length);
    const diffs = j.items.flatMap((i) => i.diffs);
    expect(diffs.filter((d) => !d.noise)).toHaveLength(j.summary.differences);
    expect(diffs.filter((d) => d.noise)).toHaveLength(j.summary.ignored);
    expect(j.budgets.map((b) => b.status).sort()).toEqual(['fail', 'fail', 'not-judged']);
    expect(j.mocks).toMatchObject({ calls: 5, matched: 4 });
  });

  it('HTML is self-contained and escapes what it shows', () => {
    const r = mixedResults();
    const first = r.recorded[0];
    if (first) first.exchange.request.target = '/orders/42?<script>alert(1)</script>';
    const html = renderHtml(evaluate(r), { results: r });
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<(link|img|iframe)\b/);
    expect(html).not.toContain('<script>alert(1)');
    expect(html).toContain('&lt;script&gt;alert(1)');
    expect(html).toContain("default-src 'none'");
    expect(html.match(/<svg /g)?.length).toBe(5);
  });
});
