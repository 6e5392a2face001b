import { describe, expect, it } from 'vitest';
import { actionArgs } from './action.js';

describe('action inputs → retap ci flags', () => {
  it('maps inputs in both spellings, splits lists, leaves empty ones to retap.yaml', () => {
    const args = actionArgs({
      INPUT_SNAPSHOT: 'snaps/orders@2',
      'INPUT_BUILD-COMMAND': 'node dist/server.js',
      INPUT_PORT: '8080',
      INPUT_READY: '',
      INPUT_BUDGETS: 'p95 < 250ms\n\n# comment\nGET /orders/{id}: p99 < +10%\n',
      INPUT_ENV: 'A=1\nB=two words',
      INPUT_WARN_ONLY: 'budgets, assertions',
      INPUT_REPORT_DIR: 'out',
      INPUT_STEP_SUMMARY: 'false',
    });
    expect(args).toEqual([
      '--snapshot',
      'snaps/orders@2',
      '--cmd',
      'node dist/server.js',
      '--port',
      '8080',
      '--out',
      'out',
      '--budget',
      'p95 < 250ms',
      '--budget',
      'GET /orders/{id}: p99 < +10%',
      '--env',
      'A=1',
      '--env',
      'B=two words',
      '--warn-only',
      'budgets',
      '--warn-only',
      'assertions',
      '--no-step-summary',
    ]);
  });
});
