/**
 * The gate on an application no one here wrote: httpbin from PyPI under gunicorn with several
 * workers, captured with the defaults (redaction on) under ordinary python-requests traffic that
 * includes Basic credentials (restored at replay from --secrets), replayed with `retap ci` against
 * the unchanged build — it passes, a few times here and 20 of 20 in bench/gate/verdicts — and
 * against a build with one changed answer, which fails naming it. With and without a baseline.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Verdict } from '../../assertions/index.js';
import { packageRoot } from '../../core/paths.js';
import { counted, failedBudgets, notReproduced } from '../../examples/notes/expectations.js';
import type * as Harness from '../../examples/harness.js';
import type * as Httpbin from '../../examples/httpbin/system.js';
import { skipPrivileged } from '../helpers/privileged.js';

const root = packageRoot();
const PORT = 8080;
const UNCHANGED_REPLAYS = 3;
let work: string;
let httpbin: typeof Httpbin;
let harness: typeof Harness;
let snapshot: string;
let secrets: string;
let gunicorn: string;

async function gate(
  name: string,
  changed: boolean,
  baseline: boolean,
): Promise<{ code: number; verdict: Verdict; stderr: string }> {
  const out = join(work, 'out', name);
  const r = await harness.retap([
    'ci',
    '--snapshot',
    snapshot,
    '--cmd',
    httpbin.httpbinCommand(gunicorn, PORT, { changed }),
    '--port',
    String(PORT),
    '--ready-timeout',
    '30s',
    '--secrets',
    secrets,
    ...(baseline ? ['--baseline-cmd', httpbin.httpbinCommand(gunicorn, PORT)] : []),
    '--reports',
    out,
    '--format',
    'json',
    '--no-step-summary',
    '--no-annotations',
  ]);
  const file = join(out, 'report.json');
  if (!existsSync(file)) throw new Error(`${name}: exit ${r.code} without a report:\n${r.stderr}`);
  return { code: r.code ?? -1, verdict: JSON.parse(readFileSync(file, 'utf8')) as Verdict, stderr: r.stderr };
}

describe.skipIf(skipPrivileged())(
  'the gate on httpbin from PyPI (gunicorn, several workers; redaction on)',
  () => {
    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'retap-gate-httpbin-'));
      const { spawnSync } = await import('node:child_process');
      const build = spawnSync('flock', ['/tmp/retap-build-ts.lock', 'npm', 'run', '-s', 'build:ts'], {
        cwd: root,
        encoding: 'utf8',
        timeout: 180_000,
      });
      if (!existsSync(join(root, 'dist/examples/httpbin/system.js')))
        throw new Error(`npm run build:ts did not build the httpbin driver:\n${build.stdout}${build.stderr}`);
      httpbin = (await import(join(root, 'dist/examples/httpbin/system.js'))) as typeof Httpbin;
      harness = (await import(join(root, 'dist/examples/harness.js'))) as typeof Harness;
      // a missing test peer is a broken setup, never a skipped test
      gunicorn = await httpbin.gunicornBin();
      const rec = await httpbin.recordHttpbin(work);
      expect(rec.inbound).toBe(rec.requests);
      snapshot = rec.snapshot;
      secrets = join(work, 'secrets.yaml');
      expect(await httpbin.writeHttpbinSecrets(snapshot, secrets)).toBeGreaterThan(0);
    }, 300_000);

    afterAll(() => {
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('the recording holds no Basic credential', () => {
      const text = readFileSync(join(snapshot, 'exchanges.jsonl'), 'utf8');
      expect(text).not.toContain(Buffer.from('alice:wonder-l4nd').toString('base64'));
      expect(text).toMatch(/Basic REDACTED-[0-9a-f]{16}/);
    });

    it(`passes the unchanged build ${UNCHANGED_REPLAYS} times without a baseline and once with one`, async () => {
      const outcomes: string[] = [];
      for (let i = 0; i <= UNCHANGED_REPLAYS; i++) {
        const baseline = i === UNCHANGED_REPLAYS;
        const { code, verdict } = await gate(`unchanged-${i}`, false, baseline);
        outcomes.push(
          `${i}${baseline ? ' (baseline)' : ''}: exit ${code} ${[...notReproduced(verdict).map(([r]) => r), ...counted(verdict), ...failedBudgets(verdict)].join('; ')}`,
        );
        expect(verdict.summary.items).toBe(60);
      }
      expect(outcomes.filter((o) => !/: exit 0 $/.test(o))).toEqual([]);
    }, 900_000);

    for (const baseline of [false, true]) {
      it(`fails a build with one changed answer, naming it (${baseline ? 'with' : 'without'} a baseline)`, async () => {
        const { code, verdict } = await gate(`changed-${baseline}`, true, baseline);
        expect({ code, validity: notReproduced(verdict), found: counted(verdict) }).toEqual({
          code: 1,
          validity: [],
          found: ['GET /json changed-value $.slideshow.title'],
        });
      }, 300_000);
    }
  },
);
