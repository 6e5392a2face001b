import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Exchange } from '../core/exchange.js';
import { createSnapshotWriter, openSnapshot } from './index.js';
import { sampleExchange } from './sample.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-snap-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const source = { host: 'test-host', service: 'orders', filters: { port: 8080 } };

async function write(exchanges: Exchange[], store: string, extra: Partial<Parameters<typeof createSnapshotWriter>[0]> = {}) {
  const w = await createSnapshotWriter({ dir: store, name: 'orders', source, redaction: false, ...extra });
  for (const ex of exchanges) await w.append(ex);
  const manifest = await w.finish({ counters: { dropped: 2 } });
  return { manifest, path: w.path };
}

async function readAll(path: string): Promise<Exchange[]> {
  const snap = await openSnapshot(path);
  const out: Exchange[] = [];
  for await (const ex of snap.exchanges()) out.push(ex);
  return out;
}

function plain(ex: Exchange): unknown {
  return JSON.parse(JSON.stringify(ex, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)));
}

describe('snapshot store round trip', () => {
  it('writes and reads back the same exchanges, binary and truncated bodies included', async () => {
    const binary = new Uint8Array([0, 1, 2, 255, 254, 10, 13, 0x1b]);
    const exchanges: Exchange[] = [
      sampleExchange(1),
      sampleExchange(2, {
        request: {
          method: 'PUT',
          target: '/blob',
          version: 'HTTP/2',
          headers: [[':authority', 'x'], ['content-type', 'application/octet-stream']],
          body: { data: binary, size: 4096, truncated: true },
          trailers: [['grpc-status', '0']],
        },
        notes: ['truncated', 'gap'],
        extras: { stream: 3, b: { z: 1, a: [2, { y: 1, x: 0 }] } },
      }),
      sampleExchange(3, { response: undefined, notes: ['no-response'] }),
      sampleExchange(4, {
        response: {
          status: 200,
          version: 'HTTP/1.1',
          headers: [['content-encoding', 'gzip']],
          body: { data: new Uint8Array([31, 139, 8, 0]), size: 4, truncated: false, decoded: new TextEncoder().encode('héllo ✓') },
          interim: [{ status: 100, headers: [] }],
        },
      }),
    ];
    const { manifest, path } = await write(exchanges, join(dir, 'orders'));
    expect(path).toBe(join(dir, 'orders', 'v1'));
    expect(manifest.version).toBe(1);
    expect(manifest.counts.exchanges).toBe(4);
    expect(manifest.counts.truncatedBodies).toBe(1);
    expect(manifest.counts.noResponse).toBe(1);
    expect(manifest.counters).toEqual({ dropped: 2 });
    const back = await readAll(path);
    expect(back.map(plain)).toEqual(exchanges.map(plain));
    const line = readFileSync(join(path, 'exchanges.jsonl'), 'utf8').split('\n')[1]!;
    expect(line).toContain('"encoding":"base64"');
    expect(line).toContain('"extras":{"b":{"a":[2,{"x":0,"y":1}],"z":1},"stream":3}');
  });

  it('gives the same bytes and hash for the same exchanges in any order, spilled or not', async () => {
    const list = Array.from({ length: 300 }, (_, i) => sampleExchange(i));
    const shuffled = [...list].reverse();
    const a = await write(list, join(dir, 'a'));
    const b = await write(shuffled, join(dir, 'b'), { memoryLimitBytes: 4096 });
    const c = await write(list, join(dir, 'c'), { gzip: true, memoryLimitBytes: 10_000 });
    expect(a.manifest.hash).toBe(b.manifest.hash);
    expect(readFileSync(join(a.path, 'exchanges.jsonl'))).toEqual(readFileSync(join(b.path, 'exchanges.jsonl')));
    expect(c.manifest.files.exchanges.sha256).toBe(a.manifest.files.exchanges.sha256);
    const lines = readFileSync(join(a.path, 'exchanges.jsonl'), 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(300);
    const starts = lines.map((l) => (JSON.parse(l) as { timing: { startUs: number } }).timing.startUs);
    expect(starts).toEqual([...starts].sort((x, y) => x - y));
    expect((await readAll(c.path)).length).toBe(300);
    // no spill files left behind
    expect(readdirSync(b.path).sort()).toEqual(['exchanges.jsonl', 'snapshot.yaml', 'tokens.yaml', 'transforms.yaml']);
  });

  it('creates versions with 0600 files and 0700 directories, and names the parent', async () => {
    const store = join(dir, 'orders');
    const v1 = await write([sampleExchange(1)], store);
    const v2 = await write([sampleExchange(2)], store, { parent: v1.path });
    expect(v2.manifest.version).toBe(2);
    expect(v2.manifest.parent).toEqual({ hash: v1.manifest.hash, version: 1, name: 'orders' });
    expect(statSync(v2.path).mode & 0o777).toBe(0o700);
    expect(statSync(store).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(v2.path)) expect(statSync(join(v2.path, f)).mode & 0o777).toBe(0o600);
    // the store path means its latest version
    const latest = await openSnapshot(store);
    expect(latest.manifest.version).toBe(2);
    expect((await openSnapshot(`${store}@1`)).manifest.version).toBe(1);
  });

  it('refuses an edited exchanges file on load', async () => {
    const { path } = await write([sampleExchange(1), sampleExchange(2)], join(dir, 's'));
    const file = join(path, 'exchanges.jsonl');
    writeFileSync(file, readFileSync(file, 'utf8').replace('item 2', 'item X'));
    await expect(openSnapshot(path)).rejects.toThrow(
      'exchanges.jsonl: $ does not match the sha256 in snapshot.yaml (files.exchanges.sha256)',
    );
  });

  it('abort leaves nothing behind', async () => {
    const store = join(dir, 's');
    const w = await createSnapshotWriter({ dir: store, name: 's', source, redaction: false });
    await w.append(sampleExchange(1));
    await w.abort();
    expect(readdirSync(store)).toEqual([]);
  });
});
