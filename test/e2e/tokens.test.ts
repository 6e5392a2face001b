/**
 * Tokens end to end on the product path: the demo's traffic (login tokens, created order ids,
 * timestamps) captured with eBPF from the `orders` process, written as a snapshot (redaction on),
 * tokens discovered, then the inbound exchanges replayed in recorded order against a second,
 * fresh demo whose tokens and ids all differ. Every status must match and no token may be left
 * unreplaced. Also runs `retap snapshot tokens` and `transforms --check` on that snapshot.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureSession } from '../../capture/session.js';
import type { Exchange } from '../../core/exchange.js';
import { type DemoSystem, runTraffic, startDemo } from '../../examples/demo/index.js';
import { createSnapshotWriter, openSnapshot } from '../../snapshots/index.js';
import { discoverTokens, emitFiles, type TokenEntry } from '../../snapshots/tokens/index.js';
import { createReplayContext } from '../../snapshots/transforms/index.js';
import { skipPrivileged } from '../helpers/privileged.js';

const HOP = new Set([
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'te',
]);

describe.skipIf(skipPrivileged())('tokens: capture the demo, discover, replay against a fresh demo', () => {
  let dir: string;
  let first: DemoSystem | undefined;
  let second: DemoSystem | undefined;
  let snapshotPath = '';
  const inbound: Exchange[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'retap-tokens-'));
    first = await startDemo();
    const captured: Exchange[] = [];
    const session = CaptureSession.start({ pids: [first.orders.pid], service: 'orders' }, (e) =>
      captured.push(e),
    );
    try {
      const summary = await runTraffic(first.orders.url, { sessions: 6, seed: 11 });
      expect(summary.errors).toBe(0);
    } finally {
      await session.stop();
      await first.stop();
      first = undefined;
    }
    const w = await createSnapshotWriter({
      dir: join(dir, 'orders'),
      name: 'orders',
      source: { host: 'test', service: 'orders', filters: {} },
    });
    for (const e of captured) await w.append(e);
    await w.finish();
    snapshotPath = w.path;
    const snap = await openSnapshot(snapshotPath);
    for await (const e of snap.exchanges()) if (e.direction === 'inbound') inbound.push(e);
  });

  afterAll(async () => {
    await first?.stop();
    await second?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('replays with zero unreplaced tokens and the same statuses', async () => {
    expect(inbound.length).toBeGreaterThan(30);
    const snap = await openSnapshot(snapshotPath);
    const { tokens, transforms } = emitFiles(await discoverTokens(snap.exchanges()));
    const flows = (tokens.tokens as TokenEntry[]).filter((t) => !t.volatile);
    const rules = new Set(flows.map((t) => t.rule));
    expect(rules).toEqual(new Set(['post-login.token', 'post-orders.id']));
    // one login token per session, one id per created order, each used later
    expect(flows.filter((t) => t.rule === 'post-login.token')).toHaveLength(6);
    expect(flows.every((t) => (t.uses?.length ?? 0) > 0)).toBe(true);
    // the recording was redacted: the token flows as its placeholder
    expect(flows.find((t) => t.rule === 'post-login.token')?.placeholder).toMatch(/^REDACTED-[0-9a-f]{16}$/);
    const vol = (tokens.tokens as TokenEntry[])
      .filter((t) => t.volatile)
      .map((t) => `${t.route} ${t.origin?.where} ${t.kind}`);
    expect(vol).toEqual(
      expect.arrayContaining([
        'POST /login jsonpath:$.expiresAt timestamp',
        'POST /orders jsonpath:$.createdAt timestamp',
        'POST /orders jsonpath:$.id uuid',
      ]),
    );

    second = await startDemo();
    const base = second.orders.url;
    const ctx = createReplayContext({ transforms, tokens });
    const mismatches: string[] = [];
    for (const ex of inbound) {
      const { request: req } = ctx.prepareRequest(ex);
      const headers: Record<string, string> = {};
      for (const [n, v] of req.headers) if (!HOP.has(n.toLowerCase())) headers[n] = v;
      const res = await request(new URL(req.target, base), {
        method: req.method as 'GET',
        headers,
        body: req.body.data.length > 0 ? Buffer.from(req.body.data) : null,
      });
      const body = new Uint8Array(await res.body.arrayBuffer());
      ctx.observeResponse(ex, {
        status: res.statusCode,
        headers: res.headers as Record<string, string>,
        body,
      });
      if (res.statusCode !== ex.response?.status)
        mismatches.push(
          `${ex.id} ${ex.request.method} ${ex.request.target}: ${ex.response?.status} → ${res.statusCode}`,
        );
    }
    expect(mismatches).toEqual([]);
    expect(ctx.warnings().filter((w) => w.kind !== 'rule-note')).toEqual([]);
    const stats = ctx.stats();
    expect(stats.unreplaced).toBe(0);
    expect(stats.substitutions).toBe(flows.reduce((n, t) => n + (t.uses?.length ?? 0), 0));
  });

  it('retap snapshot tokens, --write, and transforms --check show what was found and what the rules do', async () => {
    const t = await cli(['snapshot', 'tokens', snapshotPath]);
    expect(t.stderr).toBe('');
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(
      /post-login\.token\s+session\s+POST \/login response jsonpath:\$\.token\s+6\s+\d+\s+header:authorization/,
    );
    expect(t.stdout).toMatch(/post-orders\.id\s+uuid\s+POST \/orders response jsonpath:\$\.id/);
    expect(t.stdout).toContain('timestamp  iso8601');

    const w = await cli(['snapshot', 'tokens', snapshotPath, '--write', '--json']);
    expect(w.code).toBe(0);
    const written = JSON.parse(w.stdout).written as string;
    expect(written).toMatch(/v2$/);
    const v2 = await openSnapshot(written);
    expect((await v2.transforms()).rules.map((r) => r.id)).toEqual(
      expect.arrayContaining(['post-login.token', 'post-orders.id']),
    );
    expect(v2.manifest.parent?.version).toBe(1);

    const c = await cli(['snapshot', 'transforms', written, '--check']);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/post-login\.token\s+yes\s+\d+\s+\d+/);
    expect(c.stdout).toMatch(
      /before: Bearer REDACTED-[0-9a-f]{16}\n\s+after: {2}Bearer <live:post-login\.token#\d+>/,
    );

    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'version: 1\nrules:\n  - id: order-id\n    extract: [{ from: jsonpath, path: "$.items[", as: x }]\n',
    );
    const b = await cli(['snapshot', 'transforms', written, '--check', '--rules', bad]);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain("$.rules[0].extract[0].path (rule 'order-id')");
  });
});

/** Runs the CLI in this process (the compiled dist/ may be stale), capturing its output. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // cli/main.ts loads `snapshot` with a computed import vitest cannot follow; run the command as main does.
  const { default: snapshot } = await import('../../cli/commands/snapshot.js');
  const { formatError, isRetapError } = await import('../../core/errors.js');
  const main = async (argv: string[]): Promise<number> => {
    try {
      return await snapshot.run(argv.slice(1));
    } catch (x) {
      process.stderr.write(`${formatError(x)}\n`);
      return isRetapError(x) ? x.exitCode : 3;
    }
  };
  const out: string[] = [];
  const err: string[] = [];
  const o = process.stdout.write;
  const e = process.stderr.write;
  process.stdout.write = ((c: string | Uint8Array) => out.push(String(c)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => err.push(String(c)) > 0) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}
