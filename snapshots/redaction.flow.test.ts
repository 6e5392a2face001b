/**
 * Redaction that keeps flows: secrets classified by value, every occurrence replaced by the same
 * placeholder, nothing else touched — and no credential in clear on disk while a big snapshot is
 * written (spill runs included).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { Exchange, HeaderList } from '../core/exchange.js';
import { createMatcher } from './redaction/matcher.js';
import { encodeExchange, fromStored } from './format.js';
import { createRedactor, NEED_FULL, NEED_HEAD, NEED_NONE, PLACEHOLDER } from './redaction.js';
import { openSnapshot } from './reader.js';
import { sampleExchange } from './sample.js';
import { discoverTokens } from './tokens/discover.js';
import { emitFiles } from './tokens/emit.js';
import { createReplayContext } from './transforms/engine.js';
import { validateSnapshot } from './validate.js';
import { createSnapshotWriter } from './writer.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

let seq = 0;
function http(
  method: string,
  target: string,
  reqHeaders: HeaderList,
  reqBody: string,
  status: number,
  resHeaders: HeaderList,
  resBody: string | Uint8Array,
  over: Partial<Exchange> = {},
): Exchange {
  const i = seq++;
  const base = sampleExchange(i * 7 + 1);
  const rb = enc.encode(reqBody);
  const sb = typeof resBody === 'string' ? enc.encode(resBody) : resBody;
  return {
    ...base,
    id: `c1#${i}`,
    direction: 'inbound',
    peer: { addr: '127.0.0.1', port: 41000 },
    connection: { id: 'c1', order: i },
    request: {
      method,
      target,
      version: 'HTTP/1.1',
      headers: reqHeaders,
      body: { data: rb, size: rb.length, truncated: false },
    },
    response: {
      status,
      reason: 'OK',
      version: 'HTTP/1.1',
      headers: resHeaders,
      body: { data: sb, size: sb.length, truncated: false },
    },
    timing: {
      startUs: 1_700_000_000_000_000 + i * 1000,
      requestEndNs: 1000,
      responseStartNs: 2000,
      responseEndNs: 3000,
    },
    ...over,
  };
}

const SESSION = '3f9c2b7e5d1a40c8b6e2f7a9d0c3b1e4';
const CREATED = '7d41c6e2-52b0-4f3b-9a1e-0c2d8e6f4a11';

/** A Python-like service: login answers {"session": hex}; later requests say `Session <hex>`. */
function sessionChain(): Exchange[] {
  const json: HeaderList = [['Content-Type', 'application/json']];
  return [
    http(
      'POST',
      '/login',
      json,
      '{"user":"ann","password":"correct horse battery"}',
      200,
      json,
      `{"session": "${SESSION}", "user": "ann"}`,
    ),
    http(
      'POST',
      '/notes',
      [...json, ['Authorization', `Session ${SESSION}`]],
      '{"text":"hi"}',
      201,
      json,
      `{"id": "${CREATED}", "requestId": "req-8812-aa"}`,
    ),
    http(
      'GET',
      `/notes/${CREATED}`,
      [['Authorization', `Session ${SESSION}`]],
      '',
      200,
      json,
      `{"id": "${CREATED}", "text": "hi", "created": "2024-05-01T10:00:00Z"}`,
    ),
  ];
}

function redactAll(list: Exchange[], cfg = {}): { out: Exchange[]; r: ReturnType<typeof createRedactor> } {
  const r = createRedactor(cfg);
  for (const ex of list) r.learn(ex);
  return { out: list.map((ex) => r.apply(ex)), r };
}

const all = (ex: Exchange): string =>
  [
    ex.request.target,
    ...ex.request.headers.map(([n, v]) => `${n}: ${v}`),
    dec.decode(ex.request.body.data),
    ...(ex.response
      ? [
          ...ex.response.headers.map(([n, v]) => `${n}: ${v}`),
          dec.decode(ex.response.body.decoded ?? ex.response.body.data),
        ]
      : []),
    JSON.stringify(ex.extras ?? {}),
  ].join('\n');

