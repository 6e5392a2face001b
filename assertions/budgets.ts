/**
 * Latency, error-rate and mock budgets: parsing (`p95 < 250ms`, `GET /orders/{id}: p99 < +10%`,
 * `errors < 1%`, `mocks >= 100%`) and judging. Absolute budgets compare the measured value.
 * Relative budgets compare with the baseline build (or the recording when no baseline ran) and
 * fail only when a seeded bootstrap is confident the ratio exceeds the budget, the difference is
 * above a small absolute slack, and both sides have enough samples; otherwise "not judged".
 */
import { ErrorCodes, RetapError } from '../core/errors.js';
import { routeMatches } from './routes.js';
import { bootstrapRatio, mannWhitneyGreater, type Statistic, statistic } from './stats.js';
import type { Budget, BudgetResult } from './types.js';

const HINT =
  'Write budgets like "p95 < 250ms", "GET /orders/{id}: p99 < +10%", "errors < 1%" or "mocks >= 100%".';

function bad(text: string, origin: string, problem: string): RetapError {
  return new RetapError(ErrorCodes.CONFIG_INVALID, `budget '${text}' (${origin}): ${problem}`, {
    hint: HINT,
    details: { budget: text, origin },
  });
}

const BUDGET =
  /^\s*(?:(.+?)\s*:\s*)?(p\d{1,2}(?:\.\d+)?|max|avg|mean|errors|mocks)\s*(<=|>=|<|>)\s*(\S(?:.*\S)?)\s*$/i;

export function parseBudget(text: string, origin = 'budget'): Budget {
  const m = BUDGET.exec(text);
  if (!m) {
    if (!/(<=|>=|<|>)/.test(text)) throw bad(text, origin, 'no comparison (<, <=, >, >=) found');
    throw bad(text, origin, 'unknown metric: use p50, p90, p95, p99 (any pNN), max, avg, errors or mocks');
  }
  const route = m[1]?.trim();
  const metricText = (m[2] as string).toLowerCase();
  const op = m[3] as Budget['op'];
  const valueText = m[4] as string;
  const base = { source: text.trim(), ...(route ? { route } : {}), op };
  if (metricText === 'errors' || metricText === 'mocks') {
    const v = /^(\d+(?:\.\d+)?)\s*%$/.exec(valueText);
    if (!v) throw bad(text, origin, `'${valueText}' is not a percentage (e.g. 1% or 100%)`);
    const pct = Number(v[1]);
    if (pct > 100) throw bad(text, origin, `${pct}% is more than 100%`);
    return { ...base, metric: metricText, value: pct / 100, relative: false };
  }
  let metric: Budget['metric'];
  let percentile: number | undefined;
  if (metricText === 'max') metric = 'max';
  else if (metricText === 'avg' || metricText === 'mean') metric = 'avg';
  else {
    metric = 'pct';
    percentile = Number(metricText.slice(1));
    if (!(percentile > 0 && percentile < 100))
      throw bad(text, origin, `percentile ${metricText} must be between p1 and p99.9`);
  }
  const rel = /^([+-])\s*(\d+(?:\.\d+)?)\s*%$/.exec(valueText);
  if (rel) {
    const delta = (rel[1] === '-' ? -1 : 1) * (Number(rel[2]) / 100);
    if (delta <= -1) throw bad(text, origin, 'a relative budget cannot be -100% or less');
    return {
      ...base,
      metric,
      ...(percentile !== undefined ? { percentile } : {}),
      value: delta,
      relative: true,
    };
  }
  const abs = /^(\d+(?:\.\d+)?)\s*(us|µs|ms|s)$/.exec(valueText);
  if (!abs) {
    if (/^\d+(?:\.\d+)?\s*%$/.test(valueText)) {
      throw bad(
        text,
        origin,
        `'${valueText}' is ambiguous for latency: write +${valueText} for a change relative to the reference`,
      );
    }
    throw bad(
      text,
      origin,
      `'${valueText}' is not a duration (250ms, 1.5s, 800us) or a relative change (+10%)`,
    );
  }
  const n = Number(abs[1]);
  const unit = abs[2] as string;
  const valueMs = unit === 's' ? n * 1000 : unit === 'ms' ? n : n / 1000;
  return {
    ...base,
    metric,
    ...(percentile !== undefined ? { percentile } : {}),
    value: valueMs,
    relative: false,
  };
}

