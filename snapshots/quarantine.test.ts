import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Exchange } from '../core/exchange.js';
import { planReplay } from '../runner/plan.js';
import { planMocks } from '../runner/mocks/plan.js';
import { exportHar, importHar } from './har.js';
import { createSnapshotWriter, filterSnapshot, mergeSnapshots, openSnapshot, validateSnapshot } from './index.js';
import { admit, admitStored, problemOf } from './quarantine.js';
import { sampleExchange } from './sample.js';
import { discoverTokens } from './tokens/discover.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-quarantine-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (s: string) => new TextEncoder().encode(s);
const with_ = (i: number, f: (ex: Exchange) => void): Exchange => {
  const ex = sampleExchange(i);
  f(ex);
  return ex;
};

describe('admit', () => {
  it('lets a valid exchange through untouched (the same object)', () => {
    const ex = sampleExchange(1);
    expect(problemOf(ex)).toBeUndefined();
    expect(admit(ex)).toBe(ex);
  });

  it.each([
    ['an empty method', (e: Exchange) => (e.request.method = ''), /^\$\.request\.method must not be shorter than 1 characters/],
    ['a method that is not a token', (e: Exchange) => (e.request.method = 'GE T'), /request\.method "GE T" is not an HTTP method/],
    ['status 0', (e: Exchange) => (e.response!.status = 0), /status 0 is outside 100–599/],
    ['status 700', (e: Exchange) => (e.response!.status = 700), /status 700 is outside 100–599/],
    ['status 1000', (e: Exchange) => (e.response!.status = 1000), /status must be <= 999/],
    ['a negative size', (e: Exchange) => (e.request.body.size = -5), /request\.body\.size must be an integer >= 0/],
    ['a fractional size', (e: Exchange) => (e.response!.body.size = 1.5), /response\.body\.size must be an integer/],
    ['body bytes that are not bytes', (e: Exchange) => ((e.response!.body as { data: unknown }).data = 'text'), /response\.body\.data is not bytes/],
    ['a negative timing', (e: Exchange) => (e.timing.responseEndNs = -30), /timing\.responseEndNs must be >= 0/],
    ['a port out of range', (e: Exchange) => (e.peer.port = 70000), /peer\.port must be <= 65535/],
    ['extras that JSON cannot hold', (e: Exchange) => (e.extras = { n: 10n }), /cannot be stored: .*BigInt/],
    ['a header that is not a pair', (e: Exchange) => e.request.headers.push(['x'] as unknown as [string, string]), /headers\[2\]/],
  ])('quarantines %s with the reason, keeping what is valid', (_what, spoil, reason) => {
    const ex = with_(3, spoil);
    const q = admit(ex);
    expect(q).not.toBe(ex);
    expect(q.protocol).toBe('unknown');
    expect(q.quarantine).toEqual({ protocol: 'http1', reason: expect.stringMatching(reason) });
    expect(problemOf(q)).toBeUndefined();
    // identity, timing and sizes survive
    expect(q.id).toBe(ex.id);
    expect(q.direction).toBe(ex.direction);
    expect(q.connection).toEqual(ex.connection);
    expect(q.timing.startUs).toBe(ex.timing.startUs);
    expect(q.request.body.size).toBeGreaterThanOrEqual(0);
    expect(q.request.method.length).toBeGreaterThan(0);
    // admitting again changes nothing
    expect(admit(q)).toBe(q);
  });

  it('keeps whole bytes and sizes of a quarantined exchange', () => {
    const ex = with_(4, (e) => {
      e.request.method = '';
      e.response!.status = 0;
    });
    const q = admit(ex);
    expect(q.request.method).toBe('-');
    expect(q.response!.status).toBe(0);
    expect(Buffer.from(q.response!.body.data).toString()).toBe('{"id":4,"name":"item 4"}');
    expect(q.response!.headers).toEqual(ex.response!.headers);
  });

  it('other protocols are held to the schema only', () => {
    const ex = with_(5, (e) => {
      e.protocol = 'postgres';
      e.request.method = 'SELECT 1';
      e.response!.status = 0;
    });
    expect(admit(ex)).toBe(ex);
  });

  it('admitStored: redaction that throws quarantines the exchange; if it throws again, only sizes are kept', () => {
    const ex = sampleExchange(6);
    let calls = 0;
    const once = admitStored(ex, (e) => {
      if (calls++ === 0) throw new Error('redactor choked');
      return e;
    });
    expect(once.exchange.quarantine).toEqual({ protocol: 'http1', reason: 'cannot be stored: redactor choked' });
    expect(once.stored).toMatchObject({ protocol: 'unknown', quarantine: { reason: 'cannot be stored: redactor choked' } });
    expect(once.exchange.response!.headers).toEqual(ex.response!.headers);
    const always = admitStored(ex, () => {
      throw new Error('redactor always chokes');
    });
    expect(always.exchange.request.headers).toEqual([]);
    expect(always.exchange.response!.body).toMatchObject({ size: ex.response!.body.size, truncated: true });
    expect(always.exchange.response!.body.data.length).toBe(0);
    expect(problemOf(always.exchange)).toBeUndefined();
  });

  it('admitStored: a valid exchange is redacted and stored once, unchanged otherwise', () => {
    const ex = sampleExchange(7);
    const r = admitStored(ex);
    expect(r.exchange).toBe(ex);
    expect(r.stored).toMatchObject({ id: ex.id, protocol: 'http1' });
  });

  it('never throws, whatever it is given', () => {
    for (const bad of [{}, { request: null }, { id: 7, request: { body: 3 } }, { response: 'x', timing: { startUs: -1 } }]) {
      const q = admit(bad as unknown as Exchange);
      expect(q.protocol).toBe('unknown');
      expect(problemOf(q)).toBeUndefined();
      expect(admitStored(bad as unknown as Exchange).exchange.protocol).toBe('unknown');
    }
  });
});

