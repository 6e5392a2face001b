/**
 * The gate on the second example system (examples/notes: a Python service, a session from
 * /login presented as `Authorization: Session …`, ids from POST answers in later paths, a client
 * that closes every connection, a handler that answers before reading the upload, an HTTP and an
 * HTTPS dependency), end to end with the compiled CLI and redaction on, as a new user would run it:
 *
 *   - one eBPF capture under the client's traffic, cut into a snapshot per traffic phase;
 *   - `retap ci` on the unchanged build, on each seeded regression and on the two replay
 *     environments that cannot reproduce their recording, each without and with a baseline;
 *   - `retap replay` + `retap report` for a few of them (the same verdicts from the two paths).
 * Every exit code is asserted, with the assertion (or the validity cause) that must be named.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Verdict } from '../../assertions/index.js';
import { packageRoot } from '../../core/paths.js';
import {
  counted,
  failedBudgets,
  NOTES_BROKEN,
  NOTES_BUDGETS,
  NOTES_REGRESSIONS,
  notReproduced,
} from '../../examples/notes/expectations.js';
import type * as NotesSystem from '../../examples/notes/system.js';
import { skipPrivileged } from '../helpers/privileged.js';

const root = packageRoot();
const PORT = 8080;
let work: string;
let notes: typeof NotesSystem;
let deps: NotesSystem.NotesDependencies | undefined;
let snaps: Record<string, string>;
let secrets: string;
const timings: string[] = [];

function retap(args: string[], timeout = 240_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(root, 'bin', 'retap.js'), ...args], {
    cwd: work,
    env: { ...process.env, GITHUB_STEP_SUMMARY: '', GITHUB_ACTIONS: '', RETAP_RUNS_DIR: join(work, 'runs') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGTERM'), timeout);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    }),
  );
}

const envFlags = (): string[] =>
  Object.entries(deps?.env ?? {})
    .filter(([k]) => k !== 'SSL_CERT_FILE') // the replay hands the build its own CA
    .flatMap(([k, v]) => ['--env', `${k}=${v}`]);

interface Case {
  name: string;
  snapshot: 'main' | 'unmockable' | 'unsigned';
  variant?: string;
  baseline: boolean;
  runs?: number;
  /** `retap replay` + `retap report` instead of `retap ci`. */
  twoSteps?: boolean;
}

const tagOf = (baseline: boolean): string => (baseline ? 'with a baseline' : 'without a baseline');

/** Every case, in the order the tests below ask for them. */
const CASES: Case[] = [false, true].flatMap((baseline): Case[] => [
  {
    name: `unchanged ${tagOf(baseline)}`,
    snapshot: 'main',
    baseline,
    ...(baseline ? {} : { twoSteps: true }),
  },
  ...NOTES_REGRESSIONS.map(
    ({ name }): Case => ({
      name: `${name} ${tagOf(baseline)}`,
      snapshot: 'main',
      variant: name,
      baseline,
      // the burst that used to be filed as noise, as the issue ran it: a baseline and two runs
      ...(name === 'error-burst' && baseline ? { runs: 2 } : {}),
      ...(!baseline && (name === 'error-burst' || name === 'changed-field') ? { twoSteps: true } : {}),
    }),
  ),
  ...NOTES_BROKEN.map(
    ({ name }): Case => ({
      name: `${name} ${tagOf(baseline)}`,
      snapshot: name as Case['snapshot'],
      baseline,
    }),
  ),
]);
const caseNamed = (name: string): Case => {
  const c = CASES.find((x) => x.name === name);
  if (!c) throw new Error(`no case ${name}`);
  return c;
};

type Gated = { code: number; verdict: Verdict; stderr: string };

/**
 * Cases run two at a time (each replay has its own namespace, cgroup and capture; the machine's
 * two cores are what the replays wait on least), in the order the tests ask for them.
 */
const PARALLEL = 2;
let running = 0;
const queue: Array<() => void> = [];
const started = new Map<string, Promise<Gated>>();

function gateCase(c: Case): Promise<Gated> {
  let p = started.get(c.name);
  if (!p) {
    p = new Promise<void>((go) => {
      if (running < PARALLEL) {
        running++;
        go();
      } else queue.push(go);
    })
      .then(() => gateOnce(c))
      .finally(() => {
        const next = queue.shift();
        if (next) next();
        else running--;
      });
    started.set(c.name, p);
  }
  return p;
}