export function budgetName(b: Budget): string {
  const metric = b.metric === 'pct' ? `p${b.percentile}` : b.metric;
  let value: string;
  if (b.metric === 'errors' || b.metric === 'mocks') value = `${fmtNum(b.value * 100)}%`;
  else if (b.relative) value = `${b.value >= 0 ? '+' : '-'}${fmtNum(Math.abs(b.value) * 100)}%`;
  else value = `${fmtNum(b.value)}ms`;
  return `${b.route ? `${b.route} ` : ''}${metric} ${b.op} ${value}`;
}

const fmtNum = (n: number): string => String(Math.round(n * 1000) / 1000);

/** What budgets are judged on. Each sample belongs to a route. */
export interface BudgetInputs {
  candidate: Array<{ route: string; latencyMs?: number; error: boolean }>;
  recorded: Array<{ route: string; latencyMs?: number }>;
  baseline: Array<{ route: string; latencyMs?: number }>;
  /**
   * Outbound calls per route (candidate runs pooled): per request the calls made or the calls
   * recorded, whichever is more, so calls not made count as not matched.
   */
  mocks: Array<{ route: string; calls: number; misses: number }>;
  /**
   * Mock totals over all runs, for global mock budgets (misses outside any request count here);
   * `recorded` is what the recording called for the same requests.
   */
  mockTotals: { calls: number; matched: number; recorded: number };
}

export interface BudgetOptions {
  minSamples: number;
  confidence: number;
  slackMs: number;
  resamples: number;
  seed: number;
}

const holds = (measured: number, op: Budget['op'], allowed: number): boolean =>
  op === '<'
    ? measured < allowed
    : op === '<='
      ? measured <= allowed
      : op === '>'
        ? measured > allowed
        : measured >= allowed;

const latencies = (xs: Array<{ route: string; latencyMs?: number }>, route: string | undefined): number[] =>
  xs
    .filter((x) => routeMatches(route, x.route) && x.latencyMs !== undefined)
    .map((x) => x.latencyMs as number);

const fmtMs = (v: number): string =>
  v >= 100 ? `${v.toFixed(0)}ms` : v >= 10 ? `${v.toFixed(1)}ms` : `${v.toFixed(2)}ms`;
const fmtPct = (v: number): string => `${(v * 100).toFixed(v < 0.1 ? 2 : 1)}%`;

