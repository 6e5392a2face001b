import { jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import type { Exchange } from '../../core/exchange.js';
import { discoverTokens } from '../tokens/discover.js';
import { emitFiles } from '../tokens/emit.js';
import { exchange, traffic } from '../tokens/fixture.test-helper.js';
import { loadTransformsText } from './compile.js';
import { createReplayContext, type LiveResponse } from './engine.js';
import { signJwt } from './jwt.js';
import { applyMockTransforms } from './mock.js';

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
const TOKEN = 'q1Wb7xZ-kP0sVd3LmN8rTg2hYc5uJe4a';
const ORDER = '6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';

function recording(): Exchange[] {
  return traffic([
    { method: 'POST', target: '/login', body: { user: 'ada' }, status: 200, resBody: { token: TOKEN } },
    { method: 'POST', target: '/orders', headers: [['authorization', `Bearer ${TOKEN}`]], body: { sku: 'A', qty: 2 }, status: 201, resBody: { id: ORDER } },
    { method: 'GET', target: `/orders/${ORDER}?full=1`, headers: [['authorization', `Bearer ${TOKEN}`]], status: 200, resBody: { id: ORDER } },
    { method: 'GET', target: '/orders', headers: [['authorization', 'Bearer expired-0123456789abcdef']], status: 401, resBody: {} },
  ]);
}

/** A fake build: new token, new ids, checks what it is sent. */
function fakeBuild(omitToken = false) {
  const token = 'NEWtok-9f8e7d6c5b4a39281706f5e4';
  const id = '11111111-2222-4333-8444-555555555555';
  return (method: string, target: string, headers: [string, string][]): LiveResponse => {
    const auth = headers.find(([n]) => n === 'authorization')?.[1];
    if (target === '/login') return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(omitToken ? {} : { token }) };
    if (auth !== `Bearer ${token}`) return { status: 401, headers: {}, body: '{}' };
    if (method === 'POST') return { status: 201, headers: {}, body: JSON.stringify({ id }) };
    if (target.startsWith(`/orders/${id}`)) return { status: 200, headers: {}, body: JSON.stringify({ id }) };
    return { status: 404, headers: {}, body: '{}' };
  };
}

describe('replay engine with discovered rules', () => {
  it('carries the live token and id into later requests; nothing unreplaced', async () => {
    const rec = recording();
    const { tokens, transforms } = emitFiles(await discoverTokens(rec));
    const ctx = createReplayContext({ transforms, tokens });
    const build = fakeBuild();
    const statuses: number[] = [];
    for (const ex of rec) {
      const { request } = ctx.prepareRequest(ex);
      const live = build(request.method, request.target, request.headers);
      statuses.push(live.status);
      ctx.observeResponse(ex, live);
    }
    expect(statuses).toEqual(rec.map((e) => e.response!.status));
    expect(ctx.warnings()).toEqual([]);
    expect(ctx.stats()).toMatchObject({ substitutions: 3, unreplaced: 0 });
    // the request is changed, the recorded exchange is not
    expect(rec[2]!.request.target).toBe(`/orders/${ORDER}?full=1`);
  });

  it('reports each token the build did not give, with the exchange that needed it', async () => {
    const rec = recording();
    const { tokens, transforms } = emitFiles(await discoverTokens(rec));
    const ctx = createReplayContext({ transforms, tokens });
    const build = fakeBuild(true);
    for (const ex of rec) {
      const { request } = ctx.prepareRequest(ex);
      ctx.observeResponse(ex, build(request.method, request.target, request.headers));
    }
    const w = ctx.warnings().filter((x) => x.kind === 'unreplaced-token');
    expect(w.map((x) => [x.exchange, x.where, x.origin])).toEqual([
      ['e1', 'header:authorization', 'e0'],
      ['e2', 'header:authorization', 'e0'],
      ['e2', 'path:1', 'e1'],
    ]);
    expect(w[0]!.message).toContain("the build's answer to e0 lacked it at jsonpath:$.token");
    expect(w[2]!.message).toContain("the build's answer to e1 lacked it at jsonpath:$.id");
  });
});

function run(yaml: string, ex: Exchange, opts: Parameters<typeof createReplayContext>[1] = {}) {
  const { rules } = loadTransformsText(yaml, { vars: Object.keys(opts.vars ?? {}) });
  const ctx = createReplayContext({ transforms: rules }, opts);
  return ctx.prepareRequest(ex);
}

