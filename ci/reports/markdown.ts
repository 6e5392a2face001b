/**
 * Markdown summary for a pull request or `$GITHUB_STEP_SUMMARY`: the verdict, the top
 * differences, the latency table, budgets, mocks and capture, and the noise decisions (folded).
 */
import type { Verdict } from '../../assertions/index.js';
import { ExitCodes } from '../../core/errors.js';
import { EXIT_CODE_MEANINGS, verdictTitle } from '../gate.js';
import {
  budgetAllowed,
  budgetMeasured,
  describeRoute,
  ms,
  pct,
  topDifferences,
  validityLine,
} from './format.js';

const ICON = { pass: '✅', 'fail-assertions': '❌', 'fail-budgets': '⏱️', error: '🛑' } as const;
const BUDGET_ICON = { pass: '✅', fail: '❌', 'not-judged': '➖' } as const;

/** Escapes text for a table cell. */
const cell = (s: string): string =>
  s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ').replace(/</g, '&lt;');
const code = (s: string): string => `\`${s.replace(/`/g, "'")}\``;

export function renderMarkdown(
  v: Verdict,
  opts: { maxDifferences?: number; maxNoise?: number } = {},
): string {
  const s = v.summary;
  const out: string[] = [];
  const title = v.exitCode === ExitCodes.USAGE ? 'bad input' : verdictTitle(v);
  const what = v.snapshot.name ? ` — ${v.snapshot.name} v${v.snapshot.version}` : '';
  out.push(`## ${ICON[v.status]} retap: ${title}${what}`);
  out.push('');
  out.push(
    `**${s.passed} of ${s.items} requests pass** · ${s.breaking} breaking · ${s.warnings} warnings · ` +
      `${s.ignored} differences ignored as noise · budgets: ${v.budgets.length - s.budgetsFailed - s.budgetsNotJudged} pass, ` +
      `${s.budgetsFailed} fail, ${s.budgetsNotJudged} not judged · mocks ${v.mocks.matched}/${Math.max(v.mocks.calls, v.mocks.recordedCalls)} · ` +
      `exit code ${v.exitCode}: ${EXIT_CODE_MEANINGS[v.exitCode] ?? '?'}`,
  );
  out.push('');
  out.push(
    `Runs: ${v.runs.map((r) => `${code(r.label)} ${r.items} requests${r.error ? ` (**${cell(r.error)}**)` : ''}`).join(', ')}`,
  );

  const val = v.validity;
  out.push('', '### Replay validity', '');
  if (val.reproduced) {
    out.push(`✅ ${cell(validityLine(v))} (reference: ${val.runs.map(code).join(', ')}).`);
  } else {
    out.push(`🛑 **${cell(val.message ?? 'the replay did not reproduce the recording')}**`, '');
    out.push('| route | status class changed | recorded calls made | likely cause |', '|---|--:|--:|---|');
    for (const r of val.routes.filter((x) => !x.reproduced)) {
      out.push(
        `| ${cell(r.route)} | ${r.statusChanged}/${r.answers} (${pct(r.statusChangedShare, 0)}) | ${r.callsMade}/${r.recordedCalls} (${pct(r.callsMadeShare, 0)}) | ${cell(r.causes.map((c) => c.summary).join('; ') || describeRoute(r))} |`,
      );
    }
    out.push('');
    for (const r of val.routes.filter((x) => !x.reproduced)) {
      for (const c of r.causes) {
        out.push(`- ${cell(r.route)} — ${cell(c.summary)}:`);
        for (const e of c.evidence) out.push(`  - ${cell(e)}`);
      }
    }
    out.push(
      '',
      `Thresholds (\`assertions.validity\` in retap.yaml): at most ${pct(val.thresholds.maxStatusChange, 0)} of a route's answers in another status class, at least ${pct(val.thresholds.minCallsMade, 0)} of its recorded calls made.`,
    );
    if (val.note) out.push('', `> ${cell(val.note)}`);
  }

  if (v.errors.length) {
    out.push('', '### Infrastructure errors', '');
    for (const e of v.errors) out.push(`- ${code(e.run)} ${code(e.code)}: ${cell(e.message)}`);
  }
  // nothing was replayed (bad input, a build that never started): no empty tables to scroll past
  if (v.errors.length && s.items === 0 && v.routes.length === 0) {
    out.push('', 'Nothing was replayed. The error above says what to fix.', '');
    return out.join('\n');
  }

  const top = topDifferences(v, opts.maxDifferences ?? 10);
  out.push('', '### Top differences', '');
  if (top.length === 0) out.push('No differences beyond noise.');
  else {
    out.push('| rating | route | where | kind | requests | example |', '|---|---|---|---|--:|---|');
    for (const t of top) {
      out.push(
        `| ${t.rating === 'breaking' ? '🔴 breaking' : '🟡 warning'} | ${cell(t.route)} | ${code(t.path)} | ${t.kind} | ${t.count} | ${cell(t.example)} |`,
      );
    }
  }

  out.push('', '### Latency (server-side, eBPF)', '');
  out.push(
    '| route | n | p50 | p95 | p99 | max | recorded p95 | change p95 |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
  );
  for (const r of v.routes) {
    const l = r.latency;
    const ref = r.baselineLatency ?? r.recordedLatency;
    const change =
      l && ref && ref.p95 > 0
        ? `${l.p95 >= ref.p95 ? '+' : ''}${(((l.p95 - ref.p95) / ref.p95) * 100).toFixed(0)}%`
        : '–';
    out.push(
      `| ${cell(r.route)} | ${l?.n ?? 0} | ${ms(l?.p50)} | ${ms(l?.p95)} | ${ms(l?.p99)} | ${ms(l?.max)} | ${ms(r.recordedLatency?.p95)} | ${change} |`,
    );
  }

  out.push('', '### Budgets', '');
  if (v.budgets.length === 0) out.push('No budgets set.');
  else {
    out.push('| | budget | measured | allowed | samples | confidence |', '|---|---|--:|--:|--:|--:|');
    for (const b of v.budgets) {
      const samples =
        b.referenceSamples !== undefined
          ? `${b.samples} / ${b.referenceSamples} ${b.reference}`
          : String(b.samples);
      out.push(
        `| ${BUDGET_ICON[b.status]} ${b.status} | ${code(b.name)} | ${cell(budgetMeasured(b))} | ${cell(budgetAllowed(b))} | ${samples} | ${b.confidence === undefined ? '–' : pct(b.confidence)} |`,
      );
    }
    const notes = v.budgets
      .filter((b) => b.status !== 'pass')
      .map((b) => `- ${code(b.name)}: ${cell(b.message)}`);
    if (notes.length) out.push('', ...notes);
  }

  const c = v.capture;
  out.push('', '### Mocks and capture', '');
  out.push(
    `- mocks answered ${v.mocks.matched} of ${v.mocks.calls} outbound calls made; the recording made ${v.mocks.recordedCalls} (${pct(v.mocks.rate)} matched)`,
  );
  for (const m of v.mocks.misses.slice(0, 10)) {
    out.push(
      `  - miss: ${code(`${m.method} ${m.host} ${m.target}`)} during ${code(m.during ?? '?')}: ${cell(m.reason)}`,
    );
  }
  if (v.mocks.misses.length > 10) out.push(`  - … and ${v.mocks.misses.length - 10} more`);
  out.push(
    `- capture: ${c.exchanges} exchanges, ${c.ringbufDrops} ring buffer drops, ${c.userBatchDrops} batch drops, ${c.gapBytes} gap bytes; answers seen only by the replay client: ${c.missingLive}`,
  );
  for (const w of v.warnings) out.push(`- ⚠️ ${code(w.code)}: ${cell(w.message)}`);

  const maxNoise = opts.maxNoise ?? 50;
  out.push(
    '',
    `<details><summary>Noise decisions (${v.noise.length}): ignored differences, override with <code>ignore:</code>/<code>keep:</code> in retap.yaml</summary>`,
    '',
  );
  if (v.noise.length) {
    out.push('| route | where | kind | source | reason | times |', '|---|---|---|---|---|--:|');
    for (const n of v.noise.slice(0, maxNoise)) {
      out.push(
        `| ${cell(n.route)} | ${code(n.path)} | ${n.kind} | ${n.source} | ${cell(n.reason)} | ${n.occurrences} |`,
      );
    }
    if (v.noise.length > maxNoise)
      out.push('', `… and ${v.noise.length - maxNoise} more (see the JSON or HTML report).`);
  } else out.push('None.');
  out.push('', '</details>', '');
  return out.join('\n');
}