describe('matcher', () => {
  it('finds every occurrence of many patterns, leftmost then longest, and nothing else', () => {
    const m = createMatcher();
    const tokens = Array.from({ length: 5000 }, (_, i) => `tok${i.toString(36).padStart(6, '0')}xyz`);
    for (const t of tokens) m.add(t);
    const long = m.add('tok00000gxyz-and-more');
    const text = `a ${tokens[17]} b ${tokens[4999]}${tokens[3]} c tok00000gxyz-and-more tok0000`;
    const hits = m.find(text).map((h) => text.slice(h.start, h.end));
    expect(hits).toEqual([tokens[17], tokens[4999], tokens[3], 'tok00000gxyz-and-more']);
    expect(m.pattern(long)).toBe('tok00000gxyz-and-more');
    expect(m.test('nothing here at all, tok000')).toBe(false);
    expect(m.replace(`x${tokens[1]}y`, (i) => `<${i}>`)).toBe('x<1>y');
  });

  it('does not degrade on patterns sharing a long prefix (JWTs of one issuer)', () => {
    const m = createMatcher();
    const head = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.';
    for (let i = 0; i < 2000; i++) m.add(`${head}eyJzdWIiOiI${i}fQ.sig${(i * 7919).toString(36)}`);
    const text = `Bearer ${head}eyJzdWIiOiI42fQ.sig${(42 * 7919).toString(36)} and ${head}unknown`;
    expect(m.find(text)).toHaveLength(1);
  });
});

