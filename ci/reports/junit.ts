/**
 * JUnit XML (junit-report-builder): a suite per route with a test case per replayed exchange
 * (failure text = the readable diff), a `budgets` suite with a case per budget (measured vs
 * allowed; not judged → skipped), and an `infrastructure` suite where run errors, mock misses
 * and capture drops are errors. Checked against ci/reports/junit.xsd in the tests.
 */
import junitModule, { type Builder } from 'junit-report-builder';
import type { Verdict } from '../../assertions/index.js';
import { verdictTitle } from '../gate.js';
import { describeRoute } from '../../assertions/index.js';
import { budgetAllowed, budgetMeasured, counted, diffText, validityText } from './format.js';

// CommonJS module whose typings describe an ES default export: take whichever is there.
const junit = ((junitModule as unknown as { default?: Builder }).default ??
  junitModule) as unknown as Builder;

const seconds = (msValue: number | undefined): number =>
  msValue === undefined ? 0 : Number((msValue / 1000).toFixed(6));

export function renderJunit(v: Verdict): string {
  const builder = junit.newBuilder();
  const what = v.snapshot.name ? ` ${v.snapshot.name} v${v.snapshot.version}` : '';
  builder.name(`retap${what}: ${verdictTitle(v)}`);
  const stamp = new Date(v.createdAt);

  // replay validity first: a route the reference did not reproduce is an error, whatever the candidate did
  const validity = builder.testSuite().name('replay validity').timestamp(stamp);
  validity.property('reference', `${v.validity.reference} (${v.validity.runs.join(', ')})`);
  for (const r of v.validity.routes) {
    const tc = validity.testCase().className('retap.validity').name(r.route);
    const text = validityText(v, r.route);
    if (r.reproduced) tc.standardOutput(text);
    else
      tc.error(
        `${r.route} not reproduced by the ${v.validity.reference}: ${describeRoute(r)}${r.causes[0] ? `; likely ${r.causes[0].summary}` : ''}`,
        r.causes[0]?.cause ?? 'not-reproduced',
        text,
      );
  }

  for (const route of v.routes) {
    const suite = builder.testSuite().name(route.route).timestamp(stamp);
    suite.property('route', route.route);
    if (route.latency) suite.property('p95_ms', route.latency.p95.toFixed(3));
    for (const i of v.items.filter((x) => x.route === route.route)) {
      const tc = suite
        .testCase()
        .className(`retap.${route.route.replace(/\s+/g, ' ')}`)
        .name(`${i.method} ${i.target} [${i.id}]`)
        .time(seconds(i.latencyMs));
      if (i.status === 'error') {
        tc.error(i.error ?? 'not replayed', 'not-replayed', diffText(i));
      } else if (i.status === 'fail') {
        const diffs = counted(i);
        const first = diffs[0];
        const more = diffs.length > 1 ? ` (+${diffs.length - 1} more)` : '';
        tc.failure(
          `${first?.message ?? 'differs'}${more}`,
          diffs.some((d) => d.rating === 'breaking') ? 'breaking' : 'warning',
        );
        tc.stacktrace(diffText(i));
      } else if (i.diffs.length > 0) {
        tc.standardOutput(diffText(i));
      }
    }
  }

  const budgets = builder.testSuite().name('budgets').timestamp(stamp);
  for (const b of v.budgets) {
    const tc = budgets.testCase().className('retap.budgets').name(b.name);
    const detail = [
      `budget:   ${b.name}`,
      `measured: ${budgetMeasured(b)}`,
      `allowed:  ${budgetAllowed(b)}`,
      `samples:  ${b.samples}${b.referenceSamples !== undefined ? ` (reference ${b.reference}: ${b.referenceSamples})` : ''}`,
      ...(b.confidence !== undefined
        ? [`confidence the budget is exceeded: ${(b.confidence * 100).toFixed(1)}%`]
        : []),
      ...(b.pValue !== undefined ? [`Mann-Whitney U p-value (slower): ${b.pValue.toPrecision(3)}`] : []),
      b.message,
    ].join('\n');
    if (b.status === 'fail') {
      tc.failure(`${b.name}: measured ${budgetMeasured(b)}, allowed ${budgetAllowed(b)}`, 'budget');
      tc.stacktrace(detail);
    } else if (b.status === 'not-judged') {
      tc.skipped().standardOutput(detail);
    } else {
      tc.standardOutput(detail);
    }
  }

  const infra = builder.testSuite().name('infrastructure').timestamp(stamp);
  for (const e of v.errors) {
    infra
      .testCase()
      .className('retap.infrastructure')
      .name(`run ${e.run}`)
      .error(e.message, e.code, `${e.code}: ${e.message}`);
  }
  const mocks = infra.testCase().className('retap.infrastructure').name('mocks');
  if (v.mocks.misses.length > 0) {
    const lines = v.mocks.misses.map(
      (m) =>
        `${m.method} ${m.host} ${m.target} during ${m.during ?? '?'} (${m.run}): ${m.reason}${m.closest ? `; closest: ${m.closest}` : ''}`,
    );
    mocks.error(
      `${v.mocks.misses.length} outbound call(s) had no recorded answer`,
      'mock-miss',
      lines.join('\n'),
    );
  } else {
    mocks.standardOutput(`${v.mocks.matched} of ${v.mocks.calls} outbound calls answered by mocks`);
  }
  const c = v.capture;
  const capture = infra.testCase().className('retap.infrastructure').name('capture');
  const drops = c.ringbufDrops + c.userBatchDrops;
  const text = `${c.exchanges} exchanges captured; ring buffer drops ${c.ringbufDrops}, batch drops ${c.userBatchDrops}, gap bytes ${c.gapBytes}, answers without capture ${c.missingLive}`;
  if (drops > 0 || c.gapBytes > 0)
    capture.error(`capture lost events (${drops} drops, ${c.gapBytes} gap bytes)`, 'capture-drops', text);
  else capture.standardOutput(text);

  return `${builder.build()}\n`;
}
