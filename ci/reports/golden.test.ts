/**
 * Golden files for the JUnit and Markdown reports of the mixed fixture. Volatile fields
 * (timestamps, durations) are normalised first. Refresh after an intended change with
 * `UPDATE_GOLDEN=1 npx vitest run ci/reports/golden.test.ts` and review the diff.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig, evaluate, withBudgets } from '../../assertions/index.js';
import { brokenResults, mixedResults } from '../../assertions/testing/fixtures.js';
import { renderHtml } from './html.js';
import { renderJson } from './json.js';
import { renderJunit } from './junit.js';
import { renderMarkdown } from './markdown.js';
import { normaliseReport as normalise } from './normalise.js';

const GOLDEN = resolve(import.meta.dirname, '../../test/golden');

function golden(name: string, actual: string): void {
  const path = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN || !existsSync(path)) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(path, actual);
  }
  expect(actual).toBe(readFileSync(path, 'utf8'));
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

  it('JSON is the verdict', () => {
    const v = verdict();
    expect(JSON.parse(renderJson(v))).toEqual(JSON.parse(JSON.stringify(v)));
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