describe('hand-written rules: extractors', () => {
  const loginThenUse = (use: Parameters<typeof exchange>[0], loginRes: Parameters<typeof exchange>[0]): [Exchange, Exchange] => [
    exchange({ id: 'a', ...loginRes }, 0),
    exchange({ id: 'b', ...use }, 1),
  ];
  const flow = (yaml: string, pair: [Exchange, Exchange], live: LiveResponse) => {
    const ctx = createReplayContext({ transforms: loadTransformsText(yaml).rules });
    ctx.prepareRequest(pair[0]);
    ctx.observeResponse(pair[0], live);
    return ctx.prepareRequest(pair[1]).request;
  };

  it('header (with a pattern) → query', () => {
    const pair = loginThenUse(
      { method: 'GET', target: '/items?page=2&cursor=OLDcursor123' },
      { method: 'GET', target: '/items', status: 200, resHeaders: [['Link', '</items?cursor=OLDcursor123>; rel="next"']] },
    );
    const req = flow(
      `version: 1
rules:
  - id: cursor
    extract: [{ from: header, in: response, name: link, pattern: 'cursor=([^>&]+)', as: c }]
    transform: [{ op: store, var: c }]
    inject: [{ to: query, name: cursor, value: c, mode: substitute, match: { route: /items } }]
`,
      pair,
      { status: 200, headers: [['link', '</items?cursor=NEWcursor456>; rel="next"']], body: '' },
    );
    expect(req.target).toBe('/items?page=2&cursor=NEWcursor456');
  });

  it('cookie → cookie, path segment → JSON body, regex → header', () => {
    const pair = loginThenUse(
      { method: 'POST', target: '/pay', headers: [['cookie', 'a=1; sid=OLDsid'], ['x-csrf', 'OLDcsrf'], ['content-type', 'application/json']], body: { ref: 'ord-OLD', n: 1 } },
      { method: 'GET', target: '/form', status: 200, resHeaders: [['set-cookie', 'sid=OLDsid; Path=/']], resBody: '<input name=csrf value="OLDcsrf">' },
    );
    const yaml = `version: 1
rules:
  - id: sid
    extract: [{ from: cookie, in: response, name: sid, as: sid }]
    transform: [{ op: store, var: sid }]
    inject: [{ to: cookie, name: sid, value: sid, match: { route: /pay } }]
  - id: csrf
    extract: [{ from: regex, in: response, pattern: 'name=csrf value="([^"]+)"', as: csrf }]
    transform: [{ op: store, var: csrf }]
    inject: [{ to: header, name: x-csrf, value: '\${csrf}', match: { route: /pay } }]
  - id: ref-from-path
    match: { route: /pay }
    extract: [{ from: path, in: request, segment: 0, as: p }]
    transform: [{ op: replace, with: 'ord-NEW' }]
    inject: [{ to: jsonpath, path: $.ref, value: p }]
`;
    const req = flow(yaml, pair, { status: 200, headers: [['set-cookie', 'sid=NEWsid; Path=/']], body: '<input name=csrf value="NEWcsrf">' });
    expect(req.headers).toEqual([['cookie', 'a=1; sid=NEWsid'], ['x-csrf', 'NEWcsrf'], ['content-type', 'application/json']]);
    expect(JSON.parse(text(req.body.data))).toEqual({ ref: 'ord-NEW', n: 1 });
  });

  it('jsonpath with [*] and a jwt claim, form body injection', () => {
    const claims = Buffer.from(JSON.stringify({ sub: 'user-42', tenant: 'acme' })).toString('base64url');
    const jwt = `eyJhbGciOiJIUzI1NiJ9.${claims}.c2ln`;
    const pair = loginThenUse(
      { method: 'POST', target: '/t', headers: [['authorization', `Bearer ${jwt}`], ['content-type', 'application/x-www-form-urlencoded']], body: 'first=id-OLD-1&second=id-OLD-2&tenant=x' },
      { method: 'GET', target: '/list', status: 200, resBody: { items: [{ id: 'id-OLD-1' }, { id: 'id-OLD-2' }] } },
    );
    const yaml = `version: 1
rules:
  - id: ids
    extract: [{ from: jsonpath, in: response, path: '$.items[*].id', as: ids }]
    transform: [{ op: store, var: ids }]
    inject:
      - { to: form, name: first, value: ids, mode: substitute, match: { route: /t } }
      - { to: form, name: second, value: ids, mode: substitute, match: { route: /t } }
  - id: tenant
    match: { route: /t }
    extract: [{ from: jwt, in: request, claim: tenant, source: 'header:authorization', as: tenant }]
    inject: [{ to: form, name: tenant, value: tenant }]
`;
    const req = flow(yaml, pair, { status: 200, headers: {}, body: JSON.stringify({ items: [{ id: 'id-NEW-1' }, { id: 'id-NEW-2' }] }) });
    expect(text(req.body.data)).toBe('first=id-NEW-1&second=id-NEW-2&tenant=acme');
  });
});

