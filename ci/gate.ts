/**
 * The gate: a verdict becomes a process exit code a pipeline can branch on.
 *   0 pass · 1 assertion failures · 2 budget failures · 3 infrastructure error (build did not
 *   start, capture failed, run aborted). Assertion failures win over budget failures.
 * `--warn-only budgets` (or assertions) reports those failures without failing the step.
 */
import { ExitCodes } from '../core/errors.js';
import type { Verdict, VerdictStatus } from '../assertions/index.js';

export const EXIT_CODE_MEANINGS: Record<number, string> = {
  [ExitCodes.OK]: 'pass',
  [ExitCodes.ASSERTIONS_FAILED]: 'assertion failures (answers differ from the recording)',
  [ExitCodes.BUDGETS_FAILED]: 'budget failures (latency, error rate or mock match rate)',
  [ExitCodes.INFRASTRUCTURE]: 'infrastructure error (build did not start, capture or replay failed)',
  [ExitCodes.USAGE]: 'bad input (a flag, action input or setting retap could not use)',
};

export interface GatePolicy {
  /** Categories reported but not failing the step. */
  warnOnly?: Array<'assertions' | 'budgets'>;
}

export const STATUS_TITLE: Record<VerdictStatus, string> = {
  pass: 'pass',
  'fail-assertions': 'assertion failures',
  'fail-budgets': 'budget failures',
  error: 'infrastructure error',
};

export function gate(
  v: Verdict,
  policy: GatePolicy = {},
): { exitCode: number; status: VerdictStatus; line: string } {
  const warn = new Set(policy.warnOnly ?? []);
  let status: VerdictStatus = v.status;
  if (status === 'fail-assertions' && warn.has('assertions')) {
    status = v.summary.budgetsFailed > 0 && !warn.has('budgets') ? 'fail-budgets' : 'pass';
  } else if (status === 'fail-budgets' && warn.has('budgets')) status = 'pass';
  const exitCode =
    status === 'pass'
      ? ExitCodes.OK
      : status === 'fail-assertions'
        ? ExitCodes.ASSERTIONS_FAILED
        : status === 'fail-budgets'
          ? ExitCodes.BUDGETS_FAILED
          : ExitCodes.INFRASTRUCTURE;
  const s = v.summary;
  const line =
    `retap: ${STATUS_TITLE[status]} (exit ${exitCode}): ${s.passed}/${s.items} requests pass, ` +
    `${s.breaking} breaking, ${s.warnings} warnings, ${s.ignored} ignored as noise; ` +
    `budgets ${v.budgets.length - s.budgetsFailed - s.budgetsNotJudged}/${v.budgets.length} pass` +
    (s.budgetsNotJudged ? `, ${s.budgetsNotJudged} not judged` : '') +
    (status !== v.status ? ` [${v.status} reported as warning]` : '');
  return { exitCode, status, line };
}
