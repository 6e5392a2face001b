/**
 * retap.yaml's `redaction:` and `snapshots.gzip`, end to end through the kernel path: a Python
 * service (test/fixtures/redaction-config) hands out an order code in its JSON body and an
 * X-Internal-Ref header that only the user's own rules call secret. `retap capture --config`
 * must write a compressed snapshot with neither value in it and carry the rules in the manifest;
 * `retap replay` must redact the fresh values the build hands out during the replay with the same
 * rules (its results hold no issued value). Without the file, the built-in rules keep them.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../core/paths.js';
import { openSnapshot } from '../../snapshots/index.js';
import { retap, retapChild } from '../helpers/cli.js';
import { skipPrivileged } from '../helpers/privileged.js';
import { freePort, waitForPort } from '../helpers/procs.js';

const service = join(packageRoot(), 'test', 'fixtures', 'redaction-config', 'service.py');
const ORDERS = 8;

/** Every file under a folder as text, gzip files unpacked (a compressed leak is still a leak). */
function textsUnder(dir: string): Array<{ path: string; text: string }> {
  const out: Array<{ path: string; text: string }> = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...textsUnder(p));
    else {
      const raw = readFileSync(p);
      out.push({ path: p, text: (p.endsWith('.gz') ? gunzipSync(raw) : raw).toString('latin1') });
    }
  }
  return out;
}

function leaks(dir: string, values: string[]): string[] {
  const files = textsUnder(dir);
  return values.flatMap((v) => files.filter((f) => f.text.includes(v)).map((f) => `${v} in ${f.path}`));
}

const issued = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean);

/** Captures the service under ORDERS requests; returns the snapshot path. */
async function captureService(dir: string, name: string, extra: string[]): Promise<string> {
  const port = await freePort();
  const c = retapChild(
    [
      'capture',
      '--out',
      join(dir, 'snaps', name),
      '--name',
      name,
      '--json',
      ...extra,
      '--',
      'python3',
      service,
      '--port',
      String(port),
    ],
    { ISSUED_LOG: join(dir, `issued-${name}.txt`), RETAP_RUNS_DIR: join(dir, 'runs') },
  );
  try {
    await waitForPort(port, 30_000);
    for (let i = 0; i < ORDERS; i++) {
      const r = await request(`http://127.0.0.1:${port}/order/${i}`);
      expect(r.statusCode).toBe(200);
      await r.body.text();
    }
  } finally {
    c.child.kill('SIGINT');
  }
  const done = await c.done;
  if (done.code !== 0) throw new Error(`retap capture exited ${done.code}:\n${done.stderr}`);
  return (JSON.parse(done.stdout.slice(done.stdout.lastIndexOf('\n{') + 1)) as { path: string }).path;
}

describe.skipIf(skipPrivileged())(
  "retap.yaml's redaction rules and snapshots.gzip: capture, snapshot, replay",
  () => {
    let dir: string;
    let snapshot = '';

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'retap-redaction-config-'));
      writeFileSync(
        join(dir, 'retap.yaml'),
        [
          'snapshots:',
          '  gzip: true',
          'redaction:',
          '  headers: [x-internal-ref]',
          '  patterns:',
          '    - id: order-code',
          "      regex: 'ORD-[0-9]{6}'",
          '',
        ].join('\n'),
      );
      snapshot = await captureService(dir, 'orders', ['--config', join(dir, 'retap.yaml')]);
    }, 120_000);

    afterAll(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('capture: a compressed snapshot, no issued value in it, the rules carried in the manifest', async () => {
      const values = issued(join(dir, 'issued-orders.txt'));
      expect(values).toHaveLength(2 * ORDERS);
      expect(leaks(join(dir, 'snaps'), values)).toEqual([]);
      const snap = await openSnapshot(snapshot);
      expect(snap.manifest.files.exchanges.gzip).toBe(true);
      expect(snap.manifest.redaction.config).toEqual({
        headers: ['x-internal-ref'],
        patterns: [{ id: 'order-code', regex: 'ORD-[0-9]{6}' }],
      });
      const inbound = [];
      for await (const ex of snap.exchanges()) if (ex.direction === 'inbound') inbound.push(ex);
      expect(inbound).toHaveLength(ORDERS);
      for (const ex of inbound) {
        const ref = ex.response!.headers.find(([n]) => n.toLowerCase() === 'x-internal-ref')?.[1];
        expect(ref).toMatch(/^REDACTED-[0-9a-f]{16}$/);
        const body = JSON.parse(Buffer.from(ex.response!.body.data).toString()) as {
          code: string;
          state: string;
        };
        expect(body.state).toBe('paid'); // the rest of the body kept
        expect(body.code).not.toMatch(/^ORD-\d{6}$/);
      }
    });

    it("replay: the build's fresh values are redacted in the results with the snapshot's rules", async () => {
      const port = await freePort();
      const out = join(dir, 'results');
      const r = await retap(
        [
          'replay',
          snapshot,
          '--cmd',
          `python3 ${service} --port ${port}`,
          '--port',
          String(port),
          '--env',
          `ISSUED_LOG=${join(dir, 'issued-replay.txt')}`,
          '--out',
          out,
          '--json',
        ],
        { RETAP_RUNS_DIR: join(dir, 'runs') },
      );
      expect(r.code, r.stderr).toBe(0);
      const values = issued(join(dir, 'issued-replay.txt'));
      expect(values).toHaveLength(2 * ORDERS);
      expect(leaks(out, values)).toEqual([]);
    }, 120_000);

    it('without the file the built-in rules apply: the same values stay in clear (the rules matter)', async () => {
      const plain = await captureService(dir, 'plain', []);
      const snap = await openSnapshot(plain);
      expect(snap.manifest.files.exchanges.gzip).not.toBe(true);
      expect(snap.manifest.redaction.config).toBeUndefined();
      expect(leaks(join(dir, 'snaps', 'plain'), issued(join(dir, 'issued-plain.txt'))).length).toBe(
        2 * ORDERS,
      );
    }, 120_000);

    it('a rule that is not a regular expression is refused before anything runs, with its line', async () => {
      writeFileSync(
        join(dir, 'bad.yaml'),
        "redaction:\n  patterns:\n    - id: broken\n      regex: 'ORD-[0-9'\n",
      );
      const r = await retap([
        'capture',
        '--out',
        join(dir, 'snaps', 'bad'),
        '--config',
        join(dir, 'bad.yaml'),
        '--',
        'true',
      ]);
      expect(r.code, r.stderr).toBe(3); // RETAP_CONFIG_INVALID (docs/cli.md)
      expect(r.stderr).toContain('RETAP_CONFIG_INVALID');
      expect(r.stderr).toMatch(
        /bad\.yaml:4: \$\.redaction\.patterns\.0\.regex is not a JavaScript regular expression/,
      );
    });
  },
);
