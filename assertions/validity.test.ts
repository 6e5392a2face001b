/**
 * Replay validity and "errors are never noise", on results built in code after what a Python
 * service outside this repository showed (issue 14): a session chain broken at replay, mocks
 * never called, an error burst filed as noise, bodies left unread on reused connections.
 * Every test here fails on the verdict logic before validity existed.
 */
import { describe, expect, it } from 'vitest';
import { configFromYaml, defaultConfig, evaluate, withBudgets } from './index.js';
import { type AnswerSpec, buildResults, type CaseSpec } from './testing/fixtures.js';
import type { Verdict } from './types.js';

const counted = (v: Verdict): string[] => [
  ...new Set(
    v.items.flatMap((i) => i.diffs.filter((d) => !d.noise).map((d) => `${i.route} ${d.kind} ${d.path}`)),
  ),
];
const notReproduced = (v: Verdict): string[] =>
  v.validity.routes.filter((r) => !r.reproduced).map((r) => r.route);
const causesOf = (v: Verdict, route: string): string[] =>
  v.validity.routes.find((r) => r.route === route)?.causes.map((c) => c.cause) ?? [];
const evidenceOf = (v: Verdict, route: string): string =>
  (v.validity.routes.find((r) => r.route === route)?.causes ?? [])
    .flatMap((c) => [c.summary, ...c.evidence])
    .join('\n');

const HEX = (n: number): string => n.toString(16).padStart(32, '0');
const note = (s: number, k: number) => ({ id: `n${s}-${k}`, title: `note ${k}`, owner: 'ana' });

/**
 * Sessions of a notes service: POST /login hands out a session, later requests present it
 * (`Authorization: Session …`) and read notes, each read calling the directory dependency.
 */
function notesCases(
  sessions: number,
  answer: (role: 'recorded' | 'candidate' | 'baseline', s: number, k: number, run: number) => AnswerSpec,
): CaseSpec[] {
  const out: CaseSpec[] = [];
  for (let s = 0; s < sessions; s++) {
    out.push({
      id: `s${s}#login`,
      route: 'POST /login',
      method: 'POST',
      target: '/login',
      session: `s${s}`,
      requestBody: '{"user":"ana","password":"REDACTED-00000000000000aa"}',
      recorded: { status: 200, body: { session: HEX(s + 1) } },
      candidate: (run) => ({ status: 200, body: { session: HEX(1000 + run * 100 + s) } }),
      baseline: (run) => ({ status: 200, body: { session: HEX(5000 + run * 100 + s) } }),
    });
    for (let k = 0; k < 5; k++) {
      out.push({
        id: `s${s}#${k}`,
        route: 'GET /notes/{id}',
        method: 'GET',
        target: `/notes/n${s}-${k}`,
        session: `s${s}`,
        requestHeaders: [['authorization', 'Session REDACTED-0123456789abcdef']],
        recorded: answer('recorded', s, k, 0),
        candidate: (run) => answer('candidate', s, k, run),
        baseline: (run) => answer('baseline', s, k, run),
      });
    }
  }
  return out;
}

const ok = (s: number, k: number): AnswerSpec => ({
  status: 200,
  body: note(s, k),
  calls: ['GET directory /users/ana'],
});

