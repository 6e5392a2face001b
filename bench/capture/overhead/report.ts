/** Turns interleaved samples into table rows: median per-round ratios, spreads, target verdicts. */
import type { Row } from '../../lib/rows.js';
import { median, range, sum } from '../../lib/stats.js';
import { ARM_LABEL, type ArmName } from './arms.js';
import type { Sample } from './measure.js';

export type Rounds = Sample[][]; // rounds × arms, in the order they ran

const pick = (rounds: Rounds, arm: ArmName): Sample[] =>
  rounds.map((r) => r.find((s) => s.arm === arm)).filter((s): s is Sample => s !== undefined);

const verdict = (ok: boolean, text: string) => `${text} ${ok ? 'met' : 'MISS'}`;

/** Row comparing arm with peer on one figure; ratio = median of per-round value/peer. */
export function compare(
  title: string,
  rounds: Rounds,
  arm: ArmName,
  peer: ArmName,
  figure: string,
  get: (s: Sample) => number | undefined,
  target?: { max?: number; min?: number },
): Row {
  const a = pick(rounds, arm).map(get);
  const b = pick(rounds, peer).map(get);
  const per = a.map((x, i) => (x ?? Number.NaN) / (b[i] ?? Number.NaN)).filter((x) => Number.isFinite(x));
  const ratio = median(per);
  const row: Row = {
    figure: `${title}: ${figure} — ${ARM_LABEL[arm]}`,
    value: median(a.filter((x): x is number => x !== undefined)),
    peer: ARM_LABEL[peer],
    peerValue: median(b.filter((x): x is number => x !== undefined)),
    ratio,
    spread: range(per),
  };
  if (target?.min !== undefined) row.target = verdict(ratio >= target.min, `>= ${target.min.toFixed(2)}`);
  if (target?.max !== undefined) row.target = verdict(ratio <= target.max, `<= ${target.max.toFixed(2)}`);
  return row;
}

/** Added p99 (arm − none in the same round) of retap against the recording proxy's. */
export function addedP99(title: string, rounds: Rounds, maxRatio: number): Row {
  const added = (arm: ArmName) =>
    rounds.map((r) => {
      const none = r.find((s) => s.arm === 'none');
      const s = r.find((x) => x.arm === arm);
      return s && none ? s.p99Ms - none.p99Ms : Number.NaN;
    });
  const ours = added('retap');
  const theirs = added('mitmdump');
  const per = ours.map((x, i) => x / theirs[i]!).filter((x) => Number.isFinite(x));
  const ratio = median(per);
  return {
    figure: `${title}: added p99 ms (vs no capture, same round) — ${ARM_LABEL.retap}`,
    value: median(ours),
    peer: ARM_LABEL.mitmdump,
    peerValue: median(theirs),
    ratio,
    spread: range(per),
    target: verdict(ratio <= maxRatio, `<= ${maxRatio.toFixed(2)} (10x less)`),
  };
}

/** Exact loss over every retap run: nginx's complete answers minus complete exchanges captured. */
export function lost(title: string, all: Rounds[]): Row {
  const samples = all.flatMap((r) => pick(r, 'retap'));
  const lostN = sum(samples.map((s) => Math.max(0, s.lost ?? 0)));
  const extra = sum(samples.map((s) => Math.max(0, -(s.lost ?? 0))));
  return {
    figure: `${title}: lost exchanges, all ${samples.length} retap runs${extra ? ` (+${extra} captured beyond nginx's log)` : ''}`,
    value: lostN,
    peer: 'answered (nginx access log)',
    peerValue: sum(samples.map((s) => s.answered)),
    spread: range(samples.map((s) => s.lost ?? 0)),
    target: verdict(lostN === 0, '= 0'),
  };
}

/** Medians per arm, printed after each series so the table's rows can be checked. */
export function armTable(title: string, rounds: Rounds): string {
  const arms = [...new Set(rounds.flat().map((s) => s.arm))];
  const lines = [
    `\n${title}: medians over ${rounds.length} rounds`,
    '| arm | req/s | p50 ms | p99 ms | server µs/req | recorder µs/req | recorder peak RSS MiB | lost (sum) | recorder drops (sum) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const f = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  for (const arm of arms) {
    const s = pick(rounds, arm);
    const m = (g: (x: Sample) => number | undefined) =>
      median(s.map(g).filter((x): x is number => x !== undefined));
    const total = (g: (x: Sample) => number | undefined) =>
      s.some((x) => g(x) !== undefined) ? String(sum(s.map((x) => g(x) ?? 0))) : '–';
    lines.push(
      `| ${ARM_LABEL[arm]} | ${f(
        m((x) => x.rps),
        0,
      )} | ${f(
        m((x) => x.p50Ms),
        3,
      )} | ${f(
        m((x) => x.p99Ms),
        3,
      )} | ${f(
        m((x) => x.serverUs),
        1,
      )} | ${f(
        m((x) => x.recorderUs),
        1,
      )} | ${f(
        m((x) => x.peakRssMiB),
        0,
      )} | ${total((x) => x.lost)} | ${total((x) => x.drops)} |`,
    );
  }
  const withCompany = rounds.flat().filter((s) => s.foreign.length > 0).length;
  lines.push(`runs with another BPF tracer attached: ${withCompany} of ${rounds.flat().length}`);
  return lines.join('\n');
}

/** How many runs had someone else's BPF tracer attached (it taxes every arm's syscalls). */
export function company(all: Rounds[]): Row {
  const runs = all.flat(2);
  return {
    figure: "runs with another BPF tracer attached (someone else's capture on this machine)",
    value: runs.filter((s) => s.foreign.length > 0).length,
    peer: 'all runs',
    peerValue: runs.length,
  };
}
