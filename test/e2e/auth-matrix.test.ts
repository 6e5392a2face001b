/**
 * Auth-style matrix, end to end through the kernel path with redaction on (the defaults): a
 * Flask service (test/fixtures/auth-matrix) offering Bearer JWT, `Session`/`Token` schemes, an
 * X-Auth-Token from a login answer, Set-Cookie → Cookie, CSRF tokens from HTML and from JSON,
 * an OAuth2 client-credentials token minted by a dependency and used on later outbound calls,
 * and a static Basic credential the client had before the recording.
 *
 * `retap capture` records real traffic; `retap replay` replays it against the unchanged build
 * (the dependency mocked from the recording), the Basic credential restored from `--secrets`.
 * Every request must be answered as recorded (status and body), and no credential value — the
 * recording's or the ones the build handed out during the replay — may be anywhere on disk.
 * Without the secret, the replay stops before sending anything: RETAP_SECRET_MISSING, exit 3.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../core/paths.js';
import { openSnapshot } from '../../snapshots/index.js';
import { readResults } from '../../snapshots/results.js';
import type { TokenEntry } from '../../snapshots/tokens/index.js';
import { type Finished, retap, retapChild } from '../helpers/cli.js';
import { skipPrivileged } from '../helpers/privileged.js';
import { freePort, type Proc, run, start, stopAll, waitForPort } from '../helpers/procs.js';

const root = packageRoot();
const fixtures = join(root, 'test', 'fixtures', 'auth-matrix');
const PLACEHOLDER = /^REDACTED-[0-9a-f]{16}$/;
/** The users' passwords client.py logs in with (credentials the client had before the recording). */
const PASSWORDS = ['correct horse battery staple', 'Tr0ub4dor&3-not-really'];

function flaskMissing(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import flask, requests'], { stdio: 'ignore' });
  return r.status === 0
    ? undefined
    : 'python3 with flask and requests is missing (ci/pip-packages.txt; run ci/setup)';
}

/** Every file under a directory (recursively), as latin1 text so bytes compare as bytes. */
function filesUnder(dir: string): Array<{ path: string; text: string }> {
  const out: Array<{ path: string; text: string }> = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push({ path: p, text: readFileSync(p).toString('latin1') });
  }
  return out;
}

/** The values (and their percent-encoded and JSON-escaped forms) found in files, as `value in file`. */
function leaks(dir: string, values: Iterable<string>): string[] {
  const files = filesUnder(dir);
  const found: string[] = [];
  for (const v of new Set(values)) {
    const forms = new Set([v, encodeURIComponent(v), JSON.stringify(v).slice(1, -1)]);
    for (const f of files)
      for (const form of forms) if (f.text.includes(form)) found.push(`${v} in ${f.path}`);
  }
  return found;
}

