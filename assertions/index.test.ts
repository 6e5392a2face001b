import { describe, expect, it } from 'vitest';
import { configFromYaml, defaultConfig, evaluate, withBudgets } from './index.js';
import {
  buildResults,
  type CaseSpec,
  mixedResults,
  type ShopVariant,
  shopResults,
} from './testing/fixtures.js';
import type { Verdict } from './types.js';

const counted = (v: Verdict): string[] => [
  ...new Set(
    v.items.flatMap((i) => i.diffs.filter((d) => !d.noise).map((d) => `${i.route} ${d.kind} ${d.path}`)),
  ),
];

const demoBudgets = () =>
  withBudgets(defaultConfig(), ['GET /orders/{id}: p95 < +50%', 'p99 < 100ms', 'errors < 1%']);

describe('evaluate: the mixed fixture', () => {
  const v = evaluate(
    mixedResults(),
    withBudgets(defaultConfig(), ['GET /reports/{id}: p95 < 250ms', 'p95 < +10%']),
  );

  it('finds every kind of difference with its rating', () => {
    const find = (id: string) => v.items.find((i) => i.id === id);
    expect(find('c1#0')?.status).toBe('pass');
    expect(find('c1#1')?.diffs.filter((d) => !d.noise)).toMatchObject([
      { kind: 'changed-type', path: '$.total', rating: 'breaking', recorded: 39.98, candidate: '39.98' },
    ]);
    expect(
      find('c1#2')
        ?.diffs.filter((d) => !d.noise)
        .map((d) => [d.kind, d.path, d.rating]),
    ).toEqual([
      ['changed-value', '$.qty', 'warning'],
      ['array-length', '$.tags', 'warning'],
      ['new-field', '$.discount', 'warning'],
    ]);
    expect(find('c2#1')?.diffs).toMatchObject([
      { kind: 'status-class', rating: 'breaking', recorded: 200, candidate: 500 },
    ]);
    expect(
      find('c3#0')
        ?.diffs.filter((d) => !d.noise)
        .map((d) => d.kind),
    ).toEqual(['missing-field', 'extra-call', 'missing-call']);
  });

  it('lists noise decisions with their reasons', () => {
    expect(v.noise.map((n) => [n.route, n.path, n.source])).toEqual([
      ['GET /health', 'header:x-request-id', 'volatile-header'],
      ['GET /orders', '$.worker', 'noise-run'],
      ['GET /orders/{id}', 'header:content-length', 'volatile-header'],
      ['POST /orders', '$.createdAt', 'volatile-format'],
      ['POST /orders', 'header:content-length', 'volatile-header'],
    ]);
    expect(v.noise.find((n) => n.source === 'noise-run')).toMatchObject({ noiseRate: 0.5, diffRate: 0.5 });
  });

  it('judges budgets, mocks and capture', () => {
    expect(v.budgets.map((b) => [b.name, b.status])).toEqual([
      ['GET /reports/{id} p95 < 250ms', 'fail'],
      ['p95 < +10%', 'not-judged'],
      ['mocks >= 100%', 'fail'],
    ]);
    expect(v.mocks).toMatchObject({ calls: 5, matched: 4 });
    expect(v.capture.missingLive).toBe(1);
    expect(v.warnings.map((w) => w.code)).toContain('capture-drops');
    expect(v.status).toBe('fail-assertions');
    expect(v.exitCode).toBe(1);
  });
});

