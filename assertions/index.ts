/**
 * Assertions: one call turns replay results into a verdict.
 *
 *   const verdict = evaluate(results, config);   // config: defaultConfig() + retap.yaml + flags
 *   process.exitCode = verdict.exitCode;         // 0 pass, 1 assertions, 2 budgets, 3 infrastructure
 *
 * The first candidate run is compared with the recording; further candidate runs (`--noise-runs`)
 * and baseline runs (`--baseline-cmd`) only decide what is noise. Latency budgets pool every
 * candidate run's server-side timings.
 */
import { ExitCodes } from '../core/errors.js';
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

export { budgetName, parseBudget } from './budgets.js';
export type { EvaluateConfig, MatchRule, TokenHint } from './config.js';
export { configFromYaml, defaultConfig, withBudgets } from './config.js';
export type * from './types.js';

export const EXIT_CODES: Record<VerdictStatus, number> = {
  pass: ExitCodes.OK,
  'fail-assertions': ExitCodes.ASSERTIONS_FAILED,
  'fail-budgets': ExitCodes.BUDGETS_FAILED,
  error: ExitCodes.INFRASTRUCTURE,
};

const byId = (run: ReplayRun | undefined): Map<string, RunItem> =>
  new Map((run?.items ?? []).map((i) => [i.id, i]));

const isError = (a: Answer): boolean => a.error !== undefined || a.status === undefined || a.status >= 500;

interface Work {
  rec: RecordedItem;
  verdict: ItemVerdict;
  /** Per-item exact keys where baseline and candidate differ (undefined: no baseline answer). */
  vsBaseline?: Set<string>;
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

  const selfNoise = rateTable(); // same build vs itself
  const candRates = rateTable(); // candidate vs reference (baseline if any, else recording)
  const work: Work[] = [];

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
      work.push({ rec, verdict: base });
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

    // the same build answering twice: what differs there is noise
    const selfDiffs: Difference[] = [];
    const pairs: Array<[Map<string, RunItem>, Map<string, RunItem>]> = [];
    for (let i = 1; i < candItems.length; i++)
      pairs.push([candItems[0] as Map<string, RunItem>, candItems[i] as Map<string, RunItem>]);
    for (let i = 1; i < baseItems.length; i++)
      pairs.push([baseItems[0] as Map<string, RunItem>, baseItems[i] as Map<string, RunItem>]);
    let compared = false;
    for (const [a, b] of pairs) {
      const ia = a.get(rec.id);
      const ib = b.get(rec.id);
      if (!ia || !ib) continue;
      compared = true;
      selfDiffs.push(...compareAnswers(runAnswer(ia), runAnswer(ib), { route, protos }));
    }
    if (compared) selfNoise.add(route, selfDiffs);

    const w: Work = { rec, verdict: base };
    const baseItem = baseItems[0]?.get(rec.id);
    if (baseItem) {
      const baseline = runAnswer(baseItem);
      const vsBase = compareAnswers(baseline, cand, { route, protos });
      w.vsBaseline = new Set(vsBase.map(exactKey));
      candRates.add(route, vsBase);
      const recVsBase = new Map(
        compareAnswers(recorded, baseline, { route, protos }).map((d) => [exactKey(d), d]),
      );
      for (const d of diffs) {
        const rb = recVsBase.get(exactKey(d));
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

  // dynamic noise, then keep rules, then item status
  for (const w of work) {
    const route = w.rec.route;
    for (const d of w.verdict.diffs) {
      if (d.noise) continue;
      if (w.vsBaseline && !w.vsBaseline.has(exactKey(d))) {
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
    mockTotals: { calls: 0, matched: 0 },
  };
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
      const row = mockRows.get(route) ?? { route, calls: 0, misses: 0 };
      row.calls += it.outbound.length;
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
      code: 'RETAP_NO_CANDIDATE',
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
    errors.length > 0 || itemErrors > 0
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
      rate: inputs.mockTotals.calls === 0 ? 1 : inputs.mockTotals.matched / inputs.mockTotals.calls,
      misses,
    },
    capture,
    errors,
    warnings,
  };
}

const pct = (x: number): string => `${Math.round(x * 100)}%`;