describe('redaction by value', () => {
  it('a token in a login answer gets the placeholder its later use has, whichever comes first', () => {
    const { out } = redactAll(sessionChain());
    const login = JSON.parse(dec.decode(out[0]!.response!.body.data)) as { session: string };
    expect(login.session).toMatch(PLACEHOLDER);
    expect(out[1]!.request.headers.find(([n]) => n === 'Authorization')![1]).toBe(`Session ${login.session}`);
    expect(out[2]!.request.headers[0]![1]).toBe(`Session ${login.session}`);
    for (const ex of out) expect(all(ex)).not.toContain(SESSION);
    // the password of the login form is redacted where it stands
    expect(dec.decode(out[0]!.request.body.data)).toMatch(/"password":"REDACTED-[0-9a-f]{16}"/);
  });

  it('classifies by value even when only a later request shows the value is a credential', () => {
    // the answer's field name says nothing ("handle"); the Authorization header does
    const handle = 'Zx81Qp0LmN3vT7kRw2sYb9';
    const list = [
      http('POST', '/start', [], '', 200, [['Content-Type', 'application/json']], `{"handle":"${handle}"}`),
      http('GET', '/me', [['Authorization', `Token ${handle}`]], '', 200, [], 'ok'),
      http('GET', '/custom', [['Authorization', handle]], '', 200, [], 'ok'),
    ];
    const { out } = redactAll(list);
    const ph = (JSON.parse(dec.decode(out[0]!.response!.body.data)) as { handle: string }).handle;
    expect(ph).toMatch(PLACEHOLDER);
    expect(out[1]!.request.headers[0]![1]).toBe(`Token ${ph}`);
    expect(out[2]!.request.headers[0]![1]).toBe(ph);
  });

  it('distinct values get distinct placeholders; the same value the same one everywhere', () => {
    const a = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6';
    const b = 'f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5';
    const { out } = redactAll([
      http('GET', '/1', [['Authorization', `Bearer ${a}`]], '', 200, [], ''),
      http('GET', '/2', [['Authorization', `Bearer ${b}`]], '', 200, [], ''),
      http('GET', '/3', [['X-Auth-Token', a]], '', 200, [], `echo ${a} and ${b}`),
    ]);
    const pa = out[0]!.request.headers[0]![1].split(' ')[1]!;
    const pb = out[1]!.request.headers[0]![1].split(' ')[1]!;
    expect(pa).not.toBe(pb);
    expect(out[2]!.request.headers[0]![1]).toBe(pa);
    expect(dec.decode(out[2]!.response!.body.data)).toBe(`echo ${pa} and ${pb}`);
  });

  it('finds JSON-escaped and percent-encoded forms in targets, headers and bodies', () => {
    const secret = 'q/Zp+8Xr=k2Lm9Nw4Vb7';
    const escaped = JSON.stringify(secret).slice(1, -1).replace(/\//g, '\\/');
    const list = [
      http(
        'GET',
        '/x',
        [['X-API-Key', secret]],
        '',
        200,
        [['Content-Type', 'application/json']],
        `{"echo":"${escaped}"}`,
      ),
      http(
        'GET',
        `/cb?next=${encodeURIComponent(secret)}&page=2`,
        [
          [
            'Referer',
            `https://app/?k=${encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())}`,
          ],
        ],
        '',
        302,
        [['Location', `/done?v=${encodeURIComponent(secret).replace(/%2F/g, '/')}`]],
        '',
      ),
    ];
    const { out } = redactAll(list);
    const ph = out[0]!.request.headers[0]![1];
    expect(ph).toMatch(PLACEHOLDER);
    expect(dec.decode(out[0]!.response!.body.data)).toBe(`{"echo":"${ph}"}`);
    expect(out[1]!.request.target).toBe(`/cb?next=${ph}&page=2`);
    expect(out[1]!.request.headers[0]![1]).toBe(`https://app/?k=${ph}`);
    expect(out[1]!.response!.headers[0]![1]).toBe(`/done?v=${ph}`);
  });

  it('redacts inside gzip bodies (re-encoded) and masks inside binary bodies at the same length', () => {
    const token = 'Kq7ZtR3mX9pL2vN8sB4wC6yD';
    const json = enc.encode(`{"data":"${token}"}`);
    const gz = gzipSync(json);
    const bin = new Uint8Array([0, 1, 2, 255, ...enc.encode(token), 0, 9]);
    const list = [
      http(
        'GET',
        '/a',
        [['Cookie', `sid=${token}`]],
        '',
        200,
        [
          ['Content-Encoding', 'gzip'],
          ['Content-Length', String(gz.length)],
        ],
        gz,
      ),
      http('GET', '/b', [], '', 200, [['Content-Type', 'application/octet-stream']], bin),
    ];
    list[0]!.response!.body.decoded = json;
    const { out } = redactAll(list);
    const plain = dec.decode(gunzipSync(out[0]!.response!.body.data));
    expect(plain).toMatch(/^\{"data":"REDACTED-[0-9a-f]{16}"\}$/);
    expect(dec.decode(out[0]!.response!.body.decoded!)).toBe(plain);
    expect(out[0]!.response!.headers[1]).toEqual([
      'Content-Length',
      String(out[0]!.response!.body.data.length),
    ]);
    const masked = out[1]!.response!.body.data;
    expect(masked.length).toBe(bin.length);
    expect(Buffer.from(masked).toString('latin1')).not.toContain(token);
    expect([...masked.slice(0, 4)]).toEqual([0, 1, 2, 255]);
  });

  it('finds secrets in HTTP/2 extras (:path) and trailers', () => {
    const key = 'ak_live_8c1f2e7d9b3a';
    const ex = http('GET', `/v1?api_key=${key}`, [], '', 200, [], '');
    ex.extras = { pseudo: { ':path': `/v1?api_key=${key}`, ':method': 'GET' }, streamId: 1 };
    ex.response!.trailers = [['x-debug', `used ${key}`]];
    const { out } = redactAll([ex]);
    expect(all(out[0]!)).not.toContain(key);
    expect(out[0]!.response!.trailers![0]![1]).toMatch(/^used REDACTED-[0-9a-f]{16}$/);
  });

  it('keeps created ids, request ids, timestamps, short cookie settings and token counts', () => {
    const { out } = redactAll([
      ...sessionChain(),
      http(
        'GET',
        '/prefs',
        [['Cookie', 'theme=dark; lang=en-US']],
        '',
        200,
        [['Content-Type', 'application/json']],
        '{"token_type":"bearer","expires_in":3600,"max_tokens":512,"next":"2024-05-01T10:00:00Z"}',
      ),
    ]);
    expect(dec.decode(out[1]!.response!.body.data)).toBe(`{"id": "${CREATED}", "requestId": "req-8812-aa"}`);
    expect(out[2]!.request.target).toBe(`/notes/${CREATED}`);
    expect(dec.decode(out[2]!.response!.body.data)).toContain('"created": "2024-05-01T10:00:00Z"');
    expect(out[3]!.request.headers[0]![1]).toBe('theme=dark; lang=en-US');
    expect(dec.decode(out[3]!.response!.body.data)).toBe(
      '{"token_type":"bearer","expires_in":3600,"max_tokens":512,"next":"2024-05-01T10:00:00Z"}',
    );
  });

  it('takes the password out of Basic credentials and hunts it too', () => {
    const basic = Buffer.from('ann:Tr0ub4dor&3xyz').toString('base64');
    const { out } = redactAll([
      http('GET', '/a', [['Authorization', `Basic ${basic}`]], '', 200, [], ''),
      http('POST', '/pw', [['Content-Type', 'text/plain']], 'old password was Tr0ub4dor&3xyz', 200, [], ''),
    ]);
    expect(out[0]!.request.headers[0]![1]).toMatch(/^Basic REDACTED-[0-9a-f]{16}$/);
    expect(dec.decode(out[1]!.request.body.data)).toMatch(/^old password was REDACTED-[0-9a-f]{16}$/);
  });

  it('says which exchanges need redacting by themselves, and where (the writer keeps the others as encoded)', () => {
    const r = createRedactor(undefined);
    expect(r.learn(sampleExchange(1))).toBe(NEED_NONE);
    expect(r.learn(sampleExchange(3))).toBe(NEED_NONE);
    expect(r.learn(http('GET', '/a', [['Authorization', 'Bearer x']], '', 200, [], ''))).toBe(NEED_HEAD);
    expect(r.learn(http('GET', '/b', [], '', 200, [['Content-Type', 'application/octet-stream']], new Uint8Array([0, 255, 1])))).toBe(NEED_FULL);
    expect(r.learn(http('POST', '/c', [['Content-Type', 'application/json']], '{"card":"4111 1111 1111 1111"}', 200, [], ''))).toBe(NEED_FULL);
  });

  it('redacting a stored line gives what decoding, redacting and encoding it gives', () => {
    const list = [
      ...sessionChain(),
      http('GET', `/x?token=${SESSION}&q=1`, [['Cookie', `sid=${SESSION}; theme=dark`], ['X-Trace', `t-${SESSION}`]], '', 200, [['Set-Cookie', 'sid=Qx81Lp0vMn3Rt7Kw; Path=/']], 'plain'),
    ];
    list[3]!.extras = { pseudo: { ':path': `/x?token=${SESSION}` } };
    const a = createRedactor(undefined);
    const b = createRedactor(undefined);
    for (const ex of list) {
      a.learn(ex);
      b.learn(ex);
    }
    for (const ex of list) {
      const line = encodeExchange(ex);
      const viaLine = b.applyLine(line);
      const full = encodeExchange(a.apply(fromStored(JSON.parse(line))));
      if (viaLine === undefined) {
        // a body holding a known value goes the full way, as the writer does
        expect(dec.decode(ex.response!.body.data) + dec.decode(ex.request.body.data)).toContain(SESSION);
        expect(encodeExchange(b.apply(fromStored(JSON.parse(line))))).toBe(full);
      } else expect(viaLine).toBe(full);
    }
    // and the manifest's counts are the same either way
    expect(b.summary()).toEqual(a.summary());
  });

  it('a value given a placeholder later (a live token, a restored secret) takes it in every form', () => {
    const r = createRedactor(undefined);
    const v = 'live/Token+Value=0042';
    r.learn(http('GET', '/a', [['X-Auth-Token', v]], '', 200, [], ''));
    r.assign(v, 'REDACTED-00000000000000aa');
    const out = r.apply(http('GET', `/b?next=${encodeURIComponent(v)}`, [['X-Auth-Token', v]], '', 200, [['Content-Type', 'application/json']], JSON.stringify({ v })));
    expect(out.request.target).toBe('/b?next=REDACTED-00000000000000aa');
    expect(out.request.headers[0]![1]).toBe('REDACTED-00000000000000aa');
    expect(dec.decode(out.response!.body.data)).toBe('{"v":"REDACTED-00000000000000aa"}');
  });

  it('counts what it replaced, by rule and place', () => {
    const { r } = redactAll(sessionChain());
    const s = r.summary();
    expect(s.rules).toContain('secret-value');
    expect(s.redacted).toEqual(
      expect.arrayContaining([
        { rule: 'auth-header', location: 'request.header:authorization', count: 2 },
        { rule: 'json-field', location: 'response.body:session', count: 1 },
        { rule: 'json-field', location: 'request.body:password', count: 1 },
      ]),
    );
  });

  it('keeps token discovery and replay injection working on the redacted snapshot', async () => {
    const { out } = redactAll(sessionChain());
    const emitted = emitFiles(await discoverTokens(out));
    const flow = (
      emitted.tokens.tokens as Array<{ kind?: string; placeholder?: string; origin?: { where: string } }>
    ).find((t) => t.origin?.where === 'jsonpath:$.session');
    expect(flow?.placeholder).toMatch(PLACEHOLDER);
    expect(flow?.kind).toBe('session');
    const ctx = createReplayContext({ transforms: emitted.transforms, tokens: emitted.tokens });
    ctx.prepareRequest(out[0]!);
    ctx.observeResponse(out[0]!, {
      status: 200,
      headers: [['content-type', 'application/json']],
      body: '{"session":"LIVE-SESSION-VALUE-0001"}',
    });
    const next = ctx.prepareRequest(out[1]!);
    expect(next.request.headers.find(([n]) => n === 'Authorization')![1]).toBe(
      'Session LIVE-SESSION-VALUE-0001',
    );
  });
});

describe('snapshot writer with redaction', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  /** Every file under a directory, as text. */
  const files = (dir: string): Array<{ path: string; text: string }> => {
    const out: Array<{ path: string; text: string }> = [];
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) out.push(...files(p));
      else out.push({ path: p, text: readFileSync(p).toString('latin1') });
    }
    return out;
  };

  it('no credential in clear on disk at any point, spill runs included; the chain survives', async () => {
    const store = await mkdtemp(join(tmpdir(), 'retap-redact-'));
    dirs.push(store);
    // tiny memory limit: every few exchanges spill a run
    const w = await createSnapshotWriter({
      dir: store,
      name: 'flows',
      source: { host: 't', filters: {} },
      memoryLimitBytes: 4096,
      discoverTokens: true,
    });
    const secrets: string[] = [];
    const json: HeaderList = [['Content-Type', 'application/json']];
    let spillsSeen = 0;
    for (let s = 0; s < 40; s++) {
      const token = `${s.toString(16).padStart(4, '0')}9c2b7e5d1a40c8b6e2f7a9d0c3b1e`;
      const cookie = `ck${s}Xr83LmQp0ZtV7wN2`;
      secrets.push(token, cookie);
      // the login answer comes first: it alone does not say the value is a credential ("handle")
      await w.append(
        http(
          'POST',
          '/login',
          json,
          '{}',
          200,
          [...json, ['Set-Cookie', `sid=${cookie}; Path=/`]],
          `{"handle":"${token}"}`,
        ),
      );
      for (let k = 0; k < 3; k++) {
        await w.append(
          http(
            'GET',
            `/items/${s}-${k}`,
            [
              ['Authorization', `Session ${token}`],
              ['Cookie', `sid=${cookie}`],
            ],
            '',
            200,
            json,
            `{"item":"${s}-${k}"}`,
          ),
        );
      }
      const now = files(w.path).filter((f) => /run-\d+\.tmp$/.test(f.path));
      spillsSeen = Math.max(spillsSeen, now.length);
      for (const f of now)
        for (const v of secrets) expect(f.text.includes(v), `${v} in ${f.path}`).toBe(false);
    }
    expect(spillsSeen).toBeGreaterThan(0);
    const manifest = await w.finish();
    for (const f of files(store))
      for (const v of secrets) expect(f.text.includes(v), `${v} in ${f.path}`).toBe(false);
    const snap = await openSnapshot(w.path);
    const list: Exchange[] = [];
    for await (const ex of snap.exchanges()) list.push(ex);
    const login = list.find((e) => e.request.target === '/login')!;
    const handle = (JSON.parse(dec.decode(login.response!.body.data)) as { handle: string }).handle;
    expect(handle).toMatch(PLACEHOLDER);
    const use = list.find((e) => e.timing.startUs > login.timing.startUs && e.request.method === 'GET')!;
    expect(use.request.headers[0]![1]).toBe(`Session ${handle}`);
    // discovery on the written snapshot sees the flow from the login answer to the requests
    const tokens = (await snap.tokens()).tokens as Array<{
      origin?: { where: string };
      placeholder?: string;
    }>;
    expect(tokens.some((t) => t.origin?.where === 'jsonpath:$.handle' && t.placeholder === handle)).toBe(
      true,
    );
    expect(manifest.redaction.redacted).toEqual(
      expect.arrayContaining([{ rule: 'secret-value', location: 'response.body', count: 40 }]),
    );
  });

  it('redacts every kind of line it writes: credentials in heads, in bodies, and values elsewhere', async () => {
    const store = await mkdtemp(join(tmpdir(), 'retap-redact-'));
    dirs.push(store);
    const w = await createSnapshotWriter({ dir: store, name: 'chain', source: { host: 't', filters: {} } });
    const list = sessionChain();
    list.push(http('GET', '/echo', [], '', 200, [['Content-Type', 'text/plain']], `you said ${SESSION}`));
    for (const ex of list) await w.append(ex);
    const m = await w.finish();
    for (const f of files(store)) {
      expect(f.text).not.toContain(SESSION);
      expect(f.text).not.toContain('correct horse battery');
    }
    expect(m.redaction.redacted).toEqual(
      expect.arrayContaining([
        { rule: 'json-field', location: 'request.body:password', count: 1 },
        { rule: 'json-field', location: 'response.body:session', count: 1 },
        { rule: 'auth-header', location: 'request.header:authorization', count: 2 },
        { rule: 'secret-value', location: 'response.body', count: 1 },
      ]),
    );
  });

  it('keeps a secret in a path segment out of the manifest routes', async () => {
    const store = await mkdtemp(join(tmpdir(), 'retap-redact-'));
    dirs.push(store);
    const w = await createSnapshotWriter({ dir: store, name: 'paths', source: { host: 't', filters: {} } });
    const key = 'pk9Rt2Lx8Qw';
    await w.append(http('GET', '/reset', [['X-API-Key', key]], '', 200, [], ''));
    await w.append(http('GET', `/files/${key}/list`, [], '', 200, [], ''));
    const m = await w.finish();
    expect(JSON.stringify(m)).not.toContain(key);
    expect(m.counts.routes.map((r) => r.route)).toContain('/files/{id}/list');
    expect((await validateSnapshot(w.path)).issues).toEqual([]);
  });
});
