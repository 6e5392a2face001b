/**
 * Hostile traffic through the real kernel path: `retap capture -- node traffic.mjs` where one
 * process runs hostile connections (test/fixtures/hostile/inputs.mjs: absurd lengths, endless
 * heads, chunk lines and frames, HPACK errors, gRPC prefixes beyond their frame, 1xx storms,
 * bad statuses, TLS-looking records, opaque bytes, half-closes, 1-byte fragments) beside
 * well-formed HTTP/1.1 and HTTP/2 exchanges on other connections. Both ends of every connection
 * are in the captured process. The recording must survive, keep every good exchange
 * byte-exact, and its counters must match what the process sent (its ledger).
 * A short seed set runs here; `npm run fuzz` runs long ones.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Exchange, headerValue } from '../../core/exchange.js';
import { packageRoot } from '../../core/paths.js';
import { planReplay } from '../../runner/plan.js';
import { openSnapshot, validateSnapshot } from '../../snapshots/index.js';
import { skipPrivileged } from '../helpers/privileged.js';

const root = packageRoot();
const traffic = join(root, 'test', 'fixtures', 'hostile', 'traffic.mjs');

interface Ledger {
  hostile: Array<{
    id: number;
    kind: string;
    expect: 'decoded' | 'unknown' | 'ciphertext';
    port: number;
    c2s: number;
    s2c: number;
  }>;
  good: Array<{
    id: number;
    proto: 'http1' | 'http2';
    port: number;
    status: number;
    reason?: string;
    headers: Array<[string, string]>;
    body: string;
    request: { method: string; target: string; headers?: Array<[string, string]>; body: string };
  }>;
  goodConnectionBytes: number;
  goodConnections: number;
  errors: string[];
}

function buildDist(): void {
  const r = spawnSync('flock', ['/tmp/retap-build-ts.lock', 'npm', 'run', '-s', 'build:ts'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 180_000,
  });
  for (const f of ['dist/cli/main.js', 'dist/cli/commands/capture.js', 'dist/snapshots/quarantine.js']) {
    if (!existsSync(join(root, f)))
      throw new Error(`npm run build:ts did not produce ${f}:\n${r.stdout}${r.stderr}`);
  }
}

let dir: string;
beforeAll(() => {
  buildDist();
  dir = mkdtempSync(join(tmpdir(), 'retap-hostile-'));
}, 200_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (b64: string): Buffer => Buffer.from(b64, 'base64');
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

describe.skipIf(skipPrivileged())('hostile traffic never costs a recording (real kernel path)', () => {
  for (const seed of [11, 12]) {
    it(`seed ${seed}: capture exits 0, good exchanges byte-exact, counters match the ledger`, async () => {
      const out = join(dir, `snap-${seed}`);
      const ledgerFile = join(dir, `ledger-${seed}.json`);
      const r = spawnSync(
        process.execPath,
        [
          join(root, 'bin', 'retap.js'),
          'capture',
          '--out',
          out,
          '--json',
          '--no-redact',
          '--',
          process.execPath,
          traffic,
          '--seed',
          String(seed),
          '--hostile',
          '48',
          '--good',
          '16',
          '--ledger',
          ledgerFile,
        ],
        { cwd: root, encoding: 'utf8', timeout: 90_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      const ledger = JSON.parse(readFileSync(ledgerFile, 'utf8')) as Ledger;
      expect(ledger.errors).toEqual([]);
      const summary = JSON.parse(r.stdout) as { path: string; quarantined: number };

      // the snapshot is whole and valid, counts included
      const report = await validateSnapshot(summary.path);
      expect(report.issues).toEqual([]);
      expect(report.ok).toBe(true);
      const snap = await openSnapshot(summary.path);
      const all: Exchange[] = [];
      for await (const ex of snap.exchanges()) all.push(ex);
      const c = snap.manifest.counters;

      // nothing was lost on the way: every difference below is the decoders' doing
      expect(c.ringbufDrops).toBe(0);
      expect(c.userBatchDrops).toBe(0);
      expect(c.truncations).toBe(0);
      expect(c.gapBytes).toBe(0);
      expect(c.failedConnections).toBe(0);

      // every well-formed exchange, both ends (client outbound, server inbound), byte-exact
      const byGood = (id: number, direction: string) =>
        all.filter(
          (e) => e.direction === direction && headerValue(e.request.headers, 'x-good-id') === String(id),
        );
      expect(ledger.good.length).toBe(16);
      for (const g of ledger.good) {
        for (const direction of ['inbound', 'outbound']) {
          const found = byGood(g.id, direction);
          expect(found, `good #${g.id} ${direction}`).toHaveLength(1);
          const ex = found[0]!;
          expect(ex.protocol).toBe(g.proto);
          expect(ex.quarantine).toBeUndefined();
          expect(ex.notes, `good #${g.id} ${direction}`).toBeUndefined();
          expect(ex.request.method).toBe(g.request.method);
          expect(ex.request.target).toBe(g.request.target);
          expect(same(ex.request.body.data, bytes(g.request.body)), `good #${g.id} request body`).toBe(true);
          expect(ex.response?.status).toBe(Number(g.status));
          expect(same(ex.response!.body.data, bytes(g.body)), `good #${g.id} response body`).toBe(true);
          expect(ex.response!.body.truncated).toBe(false);
          if (g.proto === 'http1') {
            expect(ex.request.headers).toEqual(g.request.headers);
            expect(ex.response!.headers).toEqual(g.headers);
            expect(ex.response!.reason).toBe(g.reason);
          } else {
            for (const [n, v] of g.headers) expect(headerValue(ex.response!.headers, n)).toBe(String(v));
          }
        }
      }

      // counters are the bytes the process moved (each connection seen from both of its ends)
      const sum = (expect: string) =>
        ledger.hostile.filter((h) => h.expect === expect).reduce((n, h) => n + h.c2s + h.s2c, 0);
      expect(c.unknownBytes).toBe(2 * sum('unknown'));
      expect(c.unknownConnections).toBe(
        2 * ledger.hostile.filter((h) => h.expect === 'unknown' && h.c2s > 0).length,
      );
      expect(c.ciphertextBytes).toBe(2 * sum('ciphertext'));
      expect(c.undecodedBytes).toBeGreaterThan(0);
      expect(c.undecodedBytes).toBeLessThanOrEqual(2 * sum('decoded'));
      expect(c.kernelBytes).toBe(
        2 * (sum('decoded') + sum('unknown') + sum('ciphertext') + ledger.goodConnectionBytes),
      );
      expect(c.connections).toBe(2 * (ledger.hostile.length + ledger.goodConnections));
      const storms = ledger.hostile.filter(
        (h) => h.kind === 'h1-1xx-storm' || h.kind === 'h2-1xx-storm',
      ).length;
      expect(c.cutMessages).toBeGreaterThanOrEqual(2 * storms);

      // bad answers are quarantined, only on hostile connections, and never replayed
      const hostilePorts = new Set(ledger.hostile.map((h) => h.port));
      const onHostile = (e: Exchange) => hostilePorts.has(e.service.port) || hostilePorts.has(e.peer.port);
      const quarantined = all.filter((e) => e.quarantine);
      const kinds = (k: string) => ledger.hostile.filter((h) => h.kind === k).length;
      expect(quarantined.length).toBe(snap.manifest.counts.quarantined ?? 0);
      expect(quarantined.length).toBe(summary.quarantined);
      expect(quarantined.length).toBeGreaterThanOrEqual(
        4 * kinds('h1-bad-status') + 2 * kinds('h2-bad-status'),
      );
      for (const q of quarantined) {
        expect(onHostile(q), `${q.id}: ${q.quarantine!.reason}`).toBe(true);
        expect(q.protocol).toBe('unknown');
        expect(q.quarantine!.reason.length).toBeGreaterThan(0);
      }
      for (const e of all) {
        expect(e.request.method.length).toBeGreaterThan(0);
        if (e.response && !e.quarantine)
          expect(e.response.status >= 100 && e.response.status <= 599).toBe(true);
      }
      const plan = planReplay(all);
      expect(plan.quarantined).toBe(quarantined.length);
      expect(plan.items.some((it) => it.exchange.quarantine)).toBe(false);

      // `retap snapshot show` lists them with their reason
      const show = (...args: string[]) =>
        spawnSync(
          process.execPath,
          [join(root, 'bin', 'retap.js'), 'snapshot', 'show', summary.path, '--routes', '5', ...args],
          {
            encoding: 'utf8',
          },
        );
      const shown = JSON.parse(show('--json').stdout) as {
        quarantined: Array<{ id: string; reason: string }>;
      };
      expect(shown.quarantined.map((q) => q.id)).toEqual(
        quarantined
          .sort((a, b) => a.timing.startUs - b.timing.startUs || (a.id < b.id ? -1 : 1))
          .slice(0, 5)
          .map((q) => q.id),
      );
      expect(show().stdout).toContain(
        `quarantined (${quarantined.length}, kept raw, never replayed; first 5):`,
      );
      expect(show().stdout).toContain(shown.quarantined[0]!.reason);
    }, 120_000);
  }
});
