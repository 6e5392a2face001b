/**
 * Assertions: one call turns replay results into a verdict.
 *
 *   const verdict = evaluate(results, config);   // config: defaultConfig() + retap.yaml + flags
 *   process.exitCode = verdict.exitCode;         // 0 pass, 1 assertions, 2 budgets, 3 infrastructure
 *
 * First the replay's validity: did the reference build (the baseline when one ran, else the
 * candidate) reproduce the recording? A route it did not reproduce makes the verdict `error`
 * (assertions/validity.ts). Then the first candidate run is compared with the recording. Noise is
 * learned from the reference only: baseline vs baseline#2 and recording vs baseline when a baseline
 * ran, else candidate vs candidate#2. A change into 5xx, a transport error or a timeout is never
 * noise; a candidate that differs from itself where the reference does not is `flaky`, a finding.
 * Latency budgets pool every candidate run's server-side timings.
 */
import { ErrorCodes, ExitCodes } from '../core/errors.js';
import type { RecordedItem, ReplayResults, ReplayRun, RunItem } from '../core/results.js';
import { type Answer, compareAnswers, recordedAnswer, runAnswer } from './answer.js';
import { type BudgetInputs, judgeBudget, parseBudget } from './budgets.js';
import { defaultConfig, type EvaluateConfig } from './config.js';
import { grpcSchemaFor } from './grpc-schema.js';
import { VOLATILE_HEADERS } from './headers.js';
import {
  exactKey,
  noiseDecisions,
  noiseKey,
  rateTable,
  ruleMatches,
  type StaticNoise,
  staticMark,
  tokenRules,
} from './noise.js';
import { createSchemaSet, type SchemaSet } from './schema.js';
import { histogram, summarize } from './stats.js';
import type { Difference, ItemVerdict, RouteSummary, Verdict, VerdictStatus } from './types.js';
import { checkValidity } from './validity.js';

export { budgetName, parseBudget } from './budgets.js';
export type { EvaluateConfig, MatchRule, TokenHint, ValidityConfig } from './config.js';
export { configFromYaml, defaultConfig, withBudgets } from './config.js';
export type * from './types.js';
export { describeRoute } from './validity.js';

export const EXIT_CODES: Record<VerdictStatus, number> = {
  pass: ExitCodes.OK,
  'fail-assertions': ExitCodes.ASSERTIONS_FAILED,
  'fail-budgets': ExitCodes.BUDGETS_FAILED,
  error: ExitCodes.INFRASTRUCTURE,
};

const byId = (run: ReplayRun | undefined): Map<string, RunItem> =>
  new Map((run?.items ?? []).map((i) => [i.id, i]));

const isError = (a: Answer): boolean => a.error !== undefined || a.status === undefined || a.status >= 500;

/** A change into 5xx, or no answer at all (transport error, timeout): never noise. */
export function errorChange(d: Difference): boolean {
  if (d.kind === 'no-response') return true;
  if (d.kind !== 'status-class' && d.kind !== 'changed-status') return false;
  const into = typeof d.candidate === 'number' && d.candidate >= 500;
  const was = typeof d.recorded === 'number' && d.recorded >= 500;
  return into && !was;
}

/** What the recording vs the baseline teaches about noise: values, not statuses or calls. */
const learnable = (d: Difference): boolean =>
  d.target === 'body' || d.target === 'header' || d.target === 'schema';

interface Work {
  rec: RecordedItem;
  verdict: ItemVerdict;
  /** Per-item exact keys where baseline and candidate differ (undefined: no baseline answer). */
  vsBaseline?: Set<string>;
  /** Differences of later candidate runs from the first one (`candidate#2`…), static noise removed. */
  candSelf: Array<{ label: string; diffs: Difference[] }>;
  /** Later candidate runs that answered with an error the recording did not have. */
  laterErrors: Array<{ label: string; diff: Difference }>;
}

