/** Shared wording for reports: numbers, verdict lines, readable diffs, top differences. */
import {
  type BudgetResult,
  type Difference,
  describeRoute,
  type ItemVerdict,
  type Verdict,
} from '../../assertions/index.js';

export function ms(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return '–';
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 100) return `${v.toFixed(0)} ms`;
  if (v >= 10) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
}

export function pct(v: number | undefined, digits = 1): string {
  return v === undefined || Number.isNaN(v) ? '–' : `${(v * 100).toFixed(digits)}%`;
}

export function value(v: unknown): string {
  if (v === undefined) return '–';
  return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
}

export function budgetMeasured(b: BudgetResult): string {
  if (b.measured === undefined) return '–';
  if (b.unit === 'ms') return ms(b.measured);
  if (b.unit === 'fraction') return pct(b.measured);
  const change = (b.measured - 1) * 100;
  const ref =
    b.referenceValue === undefined ? '' : `, ${ms(b.referenceValue)} → ${ms(b.referenceValue * b.measured)}`;
  return `${change >= 0 ? '+' : ''}${change.toFixed(1)}%${ref}`;
}

export function budgetAllowed(b: BudgetResult): string {
  const op = b.budget.op;
  if (b.unit === 'ms') return `${op} ${ms(b.allowed)}`;
  if (b.unit === 'fraction') return `${op} ${pct(b.allowed)}`;
  const change = (b.allowed - 1) * 100;
  return `${op} ${change >= 0 ? '+' : ''}${change.toFixed(0)}% vs ${b.reference ?? 'reference'}`;
}

export const counted = (i: ItemVerdict): Difference[] => i.diffs.filter((d) => !d.noise);

/** The readable diff of one exchange, as JUnit failure text and HTML fallback. */
export function diffText(i: ItemVerdict): string {
  const lines = [`${i.method} ${i.target}  (route ${i.route}, recorded ${i.id})`];
  if (i.error) lines.push(`error: ${i.error}`);
  if (i.recordedStatus !== undefined || i.candidateStatus !== undefined) {
    lines.push(`status: recorded ${i.recordedStatus ?? '–'}, candidate ${i.candidateStatus ?? '–'}`);
  }
  for (const d of counted(i)) {
    lines.push(`  [${d.rating}] ${d.message}`);
    if (d.recorded !== undefined || d.candidate !== undefined) {
      lines.push(`      - recorded:  ${value(d.recorded)}`);
      if (d.baseline !== undefined) lines.push(`      ~ baseline:  ${value(d.baseline)}`);
      lines.push(`      + candidate: ${value(d.candidate)}`);
    }
  }
  const noise = i.diffs.filter((d) => d.noise);
  if (noise.length) {
    lines.push(`ignored as noise (${noise.length}):`);
    for (const d of noise) lines.push(`  ${d.path} ${d.kind}: ${d.noise?.reason}`);
  }
  for (const n of i.notes ?? []) lines.push(`note: ${n}`);
  return lines.join('\n');
}

export interface TopDifference {
  route: string;
  path: string;
  kind: string;
  rating: 'breaking' | 'warning';
  count: number;
  example: string;
  items: string[];
}

/** Counted differences grouped by route, path (indices generalised) and kind; breaking first. */
export function topDifferences(v: Verdict, limit = 10): TopDifference[] {
  const map = new Map<string, TopDifference>();
  for (const i of v.items) {
    for (const d of counted(i)) {
      const path = d.path.replace(/\[\d+\]/g, '[*]');
      const k = `${i.route}\t${path}\t${d.kind}`;
      const t = map.get(k);
      if (t) {
        t.count++;
        if (t.items.length < 5) t.items.push(i.id);
      } else
        map.set(k, {
          route: i.route,
          path,
          kind: d.kind,
          rating: d.rating,
          count: 1,
          example: d.message,
          items: [i.id],
        });
    }
  }
  return [...map.values()]
    .sort((a, b) =>
      a.rating !== b.rating
        ? a.rating === 'breaking'
          ? -1
          : 1
        : b.count - a.count || a.route.localeCompare(b.route) || a.path.localeCompare(b.path),
    )
    .slice(0, limit);
}

/** Validity of one route as text: shares, thresholds, causes and their evidence. */
export function validityText(v: Verdict, route: string): string {
  const r = v.validity.routes.find((x) => x.route === route);
  if (!r) return '';
  const t = v.validity.thresholds;
  const lines = [
    `${route}: ${r.reproduced ? 'reproduced' : 'NOT reproduced'} by the ${v.validity.reference} (${v.validity.runs.join(', ')})`,
    `answers in another status class than recorded: ${r.statusChanged} of ${r.answers} (${pct(r.statusChangedShare, 0)}; allowed up to ${pct(t.maxStatusChange, 0)})`,
    `recorded outbound calls made and answered: ${r.callsMade} of ${r.recordedCalls} (${pct(r.callsMadeShare, 0)}; needed at least ${pct(t.minCallsMade, 0)})`,
  ];
  for (const c of r.causes) {
    lines.push(`likely: ${c.summary} [${c.cause}]`);
    for (const e of c.evidence) lines.push(`  - ${e}`);
  }
  return lines.join('\n');
}

/** One line on validity for headers and logs. */
export function validityLine(v: Verdict): string {
  const s = v.validity.summary;
  if (!v.validity.reproduced) return v.validity.message ?? 'the replay did not reproduce the recording';
  return `the ${v.validity.reference} reproduced the recording: ${s.answers - s.statusChanged} of ${s.answers} answers kept their status class, ${s.callsMade} of ${s.recordedCalls} recorded calls made`;
}

export { describeRoute };
