import { describe, expect, it } from 'vitest';
import { validateTokens, validateTransforms } from '../sidefiles.js';
import { discoverTokens } from './discover.js';
import { emitFiles } from './emit.js';
import { traffic } from './fixture.test-helper.js';
import type { TokenEntry } from './types.js';

const TOKEN_A = 'q1Wb7xZ-kP0sVd3LmN8rTg2hYc5uJe4a';
const TOKEN_B = 'Zr8Ym3Kq0Lp5Wn2Xb7Vc4Td1Se6Fa9Gh';
const ORDER_1 = '6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
const ORDER_2 = '0a9b8c7d-6e5f-4a3b-9c1d-2e3f4a5b6c7d';

function demoLike() {
  return traffic([
    {
      method: 'POST',
      target: '/login',
      body: { user: 'ada', password: 'pw-1234abcd' },
      status: 200,
      resBody: { token: TOKEN_A, expiresAt: '2024-05-01T13:00:00.000Z' },
    },
    {
      method: 'POST',
      target: '/login',
      body: { user: 'ken', password: 'pw-99887766' },
      status: 200,
      resBody: { token: TOKEN_B, expiresAt: '2024-05-01T13:00:01.000Z' },
    },
    {
      method: 'POST',
      target: '/orders',
      headers: [['authorization', `Bearer ${TOKEN_A}`]],
      body: { sku: 'SKU-RED-01', qty: 2 },
      status: 201,
      resBody: { id: ORDER_1, sku: 'SKU-RED-01', qty: 2, createdAt: '2024-05-01T12:00:02.000Z' },
    },
    {
      method: 'POST',
      target: '/orders',
      headers: [['authorization', `Bearer ${TOKEN_B}`]],
      body: { sku: 'SKU-RED-01', qty: 1 },
      status: 201,
      resBody: { id: ORDER_2, sku: 'SKU-RED-01', qty: 1, createdAt: '2024-05-01T12:00:03.000Z' },
    },
    {
      method: 'GET',
      target: `/orders/${ORDER_1}`,
      headers: [['authorization', `Bearer ${TOKEN_A}`]],
      status: 200,
      resBody: { id: ORDER_1 },
    },
    {
      method: 'GET',
      target: `/orders/${ORDER_2}`,
      headers: [['authorization', `Bearer ${TOKEN_B}`]],
      status: 200,
      resBody: { id: ORDER_2 },
    },
    { method: 'GET', target: '/health', status: 200, resBody: { status: 'ok' } },
    {
      method: 'GET',
      target: '/orders',
      headers: [['authorization', 'Bearer expired-0123456789abcdef']],
      status: 401,
      resBody: { error: 'no' },
    },
  ]);
}

