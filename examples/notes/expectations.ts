/**
 * What the gate must say about each build of the notes example: the exit code and the
 * assertion, budget or validity cause that must be named. Shared by the e2e test
 * (test/e2e/notes-gate.test.ts) and the verdict benchmark (bench/gate/verdicts.bench.ts).
 * The budgets these assume are NOTES_BUDGETS.
 */
import type { Verdict } from '../../assertions/index.js';

/** The retap.yaml assertions the expectations assume (the slow variant needs a latency budget). */
export const NOTES_BUDGETS = ['GET /notes: p95 < 100ms'];

export const counted = (v: Verdict): string[] => [
  ...new Set(
    v.items.flatMap((i) => i.diffs.filter((d) => !d.noise).map((d) => `${i.route} ${d.kind} ${d.path}`)),
  ),
];
export const failedBudgets = (v: Verdict): string[] =>
  v.budgets.filter((b) => b.status === 'fail').map((b) => b.name);
export const notReproduced = (v: Verdict): Array<[string, string[]]> =>
  v.validity.routes.filter((r) => !r.reproduced).map((r) => [r.route, r.causes.map((c) => c.cause)]);
const finding = (re: RegExp) => (v: Verdict) => counted(v).some((c) => re.test(c));

export interface Expectation {
  /** Variant name (`--variant`), or the snapshot of a broken environment. */
  name: string;
  exit: number;
  /** True when the verdict names what it must. */
  caught: (v: Verdict) => boolean;
  /** What must be named, for tables. */
  named: string;
}

/** Seeded regressions: the same exit code with and without a baseline. */
export const NOTES_REGRESSIONS: Expectation[] = [
  {
    name: 'changed-field',
    exit: 1,
    named: 'GET /notes/{id} changed-value $.owner',
    caught: finding(/^GET \/notes\/\{id\} changed-value \$\.owner$/),
  },
  {
    name: 'missing-field',
    exit: 1,
    named: 'GET /me missing-field $.quota',
    caught: finding(/^GET \/me missing-field \$\.quota$/),
  },
  {
    name: 'changed-status',
    exit: 1,
    named: 'POST /notes changed-status (201 → 200)',
    caught: finding(/^POST \/notes changed-status status$/),
  },
  {
    name: 'error-burst',
    exit: 1,
    named: 'GET /notes/{id} status-class (200 → 500), never noise',
    caught: (v) =>
      finding(/^GET \/notes\/\{id\} status-class status$/)(v) &&
      !v.noise.some((n) => n.path === 'status' || n.kind === 'no-response'),
  },
  {
    name: 'extra-call',
    exit: 1,
    named: 'PUT /notes/{id} extra-call GET localhost /users/…',
    caught: finding(/^PUT \/notes\/\{id\} extra-call outbound:GET localhost \/users\/\w+$/),
  },
  {
    name: 'missing-call',
    exit: 1,
    named: 'POST /notes missing-call POST localhost /events',
    caught: finding(/^POST \/notes missing-call outbound:POST localhost \/events$/),
  },
  {
    name: 'changed-param',
    exit: 1,
    named: 'POST /notes changed-value outbound:POST localhost /events $.kind',
    caught: finding(/^POST \/notes changed-value outbound:POST localhost \/events \$\.kind$/),
  },
  {
    name: 'slow',
    exit: 2,
    named: 'budget GET /notes p95 < 100ms',
    caught: (v) => counted(v).length === 0 && failedBudgets(v).includes('GET /notes p95 < 100ms'),
  },
  {
    name: 'changed-header',
    exit: 1,
    named: 'GET /notes/{id} changed-header cache-control',
    caught: finding(/^GET \/notes\/\{id\} changed-header header:cache-control$/),
  },
  {
    name: 'type-change',
    exit: 1,
    named: 'GET /stats changed-type $.words',
    caught: finding(/^GET \/stats changed-type \$\.words$/),
  },
  {
    name: 'dropped-item',
    exit: 1,
    named: 'GET /notes array-length $.notes',
    caught: finding(/^GET \/notes array-length \$\.notes$/),
  },
];

/** Replay environments that cannot reproduce their recording (snapshots cut from the capture). */
export const NOTES_BROKEN: Expectation[] = [
  {
    name: 'unmockable',
    exit: 3,
    named:
      'GET /notes/{id}/export not reproduced: a dependency that cannot be mocked (POST localhost /render)',
    caught: (v) => {
      const bad = notReproduced(v);
      const cause = v.validity.routes.find((r) => !r.reproduced)?.causes[0];
      return (
        bad.length === 1 &&
        bad[0]?.[0] === 'GET /notes/{id}/export' &&
        cause?.cause === 'dependency' &&
        /POST localhost \/render/.test(cause.evidence.join('\n'))
      );
    },
  },
  {
    name: 'unsigned',
    exit: 3,
    named: 'POST /notes/{id}/share not reproduced: a credential not carried (x-proof, derived)',
    caught: (v) => {
      const bad = notReproduced(v);
      const cause = v.validity.routes.find((r) => !r.reproduced)?.causes[0];
      return (
        bad.length === 1 &&
        bad[0]?.[0] === 'POST /notes/{id}/share' &&
        cause?.cause === 'credential' &&
        /x-proof.*retap cannot recompute it/is.test(cause.evidence.join('\n'))
      );
    },
  },
];

/** The unchanged build: a pass with nothing named. */
export function cleanPass(code: number, v: Verdict): boolean {
  return code === 0 && v.validity.reproduced && counted(v).length === 0 && failedBudgets(v).length === 0;
}