describe('evaluate: the shop and its seeded regressions', () => {
  it('passes 20 replays of the unchanged build (no false alarms), with and without a noise run or a baseline', () => {
    for (let seed = 1; seed <= 20; seed++) {
      for (const [candidateRuns, baselineRuns] of [
        [1, 0],
        [2, 0],
        [1, 1],
        [2, 2],
      ] as const) {
        const v = evaluate(shopResults({ seed, candidateRuns, baselineRuns }), demoBudgets());
        expect({
          seed,
          candidateRuns,
          status: v.status,
          diffs: counted(v),
          budgets: v.budgets.filter((b) => b.status === 'fail').map((b) => b.message),
        }).toEqual({
          seed,
          candidateRuns,
          status: 'pass',
          diffs: [],
          budgets: [],
        });
      }
    }
  }, 120_000); // 80 verdicts, each with a bootstrap: ~20 s alone, more next to other suites

  const expectations: Array<[ShopVariant, string, RegExp]> = [
    ['changed-field', 'fail-assertions', /^GET \/orders\/\{id\} changed-type \$\.total$/],
    ['extra-call', 'fail-assertions', /^POST \/orders extra-call outbound:GET inventory \/stock\/SKU-1$/],
    ['error', 'fail-assertions', /^GET \/orders status-class status$/],
  ];
  for (const [variant, status, finding] of expectations) {
    it(`catches ${variant} against a baseline`, () => {
      const v = evaluate(
        shopResults({ variants: [variant], candidateRuns: 2, baselineRuns: 2 }),
        demoBudgets(),
      );
      expect(v.validity).toMatchObject({ reference: 'baseline', reproduced: true });
      expect(v.status).toBe(status);
      expect(counted(v).some((c) => finding.test(c))).toBe(true);
    });
  }

  it('catches changed-field and extra-call without a baseline too', () => {
    for (const [variant, status, finding] of expectations.slice(0, 2)) {
      const v = evaluate(shopResults({ variants: [variant], candidateRuns: 2 }), demoBudgets());
      expect(v.validity.reproduced).toBe(true);
      expect(v.status).toBe(status);
      expect(counted(v).some((c) => finding.test(c))).toBe(true);
    }
  });

  it('without a baseline, a route failing as a whole is an error that says it cannot be told from a broken replay', () => {
    const v = evaluate(shopResults({ variants: ['error'], candidateRuns: 2 }), demoBudgets());
    expect(v).toMatchObject({ status: 'error', exitCode: 3 });
    expect(v.validity).toMatchObject({ reference: 'candidate', reproduced: false });
    expect(v.validity.routes.filter((r) => !r.reproduced).map((r) => r.route)).toEqual(['GET /orders']);
    expect(v.validity.message).toMatch(
      /did not reproduce the recording.*GET \/orders \(25\/50 answers|GET \/orders/,
    );
    expect(v.validity.note).toMatch(/cannot be told from a broken replay environment.*--baseline-cmd/);
    expect(counted(v).some((c) => c === 'GET /orders status-class status')).toBe(true);
  });

  it('catches slow with the latency budget on GET /orders/{id}', () => {
    const v = evaluate(shopResults({ variants: ['slow'] }), demoBudgets());
    expect(v.status).toBe('fail-budgets');
    expect(v.exitCode).toBe(2);
    expect(counted(v)).toEqual([]);
    const b = v.budgets.find((x) => x.name === 'GET /orders/{id} p95 < +50%');
    expect(b).toMatchObject({ status: 'fail', reference: 'recorded', samples: 25, referenceSamples: 25 });
    expect(b?.confidence).toBeGreaterThanOrEqual(0.95);
  });
});

describe('evaluate: noise from a baseline (three-way)', () => {
  const order = { id: 1, total: 10, region: 'eu' };
  const cases = (candidate: object, baseline: object): CaseSpec[] =>
    Array.from({ length: 10 }, (_, i) => ({
      id: `c${i}#0`,
      route: 'GET /o/{id}',
      method: 'GET',
      target: `/o/${i}`,
      recorded: { status: 200, body: order },
      candidate: { status: 200, body: candidate },
      baseline: { status: 200, body: baseline },
    }));

  it('ignores what the baseline also answers and reports what only the candidate changed', () => {
    const v = evaluate(
      buildResults(cases({ ...order, region: 'local', total: '10' }, { ...order, region: 'local' }), {
        baselineRuns: 1,
      }),
    );
    expect(counted(v)).toEqual(['GET /o/{id} changed-type $.total']);
    const region = v.items[0]?.diffs.find((d) => d.path === '$.region');
    expect(region?.noise?.source).toBe('baseline');
    expect(region?.baseline).toBe('local');
    expect(v.items[0]?.diffs.find((d) => d.path === '$.total')?.baseline).toBe(10);
  });

  it('reports a field only when the candidate differs more than the baseline differs from itself', () => {
    // baseline flips `region` between its two runs in 3 of 10 requests; candidate differs in all 10
    const list: CaseSpec[] = Array.from({ length: 10 }, (_, i) => ({
      id: `c${i}#0`,
      route: 'GET /o/{id}',
      method: 'GET',
      target: `/o/${i}`,
      recorded: { status: 200, body: order },
      candidate: { status: 200, body: { ...order, region: 'us' } },
      baseline: (run) => ({ status: 200, body: { ...order, region: run === 1 && i < 3 ? 'us' : 'eu' } }),
    }));
    const v = evaluate(buildResults(list, { baselineRuns: 2 }));
    expect(counted(v)).toEqual(['GET /o/{id} changed-value $.region']);
    // when the baseline is as noisy as the candidate, the field is noise
    const noisy = list.map((c, i) => ({
      ...c,
      candidate: (run: number) => ({
        status: 200,
        body: { ...order, region: run === 0 && i < 3 ? 'us' : 'eu' },
      }),
    }));
    const v2 = evaluate(buildResults(noisy, { baselineRuns: 2, candidateRuns: 2 }));
    expect(counted(v2)).toEqual([]);
    expect(v2.noise.map((n) => n.source)).toContain('noise-run');
  });
});

describe('evaluate: rules, tokens, headers, infrastructure', () => {
  const one = (rec: object, cand: object, headers: Array<[string, string]> = []): CaseSpec[] => [
    {
      id: 'x#0',
      route: 'GET /x',
      method: 'GET',
      target: '/x',
      recorded: { status: 200, body: rec },
      candidate: { status: 200, body: cand, headers },
    },
  ];

  it('applies ignore and keep rules from retap.yaml', () => {
    const r = buildResults(one({ a: 1, at: '2026-01-01T00:00:00Z' }, { a: 2, at: '2026-02-01T00:00:00Z' }));
    const cfg = configFromYaml({
      ignore: [{ route: 'GET /*', path: '$.a', reason: 'counter' }],
      keep: [{ path: '$.at' }],
    });
    const v = evaluate(r, cfg);
    expect(counted(v)).toEqual(['GET /x changed-value $.at']);
    expect(v.noise).toMatchObject([{ path: '$.a', source: 'ignore-rule', reason: 'counter' }]);
  });

  it('uses discovered tokens and header settings', () => {
    const r = buildResults(one({ sid: 'abc' }, { sid: 'xyz' }, [['x-build', '7']]));
    const v = evaluate(r, {
      ...configFromYaml({ headers: { ignore: ['X-Build'], compare: ['content-length'] } }),
      tokens: [
        {
          id: 'sid-1',
          kind: 'session',
          origin: { exchange: 'x#0', in: 'response', where: 'jsonpath:$.sid' },
        },
      ],
    });
    expect(v.items[0]?.diffs.map((d) => [d.path, d.noise?.source])).toEqual([
      ['header:x-build', 'volatile-header'],
      ['$.sid', 'token'],
    ]);
    expect(v.status).toBe('pass');
  });

  it('fails only on breaking differences with failOn: breaking', () => {
    const r = buildResults(one({ a: 1 }, { a: 2, b: 1 }));
    expect(evaluate(r).status).toBe('fail-assertions');
    expect(evaluate(r, configFromYaml({ failOn: 'breaking' })).status).toBe('pass');
  });

  it('reports an infrastructure error with exit code 3', () => {
    const r = buildResults(one({ a: 1 }, { a: 1 }), {
      runError: { code: 'RETAP_BUILD_NOT_READY', message: 'build did not listen on :8080 within 30s' },
    });
    const v = evaluate(r);
    expect(v).toMatchObject({ status: 'error', exitCode: 3, errors: [{ code: 'RETAP_BUILD_NOT_READY' }] });
  });

  it('reports a transport error as a breaking no-response', () => {
    const r = buildResults([
      {
        id: 'x#0',
        route: 'GET /x',
        method: 'GET',
        target: '/x',
        recorded: { status: 200, body: {} },
        candidate: { status: 0, error: 'ECONNRESET' },
      },
    ]);
    const v = evaluate(r);
    expect(v.items[0]?.diffs).toMatchObject([
      { kind: 'no-response', rating: 'breaking', candidate: 'ECONNRESET' },
    ]);
  });

  it('rejects bad config with the setting named', () => {
    expect(() => configFromYaml({ budgets: ['p95 < fast'] })).toThrow(/budgets\[0\]/);
    expect(() => configFromYaml({ ignore: [{ route: 'GET /x' }] })).toThrow(/ignore\[0\]: names nothing/);
    expect(() => configFromYaml({ ignore: [{ path: 'a.b' }] })).toThrow(/must start with \$/);
    expect(() => configFromYaml({ latency: { minSample: 3 } })).toThrow(/minSample is not a known setting/);
  });
});
