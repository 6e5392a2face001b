/**
 * The GitHub Action's entry point (dist/cli/action.js) run as a runner runs it: INPUT_* variables
 * for the inputs, GITHUB_OUTPUT / GITHUB_STEP_SUMMARY / RUNNER_TEMP pointing at temp files.
 * Against the demo system: an unchanged orders build passes, `--variant all` fails with
 * annotations, `retap snapshot accept` turns the failing answers into v2 (which then passes),
 * a build that cannot start is an infrastructure error. Also: action.yml and the workflows
 * against the SchemaStore schemas (@action-validator/core).
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../core/paths.js';
import { recordOrdersSnapshot } from '../helpers/demo-snapshot.js';
import { skipPrivileged } from '../helpers/privileged.js';

const root = packageRoot();
const entry = join(root, 'dist', 'cli', 'action.js');
const orders = join(root, 'dist', 'examples', 'demo', 'orders.js');

interface Step {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  annotations: string[];
}

/** Runs a command as the action's step would, with fresh runner files; returns what it left. */
async function step(
  cwd: string,
  name: string,
  argv: string[],
  inputs: Record<string, string>,
  extraEnv: Record<string, string> = {},
): Promise<Step> {
  const runner = join(cwd, `runner-${name}`);
  mkdirSync(runner, { recursive: true });
  const output = join(runner, 'output');
  const summary = join(runner, 'summary.md');
  writeFileSync(output, '');
  writeFileSync(summary, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_OUTPUT: output,
    GITHUB_STEP_SUMMARY: summary,
    GITHUB_WORKSPACE: cwd,
    RUNNER_TEMP: runner,
    RUNNER_OS: 'Linux',
    RETAP_RUNS_DIR: join(cwd, 'runs'),
    ...extraEnv,
  };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase().replace(/-/g, '_')}`] = v;
  const child = spawn(process.execPath, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const outputs: Record<string, string> = {};
  for (const line of readFileSync(output, 'utf8').split('\n')) {
    const at = line.indexOf('=');
    if (at > 0 && !line.includes('<<')) outputs[line.slice(0, at)] = line.slice(at + 1);
  }
  return {
    code,
    stdout,
    stderr,
    outputs,
    summary: readFileSync(summary, 'utf8'),
    annotations: stdout.split('\n').filter((l) => l.startsWith('::')),
  };
}

describe('action.yml and workflows against their published schemas', () => {
  const require = createRequire(import.meta.url);
  const validator = require('@action-validator/core') as {
    validateAction(src: string): { errors: unknown[] };
    validateWorkflow(src: string): { errors: unknown[] };
  };
  const workflows = [
    ...readdirSync(join(root, '.github', 'workflows')).map((f) => join('.github', 'workflows', f)),
    ...readdirSync(join(root, 'examples', 'gate', '.github', 'workflows')).map((f) =>
      join('examples', 'gate', '.github', 'workflows', f),
    ),
    join('test', 'e2e', 'act', 'retap-gate.yml'),
  ];

  it('action.yml is a valid action', () => {
    expect(validator.validateAction(readFileSync(join(root, 'action.yml'), 'utf8')).errors).toEqual([]);
  });

  it('the validator does catch a broken action', () => {
    expect(
      validator.validateAction('name: x\nruns:\n  using: composite\n  stepz: []\n').errors.length,
    ).toBeGreaterThan(0);
  });

  it.each(workflows)('%s is a valid workflow', (file) => {
    expect(validator.validateWorkflow(readFileSync(join(root, file), 'utf8')).errors).toEqual([]);
  });

  it('docs/ci.md quotes the workflow the act tests run, unchanged', () => {
    const file = readFileSync(join(root, 'test', 'e2e', 'act', 'retap-gate.yml'), 'utf8').trimEnd();
    const docs = readFileSync(join(root, 'docs', 'ci.md'), 'utf8');
    const quoted = /<!-- test\/e2e\/act\/retap-gate\.yml[^>]*-->\n```yaml\n([\s\S]*?)\n```/.exec(docs)?.[1];
    expect(quoted).toBe(file);
  });

  it('docs/kubernetes.md quotes the kind workflow example, unchanged', () => {
    const file = readFileSync(
      join(root, 'examples', 'gate', '.github', 'workflows', 'retap-kind.yml'),
      'utf8',
    ).trimEnd();
    const docs = readFileSync(join(root, 'docs', 'kubernetes.md'), 'utf8');
    const quoted =
      /<!-- examples\/gate\/\.github\/workflows\/retap-kind\.yml[^>]*-->\n```yaml\n([\s\S]*?)\n```/.exec(
        docs,
      )?.[1];
    expect(quoted).toBe(file);
  });

  it('every input reaches the gate step, every output comes from it, and no other action is used', async () => {
    const { parse } = await import('yaml');
    const action = parse(readFileSync(join(root, 'action.yml'), 'utf8')) as {
      inputs: Record<string, unknown>;
      outputs: Record<string, { value: string }>;
      runs: { steps: Array<{ id?: string; uses?: string; env?: Record<string, string> }> };
    };
    const gate = action.runs.steps.find((s) => s.id === 'gate');
    for (const name of Object.keys(action.inputs)) {
      expect(gate?.env?.[`INPUT_${name.toUpperCase().replace(/-/g, '_')}`], name).toBe(
        `\${{ inputs.${name} }}`,
      );
    }
    for (const [name, o] of Object.entries(action.outputs))
      expect(o.value).toBe(`\${{ steps.gate.outputs.${name} }}`);
    // a nested `uses:` is downloaded when the job is set up, even when its `if:` skips it
    expect(action.runs.steps.filter((s) => s.uses !== undefined)).toEqual([]);
  });
});

describe('retap ci with a broken retap.yaml (no privileges needed)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'retap-ci-config-'));
    writeFileSync(
      join(dir, 'retap.yaml'),
      'version: 1\nreplay:\n  snapshot: snaps/x\n  build:\n    command: node s.js\n    port: "8080"\n',
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fails the step with verdict=error and an annotation on the offending line', async () => {
    const s = await step(dir, 'config', [entry], {});
    expect(s.code).toBe(3);
    expect(s.outputs.verdict).toBe('error');
    expect(s.annotations).toHaveLength(1);
    expect(s.annotations[0]).toMatch(
      /^::error file=retap\.yaml,line=6,title=retap ci::retap\.yaml:6: \$\.replay\.build\.port must be integer/,
    );
    expect(s.stderr).toContain('RETAP_CONFIG_INVALID');
  });

  it('an unknown key is a usage error (64): annotated on its line with the nearest known key', async () => {
    writeFileSync(join(dir, 'retap.yaml'), 'version: 1\nreplay:\n  snapshot: snaps/x\n  mockmiss: fail\n');
    const s = await step(dir, 'unknown', [entry], {});
    expect(s.code).toBe(64);
    expect(s.outputs.verdict).toBe('error');
    expect(s.annotations).toHaveLength(1);
    expect(s.annotations[0]).toMatch(
      /^::error file=retap\.yaml,line=4,title=retap ci::retap\.yaml:4: \$\.replay\.mockmiss is not a known setting .*%0ADid you mean 'mockMiss'\?/,
    );
    expect(s.stderr).toContain('RETAP_CONFIG_UNKNOWN_KEY');
  });
});

describe.skipIf(skipPrivileged())('the action on the demo system', () => {
  let dir: string;
  let snapshot: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'retap-ci-action-'));
    const recorded = await recordOrdersSnapshot(join(dir, '.retap', 'snapshots'));
    snapshot = recorded.version;
    const env = recorded.env;
    // the service repository: retap.yaml names the snapshot store and how to start the build
    writeFileSync(
      join(dir, 'retap.yaml'),
      [
        'version: 1',
        'snapshots:',
        '  dir: .retap/snapshots',
        'replay:',
        '  snapshot: orders',
        '  build:',
        `    command: ${process.execPath} ${orders} --port 8080`,
        '    port: 8080',
        '    readyTimeout: 20s',
        '    env:',
        `      INVENTORY_URL: ${env.INVENTORY_URL}`,
        `      PAYMENTS_URL: ${env.PAYMENTS_URL}`,
        `  secrets: ${recorded.secrets}`,
        'assertions:',
        '  budgets: ["mocks >= 100%"]',
        '',
      ].join('\n'),
    );
  }, 90_000);

  afterAll(() => {
    if (dir) {
      // nothing left behind by the replays
      const runs = join(dir, 'runs');
      expect(existsSync(runs) ? readdirSync(runs) : []).toEqual([]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unchanged build passes: outputs, job summary, reports, no annotations', async () => {
    const s = await step(dir, 'pass', [entry], { 'report-dir': 'reports/pass' });
    expect(s.code, s.stderr).toBe(0);
    expect(s.outputs).toMatchObject({
      verdict: 'pass',
      'exit-code': '0',
      junit: join(dir, 'reports', 'pass', 'report.junit.xml'),
      summary: join(dir, 'reports', 'pass', 'report.md'),
      html: join(dir, 'reports', 'pass', 'report.html'),
      results: join(dir, 'reports', 'pass', 'results.json'),
    });
    for (const k of ['junit', 'summary', 'html', 'json', 'results'])
      expect(existsSync(s.outputs[k] as string), k).toBe(true);
    expect(readFileSync(s.outputs.junit as string, 'utf8')).toMatch(/<testsuites[^>]*failures="0"/);
    expect(s.summary).toMatch(/^## ✅ retap: pass — orders v1/);
    expect(s.annotations.filter((a) => a.startsWith('::error'))).toEqual([]);
    expect(s.stderr).toContain(`retap action: retap ci --out reports/pass`);
  }, 60_000);

  it('a regressed build fails: verdict, annotations per failing route and budget, summary', async () => {
    // against the unchanged build as baseline: GET /orders failing as a whole is then the
    // candidate's regression, not a replay that could not reproduce the recording
    const s = await step(dir, 'fail', [entry], {
      'build-command': `${process.execPath} ${orders} --port 8080 --variant all`,
      'baseline-command': `${process.execPath} ${orders} --port 8080`,
      budgets: 'errors < 1%',
      'report-dir': 'reports/fail',
    });
    expect(s.code, s.stderr).toBe(1);
    expect(s.outputs.verdict).toBe('fail-assertions');
    expect(s.outputs['exit-code']).toBe('1');
    const titles = s.annotations.map((a) => /title=([^:]*)::/.exec(a)?.[1]);
    expect(titles).toEqual(
      expect.arrayContaining([
        'retap%3A GET /orders/{id}',
        'retap%3A GET /orders',
        'retap budget%3A errors < 1%25',
      ]),
    );
    for (const a of s.annotations) expect(a).toMatch(/^::error file=retap\.yaml,title=/);
    const byId = s.annotations.find((a) => a.includes('title=retap%3A GET /orders/{id}::'));
    expect(byId).toMatch(/requests fail%0Abreaking: \$\.total changed type: number .* → string/);
    expect(s.summary).toMatch(/^## ❌ retap: assertion failures — orders v1/);
    expect(s.summary).toContain('`$.total`');
    expect(readFileSync(s.outputs.junit as string, 'utf8')).toMatch(/<failure/);
  }, 60_000);

  it('accepting the regressed answers makes v2, and v2 passes for that build', async () => {
    const accepted = await step(
      dir,
      'accept',
      [join(root, 'bin', 'retap.js'), 'snapshot', 'accept', 'reports/fail/results.json', '--json'],
      {},
    );
    expect(accepted.code, accepted.stderr).toBe(0);
    const a = JSON.parse(accepted.stdout) as {
      path: string;
      version: number;
      parent: { version: number };
      kept: number;
      replaced: number;
    };
    expect(a).toMatchObject({ version: 2, parent: { version: 1 }, kept: 0 });
    expect(a.path).toBe(join(snapshot, '..', 'v2'));
    expect(readFileSync(join(a.path, 'snapshot.yaml'), 'utf8')).toMatch(
      /parent:\n\s+hash: sha256:[0-9a-f]{64}\n\s+version: 1/,
    );
    const s = await step(dir, 'v2', [entry], {
      snapshot: 'v2',
      'build-command': `${process.execPath} ${orders} --port 8080 --variant all`,
      'report-dir': 'reports/v2',
    });
    expect(s.code, s.stderr).toBe(0);
    expect(s.outputs.verdict).toBe('pass');
    expect(s.summary).toMatch(/^## ✅ retap: pass — orders v2/);
  }, 60_000);

  it('a build that cannot start is an infrastructure error, still reported', async () => {
    const s = await step(dir, 'infra', [entry], {
      'build-command': 'echo the build is broken >&2; exit 7',
      'ready-timeout': '5s',
      'report-dir': 'reports/infra',
    });
    expect(s.code, s.stderr).toBe(3);
    expect(s.outputs.verdict).toBe('error');
    expect(existsSync(s.outputs.junit as string)).toBe(true);
    expect(
      s.annotations.some((a) => a.startsWith('::error file=retap.yaml,title=retap%3A infrastructure error')),
    ).toBe(true);
    expect(s.summary).toMatch(/retap: error|infrastructure/);
  }, 60_000);
});
