/**
 * Judging a replay: its results become a verdict (assertions/), the verdict becomes the gate's
 * outcome (exit code, status, one line), and the reports are written. `retap ci`, `retap report`
 * and the demo judge through here, so the three cannot drift apart.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type EvaluateConfig, evaluate, type Verdict, type VerdictStatus } from '../assertions/index.js';
import type { ReplayResults } from '../core/results.js';
import { type GatePolicy, gate } from './gate.js';
import { EXTENSIONS, type ReportFormat, renderChunks } from './reports/index.js';

export interface Judgement {
  verdict: Verdict;
  /** The gate's outcome under the policy (warn-only categories pass). */
  exitCode: number;
  status: VerdictStatus;
  /** The one line a pipeline log shows. */
  line: string;
}

/** The verdict of `results` under `config`, and the gate's outcome of it under `policy`. */
export function judge(results: ReplayResults, config: EvaluateConfig, policy: GatePolicy = {}): Judgement {
  const verdict = evaluate(results, config);
  return { verdict, ...gate(verdict, policy) };
}

/**
 * Writes `report.<extension>` of each format into `dir` (which must exist), noting each file's
 * path by format in `written` as soon as it is there (so a failed write leaves the others named).
 */
export async function writeReports(
  dir: string,
  formats: readonly ReportFormat[],
  verdict: Verdict,
  results: ReplayResults,
  written: Partial<Record<ReportFormat, string>> = {},
): Promise<Partial<Record<ReportFormat, string>>> {
  for (const format of formats) {
    const path = join(dir, `report.${EXTENSIONS[format]}`);
    await writeFile(path, renderChunks(format, verdict, results));
    written[format] = path;
  }
  return written;
}
