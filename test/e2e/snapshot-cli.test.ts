/**
 * `retap snapshot` as real processes: the built CLI (bin/retap.js), writers killed with SIGKILL
 * mid-write, HAR round trip.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');
let work: string;
let build: string;
const children = new Set<ChildProcess>();

function cli(
  args: string[],
  env: Record<string, string> = {},
): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repo, 'bin/retap.js'), 'snapshot', ...args], {
    cwd: work,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, RETAP_SNAPSHOT_DIR: join(work, 'snaps'), ...env },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Writes `count` exchanges into `store`; prints lines so the test knows where it is. */
function writerScript(store: string, count: number, memory: number): string {
  return `
import { createSnapshotWriter } from '${build}/dist/snapshots/index.js';
import { sampleExchange } from '${build}/dist/snapshots/sample.js';
const w = await createSnapshotWriter({ dir: ${JSON.stringify(store)}, name: 'orders', source: { host: 'h', filters: {} }, memoryLimitBytes: ${memory} });
for (let i = 0; i < ${count}; i++) {
  await w.append(sampleExchange(i));
  if (i === 2000) process.stdout.write('appending\\n');
}
process.stdout.write('finishing\\n');
const m = await w.finish();
process.stdout.write('done v' + m.version + '\\n');
`;
}