describe('token discovery', () => {
  it('finds the login token and the created ids, with sessions, routes and rules', async () => {
    const d = await discoverTokens(demoLike());
    const { tokens, transforms } = emitFiles(d);
    validateTokens(tokens, 'tokens.yaml');
    validateTransforms(transforms, 'transforms.yaml');
    const flows = (tokens.tokens as TokenEntry[]).filter((t) => !t.volatile);
    expect(
      flows.map((t) => [t.rule, t.origin?.exchange, t.uses?.map((u) => `${u.exchange} ${u.where}`)]),
    ).toEqual([
      ['post-login.token', 'e0', ['e2 header:authorization', 'e4 header:authorization']],
      ['post-login.token', 'e1', ['e3 header:authorization', 'e5 header:authorization']],
      ['post-orders.id', 'e2', ['e4 path:1']],
      ['post-orders.id', 'e3', ['e5 path:1']],
    ]);
    // Sessions follow the credential chain, not the connection.
    expect(flows[0]!.session).toBe(flows[2]!.session);
    expect(flows[1]!.session).toBe(flows[3]!.session);
    expect(flows[0]!.session).not.toBe(flows[1]!.session);
    expect(flows[0]!.kind).toBe('session');
    expect(flows[2]!.kind).toBe('uuid');
    const login = transforms.rules.find((r) => r.id === 'post-login.token')!;
    expect(login).toMatchObject({
      match: { direction: 'inbound', method: 'POST', route: '/login' },
      extract: [{ from: 'jsonpath', in: 'response', path: '$.token', as: 'post-login.token' }],
      inject: [
        // biome-ignore lint/suspicious/noTemplateCurlyInString: rule templates are written with ${}
        { to: 'header', name: 'authorization', value: 'Bearer ${post-login.token}', mode: 'substitute' },
      ],
    });
    const ids = transforms.rules.find((r) => r.id === 'post-orders.id')!;
    expect(ids.inject).toEqual([
      {
        to: 'path',
        in: 'request',
        segment: 1,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: rule templates are written with ${}
        value: '${post-orders.id}',
        mode: 'substitute',
        match: { direction: 'inbound', method: 'GET', route: '/orders/{id}' },
      },
    ]);
  });

  it('classifies volatile values: times, uuids, JWT claims', async () => {
    const jwt = `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"ada","iat":1714564800,"exp":1714568400}').toString('base64url')}.c2lnbmF0dXJlLWJ5dGVz`;
    const d = await discoverTokens(
      traffic([
        {
          method: 'GET',
          target: '/me',
          headers: [
            ['authorization', `Bearer ${jwt}`],
            ['x-request-id', 'b5c1f0e2a9d84c3e'],
          ],
          status: 200,
          resHeaders: [['date', 'Wed, 01 May 2024 12:00:00 GMT']],
          resBody: { at: 1714564800123, day: '2024-05-01' },
        },
      ]),
    );
    const vol = (emitFiles(d).tokens.tokens as TokenEntry[]).filter((t) => t.volatile);
    const byWhere = Object.fromEntries(
      vol.map((t) => [`${t.origin?.in} ${t.origin?.where}`, [t.kind, t.format]]),
    );
    expect(byWhere).toEqual({
      'request header:authorization': ['jwt', 'jws'],
      'request header:x-request-id': ['nonce', 'request-id'],
      'response header:date': ['timestamp', 'http-date'],
      'response jsonpath:$.at': ['timestamp', 'unix-ms'],
      'response jsonpath:$.day': ['timestamp', 'date'],
    });
    expect(vol.find((t) => t.kind === 'jwt')?.jwt).toEqual({
      alg: 'HS256',
      claims: ['exp', 'iat', 'sub'],
      iat: 1714564800,
      exp: 1714568400,
    });
    const resign = emitFiles(d).transforms.rules.find((r) => String(r.id).startsWith('resign.'));
    expect(resign).toMatchObject({
      enabled: false,
      transform: [{ op: 'resignJwt', key: 'env:RETAP_JWT_KEY' }],
    });
  });

  it('ignores short and plain values, and echoes of what the client sent first', async () => {
    const d = await discoverTokens(
      traffic([
        {
          method: 'POST',
          target: '/carts',
          body: { sku: 'SKU-RED-01-LONG', note: 'hello' },
          status: 201,
          resBody: { sku: 'SKU-RED-01-LONG', ok: true, n: 1, status: 'confirmed' },
        },
        {
          method: 'GET',
          target: '/carts?sku=SKU-RED-01-LONG&ok=true&n=1&status=confirmed',
          status: 200,
          resBody: {},
        },
      ]),
    );
    expect(d.flows).toEqual([]);
  });

  it('finds values in Set-Cookie, Location, form bodies and HTML fragments', async () => {
    const csrf = 'Hq3vN9xLw2Pz7Ks4Bt6Ym1Rc';
    const d = await discoverTokens(
      traffic([
        {
          method: 'POST',
          target: '/session',
          status: 302,
          resHeaders: [
            ['set-cookie', 'sid=s3ss10n-Abc123XyZ987; Path=/; HttpOnly'],
            ['location', '/carts/4711?view=full'],
          ],
        },
        {
          method: 'GET',
          target: '/carts/4711',
          headers: [['cookie', 'theme=dark; sid=s3ss10n-Abc123XyZ987']],
          status: 200,
          resHeaders: [['content-type', 'text/html']],
          resBody: `<form><input type="hidden" name="csrf" value="${csrf}"></form>`,
        },
        {
          method: 'POST',
          target: '/carts/4711/checkout',
          headers: [
            ['cookie', 'sid=s3ss10n-Abc123XyZ987'],
            ['content-type', 'application/x-www-form-urlencoded'],
          ],
          body: `csrf=${csrf}&confirm=yes`,
          status: 200,
        },
      ]),
    );
    const { transforms, tokens } = emitFiles(d);
    validateTransforms(transforms, 'transforms.yaml');
    const flows = (tokens.tokens as TokenEntry[]).filter((t) => !t.volatile);
    expect(flows.map((t) => `${t.origin?.where} → ${t.uses?.map((u) => u.where).join(',')}`)).toEqual([
      'cookie:sid → cookie:sid,cookie:sid',
      'header:location → path:1,path:1',
      'body → form:csrf',
    ]);
    const loc = transforms.rules.find(
      (r) => (r.extract as Array<{ name?: string }>)[0]?.name === 'location',
    )!;
    expect((loc.extract as Array<{ pattern: string }>)[0]!.pattern).toBe(
      '^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*)?/[^/?#]*/([^/?#]+)',
    );
  });

  it('stays linear: 20k exchanges in one pass', async () => {
    const specs = [];
    for (let i = 0; i < 5000; i++) {
      const tok = `tok-${i.toString(36).padStart(6, '0')}-${(i * 7919).toString(36)}x`;
      const id = `${(i * 2654435761) % 1e9}`.padStart(9, '1');
      specs.push(
        { method: 'POST', target: '/login', status: 200, resBody: { token: tok } },
        {
          method: 'POST',
          target: '/orders',
          headers: [['authorization', `Bearer ${tok}`]] as [string, string][],
          status: 201,
          resBody: { id },
        },
        {
          method: 'GET',
          target: `/orders/${id}`,
          headers: [['authorization', `Bearer ${tok}`]] as [string, string][],
          status: 200,
          resBody: { id },
        },
        { method: 'GET', target: '/health', status: 200, resBody: { status: 'ok' } },
      );
    }
    const d = await discoverTokens(traffic(specs));
    expect(d.flows.length).toBe(10_000);
    expect(d.flows.reduce((n, f) => n + f.uses.length, 0)).toBe(15_000);
  });
});

describe('discovery at snapshot time', () => {
  it('the writer discovers tokens from the sorted exchanges and writes both side files', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { createSnapshotWriter } = await import('../writer.js');
    const { openSnapshot } = await import('../reader.js');
    const dir = mkdtempSync(join(tmpdir(), 'retap-discover-'));
    try {
      // appended out of order: discovery must see them sorted, as they are written
      const w = await createSnapshotWriter({
        dir: join(dir, 's'),
        name: 's',
        source: { host: 'h', filters: {} },
        discoverTokens: true,
        redaction: false,
      });
      for (const ex of [...demoLike()].reverse()) await w.append(ex);
      await w.finish();
      const snap = await openSnapshot(w.path);
      const rules = (await snap.transforms()).rules.map((r) => r.id);
      expect(rules).toEqual(expect.arrayContaining(['post-login.token', 'post-orders.id']));
      expect(((await snap.tokens()).tokens as TokenEntry[]).filter((t) => !t.volatile)).toHaveLength(4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
