/**
 * Adds one plain closing line after vitest's own summary, `vitest: N passed, N failed, N skipped`,
 * so log readers that do not know vitest's format still see the counts. A suite or file that
 * failed outside its tests (a beforeAll, an import) counts as one failure: its tests show as
 * skipped, and a line saying "0 failed" would be wrong.
 */
import type { Reporter, TestModule, TestSuite } from 'vitest/node';

function failedTests(tests: Iterable<{ result(): { state: string } }>): number {
  let n = 0;
  for (const t of tests) if (t.result().state === 'failed') n++;
  return n;
}

export default class SummaryLineReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // a suite whose hook failed: none of its tests failed, the suite did
      for (const suite of mod.children.allSuites() as Iterable<TestSuite>)
        if (suite.state() === 'failed' && failedTests(suite.children.allTests()) === 0) failed++;
      if (mod.state() === 'failed' && failedTests(mod.children.allTests()) === 0) {
        const suites = [...(mod.children.allSuites() as Iterable<TestSuite>)];
        if (!suites.some((s) => s.state() === 'failed')) failed++;
      }
    }
    process.stdout.write(`\nvitest: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