export function evaluate(results: ReplayResults, partial: Partial<EvaluateConfig> = {}): Verdict {
  const cfg: EvaluateConfig = { ...defaultConfig(), ...partial };
  const candidates = results.runs.filter((r) => r.role === 'candidate');
  const baselines = results.runs.filter((r) => r.role === 'baseline');
  const primary = candidates[0];
  const candItems = candidates.map(byId);
  const baseItems = baselines.map(byId);
  const routeOf = new Map<string, string>();
  for (const r of results.recorded) {
    routeOf.set(r.id, r.route);
    routeOf.set(r.exchange.id, r.route);
  }

  // gRPC names: the .proto files given, else the build's server reflection, else field numbers
  const grpcNames = grpcSchemaFor(results, cfg.protos);
  const protos = grpcNames.schema;

  let schemas: SchemaSet | undefined;
  if (cfg.schema) {
    schemas = createSchemaSet();
    for (const r of results.recorded) {
      const a = recordedAnswer(r);
      if (a.status !== undefined && a.body.kind === 'json') schemas.add(r.route, a.status, a.body.value);
    }
  }

  const compare = new Set(cfg.headers.compare.map((h) => h.toLowerCase()));
  const statics: StaticNoise = {
    ignore: cfg.ignore,
    tokens: tokenRules(cfg.tokens, (id) => routeOf.get(id)),
    volatileHeaders: new Set(
      [...VOLATILE_HEADERS, ...cfg.headers.ignore.map((h) => h.toLowerCase())].filter((h) => !compare.has(h)),
    ),
    volatileFormats: cfg.noise.volatileFormats,
  };

  const validity = checkValidity({
    recorded: results.recorded,
    baselines,
    candidates,
    tokens: cfg.tokens,
    config: cfg.validity,
  });

  const brokenRoutes = new Set(validity.routes.filter((r) => !r.reproduced).map((r) => r.route));
  const selfNoise = rateTable(); // the reference build vs itself: what noise is
  const candSelf = rateTable(); // the candidate vs itself, when it is not the reference: flakiness
  const candRates = rateTable(); // candidate vs reference (baseline if any, else recording)
  const work: Work[] = [];
  const candidateIsReference = baselines.length === 0;

  for (const rec of results.recorded) {
    const route = rec.route;
    const ex = rec.exchange;
    const recorded = recordedAnswer(rec);
    const base: ItemVerdict = {
      id: rec.id,
      route,
      session: rec.session,
      method: ex.request.method,
      target: ex.request.target,
      status: 'pass',
      ...(recorded.status !== undefined ? { recordedStatus: recorded.status } : {}),
      ...(recorded.latencyMs !== undefined ? { recordedLatencyMs: recorded.latencyMs } : {}),
      diffs: [],
    };
    const runItem = candItems[0]?.get(rec.id);
    if (!primary || !runItem) {
      base.status = 'error';
      base.error = primary?.error ? `not replayed: ${primary.error.message}` : 'not replayed';
      work.push({ rec, verdict: base, candSelf: [], laterErrors: [] });
      continue;
    }
    const cand = runAnswer(runItem);
    if (cand.status !== undefined) base.candidateStatus = cand.status;
    if (cand.latencyMs !== undefined && !cand.clientView) base.latencyMs = cand.latencyMs;
    if (cand.clientView)
      base.notes = ['answer seen by the replay client (capture missed it): no server-side timing'];
    if (recorded.body.truncated || cand.body.truncated)
      (base.notes ??= []).push('body truncated in capture: not compared');

    const diffs = compareAnswers(recorded, cand, {
      route,
      protos,
      ...(schemas ? { schemas } : {}),
    });
    for (const d of diffs) {
      const mark = staticMark(d, route, statics);
      if (mark) d.noise = mark;
    }
    base.diffs = diffs;

    // Noise is what the reference build does differently from itself: baseline vs baseline#2 and
    // recording vs baseline when a baseline ran, else the candidate's own runs. Never the candidate
    // alone when a baseline ran: a candidate that differs from itself there is flaky.
    const refItems = candidateIsReference ? candItems : baseItems;
    const selfDiffs: Difference[] = [];
    let compared = false;
    for (let i = 1; i < refItems.length; i++) {
      const ia = refItems[0]?.get(rec.id);
      const ib = refItems[i]?.get(rec.id);
      if (!ia || !ib) continue;
      compared = true;
      selfDiffs.push(...compareAnswers(runAnswer(ia), runAnswer(ib), { route, protos }));
    }
    const baseItem = baseItems[0]?.get(rec.id);
    let recVsBase: Difference[] | undefined;
    if (baseItem) {
      recVsBase = compareAnswers(recorded, runAnswer(baseItem), { route, protos });
      selfDiffs.push(...recVsBase.filter(learnable));
      compared = true;
    }
    if (compared) selfNoise.add(route, selfDiffs);

    const w: Work = { rec, verdict: base, candSelf: [], laterErrors: [] };
    for (let i = 1; i < candItems.length; i++) {
      const later = candItems[i]?.get(rec.id);
      if (!later) continue;
      const label = candidates[i]?.label ?? `candidate#${i + 1}`;
      const laterAnswer = runAnswer(later);
      const err = compareAnswers(recorded, laterAnswer, { route, outbound: false, protos }).find(errorChange);
      if (err) w.laterErrors.push({ label, diff: err });
      if (!candidateIsReference) {
        const self = compareAnswers(cand, laterAnswer, { route, protos }).filter(
          (d) => !staticMark(d, route, statics),
        );
        candSelf.add(route, self);
        w.candSelf.push({ label, diffs: self });
      }
    }
    if (baseItem) {
      const baseline = runAnswer(baseItem);
      const vsBase = compareAnswers(baseline, cand, { route, protos });
      w.vsBaseline = new Set(vsBase.map(exactKey));
      candRates.add(route, vsBase);
      const byKey = new Map((recVsBase ?? []).map((d) => [exactKey(d), d]));
      for (const d of diffs) {
        const rb = byKey.get(exactKey(d));
        d.baseline = rb ? rb.candidate : d.recorded;
      }
    } else if (baselines.length === 0) {
      candRates.add(
        route,
        diffs.filter((d) => !d.noise),
      );
    }
    work.push(w);
  }

  // dynamic noise, then flaky findings, then keep rules, then item status
  for (const w of work) {
    const route = w.rec.route;
    for (const d of w.verdict.diffs) {
      if (d.noise) continue;
      if (errorChange(d)) continue; // an error is never noise, nor excused by a baseline sharing it
      // a baseline that did not reproduce this route excuses nothing on it
      if (w.vsBaseline && !w.vsBaseline.has(exactKey(d)) && !brokenRoutes.has(route)) {
        d.noise = {
          source: 'baseline',
          reason: 'the baseline build answers the same (the recording differs from both)',
        };
        continue;
      }
      const key = noiseKey(route, d);
      const noiseRate = selfNoise.rate(route, key);
      const diffRate = candRates.rate(route, key);
      if (noiseRate > 0 && diffRate <= noiseRate + cfg.noise.margin) {
        d.noise = {
          source: 'noise-run',
          reason: `the same build differs from itself here in ${pct(noiseRate)} of ${route} (candidate differs in ${pct(diffRate)})`,
        };
      }
    }
    w.verdict.diffs.push(...flakyFindings(w, route, candSelf, selfNoise, cfg.noise.margin));
    for (const d of w.verdict.diffs) {
      if (d.noise && d.noise.source !== 'ignore-rule' && cfg.keep.some((k) => ruleMatches(k, d, route)))
        delete d.noise;
    }
    if (w.verdict.status !== 'error') {
      const failing = w.verdict.diffs.some(
        (d) => !d.noise && (cfg.failOn === 'warning' || d.rating === 'breaking'),
      );
      w.verdict.status = failing ? 'fail' : 'pass';
    }
  }
  const items = work.map((w) => w.verdict);
  const noise = noiseDecisions(
    items.map((i) => ({ route: i.route, diffs: i.diffs })),
    (route, key) => ({ diffRate: candRates.rate(route, key), noiseRate: selfNoise.rate(route, key) }),
  );

  // budgets
  const inputs: BudgetInputs = {
    candidate: [],
    recorded: [],
    baseline: [],
    mocks: [],
    mockTotals: { calls: 0, matched: 0, recorded: 0 },
  };
  const recordedById = new Map(results.recorded.map((r) => [r.id, r]));
  const mockRows = new Map<string, { route: string; calls: number; misses: number }>();
  for (const r of results.recorded) {
    const a = recordedAnswer(r);
    inputs.recorded.push({
      route: r.route,
      ...(a.latencyMs !== undefined ? { latencyMs: a.latencyMs } : {}),
    });
  }
  for (const run of candidates) {
    for (const it of run.items) {
      const route = routeOf.get(it.id) ?? 'unknown';
      const a = runAnswer(it);
      inputs.candidate.push({
        route,
        error: isError(a),
        ...(a.latencyMs !== undefined && !a.clientView ? { latencyMs: a.latencyMs } : {}),
      });
      // counted against what the recording called too: a call not made is not a call matched
      const expected = recordedById.get(it.id)?.outbound.length ?? 0;
      inputs.mockTotals.recorded += expected;
      const row = mockRows.get(route) ?? { route, calls: 0, misses: 0 };
      row.calls += Math.max(it.outbound.length, expected);
      row.misses += Math.max(0, expected - it.outbound.length);
      mockRows.set(route, row);
    }
    for (const m of run.mocks.misses) {
      const route = m.during ? routeOf.get(m.during) : undefined;
      if (!route) continue;
      const row = mockRows.get(route) ?? { route, calls: 0, misses: 0 };
      row.misses++;
      row.calls = Math.max(row.calls, row.misses);
      mockRows.set(route, row);
    }
    inputs.mockTotals.calls += run.mocks.calls;
    inputs.mockTotals.matched += run.mocks.matched;
  }
  inputs.mocks = [...mockRows.values()];
  for (const run of baselines) {
    for (const it of run.items) {
      const a = runAnswer(it);
      inputs.baseline.push({
        route: routeOf.get(it.id) ?? 'unknown',
        ...(a.latencyMs !== undefined && !a.clientView ? { latencyMs: a.latencyMs } : {}),
      });
    }
  }
  const budgetList = [...cfg.budgets];
  if (cfg.defaultMocksBudget && !budgetList.some((b) => b.metric === 'mocks'))
    budgetList.push(parseBudget('mocks >= 100%', 'default'));
  const budgets = budgetList.map((b) => judgeBudget(b, inputs, cfg.latency));

  // routes
  const routeNames = [...new Set(results.recorded.map((r) => r.route))].sort();
  const routes: RouteSummary[] = routeNames.map((route) => {
    const its = items.filter((i) => i.route === route);
    const cand = inputs.candidate
      .filter((c) => c.route === route && c.latencyMs !== undefined)
      .map((c) => c.latencyMs as number);
    const rec = inputs.recorded
      .filter((c) => c.route === route && c.latencyMs !== undefined)
      .map((c) => c.latencyMs as number);
    const bas = inputs.baseline
      .filter((c) => c.route === route && c.latencyMs !== undefined)
      .map((c) => c.latencyMs as number);
    const s: RouteSummary = {
      route,
      items: its.length,
      failed: its.filter((i) => i.status === 'fail').length,
      errors: its.filter((i) => i.status === 'error').length,
    };
    const latency = summarize(cand);
    if (latency) {
      s.latency = latency;
      s.histogram = histogram(cand);
    }
    const recordedLatency = summarize(rec);
    if (recordedLatency) s.recordedLatency = recordedLatency;
    const baselineLatency = summarize(bas);
    if (baselineLatency) s.baselineLatency = baselineLatency;
    return s;
  });

  const misses = candidates.flatMap((run) => run.mocks.misses.map((m) => ({ ...m, run: run.label })));
  const capture = { exchanges: 0, ringbufDrops: 0, userBatchDrops: 0, gapBytes: 0, missingLive: 0 };
  for (const run of results.runs) {
    capture.exchanges += run.capture.exchanges;
    capture.ringbufDrops += run.capture.ringbufDrops;
    capture.userBatchDrops += run.capture.userBatchDrops;
    capture.gapBytes += run.capture.gapBytes;
  }
  capture.missingLive = (primary?.items ?? []).filter((i) => !i.live).length;
  const errors = results.runs
    .filter((r) => r.error)
    .map((r) => ({ run: r.label, code: r.error?.code ?? '', message: r.error?.message ?? '' }));
  if (!primary)
    errors.push({
      run: 'candidate',
      code: ErrorCodes.NO_CANDIDATE,
      message: 'the results hold no candidate run',
    });
  const warnings = results.runs.flatMap((r) => r.warnings.map((w) => ({ run: r.label, ...w })));
  if (grpcNames.note) warnings.push(grpcNames.note);
  if (capture.ringbufDrops + capture.userBatchDrops > 0 || capture.gapBytes > 0) {
    warnings.push({
      run: '*',
      code: 'capture-drops',
      message: `capture lost events (${capture.ringbufDrops} ring buffer, ${capture.userBatchDrops} batch drops, ${capture.gapBytes} gap bytes): some answers were judged from the replay client`,
    });
  }

  const failed = items.filter((i) => i.status === 'fail').length;
  const itemErrors = items.filter((i) => i.status === 'error').length;
  const counted = items.flatMap((i) => i.diffs.filter((d) => !d.noise));
  const budgetsFailed = budgets.filter((b) => b.status === 'fail').length;
  const status: VerdictStatus =
    errors.length > 0 || itemErrors > 0 || !validity.reproduced
      ? 'error'
      : failed > 0
        ? 'fail-assertions'
        : budgetsFailed > 0
          ? 'fail-budgets'
          : 'pass';

  return {
    status,
    exitCode: EXIT_CODES[status],
    snapshot: {
      name: results.snapshot.name,
      version: results.snapshot.version,
      hash: results.snapshot.hash,
      path: results.snapshot.path,
    },
    createdAt: results.createdAt,
    runs: results.runs.map((r) => ({
      label: r.label,
      role: r.role,
      items: r.items.length,
      durationMs: r.durationMs,
      ...(r.error ? { error: `${r.error.code}: ${r.error.message}` } : {}),
    })),
    summary: {
      items: items.length,
      passed: items.filter((i) => i.status === 'pass').length,
      failed,
      errors: itemErrors,
      differences: counted.length,
      breaking: counted.filter((d) => d.rating === 'breaking').length,
      warnings: counted.filter((d) => d.rating === 'warning').length,
      ignored: items.reduce((s, i) => s + i.diffs.filter((d) => d.noise).length, 0),
      budgetsFailed,
      budgetsNotJudged: budgets.filter((b) => b.status === 'not-judged').length,
    },
    items,
    routes,
    budgets,
    noise,
    mocks: {
      calls: inputs.mockTotals.calls,
      matched: inputs.mockTotals.matched,
      recordedCalls: inputs.mockTotals.recorded,
      rate: mockRate(inputs.mockTotals),
      misses,
    },
    validity,
    capture,
    errors,
    warnings,
  };
}

