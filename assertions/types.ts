/**
 * The verdict model: what `evaluate()` returns and what every report renders. Plain JSON-safe
 * data (recorded/candidate values are JSON values or short strings), so `--format json` is the
 * verdict itself.
 */

export type Rating = 'breaking' | 'warning';

/** Which part of the answer a difference is about. */
export type DiffTarget = 'response' | 'status' | 'header' | 'body' | 'schema' | 'outbound';

export type DiffKind =
  | 'no-response'
  | 'status-class'
  | 'changed-status'
  | 'missing-header'
  | 'new-header'
  | 'changed-header'
  | 'changed-value'
  | 'changed-type'
  | 'missing-field'
  | 'new-field'
  | 'array-length'
  | 'body-kind'
  | 'changed-text'
  | 'changed-binary'
  | 'schema-type'
  | 'schema-required'
  | 'schema-format'
  | 'missing-call'
  | 'extra-call'
  /** gRPC: grpc-status changed (`OK` → `NOT_FOUND`). */
  | 'grpc-status'
  /** gRPC: a stream's answer has fewer or more messages than recorded. */
  | 'message-count'
  /** A later candidate run answered differently where the reference build is stable. */
  | 'flaky';

export type NoiseSource =
  | 'volatile-header'
  | 'token'
  | 'volatile-format'
  | 'noise-run'
  | 'baseline'
  | 'ignore-rule';

export interface NoiseMark {
  source: NoiseSource;
  reason: string;
}

export interface Difference {
  target: DiffTarget;
  /** `status`, `header:content-type`, `$.orders[0].total`, `outbound:GET inventory /stock/{id}`. */
  path: string;
  kind: DiffKind;
  rating: Rating;
  /** One readable line. */
  message: string;
  recorded?: unknown;
  candidate?: unknown;
  /** Value the baseline build gave, when a baseline ran. */
  baseline?: unknown;
  /** Set when noise cancellation decided this difference does not count. */
  noise?: NoiseMark;
}

export type ItemStatus = 'pass' | 'fail' | 'error';

export interface ItemVerdict {
  id: string;
  route: string;
  session: string;
  method: string;
  target: string;
  status: ItemStatus;
  recordedStatus?: number;
  candidateStatus?: number;
  /** Server-side latency (eBPF) of the candidate's first run and of the recording, in ms. */
  latencyMs?: number;
  recordedLatencyMs?: number;
  /** Every difference, counted or not (noise carries `noise`). */
  diffs: Difference[];
  /** Why the item could not be judged (not replayed, transport error…). */
  error?: string;
  notes?: string[];
}

export type BudgetMetric = 'pct' | 'max' | 'avg' | 'errors' | 'mocks';

export interface Budget {
  /** Text as written, for messages and reports. */
  source: string;
  /** Route template or glob (`GET /orders/{id}`, `GET /orders/*`); absent = global. */
  route?: string;
  metric: BudgetMetric;
  /** Percentile for `pct` (95 for p95). */
  percentile?: number;
  op: '<' | '<=' | '>' | '>=';
  /** ms for latency, fraction (0.01) for errors/mocks, ratio delta (0.10) when relative. */
  value: number;
  relative: boolean;
}

export type BudgetStatus = 'pass' | 'fail' | 'not-judged';

export interface BudgetResult {
  budget: Budget;
  /** Readable name: `GET /orders/{id} p95 < 250ms`. */
  name: string;
  status: BudgetStatus;
  /** Measured value: ms, fraction, or ratio (candidate / reference) for relative budgets. */
  measured?: number;
  /** Allowed value in the same unit as `measured`. */
  allowed: number;
  unit: 'ms' | 'ratio' | 'fraction';
  /** Samples of the candidate, and of the reference for relative budgets. */
  samples: number;
  referenceSamples?: number;
  reference?: 'recorded' | 'baseline';
  referenceValue?: number;
  /** Probability the budget is exceeded (relative budgets, bootstrap), 0..1. */
  confidence?: number;
  /** Mann-Whitney U one-sided p-value that candidate latencies are shifted up (relative budgets). */
  pValue?: number;
  message: string;
}