export function judgeBudget(b: Budget, data: BudgetInputs, opts: BudgetOptions): BudgetResult {
  const name = budgetName(b);
  const notJudged = (samples: number, message: string, extra: Partial<BudgetResult> = {}): BudgetResult => ({
    budget: b,
    name,
    status: 'not-judged',
    allowed: b.value,
    unit: b.metric === 'errors' || b.metric === 'mocks' ? 'fraction' : b.relative ? 'ratio' : 'ms',
    samples,
    message,
    ...extra,
  });

  if (b.metric === 'errors') {
    const items = data.candidate.filter((x) => routeMatches(b.route, x.route));
    if (items.length === 0) return notJudged(0, 'no requests on this route');
    const rate = items.filter((x) => x.error).length / items.length;
    const ok = holds(rate, b.op, b.value);
    return {
      budget: b,
      name,
      status: ok ? 'pass' : 'fail',
      measured: rate,
      allowed: b.value,
      unit: 'fraction',
      samples: items.length,
      message: `error rate ${fmtPct(rate)} over ${items.length} requests (allowed ${b.op} ${fmtPct(b.value)})`,
    };
  }
  if (b.metric === 'mocks') {
    let calls: number;
    let matched: number;
    let made: number | undefined;
    if (b.route === undefined) {
      made = data.mockTotals.calls;
      calls = Math.max(data.mockTotals.calls, data.mockTotals.recorded);
      matched = Math.min(data.mockTotals.matched, calls);
    } else {
      const rows = data.mocks.filter((m) => routeMatches(b.route, m.route));
      calls = rows.reduce((s, m) => s + m.calls, 0);
      matched = calls - rows.reduce((s, m) => s + m.misses, 0);
    }
    const rate = calls === 0 ? 1 : Math.max(0, matched) / calls;
    const ok = holds(rate, b.op, b.value);
    const notMade =
      made !== undefined && made < calls ? `; ${calls - made} recorded calls were not made` : '';
    return {
      budget: b,
      name,
      status: ok ? 'pass' : 'fail',
      measured: rate,
      allowed: b.value,
      unit: 'fraction',
      samples: calls,
      message:
        calls === 0
          ? 'no outbound calls recorded or made'
          : `${Math.max(0, matched)} of ${calls} outbound calls matched a recorded answer${notMade} (${fmtPct(rate)}, allowed ${b.op} ${fmtPct(b.value)})`,
    };
  }

  const stat: Statistic =
    b.metric === 'pct' ? { kind: 'pct', p: (b.percentile as number) / 100 } : { kind: b.metric };
  const cand = latencies(data.candidate, b.route);
  if (cand.length === 0) return notJudged(0, 'no server-side timings for this route');
  const measured = statistic(cand, stat);

  if (!b.relative) {
    const ok = holds(measured, b.op, b.value);
    return {
      budget: b,
      name,
      status: ok ? 'pass' : 'fail',
      measured,
      allowed: b.value,
      unit: 'ms',
      samples: cand.length,
      message: `${fmtMs(measured)} over ${cand.length} requests (allowed ${b.op} ${fmtMs(b.value)})`,
    };
  }

  const baseline = latencies(data.baseline, b.route);
  const reference = baseline.length > 0 ? 'baseline' : 'recorded';
  const ref = baseline.length > 0 ? baseline : latencies(data.recorded, b.route);
  const limit = 1 + b.value;
  const common = { reference, referenceSamples: ref.length } as const;
  if (cand.length < opts.minSamples || ref.length < opts.minSamples) {
    return notJudged(
      cand.length,
      `not judged: n too small (${cand.length} candidate, ${ref.length} ${reference}; needs ${opts.minSamples} each)`,
      {
        ...common,
        allowed: limit,
        ...(ref.length ? { referenceValue: statistic(ref, stat) } : {}),
      },
    );
  }
  const refValue = statistic(ref, stat);
  const est = bootstrapRatio(cand, ref, stat, limit, {
    resamples: opts.resamples,
    seed: opts.seed,
    level: opts.confidence,
  });
  const upper = b.op === '<' || b.op === '<=';
  const pViolation = upper ? est.exceed : 1 - est.exceed;
  const delta = Math.abs(measured - refValue);
  const fail = pViolation >= opts.confidence && delta > opts.slackMs;
  const pValue = mannWhitneyGreater(cand, ref);
  const change = `${est.ratio >= 1 ? '+' : ''}${((est.ratio - 1) * 100).toFixed(1)}%`;
  const why = fail
    ? `exceeds the budget with ${(pViolation * 100).toFixed(1)}% confidence`
    : pViolation >= opts.confidence
      ? `within the ${opts.slackMs}ms slack`
      : `not shown to exceed it (${(pViolation * 100).toFixed(1)}% confidence, needs ${(opts.confidence * 100).toFixed(0)}%)`;
  return {
    budget: b,
    name,
    status: fail ? 'fail' : 'pass',
    measured: est.ratio,
    allowed: limit,
    unit: 'ratio',
    samples: cand.length,
    ...common,
    referenceValue: refValue,
    confidence: pViolation,
    pValue,
    message: `${fmtMs(measured)} vs ${reference} ${fmtMs(refValue)} (${change}, ${(opts.confidence * 100).toFixed(0)}% CI ×${est.low.toFixed(2)}–×${est.high.toFixed(2)}); ${why}`,
  };
}
