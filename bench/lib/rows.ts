/**
 * The contract between a benchmark and `npm run bench` (bench/run.js): a module named
 * `*.bench.ts` (compiled with tsconfig.bench.json) or `*.bench.js`/`*.bench.mjs` exports
 * `run(opts)` that resolves to rows. Each row becomes one line of the final table.
 */
export interface BenchOptions {
  /** Short run: the whole `npm run bench --quick` must stay under 5 minutes. */
  quick: boolean;
}

export interface Row {
  /** What is measured, with its unit: `http max load: req/s`. */
  figure: string;
  /** Our figure (median over rounds). */
  value: number | string;
  /** The named peer it is compared with (`no capture`, `tcpdump → pcap`…). */
  peer?: string;
  peerValue?: number | string;
  /** Median of the per-round ratios value/peer (not the ratio of medians). */
  ratio?: number;
  /** Min–max over rounds, of the ratio when there is one, else of the value. */
  spread?: [number, number];
  /** The target and whether it is met, e.g. `>= 0.95 MISS`. */
  target?: string;
}

export type BenchRun = (opts: BenchOptions) => Promise<Row[]>;
