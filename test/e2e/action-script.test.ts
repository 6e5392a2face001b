/**
 * The action's step script (ci/action.sh) on the paths a workflow runner rarely shows: no sudo
 * installed, no Node.js on PATH, bad inputs. Run as a runner would (INPUT_* variables, fresh
 * GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files), each asserting every output, the summary and the
 * annotation. The paths through a real runner are in action-act.test.ts.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../core/paths.js';
import { requireEbpf } from '../helpers/privileged.js';

const root = packageRoot();
const script = join(root, 'ci', 'action.sh');
const OUTPUTS = ['verdict', 'exit-code', 'junit', 'summary', 'html', 'json', 'results', 'reports-dir'];

interface Step {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
}

const which = (tool: string): string | undefined =>
  spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim() || undefined;

describe.skipIf(process.getuid?.() !== 0 && !requireEbpf)('ci/action.sh, the action step', () => {
  let base: string;
  let n = 0;

  beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error('RETAP_REQUIRE_EBPF=1 but not running as root');
    base = mkdtempSync(join(tmpdir(), 'retap-action-sh-'));
    chmodSync(base, 0o755);
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  /** A PATH holding only these tools (as links), to take sudo or node away. */
  function path(tools: string[]): string {
    const bin = join(base, `bin-${++n}`);
    mkdirSync(bin);
    for (const t of tools) {
      const at = which(t);
      if (!at) throw new Error(`${t} is not installed`);
      symlinkSync(at, join(bin, t));
    }
    return bin;
  }

  const BASICS = ['bash', 'sh', 'uname', 'id', 'mkdir', 'cat', 'grep', 'cut', 'dirname', 'tr'];

  function step(
    inputs: Record<string, string>,
    opts: { path: string; uid?: number; gid?: number; script?: string },
  ): Step {
    const ws = join(base, `ws-${++n}`);
    mkdirSync(ws);
    const output = join(ws, '.output');
    const summary = join(ws, '.summary.md');
    writeFileSync(output, '');
    writeFileSync(summary, '');
    if (opts.uid !== undefined)
      for (const p of [ws, output, summary]) chownSync(p, opts.uid, opts.gid ?? opts.uid);
    const env: NodeJS.ProcessEnv = {
      PATH: opts.path,
      HOME: ws,
      GITHUB_ACTIONS: 'true',
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_WORKSPACE: ws,
      RUNNER_OS: 'Linux',
    };
    for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase().replace(/-/g, '_')}`] = v;
    const argv =
      opts.uid === undefined
        ? [which('bash') ?? 'bash', opts.script ?? script]
        : [
            which('setpriv') ?? 'setpriv',
            `--reuid=${opts.uid}`,
            `--regid=${opts.gid}`,
            '--clear-groups',
            'bash',
            opts.script ?? script,
          ];
    const r = spawnSync(argv[0] as string, argv.slice(1), {
      cwd: ws,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const outputs: Record<string, string> = {};
    for (const line of readFileSync(output, 'utf8').split('\n')) {
      const at = line.indexOf('=');
      if (at > 0) outputs[line.slice(0, at)] = line.slice(at + 1);
    }
    return {
      code: r.status,
      stdout: r.stdout,
      stderr: r.stderr,
      outputs,
      summary: readFileSync(summary, 'utf8'),
    };
  }

  const annotations = (s: Step): string[] => s.stdout.split('\n').filter((l) => l.startsWith('::'));

  it('a user without root on a runner without sudo: says so, and retap still writes every report', () => {
    const nobody = { uid: 65534, gid: 65534 };
    const s = step({}, { path: path([...BASICS, 'node']), ...nobody });
    expect(s.code, s.stderr).toBe(3);
    expect(Object.keys(s.outputs).sort()).toEqual([...OUTPUTS].sort());
    expect(s.outputs).toMatchObject({ verdict: 'error', 'exit-code': '3' });
    for (const k of ['junit', 'summary', 'html', 'json', 'results'])
      expect(s.outputs[k], k).toMatch(/\/retap-reports\//);
    const why = 'this step runs as nobody (uid 65534) and sudo is not installed';
    expect(s.summary).toMatch(/^## 🛑 retap: infrastructure error\n/);
    expect(s.summary).toContain(why);
    expect(s.summary).toContain('RETAP_PERMISSION');
    expect(annotations(s)).toHaveLength(1);
    expect(annotations(s)[0]).toContain(why);
    expect(annotations(s)[0]).toContain('Run the runner as root, or install sudo');
  });

  it('no Node.js on PATH: the script itself writes the summary, a valid JUnit report and every output', () => {
    const s = step({}, { path: path(BASICS) });
    expect(s.code, s.stderr).toBe(3);
    expect(Object.keys(s.outputs).sort()).toEqual([...OUTPUTS].sort());
    expect(s.outputs).toMatchObject({ verdict: 'error', 'exit-code': '3', html: '', json: '', results: '' });
    expect(s.outputs.summary).toMatch(/\/retap-reports\/report\.md$/);
    expect(s.summary).toBe(readFileSync(s.outputs.summary as string, 'utf8'));
    expect(s.summary).toMatch(/^## 🛑 retap: error — retap could not run on this runner\n/);
    expect(s.summary).toContain('Node.js 20.18 or newer is needed to run retap (no node on PATH)');
    expect(s.summary).toContain("add a step 'uses: actions/setup-node@v4'");
    const xsd = spawnSync(
      'xmllint',
      ['--noout', '--schema', join(root, 'ci', 'reports', 'junit.xsd'), s.outputs.junit as string],
      { encoding: 'utf8' },
    );
    expect(xsd.status, xsd.stderr).toBe(0);
    expect(readFileSync(s.outputs.junit as string, 'utf8')).toMatch(
      /<error message="Node\.js 20\.18 or newer/,
    );
    expect(annotations(s)).toEqual([
      expect.stringMatching(/^::error title=retap::retap could not run: RETAP_ENV_SETUP: Node\.js/),
    ]);
  });

  it('retap crashing before its verdict: verdict error and exit 3, never the crash code as a gate code', () => {
    // the step script in a folder whose retap exits 1 (an assertion failure's code) and says nothing
    const fake = join(base, 'crashing-action');
    mkdirSync(join(fake, 'ci'), { recursive: true });
    mkdirSync(join(fake, 'dist', 'cli'), { recursive: true });
    mkdirSync(join(fake, 'build', 'Release'), { recursive: true });
    writeFileSync(join(fake, 'ci', 'action.sh'), readFileSync(script));
    writeFileSync(join(fake, 'dist', 'cli', 'action.js'), "console.error('boom'); process.exit(1);\n");
    writeFileSync(join(fake, 'build', 'Release', 'retap_native.node'), '');
    const s = step(
      { setup: 'false' },
      { path: process.env.PATH as string, script: join(fake, 'ci', 'action.sh') },
    );
    expect(s.code, s.stderr).toBe(3);
    expect(s.stderr).toContain('boom');
    expect(Object.keys(s.outputs).sort()).toEqual([...OUTPUTS].sort());
    expect(s.outputs).toMatchObject({ verdict: 'error', 'exit-code': '3' });
    expect(s.summary).toMatch(/^## 🛑 retap: error — retap ended without a verdict\n/);
    expect(s.summary).toContain('retap ci exited with code 1 without writing its verdict');
  });

  it('bad inputs: exit 64, verdict error, the input named', () => {
    const s = step(
      { setup: 'sometimes', 'working-directory': 'no/such/folder' },
      { path: path([...BASICS, 'node']) },
    );
    expect(s.code, s.stderr).toBe(64);
    expect(s.outputs).toMatchObject({ verdict: 'error', 'exit-code': '64' });
    expect(s.summary).toMatch(/^## 🛑 retap: bad input\n/);
    expect(s.summary).toContain("input working-directory: 'no/such/folder' is not a folder");
    expect(annotations(s)[0]).toContain("input working-directory: 'no/such/folder'");
  });

  it('a bad action input retap reads (fail-on): exit 64, every report, the flag named', () => {
    const s = step(
      { 'fail-on': 'always', snapshot: 'x', 'build-command': 'true', port: '1' },
      { path: process.env.PATH as string },
    );
    expect(s.code, s.stderr).toBe(64);
    expect(Object.keys(s.outputs).sort()).toEqual([...OUTPUTS].sort());
    expect(s.outputs).toMatchObject({ verdict: 'error', 'exit-code': '64' });
    for (const k of ['junit', 'summary', 'html', 'json', 'results']) expect(s.outputs[k], k).not.toBe('');
    expect(s.summary).toMatch(/^## 🛑 retap: bad input\n/);
    expect(annotations(s)[0]).toMatch(
      /^::error title=retap ci::--fail-on: 'always' must be breaking or warning/,
    );
  });
});
