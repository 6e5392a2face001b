/**
 * Micro-benchmarks of hot paths with tinybench, in the shape of every other benchmark: arms
 * interleaved round by round (ours, then each peer, the order flipped every other round), the
 * median of the per-round ratios and their spread, a named peer in the same row.
 *
 * A case's arms each make one pass over a realistic unit of input (a batch of records, a stream of
 * heads, a connection's header blocks, a snapshot's exchanges); a timed call repeats the pass to
 * last ~2 ms, so the clock's reads stay below 1% of it. Reported per item: ops/s and ns/op where
 * an op is one item (a record, a head, a header block, an exchange), and MB/s over the input's
 * bytes. Time is the process's CPU time (cpuNow): figures are CPU per op, like the rest of the
 * table, and stay put while other processes load the machine.
 */
import { Bench } from 'tinybench';
import type { BenchOptions, Row } from './rows.js';
import { median, range } from './stats.js';

export interface MicroOptions extends BenchOptions {
  /** Rounds of interleaved arms (default: 3 quick, 7 full). */
  rounds?: number;
  /** tinybench `time` per arm and round, ms (default: 100 quick, 400 full). */
  timeMs?: number;
}

export interface Arm {
  /** Names the peer in the row: what it is and what it does with the same input. */
  name: string;
  /** One call handles the whole input once. Its result is kept (so the work cannot be dropped). */
  fn: () => unknown;
}

export interface MicroCase {
  /** Short name of the hot path, used in the figure: `batch decoding`. */
  path: string;
  /** What the input is, printed once. */
  input: string;
  /** What one op is (singular): `record`, `head`, `header block`, `exchange`. */
  op: string;
  /** Ops (items) one call handles. */
  opsPerCall: number;
  /** Input bytes one call handles (for MB/s; the peers get the same bytes). */
  bytesPerCall: number;
  ours: Arm;
  /** The first is the row's peer; each further one adds a row with the same figure. */
  peers: Arm[];
  /** With no peer: why there is none (shown in the row's peer column). */
  noPeer?: string;
  /** Throws when ours did not do the whole job on this input (run after timing, see decode.bench). */
  check?: () => void;
}

export interface ArmResult {
  name: string;
  /** Per round. */
  opsPerSec: number[];
  nsPerOp: number[];
  mbps: number[];
}

export interface CaseResult {
  c: MicroCase;
  ours: ArmResult;
  peers: ArmResult[];
  /** Per peer, per round: ours MB/s over the peer's (higher is better for us). */
  ratios: number[][];
}

/** The last result of every arm's call: reachable, so no call is dead code. */
export let lastResult: unknown;
function keep(v: unknown): void {
  lastResult = v;
}

function settings(opts: MicroOptions): { rounds: number; timeMs: number } {
  return { rounds: opts.rounds ?? (opts.quick ? 3 : 7), timeMs: opts.timeMs ?? (opts.quick ? 100 : 400) };
}

/**
 * The clock: CPU time of this process in ms (user + system, all its threads). On a shared 2-core
 * machine wall time charges the code for other processes' time slices; CPU time does not, and it
 * keeps what the code itself causes (garbage collection, on the main thread or its helpers).
 * µs resolution and ~2 µs a read, so a timed call is made at least CALL_MS long (see repsFor).
 */
export function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const CALL_MS = 2;

/** How many times one timed call runs `fn` so that it lasts about CALL_MS (clock cost below 1%). */
function repsFor(fn: () => unknown): number {
  keep(fn());
  const t0 = performance.now();
  let n = 0;
  do {
    keep(fn());
    n++;
  } while (performance.now() - t0 < CALL_MS / 2);
  return Math.max(1, Math.ceil((CALL_MS * n) / (performance.now() - t0)));
}

