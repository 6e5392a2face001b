/**
 * A local live capture as a viewer source: a CaptureSession (eBPF) whose exchanges are redacted
 * (unless asked not to), spooled to a private temp file and indexed as they arrive. Capture health
 * (ring buffer drops, batches user space could not take, bytes missing inside streams) comes from
 * the session's own counters, every time the browser asks.
 */
import type { ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { type Cgroup, createCgroup, spawnInCgroup } from '../../capture/cgroup.js';
import { countersOf } from '../../capture/record.js';
import { type CaptureOptions, CaptureSession, type CaptureStats } from '../../capture/session.js';
import type { Exchange } from '../../core/exchange.js';
import { logger } from '../../core/log.js';
import { createRedactor, createSnapshotWriter, fromStored, type Redactor, snapshotRoot, toStored } from '../../snapshots/index.js';
import type { Store } from '../store.js';
import { Spool } from './spool.js';
import type { SaveRequest, SaveResult, SourceHealth, SourceInfo, TrafficSource } from './types.js';

const log = logger('view');

export interface LiveOptions {
  capture: CaptureOptions;
  /** Start this command in a fresh cgroup and capture exactly it (and its children). */
  command?: string[];
  /** Keep secrets as captured (default: redacted, as snapshots are). */
  redact: boolean;
  /** Snapshot name for saved selections (default: the command's name, else `live`). */
  name?: string;
  /** What the capture was told to watch, recorded in saved snapshots' manifests. */
  filters: Record<string, unknown>;
}

export class LiveSource implements TrafficSource {
  private spool = new Spool();
  readonly file = this.spool.path;
  private session: CaptureSession | undefined;
  private redactor: Redactor;
  private store: Store | undefined;
  private cgroup: Cgroup | undefined;
  private child: ChildProcess | undefined;
  private final: CaptureStats | undefined;
  private commandExit: number | undefined;
  private pending = false;
  private stopping: Promise<void> | undefined;
  private warnings: string[] = [];

  constructor(private readonly opts: LiveOptions) {
    this.redactor = createRedactor(opts.redact ? undefined : false);
  }

  private label(): string {
    const c = this.opts.capture;
    if (this.opts.command?.length) return `live: ${this.opts.command.join(' ')}`;
    const parts = [
      ...(c.pids ?? []).map((p) => `pid ${p}`),
      ...(c.cgroupIds?.length ? [`${c.cgroupIds.length} cgroup(s)`] : []),
      ...(c.all ? ['all processes'] : []),
      ...(c.ports ?? []).map((p) => `port ${p}`),
    ];
    return `live: ${parts.join(', ')}`;
  }

  info(): SourceInfo {
    return {
      kind: 'live',
      label: this.label(),
      newestFirst: true,
      live: this.final === undefined,
      save: { available: true, how: 'a new snapshot (redacted, tokens discovered) as retap capture writes it' },
    };
  }

  async start(store: Store): Promise<void> {
    this.store = store;
    this.session = CaptureSession.start(this.opts.capture, (ex) => this.onExchange(ex));
    if (this.opts.command?.length) {
      this.cgroup = createCgroup(`view-${process.pid}-${Date.now().toString(36)}`);
      this.session.addCgroup(this.cgroup.id);
      this.child = spawnInCgroup(this.cgroup.dir, this.opts.command, ['ignore', 'inherit', 'inherit']);
      this.child.on('error', (e) => this.warnings.push(`cannot start ${this.opts.command![0]}: ${e.message}`));
      this.child.on('exit', (code, signal) => {
        this.commandExit = code ?? (signal ? 128 : 0);
        this.warnings.push(`the command exited (${signal ?? `code ${code}`}); capture stopped, the traffic stays`);
        void this.stopCapture();
      });
    }
  }

  private onExchange(ex: Exchange): void {
    const store = this.store!;
    try {
      const stored = toStored(this.redactor.redact(ex));
      const at = this.spool.append(JSON.stringify(stored));
      store.add(stored, at.offset, at.length);
    } catch (e) {
      store.addBroken(`exchange ${ex.id}`, (e as Error).message);
    }
    // Many exchanges arrive per batch: tell listeners once per tick.
    if (!this.pending) {
      this.pending = true;
      setImmediate(() => {
        this.pending = false;
        store.changed();
      });
    }
  }

  private stopCapture(): Promise<void> {
    const session = this.session;
    if (!session) return Promise.resolve();
    this.stopping ??= session.stop().then((s) => {
      this.final = s;
      this.store?.changed();
    });
    return this.stopping;
  }

  private stats(): CaptureStats | undefined {
    return this.final ?? this.session?.stats();
  }

  health(): SourceHealth {
    const s = this.stats();
    const warnings = [...this.warnings];
    const store = this.store;
    if (store && store.brokenCount > 0) warnings.push(`${store.brokenCount} exchange(s) could not be shown (first: ${store.broken[0]!.message})`);
    return {
      nodes: s
        ? [
            {
              node: hostname(),
              ringbufDrops: s.lost.ringbufRecords,
              userBatchDrops: s.lost.userBatches,
              gapBytes: s.lost.gapBytes,
              connections: s.connections,
              unknownConnections: s.unknownConnections,
              events: s.kernel.events,
              running: this.final === undefined,
            },
          ]
        : [],
      warnings,
      indexed: store?.count ?? 0,
      done: this.final !== undefined,
    };
  }

  async save(req: SaveRequest): Promise<SaveResult> {
    const name = req.name ?? this.opts.name ?? (this.opts.command?.[0] ? basename(this.opts.command[0]) : 'live');
    const w = await createSnapshotWriter({
      dir: req.out ?? join(snapshotRoot(), name),
      name,
      source: {
        host: hostname(),
        ...(this.opts.capture.service ? { service: this.opts.capture.service } : {}),
        ...(this.opts.command?.length ? { command: this.opts.command } : {}),
        filters: this.opts.filters,
      },
      // already redacted when spooled; the record of what was removed comes along
      redaction: false,
      inheritedRedaction: [this.redactor.summary()],
      discoverTokens: true,
    });
    let written = 0;
    try {
      for await (const v of req.lines()) {
        await w.append(fromStored(v));
        written++;
      }
      const s = this.stats();
      const m = await w.finish({
        counters: s ? countersOf(s) : {},
        notes: [`selected in retap view from a live capture: ${req.query || '(everything)'}`],
      });
      return { path: w.path, name: m.name, version: m.version, hash: m.hash, written };
    } catch (e) {
      await w.abort();
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.cgroup) {
      for (const pid of this.cgroup.pids()) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
      if (this.child && this.commandExit === undefined) {
        await Promise.race([new Promise((r) => this.child!.once('exit', r)), new Promise((r) => setTimeout(r, 3000).unref())]);
      }
    }
    await this.stopCapture().catch((e) => log.warn(`stopping capture: ${(e as Error).message}`));
    this.cgroup?.destroy();
    this.spool.close();
  }
}