describe.skipIf(skipPrivileged(flaskMissing))(
  'auth-style matrix: capture with redaction, replay, no secret on disk',
  () => {
    let dir: string;
    let runsDir: string;
    let snapshot = '';
    let svcPort = 0;
    let depPort = 0;
    let dep: Proc | undefined;
    const secrets = new Set<string>();
    let clientCalls: Array<{ method: string; path: string; status: number }> = [];
    const env = {
      CLIENT_ID: 'matrix-app',
      CLIENT_SECRET: 'cs-matrix-7f3e9a1c5b2d',
      ADMIN_PASSWORD: 'adm1n-Pa55-w0rd-91',
    };
    const issued = (file: string): string[] =>
      existsSync(file)
        ? readFileSync(file, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => l.slice(l.indexOf(' ') + 1))
        : [];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'retap-auth-matrix-'));
      runsDir = join(dir, 'runs');
      // the OAuth client id is public; its secret and the admin password are not
      secrets.add(env.CLIENT_SECRET);
      secrets.add(env.ADMIN_PASSWORD);
      depPort = await freePort();
      dep = start('python3', [join(fixtures, 'dependency.py'), '--port', String(depPort)], {
        env: { ...process.env, DEP_CLIENT_ID: env.CLIENT_ID, DEP_CLIENT_SECRET: env.CLIENT_SECRET },
      });
      await waitForPort(depPort, 20_000);
      svcPort = await freePort();
      const svcEnv = {
        ...env,
        DEP_URL: `http://127.0.0.1:${depPort}`,
        ISSUED_LOG: join(dir, 'issued-capture.txt'),
      };
      const capture = retapChild(
        [
          'capture',
          '--out',
          join(dir, 'snaps', 'matrix'),
          '--name',
          'matrix',
          '--json',
          '--',
          'python3',
          join(fixtures, 'service.py'),
          '--port',
          String(svcPort),
        ],
        { ...svcEnv, RETAP_RUNS_DIR: runsDir },
      );
      let result: Finished;
      try {
        await waitForPort(svcPort, 30_000);
        const client = await run(
          'python3',
          [join(fixtures, 'client.py'), '--url', `http://127.0.0.1:${svcPort}`],
          { env: { ...process.env, ADMIN_PASSWORD: env.ADMIN_PASSWORD } },
        );
        if (client.code !== 0) throw new Error(`client failed: ${client.stderr}`);
        const seen = JSON.parse(client.stdout.toString().trim().split('\n').at(-1)!) as {
          calls: typeof clientCalls;
          secrets: string[];
        };
        clientCalls = seen.calls;
        for (const s of seen.secrets) secrets.add(s);
      } finally {
        // SIGINT, as Ctrl-C: capture stops the service, drains the ring buffer, writes the snapshot
        capture.child.kill('SIGINT');
        result = await capture.done;
      }
      if (result.code !== 0) throw new Error(`retap capture exited ${result.code}:\n${result.stderr}`);
      // the service's own lines come first (its stdout is the capture's); the summary is the last JSON
      const summary = JSON.parse(result.stdout.slice(result.stdout.lastIndexOf('\n{') + 1)) as {
        path: string;
        inbound: number;
      };
      snapshot = summary.path;
      await dep.stop();
      for (const l of dep.output().split('\n')) if (l.startsWith('ISSUED ')) secrets.add(l.slice(7));
      for (const v of issued(join(dir, 'issued-capture.txt'))) secrets.add(v);
    }, 120_000);

    afterAll(async () => {
      await stopAll();
      rmSync(dir, { recursive: true, force: true });
    });

    it('records every style; the snapshot holds placeholders where credentials were, and flows between them', async () => {
      expect(clientCalls.length).toBe(35);
      expect(clientCalls.filter((c) => c.status >= 300)).toEqual([]);
      expect(secrets.size).toBeGreaterThan(20);
      expect(leaks(join(dir, 'snaps'), secrets)).toEqual([]);
      const snap = await openSnapshot(snapshot);
      expect(snap.manifest.redaction.enabled).toBe(true);
      const inbound = [];
      for await (const ex of snap.exchanges()) if (ex.direction === 'inbound') inbound.push(ex);
      expect(inbound.length).toBe(35);
      const tokens = (await snap.tokens()).tokens as unknown as TokenEntry[];
      const flows = tokens.filter((t) => !t.volatile && t.placeholder !== undefined);
      const origins = new Set(flows.map((t) => `${t.route} ${t.origin?.where}`));
      for (const o of [
        'POST /jwt/login jsonpath:$.access_token',
        'POST /session/login jsonpath:$.session',
        'POST /token/login jsonpath:$.token',
        'POST /xauth/login header:x-auth-token',
        'POST /cookie/login cookie:sid',
        'GET /csrf/form cookie:csrf_sid',
        'GET /csrf/token jsonpath:$.csrfToken',
      ]) {
        expect(origins, o).toContain(o);
      }
      expect(flows.every((t) => PLACEHOLDER.test(t.placeholder!))).toBe(true);
      // the CSRF token inside the HTML page is the placeholder its later header use has
      const form = inbound.find((e) => e.request.target === '/csrf/form')!;
      const html = Buffer.from(form.response!.body.decoded ?? form.response!.body.data).toString();
      const inPage = /name="csrf_token" value="(REDACTED-[0-9a-f]{16})"/.exec(html)?.[1];
      expect(inPage).toMatch(PLACEHOLDER);
      const submit = inbound.find(
        (e) => e.request.target === '/csrf/submit' && e.timing.startUs > form.timing.startUs,
      )!;
      expect(submit.request.headers.find(([n]) => n.toLowerCase() === 'x-csrf-token')?.[1]).toBe(inPage);
    });

    it("retap snapshot secrets names the client's own credentials; --lookup gives their placeholders", async () => {
      const list = await retap(['snapshot', 'secrets', snapshot, '--json'], {});
      expect(list.code, list.stderr).toBe(0);
      const needs = (
        JSON.parse(list.stdout) as {
          needs: Array<{ placeholder: string; state: string; uses: Array<{ where: string; route: string }> }>;
        }
      ).needs;
      const missing = needs.filter((n) => n.state === 'missing');
      // what the client knew before the recording: two users' passwords and the admin's Basic credential
      expect(missing.map((n) => n.uses.map((u) => `${u.route} ${u.where}`).join(', ')).sort()).toEqual([
        'GET /basic/admin header:authorization',
        'POST /jwt/login jsonpath:$..password',
        'POST /jwt/login jsonpath:$..password',
      ]);
      const known = [Buffer.from(`admin:${env.ADMIN_PASSWORD}`).toString('base64'), ...PASSWORDS];
      const look = await retap(
        ['snapshot', 'secrets', snapshot, '--lookup', '--json'],
        {},
        `${known.join('\n')}\n`,
      );
      expect(look.code, look.stderr).toBe(0);
      const values = (
        JSON.parse(look.stdout) as {
          values: Array<{ line: number; placeholder: string; inSnapshot: boolean }>;
        }
      ).values;
      expect(values.every((v) => v.inSnapshot)).toBe(true);
      expect(values.map((v) => v.placeholder).sort()).toEqual(missing.map((n) => n.placeholder).sort());
      const lines = values.map((v, i) => `${v.placeholder}: ${JSON.stringify(known[i])}`);
      writeFileSync(join(dir, 'secrets.yaml'), `# the client's own credentials\n${lines.join('\n')}\n`, {
        mode: 0o600,
      });
    });

    it('replays the unchanged build: every request answered as recorded, no secret in the results', async () => {
      const port = await freePort();
      const out = join(dir, 'results');
      const r = await retap(
        [
          'replay',
          snapshot,
          '--cmd',
          `python3 ${join(fixtures, 'service.py')} --port ${port}`,
          '--port',
          String(port),
          '--env',
          `DEP_URL=http://127.0.0.1:${depPort}`,
          '--env',
          `CLIENT_ID=${env.CLIENT_ID}`,
          '--env',
          `CLIENT_SECRET=${env.CLIENT_SECRET}`,
          '--env',
          `ADMIN_PASSWORD=${env.ADMIN_PASSWORD}`,
          '--env',
          `ISSUED_LOG=${join(dir, 'issued-replay.txt')}`,
          '--secrets',
          join(dir, 'secrets.yaml'),
          '--ready-timeout',
          '60s',
          '--out',
          out,
          '--json',
        ],
        { RETAP_RUNS_DIR: runsDir },
      );
      expect(r.code, r.stderr).toBe(0);
      const results = await readResults(out);
      const run0 = results.runs[0]!;
      const recorded = new Map(results.recorded.map((i) => [i.id, i]));
      const differ: string[] = [];
      for (const it of run0.items) {
        const rec = recorded.get(it.id)!;
        const want = rec.exchange.response!;
        const wantBody = Buffer.from(want.body.decoded ?? want.body.data).toString();
        const gotBody = Buffer.from(it.client.responseBody ?? []).toString();
        if (it.client.status !== want.status || gotBody !== wantBody) {
          differ.push(
            `${rec.route}: ${want.status} ${wantBody.slice(0, 120)} → ${it.client.status} ${gotBody.slice(0, 120)}`,
          );
        }
      }
      expect(differ).toEqual([]);
      expect(run0.items).toHaveLength(35);
      // the OAuth token came from the mocked dependency and was used on the later call
      expect(run0.mocks.misses).toEqual([]);
      expect(run0.mocks.calls).toBeGreaterThanOrEqual(2);
      expect(
        run0.warnings.filter((w) => w.code === 'unreplaced-token' || w.code === 'missing-value'),
      ).toEqual([]);
      // new credentials were handed out during the replay: none of them, nor the recording's, on disk
      const live = issued(join(dir, 'issued-replay.txt'));
      expect(live.length).toBeGreaterThan(10);
      expect(live.filter((v) => secrets.has(v))).toEqual([]);
      expect(leaks(out, [...secrets, ...live])).toEqual([]);
      expect(leaks(join(dir, 'snaps'), [...secrets, ...live])).toEqual([]);
    });

    it('without the secrets the replay stops before sending anything: RETAP_SECRET_MISSING, exit 3', async () => {
      const port = await freePort();
      const out = join(dir, 'results-nosecret');
      const log = join(dir, 'issued-nosecret.txt');
      const r = await retap(
        [
          'replay',
          snapshot,
          '--cmd',
          `python3 ${join(fixtures, 'service.py')} --port ${port}`,
          '--port',
          String(port),
          '--env',
          `ISSUED_LOG=${log}`,
          '--out',
          out,
        ],
        { RETAP_RUNS_DIR: runsDir },
      );
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('[RETAP_SECRET_MISSING]');
      expect(r.stderr).toMatch(
        /REDACTED-[0-9a-f]{16} at header:authorization in 1 request\(s\): \S+ \(GET \/basic\/admin\)/,
      );
      expect(r.stderr).toMatch(
        /REDACTED-[0-9a-f]{16} at jsonpath:\$\.\.password in 1 request\(s\): \S+ \(POST \/jwt\/login\)/,
      );
      expect(r.stderr).toContain('--secrets FILE');
      expect(existsSync(join(out, 'results.json'))).toBe(false);
      expect(existsSync(log)).toBe(false);
      // the environment form provides them as well
      const phs = [...r.stderr.matchAll(/(REDACTED-[0-9a-f]{16}) at /g)].map((m) => m[1]!);
      expect(phs).toHaveLength(3);
      const vars = Object.fromEntries(phs.map((ph) => [`RETAP_SECRET_${ph.slice(9).toUpperCase()}`, 'x']));
      const check = await retap(['snapshot', 'secrets', snapshot, '--json'], vars);
      expect(
        (JSON.parse(check.stdout) as { needs: Array<{ state: string }> }).needs.filter(
          (n) => n.state === 'missing',
        ),
      ).toEqual([]);
    });
  },
);
