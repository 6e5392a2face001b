/**
 * The error codes are an interface: every one is documented in docs/cli.md with what it means and
 * what to do, and code elsewhere names them through `ErrorCodes`, never as a string of its own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, RetapError } from './errors.js';
import { packageRoot } from './paths.js';

const root = packageRoot();

interface Row {
  code: string;
  exit: string;
  meaning: string;
  fix: string;
}

/** The rows of the table under `## Error codes` in docs/cli.md. */
function documented(): Row[] {
  const text = readFileSync(join(root, 'docs', 'cli.md'), 'utf8');
  const start = text.indexOf('\n## Error codes\n');
  expect(start, 'docs/cli.md has a section "## Error codes"').toBeGreaterThan(-1);
  const end = text.indexOf('\n## ', start + 1);
  const section = text.slice(start, end === -1 ? undefined : end);
  const rows: Row[] = [];
  for (const line of section.split('\n')) {
    const m = /^\| `(RETAP_[A-Z0-9_]+)` \|(.*)\|\s*$/.exec(line);
    if (!m) continue;
    const [exit = '', meaning = '', fix = ''] = (m[2] as string).split(' | ').map((c) => c.trim());
    rows.push({ code: m[1] as string, exit, meaning, fix });
  }
  return rows;
}

/** Source files of the product (tests, dependencies and build outputs left out). */
function sources(dir = root): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || ['node_modules', 'dist', 'build', 'test'].includes(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mjs|js)$/.test(e.name) && !/\.test\.ts$|\.d\.ts$/.test(e.name)) out.push(p);
  }
  return out;
}

describe('error codes', () => {
  const codes = Object.values(ErrorCodes);

  it('every code is in the table of docs/cli.md with its exit code, meaning and fix', () => {
    const rows = new Map(documented().map((r) => [r.code, r]));
    const missing = codes.filter((c) => !rows.has(c));
    expect(missing, 'codes of core/errors.ts missing from docs/cli.md "Error codes"').toEqual([]);
    for (const code of codes) {
      const row = rows.get(code) as Row;
      expect(row.exit, `${code}: exit column`).toBe(String(new RetapError(code, 'x').exitCode));
      expect(row.meaning.length, `${code}: what went wrong`).toBeGreaterThan(10);
      expect(row.fix.length, `${code}: what to do`).toBeGreaterThan(10);
    }
  });

  it('the table documents no code that does not exist', () => {
    const known = new Set<string>(codes);
    expect(documented().filter((r) => !known.has(r.code)).map((r) => r.code)).toEqual([]);
  });

  it('code outside core/errors.ts names codes through ErrorCodes, never as a string literal', () => {
    const values = new Set<string>(codes);
    const found: string[] = [];
    for (const file of sources()) {
      if (file === join(root, 'core', 'errors.ts')) continue;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(code\s*[:=]\s*)?(['"`])(RETAP_[A-Z0-9_]+)\2/g)) {
        if (m[1] !== undefined || values.has(m[3] as string))
          found.push(`${relative(root, file)}: ${m[0]}`);
      }
    }
    expect(found).toEqual([]);
  });
});