describe('quarantine in snapshots', () => {
  const source = { host: 'h', filters: {} };

  async function write(exchanges: Exchange[]): Promise<string> {
    const w = await createSnapshotWriter({ dir: join(dir, 'store'), name: 'q', source, redaction: false });
    for (const ex of exchanges) await w.append(ex);
    await w.finish();
    return w.path;
  }

  const bad = () =>
    [
      with_(2, (e) => (e.request.method = '')),
      with_(3, (e) => (e.response!.status = 0)),
      with_(5, (e) => (e.request.body.size = -1)),
    ] as Exchange[];

  it('a bad exchange costs only itself: the snapshot is written, validates and counts it', async () => {
    const path = await write([sampleExchange(0), sampleExchange(1), ...bad(), sampleExchange(4)]);
    const report = await validateSnapshot(path);
    expect(report).toMatchObject({ ok: true, exchanges: 6 });
    const snap = await openSnapshot(path);
    expect(snap.manifest.counts).toMatchObject({ exchanges: 6, quarantined: 3 });
    expect(snap.manifest.counts.byProtocol).toEqual({ http1: 3, unknown: 3 });
    // quarantined exchanges are not routes and have no status
    expect(snap.manifest.counts.routes.reduce((n, r) => n + r.count, 0)).toBe(3);
    expect(Object.values(snap.manifest.counts.byStatus).reduce((a, b) => a + b, 0)).toBe(3);
    const lines = readFileSync(join(path, 'exchanges.jsonl'), 'utf8').trim().split('\n');
    const stored = lines.map((l) => JSON.parse(l)).find((e) => e.quarantine && e.id === sampleExchange(2).id);
    expect(stored).toMatchObject({
      protocol: 'unknown',
      quarantine: { protocol: 'http1', reason: expect.stringContaining('$.request.method') },
      request: { method: '-' },
    });
  });

  it('a snapshot without quarantined exchanges has no quarantined count (its bytes do not change)', async () => {
    const snap = await openSnapshot(await write([sampleExchange(0)]));
    expect('quarantined' in snap.manifest.counts).toBe(false);
  });

  it('filter and merge keep quarantined exchanges quarantined', async () => {
    const path = await write([sampleExchange(0), ...bad()]);
    const f = await filterSnapshot(path, {}, { dir: join(dir, 'f') });
    expect((await openSnapshot(f.path)).manifest.counts.quarantined).toBe(3);
    const m = await mergeSnapshots([path, f.path], { dir: join(dir, 'm') });
    expect((await openSnapshot(m.path)).manifest.counts.quarantined).toBe(3);
    expect((await validateSnapshot(m.path)).ok).toBe(true);
  });

  it('is never replayed, never served by a mock, left out of tokens and HAR', async () => {
    const path = await write([sampleExchange(0), sampleExchange(1), ...bad()]);
    const all: Exchange[] = [];
    for await (const ex of (await openSnapshot(path)).exchanges()) all.push(ex);
    const plan = planReplay(all);
    expect(plan.quarantined).toBe(3);
    expect(plan.items.map((i) => i.id)).toEqual([sampleExchange(1).id]);
    expect(plan.outbound.map((e) => e.id)).toEqual([sampleExchange(0).id]);
    const outboundQuarantined = all.find((e) => e.quarantine && e.direction === 'outbound')!;
    expect(planMocks([outboundQuarantined]).skipped[0]!.reason).toMatch(/^quarantined \(/);
    expect((await discoverTokens(all)).exchanges).toBe(2);
    const har = await exportHar(path, join(dir, 'out.har'));
    expect(har).toMatchObject({ entries: 2, quarantined: 3 });
  });

  it('HAR import: an entry with an impossible status is quarantined, the rest imported', async () => {
    const path = await write([sampleExchange(1), sampleExchange(2)]);
    const file = join(dir, 'in.har');
    await exportHar(path, file);
    const har = JSON.parse(readFileSync(file, 'utf8'));
    har.log.entries[1].response.status = 999;
    writeFileSync(file, JSON.stringify(har));
    const r = await importHar(file, { dir: join(dir, 'imported'), name: 'h', redaction: false });
    expect(r.imported).toBe(2);
    const snap = await openSnapshot(r.path);
    expect(snap.manifest.counts).toMatchObject({ exchanges: 2, quarantined: 1 });
    for await (const ex of snap.exchanges())
      if (ex.quarantine) expect(ex.quarantine.reason).toBe('$.response.status 999 is outside 100–599');
  });

  it('a quarantined request body keeps its bytes through the writer', async () => {
    const ex = with_(1, (e) => {
      e.request.method = '';
      e.request.body = { data: bytes('raw bytes'), size: 9, truncated: false };
    });
    const path = await write([ex]);
    const snap = await openSnapshot(path);
    for await (const q of snap.exchanges()) expect(Buffer.from(q.request.body.data).toString()).toBe('raw bytes');
  });
});