describe('validity: the reference must reproduce the recording before the candidate is judged', () => {
  const tokens = Array.from({ length: 8 }, (_, s) => ({
    id: `session-${s}`,
    kind: 'session',
    origin: { exchange: `s${s}#login`, in: 'response' as const, where: 'jsonpath:$.session' },
  }));

  it('a session chain broken at replay is an error naming the credential, though the baseline shares it', () => {
    // both builds answer 401 after login; the candidate also carries a regression no one can see
    const results = buildResults(
      notesCases(8, (role, s, k) =>
        role === 'recorded' ? ok(s, k) : { status: 401, body: { error: 'no such session' } },
      ),
      { baselineRuns: 1 },
    );
    const v = evaluate(results, { ...defaultConfig(), tokens });
    expect(v).toMatchObject({ status: 'error', exitCode: 3 });
    expect(v.validity).toMatchObject({ reference: 'baseline', runs: ['baseline'], reproduced: false });
    expect(notReproduced(v)).toEqual(['GET /notes/{id}']);
    const route = v.validity.routes.find((r) => r.route === 'GET /notes/{id}');
    expect(route).toMatchObject({ answers: 40, statusChanged: 40, recordedCalls: 40, callsMade: 0 });
    expect(causesOf(v, 'GET /notes/{id}')[0]).toBe('credential');
    const evidence = evidenceOf(v, 'GET /notes/{id}');
    expect(evidence).toMatch(/40 answers 401 ×40 where the recording had 200 ×40/);
    expect(evidence).toMatch(/authorization: Session …/i);
    expect(evidence).toMatch(
      /handed out by POST \/login \(token session-0, session, at jsonpath:\$\.session\)/,
    );
    expect(v.validity.message).toMatch(/did not reproduce the recording: the baseline \(baseline\)/);
    expect(v.validity.message).toMatch(
      /GET \/notes\/\{id\} \(40\/40 answers in another status class \(100%\), 0\/40 recorded calls made \(0%\)\)/,
    );
    expect(v.validity.note).toBeUndefined();
  });

  it('without tokens for the credential, says it may be a static secret or a derived value', () => {
    const results = buildResults(
      notesCases(3, (role, s, k) => (role === 'recorded' ? ok(s, k) : { status: 403, body: {} })),
      { baselineRuns: 1 },
    );
    const v = evaluate(results);
    expect(causesOf(v, 'GET /notes/{id}')).toEqual(['credential']);
    expect(evidenceOf(v, 'GET /notes/{id}')).toMatch(/--secrets FILE.*derived/s);
    expect(evidenceOf(v, 'GET /notes/{id}')).toMatch(/redaction placeholder/);
  });

  it('a derived credential: the session is carried, a proof over the request is not', () => {
    const cases = notesCases(3, (role, s, k) =>
      role === 'recorded' || k > 0
        ? ok(s, k)
        : { status: 200, body: note(s, k), calls: ['GET directory /users/ana'] },
    );
    for (let s = 0; s < 3; s++)
      cases.push({
        id: `s${s}#share`,
        route: 'POST /notes/{id}/share',
        method: 'POST',
        target: `/notes/n${s}-0/share`,
        session: `s${s}`,
        requestHeaders: [
          ['authorization', 'Session REDACTED-0123456789abcdef'],
          ['x-proof', '9f2c41d0e7b5a3c8f1e6d2b4a7c9e0f3d5b8a1c4e7f0a3d6b9c2e5f8a1d4b7c0'],
        ],
        requestBody: '{"with":"team"}',
        recorded: { status: 200, body: { link: '/s/1' } },
        candidate: { status: 401, body: { error: 'bad proof' } },
        baseline: { status: 401, body: { error: 'bad proof' } },
      });
    const v = evaluate(buildResults(cases, { baselineRuns: 1 }), { ...defaultConfig(), tokens });
    expect(notReproduced(v)).toEqual(['POST /notes/{id}/share']);
    const evidence = evidenceOf(v, 'POST /notes/{id}/share');
    expect(evidence).toMatch(/sends authorization: Session … \(a redaction placeholder\), x-proof: …/);
    expect(evidence).toMatch(
      /the session itself was carried: 15 other requests of the same sessions presenting authorization answered as recorded .*these requests also present x-proof, .*retap cannot recompute it/,
    );
  });

  it('a login refused because its password was redacted: names the placeholder in the body and --secrets', () => {
    const results = buildResults(
      notesCases(2, (role, s, k) => (role === 'recorded' ? ok(s, k) : { status: 401, body: {} })).map((c) =>
        c.route === 'POST /login'
          ? { ...c, candidate: { status: 401, body: {} }, baseline: { status: 401, body: {} } }
          : c,
      ),
      { baselineRuns: 1 },
    );
    const v = evaluate(results);
    expect(evidenceOf(v, 'POST /login')).toMatch(
      /POST \/login carried a redaction placeholder in its body where the client sent a secret .*--secrets FILE/,
    );
  });

  it('mocks >= 100% counts against the recorded calls: 0 of 40 made is a failure, not a vacuous pass', () => {
    // answers as recorded, but no dependency call was made (e.g. answered from a cache)
    const results = buildResults(
      notesCases(8, (role, s, k) => (role === 'recorded' ? ok(s, k) : { status: 200, body: note(s, k) })),
    );
    const v = evaluate(results, { ...defaultConfig(), validity: { maxStatusChange: 0.5, minCallsMade: 0 } });
    const mocks = v.budgets.find((b) => b.name === 'mocks >= 100%');
    expect(mocks).toMatchObject({ status: 'fail', measured: 0, samples: 40 });
    expect(mocks?.message).toMatch(
      /0 of 40 outbound calls matched a recorded answer; 40 recorded calls were not made/,
    );
    expect(v.mocks).toMatchObject({ calls: 0, recordedCalls: 40, rate: 0 });
    const perRoute = evaluate(results, withBudgets(defaultConfig(), ['GET /notes/{id}: mocks >= 100%']));
    expect(perRoute.budgets[0]).toMatchObject({ status: 'fail', measured: 0 });
  });

  it('recorded calls not made are a broken replay of their own, with the calls named', () => {
    const results = buildResults(
      notesCases(4, (role, s, k) => (role === 'recorded' ? ok(s, k) : { status: 200, body: note(s, k) })),
      { baselineRuns: 1 },
    );
    const v = evaluate(results);
    expect(v.status).toBe('error');
    expect(causesOf(v, 'GET /notes/{id}')).toEqual(['calls-not-made']);
    expect(evidenceOf(v, 'GET /notes/{id}')).toMatch(
      /20 of 20 recorded calls missing where the answer kept its status: GET directory \/users\/ana \(recorded 20, made 0\)/,
    );
  });

  it('a dependency that cannot be mocked: misses with the closest recording, and mock-skipped calls', () => {
    const cases = notesCases(4, (role, s, k) =>
      role === 'recorded'
        ? ok(s, k)
        : { status: 502, body: { error: 'directory' }, calls: ['GET directory /users/ana'] },
    );
    const misses = cases
      .filter((c) => c.route === 'GET /notes/{id}')
      .map((c) => ({
        method: 'GET',
        host: 'directory',
        target: '/users/ana?nonce=417',
        reason: 'no recorded call with this query',
        closest: 'GET directory /users/ana?nonce=93 (query nonce differs)',
        during: c.id,
      }));
    const v = evaluate(buildResults(cases, { baselineRuns: 1, baselineMisses: misses }));
    expect(v.status).toBe('error');
    expect(causesOf(v, 'GET /notes/{id}')[0]).toBe('dependency');
    expect(evidenceOf(v, 'GET /notes/{id}')).toMatch(
      /20 calls the mocks could not answer: GET directory \/users\/ana ×20/,
    );
    expect(evidenceOf(v, 'GET /notes/{id}')).toMatch(
      /closest recording: GET directory \/users\/ana\?nonce=93/,
    );

    const skipped = buildResults(
      notesCases(2, (role, s, k) => (role === 'recorded' ? ok(s, k) : { status: 503, body: {} })),
      {
        baselineRuns: 1,
        warnings: [
          {
            code: 'mock-skipped',
            message: 'recorded call rec-s0#1-out0#0 cannot be mocked: protocol redis is not served by mocks',
          },
        ],
      },
    );
    const w = evaluate(skipped);
    expect(causesOf(w, 'GET /notes/{id}')[0]).toBe('dependency');
    expect(evidenceOf(w, 'GET /notes/{id}')).toMatch(
      /1 recorded call of this route cannot be mocked \(runner warning mock-skipped\): GET directory \/users\/ana: protocol redis/,
    );
  });

  it('connection reuse: 501 right after a request whose body the build left unread', () => {
    const cases: CaseSpec[] = [];
    for (let s = 0; s < 6; s++) {
      cases.push({
        id: `u${s}#0`,
        route: 'POST /notes/{id}/attachments',
        method: 'POST',
        target: `/notes/n${s}/attachments`,
        session: `u${s}`,
        requestBody: 'x'.repeat(2048),
        recorded: { status: 202, body: { queued: true } },
        candidate: { status: 202, body: { queued: true } },
        baseline: { status: 202, body: { queued: true } },
      });
      cases.push({
        id: `u${s}#1`,
        route: 'GET /notes',
        method: 'GET',
        target: '/notes',
        session: `u${s}`,
        recorded: { status: 200, body: { notes: [] } },
        candidate: { status: 501, body: 'Unsupported method' },
        baseline: { status: 501, body: 'Unsupported method' },
      });
    }
    const v = evaluate(buildResults(cases, { baselineRuns: 1 }));
    expect(v.status).toBe('error');
    expect(notReproduced(v)).toEqual(['GET /notes']);
    expect(causesOf(v, 'GET /notes')).toEqual(['connection']);
    expect(evidenceOf(v, 'GET /notes')).toMatch(
      /POST \/notes\/n0\/attachments \(2048 bytes\), then GET \/notes → 501.*separate connections: replay with --connections recorded/s,
    );

    // the driver says which connection each request went out on: exact, and names the mode
    const pooled = buildResults(cases, { baselineRuns: 1 });
    for (const run of pooled.runs) {
      (run as { connections?: object }).connections = { mode: 'pooled', opened: 6, reopened: 0 };
      run.items.forEach((it, i) => {
        (it.client as { socket?: object }).socket = {
          port: 40000 + (i >> 1),
          openedUs: 1,
          seq: i % 2,
          sentUs: i,
        };
      });
    }
    const p = evaluate(pooled);
    expect(evidenceOf(p, 'GET /notes')).toMatch(
      /each after a request with a body on the same connection.*this replay pooled them \(--connections pooled\)/s,
    );
    // a request first on its connection had nothing left before it: not this cause
    for (const run of pooled.runs)
      for (const it of run.items) (it.client as { socket?: { seq: number } }).socket!.seq = 0;
    expect(causesOf(evaluate(pooled), 'GET /notes')).toEqual(['server-error']);
  });

  it('an unreachable build: every request refused', () => {
    const v = evaluate(
      buildResults(
        notesCases(3, (role, s, k) =>
          role === 'recorded' ? ok(s, k) : { status: 0, error: 'ECONNREFUSED' },
        ).map((c) => ({ ...c, candidate: { status: 0, error: 'ECONNREFUSED' } })),
      ),
    );
    expect(v.status).toBe('error');
    expect(notReproduced(v)).toEqual(['GET /notes/{id}', 'POST /login']);
    expect(causesOf(v, 'POST /login')).toEqual(['unreachable']);
    expect(evidenceOf(v, 'GET /notes/{id}')).toMatch(/15 requests on this route: ECONNREFUSED ×15/);
    expect(v.validity.note).toMatch(/No baseline ran/);
  });

  it('a created id not carried: 404 on ids an earlier answer of the session handed out', () => {
    const cases: CaseSpec[] = [];
    for (let s = 0; s < 4; s++) {
      const id = `7f3a${s}c1d2e3f4a5b6`;
      cases.push({
        id: `c${s}#0`,
        route: 'POST /notes',
        method: 'POST',
        target: '/notes',
        session: `c${s}`,
        requestBody: '{"title":"t"}',
        recorded: { status: 201, body: { id } },
        candidate: { status: 201, body: { id: `9e${s}00000000000000` } },
        baseline: { status: 201, body: { id: `8d${s}00000000000000` } },
      });
      cases.push({
        id: `c${s}#1`,
        route: 'GET /notes/{id}',
        method: 'GET',
        target: `/notes/${id}`,
        session: `c${s}`,
        recorded: { status: 200, body: { id } },
        candidate: { status: 404, body: {} },
        baseline: { status: 404, body: {} },
      });
    }
    const v = evaluate(buildResults(cases, { baselineRuns: 1 }));
    expect(causesOf(v, 'GET /notes/{id}')).toEqual(['created-id']);
  });

  it('a regression the thresholds leave to the judgement: one of two calls dropped, without a baseline', () => {
    const cases = notesCases(4, (role, s, k) =>
      role === 'recorded'
        ? { ...ok(s, k), calls: ['GET directory /users/ana', 'POST audit /events'] }
        : { ...ok(s, k), calls: ['GET directory /users/ana'] },
    );
    const v = evaluate(buildResults(cases));
    expect(v.validity.reproduced).toBe(true);
    expect(v.validity.routes.find((r) => r.route === 'GET /notes/{id}')).toMatchObject({
      recordedCalls: 40,
      callsMade: 20,
      callsMadeShare: 0.5,
    });
    expect(v.status).toBe('fail-assertions');
    expect(counted(v)).toContain('GET /notes/{id} missing-call outbound:POST audit /events');
  });

  it('thresholds come from retap.yaml', () => {
    const cfg = configFromYaml({ validity: { maxStatusChange: 1, minCallsMade: 0 } });
    const results = buildResults(
      notesCases(3, (role, s, k) => (role === 'recorded' ? ok(s, k) : { status: 401, body: {} })),
      { baselineRuns: 1 },
    );
    expect(evaluate(results, cfg).validity.reproduced).toBe(true);
    expect(() => configFromYaml({ validity: { maxStatusChange: 2 } })).toThrow(
      /validity\.maxStatusChange: must be a number from 0 to 1/,
    );
    expect(() => configFromYaml({ validity: { minCalls: 1 } })).toThrow(/minCalls is not a known setting/);
  });
});

