/**
 * A replay's results as a viewer source: the recorded exchanges (inbound items and the calls made
 * while answering them) are the rows; the pair view adds, for an item, each run's replayed answer
 * and the verdict's differences (assertions/ `evaluate` with the default configuration), so the
 * recorded and replayed answers can be read side by side.
 */
import { existsSync } from 'node:fs';
import { evaluate } from '../../assertions/index.js';
import type { ItemVerdict } from '../../assertions/types.js';
import { ErrorCodes, RetapError } from '../../core/errors.js';
import type { Exchange } from '../../core/exchange.js';
import type { ReplayResults } from '../../core/results.js';
import { filterSnapshot, readResults, toStored } from '../../snapshots/index.js';
import { FLAG_REPLAY_ERROR, FLAG_REPLAY_FAIL } from '../columns.js';
import type { Store } from '../store.js';
import { Spool } from './spool.js';
import type { SaveRequest, SaveResult, SourceHealth, SourceInfo, TrafficSource } from './types.js';

interface Owner {
  item: string;
  /** True for the recorded inbound exchange of the item, false for a call made while answering it. */
  inbound: boolean;
}

export class ResultsSource implements TrafficSource {
  private spool = new Spool();
  readonly file = this.spool.path;
  private owners = new Map<string, Owner>();
  private verdicts = new Map<string, ItemVerdict>();
  private store: Store | undefined;
  private done = false;

  private constructor(
    private readonly path: string,
    private readonly results: ReplayResults,
  ) {}

  static async open(path: string): Promise<ResultsSource> {
    return new ResultsSource(path, await readResults(path));
  }

  info(): SourceInfo {
    const s = this.results.snapshot;
    const canSave = existsSync(s.path);
    return {
      kind: 'results',
      label: `replay of ${s.name}@v${s.version}`,
      path: this.path,
      newestFirst: false,
      live: !this.done,
      save: canSave
        ? { available: true, how: `a new version of ${s.name} (parent v${s.version}) from the replayed snapshot, as retap snapshot filter writes it` }
        : { available: false, how: `the replayed snapshot ${s.path} is not on this machine` },
    };
  }

  async start(store: Store): Promise<void> {
    this.store = store;
    const verdict = evaluate(this.results);
    for (const v of verdict.items) this.verdicts.set(v.id, v);
    const all: Array<{ ex: Exchange; owner: Owner }> = [];
    for (const it of this.results.recorded) {
      all.push({ ex: it.exchange, owner: { item: it.id, inbound: true } });
      for (const o of it.outbound) all.push({ ex: o, owner: { item: it.id, inbound: false } });
    }
    all.sort((a, b) => a.ex.timing.startUs - b.ex.timing.startUs || (a.ex.id < b.ex.id ? -1 : 1));
    for (const { ex, owner } of all) {
      const stored = toStored(ex);
      const at = this.spool.append(JSON.stringify(stored));
      this.owners.set(ex.id, owner);
      const v = owner.inbound ? this.verdicts.get(owner.item) : undefined;
      const flags = v?.status === 'fail' ? FLAG_REPLAY_FAIL : v?.status === 'error' ? FLAG_REPLAY_ERROR : 0;
      store.add(stored, at.offset, at.length, flags);
    }
    this.done = true;
    store.changed();
  }

  health(): SourceHealth {
    const runs = this.results.runs;
    const warnings: string[] = [];
    for (const r of runs) if (r.error) warnings.push(`run ${r.label}: ${r.error.code}: ${r.error.message}`);
    return {
      nodes: runs.map((r) => ({
        node: `replay ${r.label}`,
        ringbufDrops: r.capture.ringbufDrops,
        userBatchDrops: r.capture.userBatchDrops,
        gapBytes: r.capture.gapBytes,
      })),
      warnings,
      indexed: this.store?.count ?? 0,
      done: this.done,
    };
  }

  /** The recorded item an exchange belongs to, each run's answer to it, and the verdict. */
  async detail(_row: number, stored: unknown): Promise<unknown> {
    const id = (stored as { id: string }).id;
    const owner = this.owners.get(id);
    if (!owner) return undefined;
    const verdict = this.verdicts.get(owner.item);
    if (!owner.inbound) return { item: owner.item, role: 'outbound call of a replayed request', verdict: verdict && { status: verdict.status } };
    return {
      item: owner.item,
      role: 'replayed request',
      verdict,
      runs: this.results.runs.map((run) => {
        const it = run.items.find((i) => i.id === owner.item);
        return {
          label: run.label,
          role: run.role,
          replayed: it !== undefined,
          ...(it?.live ? { live: toStored(it.live) } : {}),
          ...(it
            ? {
                client: {
                  status: it.client.status,
                  error: it.client.error,
                  durationMs: it.client.durationMs,
                },
                outbound: it.outbound.length,
              }
            : {}),
        };
      }),
    };
  }

  async save(req: SaveRequest): Promise<SaveResult> {
    const s = this.results.snapshot;
    if (!existsSync(s.path)) {
      throw new RetapError(ErrorCodes.SNAPSHOT_NOT_FOUND, `cannot save: the replayed snapshot ${s.path} is not on this machine`, {
        hint: 'Open the snapshot itself with retap view SNAPSHOT and save from there.',
      });
    }
    const r = await filterSnapshot(s.path, req.spec, { dir: req.out, name: req.name }, [`selected in retap view (replay results ${this.path}): ${req.query}`]);
    return { path: r.path, name: r.manifest.name, version: r.manifest.version, hash: r.manifest.hash, written: r.written, parent: `${s.name}@v${s.version}` };
  }

  async close(): Promise<void> {
    this.spool.close();
  }
}
