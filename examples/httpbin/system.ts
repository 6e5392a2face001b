/**
 * retap against an application no one here wrote: httpbin from PyPI (ci/pip-packages.txt) under
 * gunicorn with several workers, recorded under ordinary python-requests traffic (keep-alive
 * sessions, Basic credentials) with the defaults — redaction on — and replayed.
 *
 *   const rec = await recordHttpbin(dir);                // eBPF capture of gunicorn + workers
 *   await writeHttpbinSecrets(rec.snapshot, file);       // the Basic credential, for --secrets
 *   httpbinCommand(8080)                                 // the unchanged build
 *   httpbinCommand(8080, { changed: true })              // GET /json answers another title
 */
import { join } from 'node:path';
import { packageRoot } from '../../core/paths.js';
import { captureWhile, freePort, placeholdersOf, run, writeSecrets } from '../harness.js';

export const HTTPBIN_DIR = join(packageRoot(), 'examples', 'httpbin');
export const HTTPBIN_WORKERS = 3;

/** gunicorn on the PATH (pip install httpbin gunicorn: ci/setup does it). */
export async function gunicornBin(): Promise<string> {
  const r = await run('python3', [
    '-c',
    'import httpbin, gunicorn, shutil; print(shutil.which("gunicorn") or "")',
  ]);
  const bin = r.stdout.trim();
  if (r.code !== 0 || bin === '')
    throw new Error(`httpbin and gunicorn must be installed (ci/pip-packages.txt, ci/setup):\n${r.stderr}`);
  return bin;
}

function argv(gunicorn: string, port: number, changed: boolean): string[] {
  return [
    gunicorn,
    '-w',
    String(HTTPBIN_WORKERS),
    '-k',
    'gthread',
    '--threads',
    '4',
    '-b',
    `127.0.0.1:${port}`,
    '--log-level',
    'warning',
    ...(changed ? ['--pythonpath', HTTPBIN_DIR, 'changed_app:app'] : ['httpbin:app']),
  ];
}

/** The build to replay: httpbin as installed, or with one changed answer (changed_app.py). */
export function httpbinCommand(gunicorn: string, port: number, opts: { changed?: boolean } = {}): string {
  return argv(gunicorn, port, opts.changed ?? false).join(' ');
}

export interface HttpbinRecording {
  snapshot: string;
  requests: number;
  inbound: number;
  seconds: number;
}

/** Records httpbin under gunicorn with `retap capture -- gunicorn …` while traffic.py runs. */
export async function recordHttpbin(dir: string, rounds = 5): Promise<HttpbinRecording> {
  const gunicorn = await gunicornBin();
  const port = await freePort();
  const r = await captureWhile(
    { out: join(dir, 'capture'), name: 'httpbin', command: argv(gunicorn, port, false), port },
    async () => {
      // gunicorn's master listens before its workers are up: the first call waits for them
      const t = await run('python3', [
        join(HTTPBIN_DIR, 'traffic.py'),
        '--url',
        `http://127.0.0.1:${port}`,
        '--rounds',
        String(rounds),
      ]);
      if (t.code !== 0) throw new Error(`the httpbin traffic exited ${t.code}:\n${t.stdout}${t.stderr}`);
      return JSON.parse(t.stdout.trim().split('\n').pop() as string) as { requests: number };
    },
  );
  return {
    snapshot: r.summary.path,
    requests: r.traffic.requests,
    inbound: r.summary.inbound,
    seconds: r.seconds,
  };
}

/**
 * The secrets file a replay of the httpbin recording needs: the Basic credential (its base64, as
 * the header carried it) and the password alone, by the placeholders redaction gave them.
 */
export async function writeHttpbinSecrets(snapshot: string, file: string): Promise<number> {
  const r = await run('python3', [join(HTTPBIN_DIR, 'traffic.py'), '--credentials']);
  const { user, password } = JSON.parse(r.stdout) as { user: string; password: string };
  const candidates = [Buffer.from(`${user}:${password}`).toString('base64'), password, `${user}:${password}`];
  const found = await placeholdersOf(snapshot, candidates);
  await writeSecrets(file, found, 'the Basic credential of the httpbin client');
  return found.size;
}
