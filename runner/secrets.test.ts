import { describe, expect, it } from 'vitest';
import type { Exchange, HeaderList } from '../core/exchange.js';
import type { ReplayRun } from '../core/results.js';
import { createRedactor } from '../snapshots/redaction.js';
import { sampleExchange } from '../snapshots/sample.js';
import { discoverTokens, emitFiles } from '../snapshots/tokens/index.js';
import { createBook, requestView } from './mocks/book.js';
import { signatureOf } from './mocks/signature.js';
import { volatileFromPlaceholders } from './mocks/volatile.js';
import type { ReplayRules } from './rules.js';
import { redactRuns, redactWorkerOutput } from './secrets.js';
import type { WorkerOutput } from './spec.js';

const enc = new TextEncoder();
let n = 0;
function ex(
  method: string,
  target: string,
  headers: HeaderList,
  body: string,
  answer: string,
  over: Partial<Exchange> = {},
): Exchange {
  const i = n++;
  const b = enc.encode(body);
  const a = enc.encode(answer);
  return {
    ...sampleExchange(i * 7 + 1),
    id: `c1#${i}`,
    direction: 'inbound',
    peer: { addr: '127.0.0.1', port: 40001 },
    connection: { id: 'c1', order: i },
    request: {
      method,
      target,
      version: 'HTTP/1.1',
      headers,
      body: { data: b, size: b.length, truncated: false },
    },
    response: {
      status: 200,
      version: 'HTTP/1.1',
      headers: [['Content-Type', 'application/json']],
      body: { data: a, size: a.length, truncated: false },
    },
    timing: {
      startUs: 1_700_000_000_000_000 + i * 1000,
      requestEndNs: 1,
      responseStartNs: 2,
      responseEndNs: 3,
    },
    ...over,
  };
}

const REC_TOKEN = 'rec0f1e2d3c4b5a69788796a5b4c3d2e1';
const LIVE_TOKEN = 'live9a8b7c6d5e4f30112233445566778';
const BASIC = Buffer.from('ann:open-sesame-42').toString('base64');

async function setup() {
  const raw = [
    ex('POST', '/login', [['Authorization', `Basic ${BASIC}`]], '', `{"session":"${REC_TOKEN}"}`),
    ex('GET', '/me', [['Authorization', `Session ${REC_TOKEN}`]], '', '{"name":"ann"}'),
  ];
  const r = createRedactor(undefined);
  for (const e of raw) r.learn(e);
  const recorded = raw.map((e) => r.apply(e));
  const emitted = emitFiles(await discoverTokens(recorded));
  const rules: ReplayRules = { ...emitted, source: 'discovered' };
  const phBasic = r.placeholderOf(BASIC);
  const phToken = r.placeholderOf(REC_TOKEN);
  return { recorded, rules, phBasic, phToken };
}

const text = (b: Uint8Array | undefined) => Buffer.from(b ?? new Uint8Array()).toString();