/** A field, header or call that noise cancellation decided to ignore, aggregated per route. */
export interface NoiseDecision {
  route: string;
  /** Generalised path (`$.orders[*].id`, `header:date`). */
  path: string;
  kind: DiffKind;
  source: NoiseSource;
  reason: string;
  /** Differences this decision silenced. */
  occurrences: number;
  /** Fraction of the route's items where the candidate differed, and where the same build differed from itself. */
  diffRate?: number;
  noiseRate?: number;
}

export interface LatencyStats {
  n: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  avg: number;
}

export interface RouteSummary {
  route: string;
  items: number;
  failed: number;
  errors: number;
  latency?: LatencyStats;
  recordedLatency?: LatencyStats;
  baselineLatency?: LatencyStats;
  /** Histogram of candidate server-side latency: bucket upper bounds (ms) and counts. */
  histogram?: { bounds: number[]; counts: number[] };
}

export type VerdictStatus = 'pass' | 'fail-assertions' | 'fail-budgets' | 'error';

/** What most likely kept the reference build from reproducing a route. */
export type ValidityCause =
  | 'unreachable'
  | 'dependency'
  | 'credential'
  | 'connection'
  | 'created-id'
  | 'no-answer'
  | 'server-error'
  | 'status'
  | 'calls-not-made';

export interface CauseFinding {
  cause: ValidityCause;
  /** One line: what likely went wrong. */
  summary: string;
  /** What was observed that points there (a few lines). */
  evidence: string[];
}

/** How well the reference build reproduced one route of the recording. */
export interface RouteValidity {
  route: string;
  /** Reference answers judged (recorded requests with an answer × reference runs). */
  answers: number;
  /** Of those, answers in another status class than recorded, or none (transport error, timeout). */
  statusChanged: number;
  statusChangedShare: number;
  /** Outbound calls the recording made for these requests, and how many the reference made and got answered. */
  recordedCalls: number;
  callsMade: number;
  /** 1 when nothing was recorded. */
  callsMadeShare: number;
  reproduced: boolean;
  /** Likely causes, most specific first (only for routes not reproduced). */
  causes: CauseFinding[];
}

/** Did the reference build (baseline, else candidate) reproduce the recording? Judged before the candidate. */
export interface Validity {
  reference: 'baseline' | 'candidate';
  /** Labels of the reference runs pooled. */
  runs: string[];
  reproduced: boolean;
  thresholds: { maxStatusChange: number; minCallsMade: number };
  summary: {
    routes: number;
    notReproduced: number;
    answers: number;
    statusChanged: number;
    recordedCalls: number;
    callsMade: number;
  };
  /** Every route, in name order. */
  routes: RouteValidity[];
  /** When not reproduced: the one paragraph that says so, naming routes and likely causes. */
  message?: string;
  /** Set when no baseline ran (the candidate judged its own replay). */
  note?: string;
}

export interface Verdict {
  status: VerdictStatus;
  exitCode: number;
  snapshot: { name: string; version: number; hash: string; path: string };
  createdAt: string;
  runs: Array<{
    label: string;
    role: 'candidate' | 'baseline';
    items: number;
    durationMs: number;
    error?: string;
  }>;
  summary: {
    items: number;
    passed: number;
    failed: number;
    errors: number;
    differences: number;
    breaking: number;
    warnings: number;
    ignored: number;
    budgetsFailed: number;
    budgetsNotJudged: number;
  };
  items: ItemVerdict[];
  routes: RouteSummary[];
  budgets: BudgetResult[];
  noise: NoiseDecision[];
  mocks: {
    /** Outbound calls the candidate runs made, and how many a recorded answer matched. */
    calls: number;
    matched: number;
    /** Outbound calls the recording made for the requests replayed (once per candidate run). */
    recordedCalls: number;
    /** matched / max(calls, recordedCalls): a call not made is not a call matched. */
    rate: number;
    misses: Array<{
      method: string;
      host: string;
      target: string;
      reason: string;
      closest?: string;
      during?: string;
      run: string;
    }>;
  };
  /** Replay validity, judged before the candidate: a replay that did not reproduce the recording is an error. */
  validity: Validity;
  capture: {
    exchanges: number;
    ringbufDrops: number;
    userBatchDrops: number;
    gapBytes: number;
    missingLive: number;
  };
  /** Infrastructure errors (build did not start, capture failed). */
  errors: Array<{ run: string; code: string; message: string }>;
  warnings: Array<{ run: string; code: string; message: string; item?: string }>;
}