const pct = (x: number): string => `${Math.round(x * 100)}%`;

/** Matched calls over what was made or recorded, whichever is more (nothing to mock: 1). */
export function mockRate(t: { calls: number; matched: number; recorded: number }): number {
  const of = Math.max(t.calls, t.recorded);
  return of === 0 ? 1 : Math.min(1, Math.max(0, t.matched) / of);
}

/**
 * Later candidate runs judged against what the reference teaches: an error the recording did not
 * have is always a finding; a value the candidate changes between its own runs is one when the
 * reference build changes it clearly less often (only when a baseline ran: without one the
 * candidate's own runs are the reference).
 */
function flakyFindings(
  w: Work,
  route: string,
  candSelf: ReturnType<typeof rateTable>,
  refNoise: ReturnType<typeof rateTable>,
  margin: number,
): Difference[] {
  const out: Difference[] = [];
  const counted = new Set(w.verdict.diffs.filter((d) => !d.noise).map((d) => d.path));
  for (const { label, diff } of w.laterErrors) {
    if (counted.has(diff.path)) continue;
    counted.add(diff.path);
    out.push({
      target: diff.target,
      path: diff.path,
      kind: 'flaky',
      rating: 'breaking',
      recorded: diff.recorded,
      candidate: diff.candidate,
      message: `${label}: ${diff.message} — the candidate fails intermittently (an error is never noise)`,
    });
  }
  for (const { label, diffs } of w.candSelf) {
    for (const d of diffs) {
      if (counted.has(d.path) || errorChange(d)) continue;
      const key = noiseKey(route, d);
      const own = candSelf.rate(route, key);
      const ref = refNoise.rate(route, key);
      if (own <= ref + margin) continue;
      counted.add(d.path);
      out.push({
        target: d.target,
        path: d.path,
        kind: 'flaky',
        rating: d.rating,
        recorded: d.recorded,
        candidate: d.candidate,
        message: `${label} answered differently from the first run: ${d.message} — the candidate differs from itself here in ${pct(own)} of ${route}, the reference build in ${pct(ref)}`,
      });
    }
  }
  return out;
}
