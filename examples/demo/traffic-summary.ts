/** What a traffic run did: requests per route and status, and every unexpected answer. */

export const MAX_ERROR_SAMPLES = 20;

export interface TrafficError {
  route: string;
  /** HTTP status, or 0 when no answer came (connection error, timeout). */
  status: number;
  message: string;
}

export interface TrafficSummary {
  url: string;
  sessions: number;
  /** Sessions that ran to the end (fewer than `sessions` when the run was stopped). */
  sessionsRun: number;
  seed: number;
  requests: number;
  /** route → status → count, e.g. `{ "POST /orders": { "201": 12 } }`. */
  byRoute: Record<string, Record<string, number>>;
  /** Requests whose answer was not the expected one. */
  errors: number;
  /** The first MAX_ERROR_SAMPLES errors. */
  errorSamples: TrafficError[];
  ordersCreated: number;
  durationMs: number;
}

export function newSummary(url: string, sessions: number, seed: number): TrafficSummary {
  return {
    url,
    sessions,
    sessionsRun: 0,
    seed,
    requests: 0,
    byRoute: {},
    errors: 0,
    errorSamples: [],
    ordersCreated: 0,
    durationMs: 0,
  };
}

/** Counts one request; a status other than `expected` (or a `problem`) counts as an error. */
export function record(
  summary: TrafficSummary,
  route: string,
  status: number,
  expected: number,
  problem?: string,
): boolean {
  summary.requests++;
  const statuses = (summary.byRoute[route] ??= {});
  statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
  const message =
    problem ?? (status === expected ? undefined : `expected ${expected}, got ${status || 'no answer'}`);
  if (message === undefined) return true;
  summary.errors++;
  if (summary.errorSamples.length < MAX_ERROR_SAMPLES) summary.errorSamples.push({ route, status, message });
  return false;
}

/** An aligned table: one line per route and status, then totals and error samples. */
export function formatSummary(summary: TrafficSummary): string[] {
  const rows: [string, string, string][] = [];
  for (const route of Object.keys(summary.byRoute).sort()) {
    const statuses = summary.byRoute[route] ?? {};
    for (const status of Object.keys(statuses).sort()) {
      rows.push([route, status === '0' ? 'none' : status, String(statuses[status])]);
    }
  }
  const w0 = Math.max(5, ...rows.map((r) => r[0].length));
  const w2 = Math.max(5, ...rows.map((r) => r[2].length));
  const sessions =
    summary.sessionsRun === summary.sessions
      ? `${summary.sessions}`
      : `${summary.sessionsRun} of ${summary.sessions}`;
  const lines = [`${'route'.padEnd(w0)}  status  ${'count'.padStart(w2)}`];
  for (const [route, status, count] of rows)
    lines.push(`${route.padEnd(w0)}  ${status.padEnd(6)}  ${count.padStart(w2)}`);
  lines.push(
    `${summary.requests} requests in ${sessions} sessions (seed ${summary.seed}), ` +
      `${summary.ordersCreated} orders created, ${summary.errors} errors, ${summary.durationMs} ms`,
  );
  for (const e of summary.errorSamples)
    lines.push(`  error: ${e.route} → ${e.status || 'no answer'}: ${e.message}`);
  if (summary.errors > summary.errorSamples.length) {
    lines.push(`  … and ${summary.errors - summary.errorSamples.length} more errors`);
  }
  return lines;
}
