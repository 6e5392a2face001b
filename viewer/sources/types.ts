/**
 * Where the viewer's traffic comes from. A source owns a file of stored exchange lines (a
 * snapshot's exchanges.jsonl, or a spool it appends to) and feeds the store one line at a time:
 * the store indexes offsets into that file and never keeps decoded exchanges.
 *
 * Sources today: a snapshot version, a replay's results, a local live capture. The cluster source
 * (`--k8s`, the node agents of the Kubernetes capture) plugs in here once those agents stream
 * exchanges: it appends the lines it receives to a spool like the live source does and reports
 * health per node (`SourceHealth.nodes`).
 */
import type { FilterSpec } from '../../snapshots/index.js';
import type { Store } from '../store.js';

export type SourceKind = 'snapshot' | 'results' | 'live' | 'k8s';

export interface SourceInfo {
  kind: SourceKind;
  /** What the header shows: `orders@v3`, `results of orders@v3`, `live: pid 1234`. */
  label: string;
  /** Snapshot/results path, when there is one. */
  path?: string;
  /** Rows newest first by default (live traffic). */
  newestFirst: boolean;
  /** Whether the loading is still going on (a snapshot being indexed, a capture running). */
  live: boolean;
  /** What "save selection" does for this source, or why it cannot. */
  save: { available: boolean; how: string };
}

/** Capture health: what was lost, per capture node (one node locally; one per agent in a cluster). */
export interface NodeHealth {
  node: string;
  /** Ring buffer records dropped by the kernel side. */
  ringbufDrops: number;
  /** Batches user space could not take. */
  userBatchDrops: number;
  /** Bytes missing inside streams (each affected exchange carries a `gap` note). */
  gapBytes: number;
  connections?: number;
  /** Connections whose protocol retap does not decode (counted, not shown). */
  unknownConnections?: number;
  events?: number;
  /** Live source: true while capturing. */
  running?: boolean;
}

export interface SourceHealth {
  nodes: NodeHealth[];
  /** Problems a reader must know (hash mismatch, lines that could not be read, a capture that stopped). */
  warnings: string[];
  /** Indexing progress: lines indexed so far and the total when known. */
  indexed: number;
  total?: number;
  done: boolean;
}

export interface SaveRequest {
  spec: FilterSpec;
  /** Query text as the user wrote it (recorded in the new version's notes). */
  query: string;
  /** Store or vN directory; default: the source's store (next version) or a new store for live. */
  out?: string;
  name?: string;
  /** The selected stored exchanges in row order (sources without a snapshot of their own write these). */
  lines(): AsyncIterable<unknown>;
}

export interface SaveResult {
  path: string;
  name: string;
  version: number;
  hash: string;
  written: number;
  parent?: string;
}

export interface TrafficSource {
  info(): SourceInfo;
  /** The file the store's offsets point into. */
  readonly file: string;
  /** Starts feeding the store; resolves when the initial content is indexed (live: once attached). */
  start(store: Store): Promise<void>;
  health(): SourceHealth;
  /** Writes the selection as a snapshot version. */
  save(req: SaveRequest): Promise<SaveResult>;
  /** More to show in the pair view for one exchange (replay results: the replayed answers). */
  detail?(row: number, stored: unknown): Promise<unknown>;
  close(): Promise<void>;
}