describe('hand-written rules: transforms', () => {
  const req = (headers: [string, string][], target = '/x', body?: unknown) => exchange({ id: 'r', method: 'POST', target, headers, body, status: 200 }, 0);

  it('shiftTime keeps each format; store/load carry a value to a later exchange', () => {
    const first = exchange({ id: 'r1', method: 'GET', target: '/a', headers: [['x-since', '2024-05-01T12:00:00.000Z'], ['x-epoch', '1714564800'], ['if-modified-since', 'Wed, 01 May 2024 12:00:00 GMT']], status: 200 }, 0);
    first.timing.startUs = Date.UTC(2024, 4, 1, 11) * 1000;
    const second = exchange({ id: 'r2', method: 'GET', target: '/b', headers: [['x-copy', 'old']], status: 200 }, 1);
    const yaml = `version: 1
rules:
  - id: since
    match: { route: /a }
    extract: [{ from: header, in: request, name: x-since, as: t }]
    transform: [{ op: shiftTime }, { op: store, var: since }]
    inject: [{ to: header, name: x-since, value: t }]
  - id: epoch
    match: { route: /a }
    extract: [{ from: header, in: request, name: x-epoch, as: e }]
    transform: [{ op: shiftTime, by: 1h, format: unix }]
    inject: [{ to: header, name: x-epoch, value: e }]
  - id: ims
    match: { route: /a }
    extract: [{ from: header, in: request, name: if-modified-since, as: d }]
    transform: [{ op: shiftTime, by: -1d }]
    inject: [{ to: header, name: if-modified-since, value: d }]
  - id: copy
    match: { route: /b }
    transform: [{ op: load, var: since }]
    inject: [{ to: header, name: x-copy, value: 'since=\${since}' }]
`;
    const ctx = createReplayContext({ transforms: loadTransformsText(yaml).rules }, { replayStartMs: Date.UTC(2025, 0, 1, 0), recordedStartUs: first.timing.startUs });
    const a = ctx.prepareRequest(first).request;
    expect(a.headers).toEqual([['x-since', '2025-01-01T01:00:00.000Z'], ['x-epoch', '1714568400'], ['if-modified-since', 'Tue, 30 Apr 2024 12:00:00 GMT']]);
    expect(ctx.prepareRequest(second).request.headers).toEqual([['x-copy', 'since=2025-01-01T01:00:00.000Z']]);
  });

  it('resignJwt keeps claims, moves iat/exp, and verifies with jose', async () => {
    const secret = 'test-secret-0123456789abcdef0123456789';
    const iat = 1714564800;
    const old = signJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'ada', role: 'admin', iat, exp: iat + 600 }, 'recording-key');
    const ex = req([['authorization', `Bearer ${old}`]]);
    ex.timing.startUs = iat * 1_000_000;
    const yaml = `version: 1
rules:
  - id: jwt
    extract: [{ from: header, in: request, name: authorization, as: a }]
    transform: [{ op: resignJwt, key: 'env:TEST_JWT_KEY' }]
    inject: [{ to: header, name: authorization, value: a }]
`;
    const now = Date.now();
    const out = run(yaml, ex, { replayStartMs: now, resolveKey: (ref) => (ref === 'env:TEST_JWT_KEY' ? secret : '') });
    const token = out.request.headers[0]![1].replace(/^Bearer /, '');
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(secret));
    expect(protectedHeader).toEqual({ alg: 'HS256', typ: 'JWT' });
    const shift = Math.round((now - iat * 1000) / 1000);
    expect(payload).toEqual({ sub: 'ada', role: 'admin', iat: iat + shift, exp: iat + 600 + shift });
  });

  it('resignJwt with ES256 (PEM key from a file reference) verifies with jose', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
    const old = signJwt({ alg: 'ES256' }, { sub: 'x', exp: 2_000_000_000 }, pem);
    const yaml = `version: 1
rules:
  - id: jwt
    extract: [{ from: jsonpath, in: request, path: $.assertion, as: j }]
    transform: [{ op: resignJwt, key: 'file:/keys/es.pem', by: 10s }]
    inject: [{ to: jsonpath, path: $.assertion, value: j }]
`;
    const out = run(yaml, req([['content-type', 'application/json']], '/x', { assertion: old }), { resolveKey: () => pem });
    const token = JSON.parse(text(out.request.body.data)).assertion as string;
    const { payload } = await jwtVerify(token, publicKey);
    expect(payload).toEqual({ sub: 'x', exp: 2_000_000_010 });
  });

  it('uuid, base64 encode/decode, replace with a pattern, urlRewrite of host and port', () => {
    const ex = req([
      ['idempotency-key', 'old-key'],
      ['x-b64', Buffer.from('user=ada').toString('base64')],
      ['x-callback', 'http://orders.prod:8080/hooks/1?x=http://orders.prod:80801'],
      ['x-ver', 'v1-alpha'],
    ]);
    const yaml = `version: 1
rules:
  - id: idem
    extract: [{ from: header, in: request, name: idempotency-key, as: k }]
    transform: [{ op: uuid }]
    inject: [{ to: header, name: idempotency-key, value: k }]
  - id: b64
    extract: [{ from: header, in: request, name: x-b64, as: b }]
    transform: [{ op: base64Decode }, { op: replace, pattern: 'ada', with: 'grace' }, { op: base64Encode }]
    inject: [{ to: header, name: x-b64, value: b }]
  - id: url
    extract: [{ from: header, in: request, name: x-callback, as: u }]
    transform: [{ op: urlRewrite, from: 'orders.prod:8080', to: '127.0.0.1:\${replay.port}' }]
    inject: [{ to: header, name: x-callback, value: u }]
  - id: ver
    extract: [{ from: header, in: request, name: x-ver, as: v }]
    transform: [{ op: replace, pattern: '^v1', with: 'v2' }]
    inject: [{ to: header, name: x-ver, value: v }]
`;
    const out = run(yaml, ex, { vars: { 'replay.port': '4567' }, uuid: () => 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee' });
    expect(out.request.headers).toEqual([
      ['idempotency-key', 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'],
      ['x-b64', Buffer.from('user=grace').toString('base64')],
      ['x-callback', 'http://127.0.0.1:4567/hooks/1?x=http://orders.prod:80801'],
      ['x-ver', 'v2-alpha'],
    ]);
    expect(out.changes.map((c) => c.rule)).toEqual(['idem', 'b64', 'url', 'ver']);
  });
});

describe('mock transforms', () => {
  it('echoes the live call value and shifts times in the served answer', () => {
    const rec = exchange({
      id: 'o1', direction: 'outbound', peerHost: 'inventory', method: 'POST', target: '/reservations',
      headers: [['content-type', 'application/json']], body: { sku: 'A', reference: 'ord-OLD-1234' },
      status: 201, resHeaders: [['content-type', 'application/json'], ['date', 'Wed, 01 May 2024 12:00:00 GMT']],
      resBody: { id: 'res-1', reference: 'ord-OLD-1234', at: '2024-05-01T12:00:00Z' },
    }, 0);
    rec.timing.startUs = Date.UTC(2024, 4, 1, 12) * 1000;
    const yaml = `version: 1
rules:
  - id: echo
    match: { direction: outbound, route: /reservations }
    extract: [{ from: jsonpath, in: request, path: $.reference, as: ref }]
    inject: [{ to: jsonpath, in: response, path: $.reference, value: ref, mode: substitute }]
  - id: at
    match: { direction: outbound, host: inventory }
    extract: [{ from: jsonpath, in: response, path: $.at, as: at }]
    transform: [{ op: shiftTime }]
    inject: [{ to: jsonpath, in: response, path: $.at, value: at }]
  - id: date
    match: { direction: outbound }
    extract: [{ from: header, in: response, name: date, as: d }]
    transform: [{ op: shiftTime }]
    inject: [{ to: header, in: response, name: date, value: d }]
`;
    const live = { method: 'POST', target: '/reservations', headers: [['content-type', 'application/json']] as [string, string][], body: JSON.stringify({ sku: 'A', reference: 'ord-NEW-9876' }) };
    const out = applyMockTransforms(loadTransformsText(yaml).rules, rec, live, { replayStartMs: Date.UTC(2025, 0, 2, 12) });
    expect(JSON.parse(text(out.response.body.data))).toEqual({ id: 'res-1', reference: 'ord-NEW-9876', at: '2025-01-02T12:00:00Z' });
    expect(out.response.headers).toContainEqual(['date', 'Thu, 02 Jan 2025 12:00:00 GMT']);
    expect(out.notes).toEqual([]);
  });
});