function runScript(code: string): ChildProcess {
  const file = join(work, `w-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, code);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function waitFor(child: ChildProcess, text: string): Promise<void> {
  return new Promise((res, rej) => {
    let seen = '';
    const t = setTimeout(() => rej(new Error(`timed out waiting for '${text}' (got '${seen}')`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) {
        clearTimeout(t);
        res();
      }
    });
    child.on('exit', () => {
      clearTimeout(t);
      if (!seen.includes(text)) rej(new Error(`writer exited before '${text}': ${seen}`));
    });
  });
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'retap-e2e-snap-'));
  // `npm test` builds dist/ first; these tests run the CLI as users do.
  build = repo;
  expect(existsSync(join(build, 'dist/cli/main.js')), 'run npm run build:ts first').toBe(true);
});

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('retap snapshot (processes)', () => {
  it('a writer killed mid-write leaves the previous version intact and no half version', async () => {
    const store = join(work, 'snaps', 'orders');
    const first = runScript(writerScript(store, 3000, 64 << 20));
    await waitFor(first, 'done v1');
    // killed while appending (runs spilled to the temp dir), then killed while finishing
    for (const stage of ['appending', 'finishing']) {
      const child = runScript(writerScript(store, 60_000, 1 << 20));
      await waitFor(child, stage);
      if (stage === 'finishing') await new Promise((r) => setTimeout(r, 150));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const names = readdirSync(store);
      for (const n of names.filter((x) => /^v\d+$/.test(x))) {
        const v = cli(['validate', join(store, n)]);
        expect(v.code, `${n}: ${v.stderr}`).toBe(0);
      }
      expect(names).toContain('v1');
    }
    const ls = cli(['ls', store, '--json']);
    expect(ls.code).toBe(0);
    const versions = (JSON.parse(ls.stdout) as { versions: Array<{ version: number; exchanges: number }> })
      .versions;
    expect(versions[0]).toMatchObject({ version: 1, exchanges: 3000 });
    // the next writer removes what the killed ones left behind
    const next = runScript(writerScript(store, 10, 64 << 20));
    await waitFor(next, 'done v');
    expect(readdirSync(store).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  }, 120_000);

  it('ls, show, validate, filter, diff, merge through the CLI', () => {
    const store = join(work, 'snaps', 'orders');
    const show = cli(['show', 'orders@1', '--json']);
    expect(show.code, show.stderr).toBe(0);
    const s = JSON.parse(show.stdout) as {
      counts: { exchanges: number };
      dependencies: string[];
      timeRange: { first: string };
    };
    expect(s.counts.exchanges).toBe(3000);
    expect(s.dependencies).toEqual(['api.example.test']);
    expect(s.timeRange.first).toBe('2023-11-14T22:13:20.000Z');
    expect(cli(['show', `${store}@1`]).stdout).toMatch(/routes \(\d+, top \d+\):/);

    const f = cli([
      'filter',
      `${store}@1`,
      '--status',
      '404',
      '--direction',
      'inbound',
      '--out',
      join(work, 'f404'),
      '--json',
    ]);
    expect(f.code, f.stderr).toBe(0);
    const fr = JSON.parse(f.stdout) as { path: string; written: number; read: number };
    expect(fr.read).toBe(3000);
    expect(fr.written).toBe(
      Array.from({ length: 3000 }, (_, i) => i).filter((i) => i % 11 === 0 && i % 5 !== 0).length,
    );

    const d = cli(['diff', `${store}@1`, fr.path, '--json']);
    expect(d.code).toBe(1);
    const dj = JSON.parse(d.stdout) as { exchanges: { removed: number; added: number; same: number } };
    expect(dj.exchanges).toMatchObject({ added: 0, same: fr.written, removed: 3000 - fr.written });

    const m = cli(['merge', fr.path, `${store}@1`, '--out', join(work, 'merged'), '--json']);
    expect(m.code, m.stderr).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({ written: 3000, duplicates: fr.written });
    expect(cli(['diff', `${store}@1`, join(work, 'merged')]).stdout).toMatch(/^identical$/m);
  });

  it('validate reports file, line, JSON path and fix; errors are JSON with --json', () => {
    const src = join(work, 'f404', 'v1');
    const broken = join(work, 'broken');
    mkdirSync(broken);
    for (const f of readdirSync(src)) writeFileSync(join(broken, f), readFileSync(join(src, f)));
    const file = join(broken, 'exchanges.jsonl');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"status":404', '"status":"404"'));
    const v = cli(['validate', broken]);
    expect(v.code).toBe(1);
    expect(v.stderr.trim()).toBe(
      'exchanges.jsonl:1: $.response.status must be integer (found "404"); fix: write an integer here',
    );
    const show = cli(['show', broken, '--json']);
    expect(show.code).toBe(3);
    expect(JSON.parse(show.stdout)).toMatchObject({
      error: {
        code: 'RETAP_SNAPSHOT_INVALID',
        details: { issues: [{ file: 'exchanges.jsonl', line: 1, path: '$.response.status' }] },
      },
    });
    const missing = cli(['show', join(work, 'nope')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/no snapshot at .*nope.*\[RETAP_SNAPSHOT_NOT_FOUND\]/);
    const usage = cli(['filter', 'orders', '--status']);
    expect(usage.code).toBe(64);
  });

  it('exports HAR and imports it back to the same exchanges', () => {
    const har = join(work, 'orders.har');
    const e = cli(['export', '--format', 'har', 'orders@1', '-o', har]);
    expect(e.code, e.stderr).toBe(0);
    const doc = JSON.parse(readFileSync(har, 'utf8')) as {
      log: { version: string; entries: Array<{ request: { url: string } }> };
    };
    expect(doc.log.version).toBe('1.2');
    expect(doc.log.entries).toHaveLength(3000);
    expect(doc.log.entries[1]!.request.url).toBe('http://orders.test/orders/1?full=1');
    const i = cli(['import', '--format', 'har', har, '--out', join(work, 'imported'), '--json']);
    expect(i.code, i.stderr).toBe(0);
    expect(JSON.parse(i.stdout)).toMatchObject({ imported: 3000, skipped: [] });
    const d = cli(['diff', 'orders@1', join(work, 'imported'), '--json']);
    expect(JSON.parse(d.stdout).exchanges).toMatchObject({ added: 0, removed: 0, changed: 0, same: 3000 });
  });

  it('every subcommand has --help', () => {
    for (const sub of ['ls', 'show', 'validate', 'diff', 'filter', 'merge', 'import', 'export']) {
      const r = cli([sub, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`retap snapshot ${sub}`);
    }
  });
});
