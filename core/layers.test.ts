/**
 * Imports only go one way: every source file may import only the folders its row of the layout
 * table in docs/design.md names ("may import"). The table is read from the document itself, so
 * the map and the code cannot drift apart. Tests (`*.test.ts`, `*.test-helper.ts`) are left out:
 * a unit test may build its input with a later stage.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from './paths.js';

const root = packageRoot();

/** folder (with trailing slash) → folders it may import; '*' for everything. */
type Layout = Map<string, Set<string> | '*'>;

/** The layout table of docs/design.md: rows `| \`folder/\` | owns | may import |`. */
function layoutOf(markdown: string): Layout {
  const layout: Layout = new Map();
  for (const line of markdown.split('\n')) {
    const m = /^\| `([^`]+\/)` \|.*\| ([^|]*) \|\s*$/.exec(line);
    if (!m) continue;
    const may = (m[2] as string).trim();
    if (may === 'everything') layout.set(m[1] as string, '*');
    else layout.set(m[1] as string, new Set([...may.matchAll(/`([^`]+\/)`/g)].map((x) => x[1] as string)));
  }
  return layout;
}

/** The most specific folder of the table that holds `path` (`capture/k8s/` over `capture/`). */
function areaOf(layout: Layout, path: string): string | undefined {
  let best: string | undefined;
  for (const folder of layout.keys())
    if (path.startsWith(folder) && (best === undefined || folder.length > best.length)) best = folder;
  return best;
}

/** Relative module names a file imports: static, re-exports, side-effect and literal import(). */
function importsOf(text: string): string[] {
  const out: string[] = [];
  const re =
    /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec?.startsWith('.')) out.push(spec);
  }
  return out;
}

/**
 * Known upward imports waiting for their fix (each `file → folder`): the test fails on any other,
 * and on one of these once it is gone (so the list only shrinks).
 */
const KNOWN: ReadonlySet<string> = new Set([
  // the viewer's full text renders PostgreSQL binary cells with capture's decoder of them
  'snapshots/filter.ts → capture/',
]);

/** `file → import` pairs the table does not allow; `files` maps repo-relative paths to text. */
function violations(layout: Layout, files: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [file, text] of files) {
    const from = areaOf(layout, file);
    if (from === undefined) continue;
    const allowed = layout.get(from) as Set<string> | '*';
    if (allowed === '*') continue;
    for (const spec of importsOf(text)) {
      const target = posix.normalize(posix.join(posix.dirname(file), spec));
      const to = areaOf(layout, target) ?? `${target.split('/')[0]}/`;
      if (to === from || allowed.has(to)) continue;
      out.push(`${file} imports ${spec} (${from} → ${to}; ${from} may import ${[...allowed].join(', ') || 'nothing of the project'})`);
    }
  }
  return out;
}

/** `snapshots/filter.ts → capture/` of a violation's text. */
function keyOf(violation: string): string {
  const m = /^(\S+) imports \S+ \((\S+) → (\S+);/.exec(violation);
  return m ? `${m[1]} → ${m[3]}` : violation;
}

/**
 * The snapshot package's doors (docs/design.md): outside snapshots/, a source file imports
 * `snapshots/index.ts`, or `snapshots/replay.ts` (the replay-time part a worker loads), never a
 * module behind them. Bench files are harnesses and may reach in.
 */
const SNAPSHOT_DOORS: ReadonlySet<string> = new Set(['snapshots/index.js', 'snapshots/replay.js']);

function throughDoors(files: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [file, text] of files) {
    if (file.startsWith('snapshots/') || file.startsWith('bench/')) continue;
    for (const spec of importsOf(text)) {
      const target = posix.normalize(posix.join(posix.dirname(file), spec));
      if (target.startsWith('snapshots/') && !SNAPSHOT_DOORS.has(target)) out.push(`${file} imports ${spec}`);
    }
  }
  return out;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || ['node_modules', 'dist', 'build'].includes(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.ts$/.test(e.name) && !/\.(test|test-helper|d)\.ts$/.test(e.name)) out.push(p);
  }
  return out;
}

describe('imports only go one way (docs/design.md, "may import")', () => {
  const layout = layoutOf(readFileSync(join(root, 'docs', 'design.md'), 'utf8'));

  it('the table is read: core is a leaf, cli may import everything, the pipeline in order', () => {
    expect(layout.get('core/')).toEqual(new Set());
    expect(layout.get('cli/')).toBe('*');
    expect(layout.get('runner/')).toEqual(new Set(['core/', 'capture/', 'capture/k8s/', 'snapshots/']));
    expect(layout.get('ci/')).toEqual(new Set(['core/', 'assertions/']));
    expect(layout.get('capture/k8s/')).toEqual(new Set(['core/', 'capture/']));
  });

  it('no source file imports a folder its row does not name', () => {
    const files = new Map<string, string>();
    for (const f of sources(root)) files.set(relative(root, f).split(sep).join('/'), readFileSync(f, 'utf8'));
    expect(files.size).toBeGreaterThan(200);
    const found = violations(layout, files);
    const known = found.filter((v) => KNOWN.has(keyOf(v)));
    expect(found.filter((v) => !KNOWN.has(keyOf(v)))).toEqual([]);
    // a known one that is fixed leaves the list
    expect([...KNOWN].filter((k) => !known.some((v) => keyOf(v) === k))).toEqual([]);
  });

  it('finds an upward import in every form of import', () => {
    const bad = new Map([
      ['ci/entry.ts', "import { main } from '../cli/main.js';"],
      ['ci/x.ts', "const { main } = await import('../cli/main.js');"],
      ['core/a.ts', "import type {\n  Snapshot,\n} from '../snapshots/format.js';"],
      ['capture/b.ts', "export { agent } from './k8s/agent.js';"],
      ['snapshots/c.ts', "import '../runner/side-effect.js';"],
      ['assertions/d.ts', "import { x } from '../test/helpers/procs.js';"],
    ]);
    expect(violations(layout, bad).map((v) => v.split(' ')[0])).toEqual([...bad.keys()]);
    const fine = new Map([
      ['runner/e.ts', "import { a } from '../capture/x.js';\nimport { b } from './mocks/y.js';"],
      ['capture/k8s/f.ts', "import { c } from '../session.js';"],
      ['cli/g.ts', "import { d } from '../ci/config.js';"],
      ['core/h.ts', "import { isIP } from 'node:net';\n// import { y } from 'yaml' in a comment names no folder"],
    ]);
    expect(violations(layout, fine)).toEqual([]);
  });

  it('outside snapshots/, files import the snapshot package only through its doors', () => {
    const files = new Map<string, string>();
    for (const f of sources(root)) files.set(relative(root, f).split(sep).join('/'), readFileSync(f, 'utf8'));
    expect(throughDoors(files)).toEqual([]);
    const probe = new Map([
      ['runner/a.ts', "import { linkCalls } from '../snapshots/links.js';"],
      ['cli/commands/b.ts', "import { x } from '../../snapshots/transforms/index.js';"],
      ['runner/c.ts', "import { y } from '../snapshots/replay.js';\nimport { z } from '../snapshots/index.js';"],
      ['snapshots/d.ts', "import { w } from './links.js';"],
    ]);
    expect(throughDoors(probe)).toEqual([
      "runner/a.ts imports ../snapshots/links.js",
      "cli/commands/b.ts imports ../../snapshots/transforms/index.js",
    ]);
  });
});