describe('replay output redaction', () => {
  it('maps live tokens to the recorded placeholder and restored secrets back to theirs', async () => {
    const { recorded, rules, phBasic, phToken } = await setup();
    // what the build answered and what the driver sent, live
    const live = [
      ex('POST', '/login', [['Authorization', `Basic ${BASIC}`]], '', `{"session":"${LIVE_TOKEN}"}`, {
        id: 'live-0',
      }),
      ex(
        'GET',
        '/me',
        [['Authorization', `Session ${LIVE_TOKEN}`]],
        '',
        `{"name":"ann","echo":"${LIVE_TOKEN}"}`,
        { id: 'live-1' },
      ),
    ];
    const run: ReplayRun = {
      label: 'candidate',
      role: 'candidate',
      build: { command: 'x', port: 1, env: { API_TOKEN: 'tok-configured-999', MODE: 'fast' } },
      startedAt: '',
      durationMs: 0,
      items: recorded.map((r, i) => ({
        id: r.id,
        client: {
          method: live[i]!.request.method,
          target: live[i]!.request.target,
          headers: live[i]!.request.headers,
          status: 200,
          responseHeaders: live[i]!.response!.headers,
          responseBody: live[i]!.response!.body.data,
          durationMs: 1,
        },
        live: live[i]!,
        outbound: [],
      })),
      mocks: {
        calls: 1,
        matched: 0,
        misses: [{ method: 'GET', host: 'dep:80', target: `/x?token=${LIVE_TOKEN}`, reason: 'no match' }],
      },
      capture: { exchanges: 2, ringbufDrops: 0, userBatchDrops: 0, gapBytes: 0 },
      warnings: [{ code: 'w', message: `value ${LIVE_TOKEN} seen` }],
    };
    const secrets = new Map<string, string | null>([[phBasic, BASIC]]);
    redactRuns([run], { enabled: true, secrets, rules, recorded: new Map(recorded.map((r) => [r.id, r])) });
    const all = JSON.stringify(run, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString() : v));
    expect(all).not.toContain(LIVE_TOKEN);
    expect(all).not.toContain(BASIC);
    expect(all).not.toContain('tok-configured-999');
    expect(all).toContain('"MODE":"fast"');
    // the live login answer reads as the recorded one
    expect(text(run.items[0]!.live!.response!.body.data)).toBe(`{"session":"${phToken}"}`);
    expect(text(run.items[0]!.client.responseBody)).toBe(`{"session":"${phToken}"}`);
    expect(run.items[1]!.client.headers[0]).toEqual(['Authorization', `Session ${phToken}`]);
    expect(run.items[0]!.client.headers[0]).toEqual(['Authorization', `Basic ${phBasic}`]);
    expect(run.mocks.misses[0]!.target).toBe(`/x?token=${phToken}`);
  });

  it('redacts the worker output before it is written', async () => {
    const { recorded, rules, phToken } = await setup();
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const out: WorkerOutput = {
      items: [
        {
          id: recorded[0]!.id,
          method: 'POST',
          target: '/login',
          headers: [],
          status: 200,
          responseHeaders: [['Content-Type', 'application/json']],
          responseBody: b64(`{"session":"${LIVE_TOKEN}"}`),
          durationMs: 1,
        },
        {
          id: recorded[1]!.id,
          method: 'GET',
          target: '/me',
          headers: [['Authorization', `Session ${LIVE_TOKEN}`]],
          status: 200,
          responseHeaders: [],
          responseBody: b64('{}'),
          durationMs: 1,
        },
      ],
      mocks: { calls: 0, matched: 0, misses: [] },
      warnings: [],
      buildLog: `issued ${LIVE_TOKEN}\n`,
    };
    redactWorkerOutput(out, {
      enabled: true,
      secrets: new Map(),
      rules,
      recorded: new Map(recorded.map((r) => [r.id, r])),
    });
    expect(JSON.stringify(out)).not.toContain(LIVE_TOKEN);
    expect(Buffer.from(out.items[0]!.responseBody!, 'base64').toString()).toBe(`{"session":"${phToken}"}`);
    expect(out.items[1]!.headers[0]).toEqual(['Authorization', `Session ${phToken}`]);
    expect(out.buildLog).toBe(`issued ${phToken}\n`);
  });
});

describe('mocks and redacted credentials', () => {
  it('a recorded call with a placeholder matches the live call carrying the real value', () => {
    const rec = ex(
      'POST',
      '/oauth/token',
      [['Content-Type', 'application/x-www-form-urlencoded']],
      'grant_type=client_credentials&client_id=app&client_secret=REDACTED-00aa11bb22cc33dd',
      '{}',
      { direction: 'outbound' },
    );
    const rec2 = ex('GET', '/v1/data?key=REDACTED-44ee55ff66007788&page=2', [], '', '{}', {
      direction: 'outbound',
    });
    const known = volatileFromPlaceholders([rec, rec2]);
    const book = createBook([rec, rec2], known);
    const live = signatureOf(
      {
        ...requestView(rec),
        body: enc.encode('grant_type=client_credentials&client_id=app&client_secret=the-real-one'),
      },
      known,
    );
    expect(book.match(live)?.entry.exchange.id).toBe(rec.id);
    expect(
      book.match(signatureOf({ ...requestView(rec2), target: '/v1/data?page=2&key=realkey123' }, known))
        ?.entry.exchange.id,
    ).toBe(rec2.id);
    // other fields still decide
    expect(
      book.match(signatureOf({ ...requestView(rec2), target: '/v1/data?page=3&key=realkey123' }, known)),
    ).toBeUndefined();
  });
});
