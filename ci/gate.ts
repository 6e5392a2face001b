/**
 * The gate: a verdict becomes a process exit code a pipeline can branch on.
 *   0 pass · 1 assertion failures · 2 budget failures · 3 infrastructure error (build did not
 *   start, capture failed, run aborted). Assertion failures win over budget failures.
 * `--warn-only budgets` (or assertions) reports those failures without failing the step. A replay
 * that did not reproduce the recording is an error (3) whatever the policy: it never passes.
 */
import { ExitCodes } from '../core/errors.js';
import type { Verdict, VerdictStatus } from '../assertions/index.js';

export const EXIT_CODE_MEANINGS: Record<number, string> = {
  [ExitCodes.OK]: 'pass',
  [ExitCodes.ASSERTIONS_FAILED]: 'assertion failures (answers differ from the recording)',
  [ExitCodes.BUDGETS_FAILED]: 'budget failures (latency, error rate or mock match rate)',
  [ExitCodes.INFRASTRUCTURE]:
    'infrastructure error (build did not start, capture or replay failed, or the replay did not reproduce the recording)',
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

/** The verdict's title: an error that is a replay not reproducing the recording says so. */
export function verdictTitle(v: Verdict, status: VerdictStatus = v.status): string {
  if (status === 'error' && !v.validity.reproduced && v.errors.length === 0)
    return 'the replay did not reproduce the recording';
  return STATUS_TITLE[status];
}

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
    `retap: ${verdictTitle(v, status)} (exit ${exitCode}): ${s.passed}/${s.items} requests pass, ` +
    `${s.breaking} breaking, ${s.warnings} warnings, ${s.ignored} ignored as noise; ` +
    `budgets ${v.budgets.length - s.budgetsFailed - s.budgetsNotJudged}/${v.budgets.length} pass` +
    (s.budgetsNotJudged ? `, ${s.budgetsNotJudged} not judged` : '') +
    (status !== v.status ? ` [${v.status} reported as warning]` : '') +
    (v.validity.reproduced
      ? ''
      : `\nretap: ${v.validity.message ?? 'the replay did not reproduce the recording'}` +
        (v.validity.note ? `\nretap: ${v.validity.note}` : ''));
  return { exitCode, status, line };
}
