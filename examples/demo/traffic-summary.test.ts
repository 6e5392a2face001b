import { describe, expect, it } from 'vitest';
import { formatSummary, MAX_ERROR_SAMPLES, newSummary, record } from './traffic-summary.js';

describe('traffic summary', () => {
  it('counts by route and status and treats unexpected statuses as errors', () => {
    const s = newSummary('http://127.0.0.1:1/', 2, 9);
    expect(record(s, 'POST /login', 200, 200)).toBe(true);
    expect(record(s, 'POST /login', 200, 200)).toBe(true);
    expect(record(s, 'GET /orders/:id', 404, 404)).toBe(true);
    expect(record(s, 'GET /orders', 500, 200)).toBe(false);
    expect(record(s, 'GET /health', 0, 200, 'connect ECONNREFUSED')).toBe(false);
    expect(record(s, 'GET /orders/:id', 200, 200, 'order came back different')).toBe(false);
    expect(s.requests).toBe(6);
    expect(s.byRoute).toEqual({
      'POST /login': { '200': 2 },
      'GET /orders/:id': { '404': 1, '200': 1 },
      'GET /orders': { '500': 1 },
      'GET /health': { '0': 1 },
    });
    expect(s.errors).toBe(3);
    expect(s.errorSamples).toEqual([
      { route: 'GET /orders', status: 500, message: 'expected 200, got 500' },
      { route: 'GET /health', status: 0, message: 'connect ECONNREFUSED' },
      { route: 'GET /orders/:id', status: 200, message: 'order came back different' },
    ]);
  });

  it('keeps a bounded number of error samples but counts them all', () => {
    const s = newSummary('http://x/', 1, 1);
    for (let i = 0; i < MAX_ERROR_SAMPLES + 5; i++) record(s, 'GET /health', 503, 200);
    expect(s.errors).toBe(MAX_ERROR_SAMPLES + 5);
    expect(s.errorSamples).toHaveLength(MAX_ERROR_SAMPLES);
    expect(formatSummary(s).at(-1)).toBe('  … and 5 more errors');
  });

  it('prints an aligned table, sorted by route then status', () => {
    const s = newSummary('http://x/', 1, 3);
    record(s, 'POST /orders', 201, 201);
    record(s, 'GET /health', 200, 200);
    record(s, 'GET /orders/:id', 404, 404);
    record(s, 'GET /orders/:id', 200, 200);
    s.ordersCreated = 1;
    s.sessionsRun = 1;
    s.durationMs = 12;
    expect(formatSummary(s)).toEqual([
      'route            status  count',
      'GET /health      200         1',
      'GET /orders/:id  200         1',
      'GET /orders/:id  404         1',
      'POST /orders     201         1',
      '4 requests in 1 sessions (seed 3), 1 orders created, 0 errors, 12 ms',
    ]);
  });
});