/** Gates one case; returns the exit code and the verdict (report.json). */
async function gateOnce(c: Case): Promise<Gated> {
  const t0 = performance.now();
  const out = join(work, 'out', c.name.replace(/\s+/g, '-'));
  const common = [
    '--cmd',
    notes.notesCommand(PORT, c.variant),
    '--port',
    String(PORT),
    ...envFlags(),
    '--secrets',
    secrets,
    ...(c.runs ? ['--runs', String(c.runs)] : []),
    ...(c.baseline ? ['--baseline-cmd', notes.notesCommand(PORT)] : []),
  ];
  let code: number;
  let stderr: string;
  if (c.twoSteps) {
    const rep = await retap(['replay', snaps[c.snapshot] as string, ...common, '--out', out]);
    if (rep.code !== 0 && rep.code !== 3)
      throw new Error(`retap replay (${c.name}) exited ${rep.code}:\n${rep.stderr}`);
    const judged = await retap(
      [
        'report',
        out,
        '--config',
        join(work, 'retap.yaml'),
        '--format',
        'json',
        '-o',
        join(out, 'report.json'),
      ],
      60_000,
    );
    code = judged.code;
    stderr = rep.stderr + judged.stderr;
  } else {
    const r = await retap([
      'ci',
      '--config',
      join(work, 'retap.yaml'),
      '--snapshot',
      snaps[c.snapshot] as string,
      ...common,
      '--reports',
      out,
      '--format',
      'json,markdown',
      '--no-step-summary',
      '--no-annotations',
    ]);
    code = r.code;
    stderr = r.stderr;
  }
  const file = join(out, 'report.json');
  if (!existsSync(file)) throw new Error(`${c.name}: exit ${code} without a report:\n${stderr}`);
  timings.push(`${c.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { code, verdict: JSON.parse(readFileSync(file, 'utf8')) as Verdict, stderr };
}

describe.skipIf(skipPrivileged())(
  'the gate on the notes example (Python; eBPF capture, redaction on)',
  () => {
    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'retap-gate-notes-'));
      const { spawnSync } = await import('node:child_process');
      const build = spawnSync('flock', ['/tmp/retap-build-ts.lock', 'npm', 'run', '-s', 'build:ts'], {
        cwd: root,
        encoding: 'utf8',
        timeout: 180_000,
      });
      for (const f of ['dist/cli/main.js', 'dist/examples/notes/system.js']) {
        if (!existsSync(join(root, f)))
          throw new Error(`npm run build:ts did not produce ${f}:\n${build.stdout}${build.stderr}`);
      }
      notes = (await import(join(root, 'dist/examples/notes/system.js'))) as typeof NotesSystem;
      const t0 = performance.now();
      deps = await notes.startNotesDependencies(work);
      const rec = await notes.recordNotes({ dir: work, deps });
      expect(rec.traffic.unexpected).toEqual([]);
      snaps = await notes.splitRecording(rec, work);
      secrets = join(work, 'secrets.yaml');
      expect(await notes.writeNotesSecrets(snaps.main as string, secrets)).toBe(4);
      timings.push(
        `capture (${rec.traffic.requests} requests) and split: ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      writeFileSync(
        join(work, 'retap.yaml'),
        ['assertions:', '  budgets:', ...NOTES_BUDGETS.map((b) => `    - '${b}'`), ''].join('\n'),
      );
      // start the whole queue now; each test awaits its own case
      for (const c of CASES) gateCase(c).catch(() => undefined);
    }, 300_000);

    afterAll(async () => {
      await deps?.stop();
      if (timings.length) process.stderr.write(`notes gate timings:\n  ${timings.join('\n  ')}\n`);
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('the recording holds no credential: passwords and sessions are placeholders', () => {
      for (const s of Object.values(snaps)) {
        const text = readFileSync(join(s, 'exchanges.jsonl'), 'utf8');
        expect(text).not.toMatch(/pw-(ana|ben|chloe|dev)-/);
        expect(text).not.toMatch(/Session [0-9a-f]{32}/);
        expect(text).toMatch(/Session REDACTED-[0-9a-f]{16}/);
      }
    });

    for (const baseline of [false, true]) {
      const tag = tagOf(baseline);
      it(`passes the unchanged build ${tag}`, async () => {
        const { code, verdict, stderr } = await gateCase(caseNamed(`unchanged ${tag}`));
        expect(
          {
            code,
            validity: notReproduced(verdict),
            found: counted(verdict),
            budgets: failedBudgets(verdict),
          },
          stderr,
        ).toEqual({ code: 0, validity: [], found: [], budgets: [] });
        expect(verdict.summary.items).toBeGreaterThan(100);
        expect(verdict.validity.reference).toBe(baseline ? 'baseline' : 'candidate');
      }, 600_000);

      for (const { name, exit, caught, named } of NOTES_REGRESSIONS) {
        it(`catches ${name} ${tag} (exit ${exit}: ${named})`, async () => {
          const { code, verdict } = await gateCase(caseNamed(`${name} ${tag}`));
          expect({
            code,
            caught: caught(verdict),
            validity: notReproduced(verdict),
            found: counted(verdict).slice(0, 6),
            budgets: failedBudgets(verdict),
          }).toMatchObject({ code: exit, caught: true, validity: [] });
        }, 600_000);
      }

      for (const { name, exit, caught, named } of NOTES_BROKEN) {
        it(`reports the broken environment ${name} as an error ${tag} (${named})`, async () => {
          const { code, verdict } = await gateCase(caseNamed(`${name} ${tag}`));
          expect({ code, caught: caught(verdict), validity: notReproduced(verdict) }).toMatchObject({
            code: exit,
            caught: true,
          });
          expect(verdict.validity.reference).toBe(baseline ? 'baseline' : 'candidate');
          if (!baseline) expect(verdict.validity.note).toMatch(/--baseline-cmd/);
        }, 600_000);
      }
    }
  },
);