/** Runs one case: `rounds` tinybench runs of all arms, interleaved. */
export async function measure(c: MicroCase, opts: MicroOptions): Promise<CaseResult> {
  const { rounds, timeMs } = settings(opts);
  const arms = [c.ours, ...c.peers];
  const reps = arms.map((a) => repsFor(a.fn));
  const results: ArmResult[] = arms.map((a) => ({ name: a.name, opsPerSec: [], nsPerOp: [], mbps: [] }));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? arms.map((_, i) => i) : arms.map((_, i) => arms.length - 1 - i);
    const bench = new Bench({
      now: cpuNow,
      time: timeMs,
      iterations: 4,
      warmup: true,
      warmupTime: r === 0 ? Math.max(timeMs / 2, 20) : Math.max(timeMs / 8, 5),
      warmupIterations: 2,
      throws: true,
    });
    for (const i of order) {
      const fn = arms[i]!.fn;
      const n = reps[i]!;
      bench.add(`${i}`, () => {
        for (let k = 0; k < n; k++) keep(fn());
      });
    }
    await bench.run();
    for (const i of order) {
      const task = bench.getTask(`${i}`)!;
      const res = task.result;
      if (!res || res.error) throw res?.error ?? new Error(`${arms[i]!.name}: no result`);
      // CPU ms per pass over the input: the mean over the round's calls (GC pauses included)
      const msPerPass = res.latency.mean / reps[i]!;
      const perSec = 1000 / msPerPass;
      results[i]!.opsPerSec.push(perSec * c.opsPerCall);
      results[i]!.nsPerOp.push((msPerPass * 1e6) / c.opsPerCall);
      results[i]!.mbps.push((perSec * c.bytesPerCall) / 1e6);
    }
  }
  c.check?.();
  const [ours, ...peers] = results as [ArmResult, ...ArmResult[]];
  return { c, ours, peers, ratios: peers.map((p) => ours.mbps.map((x, k) => x / p.mbps[k]!)) };
}

const f = (x: number): string =>
  x >= 100 ? Math.round(x).toLocaleString('en-US') : x >= 10 ? x.toFixed(1) : x.toFixed(2);

/** The case's own table on stdout (every arm, medians of the rounds). */
export function print(r: CaseResult): void {
  const c = r.c;
  console.log(
    `\n${c.path}: ${c.input}\n  one call = ${c.opsPerCall.toLocaleString('en-US')} ${c.op}s, ${(c.bytesPerCall / 1e6).toFixed(3)} MB; ${r.ours.mbps.length} interleaved rounds`,
  );
  console.log(`| arm | ${c.op}s/s | ns/${c.op} | MB/s | ours/arm (MB/s ratio, median) |`);
  console.log('|---|---:|---:|---:|---:|');
  const line = (a: ArmResult, ratio: string) =>
    console.log(
      `| ${a.name} | ${f(median(a.opsPerSec))} | ${f(median(a.nsPerOp))} | ${f(median(a.mbps))} | ${ratio} |`,
    );
  line(r.ours, '');
  if (c.noPeer) console.log(`peer: ${c.noPeer}`);
  r.peers.forEach((p, i) => {
    line(p, median(r.ratios[i]!).toFixed(3));
  });
}

/** The rows `npm run bench` puts in its table: MB/s against each peer, then ns/op and ops/s. */
export function rows(r: CaseResult): Row[] {
  const c = r.c;
  const out: Row[] = [];
  const mb = `${c.path}: MB/s`;
  if (r.peers.length === 0)
    out.push({
      figure: mb,
      value: median(r.ours.mbps),
      ...(c.noPeer ? { peer: c.noPeer } : {}),
      spread: range(r.ours.mbps),
    });
  r.peers.forEach((p, i) => {
    out.push({
      figure: mb,
      value: median(r.ours.mbps),
      peer: p.name,
      peerValue: median(p.mbps),
      ratio: median(r.ratios[i]!),
      spread: range(r.ratios[i]!),
    });
  });
  out.push({
    figure: `${c.path}: ns per ${c.op}`,
    value: median(r.ours.nsPerOp),
    spread: range(r.ours.nsPerOp),
    ...(r.peers[0] ? { peer: r.peers[0].name, peerValue: median(r.peers[0].nsPerOp) } : {}),
  });
  out.push({
    figure: `${c.path}: ${c.op}s/s`,
    value: median(r.ours.opsPerSec),
    spread: range(r.ours.opsPerSec),
  });
  return out;
}

/** Measures, prints and returns the rows of several cases, one after the other. */
export async function runCases(cases: MicroCase[], opts: MicroOptions): Promise<Row[]> {
  const out: Row[] = [];
  for (const c of cases) {
    const r = await measure(c, opts);
    print(r);
    out.push(...rows(r));
  }
  return out;
}

/** The same deterministic generator the assertions resample with, so every run measures the same input. */
export { prng } from '../../assertions/stats.js';

/** `n` characters from `alphabet`, drawn from `rnd`. */
export function randomText(
  rnd: () => number,
  n: number,
  alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789',
): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
  return s;
}