describe('errors are never noise; noise is learned from the reference only', () => {
  /** 20 reads of one route; `burst(run, i)` says which answers of the candidate are 500. */
  function burstCases(
    burst: (run: number, i: number) => boolean,
    baselineAnswer?: (i: number) => AnswerSpec,
  ) {
    return Array.from(
      { length: 20 },
      (_, i): CaseSpec => ({
        id: `r${i}#0`,
        route: 'GET /notes/{id}',
        method: 'GET',
        target: `/notes/${i}`,
        session: `r${i}`,
        recorded: { status: 200, body: { id: i, title: 't' } },
        candidate: (run) =>
          burst(run, i)
            ? { status: 500, body: { error: 'boom' } }
            : { status: 200, body: { id: i, title: 't' } },
        baseline: baselineAnswer ? baselineAnswer(i) : { status: 200, body: { id: i, title: 't' } },
      }),
    );
  }
  // about a fifth of the answers, other ones in each run
  const fifth = (run: number, i: number): boolean => (i * 7 + run * 3) % 5 === 0;

  it('a 500 burst on a fifth of a route is caught with a baseline and two runs (it was filed as noise)', () => {
    const v = evaluate(buildResults(burstCases(fifth), { candidateRuns: 2, baselineRuns: 2 }));
    expect(v.validity.reproduced).toBe(true);
    expect(v.status).toBe('fail-assertions');
    expect(counted(v)).toEqual(['GET /notes/{id} status-class status', 'GET /notes/{id} flaky status']);
    expect(v.noise.filter((n) => n.path === 'status')).toEqual([]);
    const flaky = v.items.flatMap((i) => i.diffs).find((d) => d.kind === 'flaky');
    expect(flaky).toMatchObject({ rating: 'breaking' });
    expect(flaky?.message).toMatch(/^candidate#2: status 200 → 500 — the candidate fails intermittently/);
  });

  it('the same burst without a baseline: the candidate is the reference, its errors still count', () => {
    const v = evaluate(buildResults(burstCases(fifth), { candidateRuns: 2 }));
    expect(v.validity).toMatchObject({ reference: 'candidate', reproduced: true });
    expect(v.status).toBe('fail-assertions');
    expect(counted(v)).toContain('GET /notes/{id} status-class status');
  });

  it('an error the baseline shares is not excused', () => {
    const v = evaluate(
      buildResults(
        burstCases(
          (_run, i) => i === 3,
          (i) =>
            i === 3 ? { status: 500, body: { error: 'boom' } } : { status: 200, body: { id: i, title: 't' } },
        ),
        { baselineRuns: 1 },
      ),
    );
    expect(v.validity.reproduced).toBe(true);
    expect(v.status).toBe('fail-assertions');
    const d = v.items.find((i) => i.id === 'r3#0')?.diffs.find((x) => x.target === 'status');
    expect(d).toMatchObject({ kind: 'status-class', candidate: 500, baseline: 500 });
    expect(d?.noise).toBeUndefined();
  });

  it('a transport error or timeout shared with the baseline counts too', () => {
    const cases = burstCases(() => false).map((c, i) =>
      i === 5
        ? {
            ...c,
            candidate: { status: 0, error: 'timeout after 10000ms' },
            baseline: { status: 0, error: 'timeout after 10000ms' },
          }
        : c,
    );
    const v = evaluate(buildResults(cases, { baselineRuns: 1 }));
    expect(v.status).toBe('fail-assertions');
    expect(counted(v)).toEqual(['GET /notes/{id} no-response response']);
  });

  it('a candidate that differs from itself where the baseline does not is flaky, not noise', () => {
    const cases: CaseSpec[] = Array.from({ length: 10 }, (_, i) => ({
      id: `f${i}#0`,
      route: 'GET /rank/{id}',
      method: 'GET',
      target: `/rank/${i}`,
      recorded: { status: 200, body: { rank: i } },
      candidate: (run) => ({ status: 200, body: { rank: run === 1 && i < 4 ? i + 100 : i } }),
      baseline: { status: 200, body: { rank: i } },
    }));
    const v = evaluate(buildResults(cases, { candidateRuns: 2, baselineRuns: 2 }));
    expect(v.status).toBe('fail-assertions');
    expect(counted(v)).toEqual(['GET /rank/{id} flaky $.rank']);
    const d = v.items[0]?.diffs.find((x) => x.kind === 'flaky');
    expect(d?.message).toMatch(
      /candidate#2 answered differently from the first run: \$\.rank: 0 → 100 — the candidate differs from itself here in 40% of GET \/rank\/\{id\}, the reference build in 0%/,
    );
    // the same variance in the baseline makes it noise for both
    const both = cases.map((c, i) => ({
      ...c,
      baseline: (run: number) => ({ status: 200, body: { rank: run === 1 && i < 4 ? i + 100 : i } }),
    }));
    expect(evaluate(buildResults(both, { candidateRuns: 2, baselineRuns: 2 })).status).toBe('pass');
  });

  it('noise is learned from recording vs baseline: a value the baseline changes too is not reported', () => {
    const cases: CaseSpec[] = Array.from({ length: 10 }, (_, i) => ({
      id: `w${i}#0`,
      route: 'GET /who',
      method: 'GET',
      target: '/who',
      recorded: { status: 200, body: { worker: 'w1' } },
      candidate: { status: 200, body: { worker: `w${(i % 3) + 2}` } },
      baseline: { status: 200, body: { worker: `w${((i + 1) % 3) + 2}` } },
    }));
    const v = evaluate(buildResults(cases, { baselineRuns: 1 }));
    expect(v.status).toBe('pass');
    expect(v.noise.map((n) => [n.path, n.source])).toContainEqual(['$.worker', 'noise-run']);
  });
});
