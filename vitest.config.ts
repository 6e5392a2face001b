import { defineConfig } from 'vitest/config';

// Two projects: `unit` (tests beside the code) and `e2e` (test/: real processes, real kernel).
// `npm test` runs both; `npm run test:unit` only the first.
const ignored = ['node_modules/**', 'dist/**', 'build/**'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['**/*.test.ts'], exclude: [...ignored, 'test/**'] } },
      // real processes on a shared 2-core machine: a generous bound on hangs, not a speed check
      {
        extends: true,
        test: { name: 'e2e', include: ['test/**/*.test.ts'], exclude: ignored, testTimeout: 120_000 },
      },
    ],
  },
});
