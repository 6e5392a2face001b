/**
 * A snapshot version as a viewer source: its exchanges.jsonl is indexed in place (a gzip file is
 * first unpacked to a private temp file), its hashes are checked on the way, and a selection is
 * saved with `filterSnapshot`, the code behind `retap snapshot filter`.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { filterSnapshot, type Manifest, openSnapshot } from '../../snapshots/index.js';
import type { Store } from '../store.js';
import { indexLines } from './lines.js';
import type { SaveRequest, SaveResult, SourceHealth, SourceInfo, TrafficSource } from './types.js';

export class SnapshotSource implements TrafficSource {
  file = '';
  private manifest!: Manifest;
  private path = '';
  private temp: string | undefined;
  private store: Store | undefined;
  private done = false;
  private closed = false;
  private warnings: string[] = [];

  private constructor(private readonly spec: string) {}

  /** Opens the manifest (checked against its schema and hash); the exchanges are read by start(). */
  static async open(spec: string): Promise<SnapshotSource> {
    const s = new SnapshotSource(spec);
    const snap = await openSnapshot(spec, { verify: false });
    s.manifest = snap.manifest;
    s.path = snap.path;
    const entry = snap.manifest.files.exchanges;
    s.file = join(snap.path, entry.path);
    if (entry.gzip) {
      s.temp = await mkdtemp(join(tmpdir(), 'retap-view-'));
      const plain = join(s.temp, 'exchanges.jsonl');
      await pipeline(createReadStream(s.file), createGunzip(), createWriteStream(plain, { mode: 0o600 }));
      s.file = plain;
    }
    return s;
  }

  info(): SourceInfo {
    const m = this.manifest;
    return {
      kind: 'snapshot',
      label: `${m.name}@v${m.version}`,
      path: this.path,
      newestFirst: false,
      live: !this.done,
      save: { available: true, how: `a new version of ${m.name} (parent v${m.version}), as retap snapshot filter writes it` },
    };
  }

  async start(store: Store): Promise<void> {
    this.store = store;
    const entry = this.manifest.files.exchanges;
    const r = await indexLines(this.file, store, { hash: true, stopped: () => this.closed });
    if (this.closed) return;
    if (r.sha256 !== entry.sha256 || r.bytes !== entry.bytes) {
      this.warnings.push(`${entry.path} does not match the sha256 in snapshot.yaml: the version was edited in place; what is shown is the file as it is`);
    }
    if (entry.lines !== undefined && r.lines !== entry.lines) {
      this.warnings.push(`${entry.path} has ${r.lines} lines, snapshot.yaml says ${entry.lines}`);
    }
    this.done = true;
    store.changed();
  }

  health(): SourceHealth {
    const c = this.manifest.counters;
    const store = this.store;
    const warnings = [...this.warnings];
    if (store && store.brokenCount > 0) {
      const first = store.broken[0]!;
      warnings.push(`${store.brokenCount} line(s) could not be read and are left out (first: ${first.where}: ${first.message})`);
    }
    return {
      nodes: [
        {
          node: this.manifest.source.host,
          ringbufDrops: c.ringbufDrops ?? 0,
          userBatchDrops: c.userBatchDrops ?? 0,
          gapBytes: c.gapBytes ?? 0,
          ...(c.connections !== undefined ? { connections: c.connections } : {}),
          ...(c.unknownConnections !== undefined ? { unknownConnections: c.unknownConnections } : {}),
          ...(c.kernelEvents !== undefined ? { events: c.kernelEvents } : {}),
        },
      ],
      warnings,
      indexed: store?.count ?? 0,
      total: this.manifest.files.exchanges.lines ?? this.manifest.counts.exchanges,
      done: this.done,
    };
  }

  async save(req: SaveRequest): Promise<SaveResult> {
    const r = await filterSnapshot(this.path, req.spec, { dir: req.out, name: req.name }, [`selected in retap view: ${req.query}`]);
    return {
      path: r.path,
      name: r.manifest.name,
      version: r.manifest.version,
      hash: r.manifest.hash,
      written: r.written,
      parent: `${this.manifest.name}@v${this.manifest.version}`,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.temp) await rm(this.temp, { recursive: true, force: true });
  }
}
