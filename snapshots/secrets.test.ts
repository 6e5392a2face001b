import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Exchange, HeaderList } from '../core/exchange.js';
import { ErrorCodes, RetapError } from '../core/errors.js';
import { createRedactor } from './redaction.js';
import { sampleExchange } from './sample.js';
import { loadSecrets, missingSecretsError, restoreRequest, secretNeeds } from './secrets.js';
import { discoverTokens } from './tokens/discover.js';
import { emitFiles } from './tokens/emit.js';

const enc = new TextEncoder();
let n = 0;
function req(
  method: string,
  target: string,
  headers: HeaderList,
  body = '',
  answer = '',
  resHeaders: HeaderList = [],
): Exchange {
  const i = n++;
  const ex = sampleExchange(i * 7 + 1);
  const b = enc.encode(body);
  const a = enc.encode(answer);
  return {
    ...ex,
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
      headers: resHeaders,
      body: { data: a, size: a.length, truncated: false },
    },
    timing: {
      startUs: 1_700_000_000_000_000 + i * 1000,
      requestEndNs: 1,
      responseStartNs: 2,
      responseEndNs: 3,
    },
  };
}

/** A recording with a login flow (Bearer from the answer) and a static Basic credential and API key. */
async function recording() {
  const basic = Buffer.from('ann:s3cret-pass-word').toString('base64');
  const json: HeaderList = [['Content-Type', 'application/json']];
  const raw = [
    req(
      'POST',
      '/login',
      [['Authorization', `Basic ${basic}`]],
      '',
      '{"access_token":"eyJ0b2tlbi1vbmUtdmFsdWUtMTIzNDU2Nzg"}',
      json,
    ),
    req('GET', '/orders?api_key=ak_live_0123456789abcdef', [
      ['Authorization', 'Bearer eyJ0b2tlbi1vbmUtdmFsdWUtMTIzNDU2Nzg'],
    ]),
    req(
      'POST',
      '/orders',
      [['Authorization', 'Bearer eyJ0b2tlbi1vbmUtdmFsdWUtMTIzNDU2Nzg'], ...json],
      '{"sku":"a-1","apiKey":"ak_live_0123456789abcdef"}',
    ),
    // a token that had expired before the recording: refused then, refused again as recorded
    {
      ...req(
        'GET',
        '/orders',
        [['Authorization', 'Bearer expired-9f8e7d6c5b4a3f2e']],
        '',
        '{"error":"unauthorized"}',
      ),
      response: undefined,
    },
  ];
  raw[3]!.response = {
    status: 401,
    version: 'HTTP/1.1',
    headers: [],
    body: { data: enc.encode('{}'), size: 2, truncated: false },
  };
  const r = createRedactor(undefined);
  for (const e of raw) r.learn(e);
  const red = raw.map((e) => r.apply(e));
  const emitted = emitFiles(await discoverTokens(red));
  return { basic, red, rules: emitted, ph: (v: string) => r.placeholderOf(v) };
}

describe('static client credentials', () => {
  it('names the placeholders no token flow replaces, where and in which requests', async () => {
    const { red, rules, ph, basic } = await recording();
    const needs = secretNeeds(red, rules);
    const byPh = new Map(needs.map((x) => [x.placeholder, x]));
    // the login token flows: not a need
    expect(byPh.has(ph('eyJ0b2tlbi1vbmUtdmFsdWUtMTIzNDU2Nzg'))).toBe(false);
    // Basic and the API key the client had before: needed
    expect(byPh.get(ph(basic))?.uses).toEqual([
      { exchange: red[0]!.id, route: 'POST /login', where: 'header:authorization' },
    ]);
    expect(byPh.get(ph('expired-9f8e7d6c5b4a3f2e'))?.state).toBe('rejected');
    const key = byPh.get(ph('ak_live_0123456789abcdef'))!;
    expect(key.state).toBe('missing');
    expect(key.uses.map((u) => u.where)).toEqual(['query:api_key', 'jsonpath:$..apiKey']);
    const err = missingSecretsError(needs, 'snaps/x');
    expect(err).toBeInstanceOf(RetapError);
    expect(err!.code).toBe(ErrorCodes.SECRET_MISSING);
    expect(err!.exitCode).toBe(3);
    expect(err!.message).toContain(
      `${ph(basic)} at header:authorization in 1 request(s): ${red[0]!.id} (POST /login)`,
    );
    expect(err!.message).toContain('query:api_key, jsonpath:$..apiKey');
    // given both, nothing is missing
    const given = new Map<string, string | null>([
      [ph(basic), basic],
      [ph('ak_live_0123456789abcdef'), null],
    ]);
    expect(missingSecretsError(secretNeeds(red, rules, given), 'snaps/x')).toBeUndefined();
  });

  it('reads a secrets file and RETAP_SECRET_<hex> variables, and refuses what is not a placeholder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'retap-secrets-'));
    try {
      const file = join(dir, 's.yaml');
      await writeFile(file, 'REDACTED-00112233445566aa: "1234"\nREDACTED-00112233445566bb: null\n');
      const s = await loadSecrets({
        file,
        env: { RETAP_SECRET_00112233445566CC: 'from-env', RETAP_SECRET_BAD: 'x', PATH: '/bin' },
      });
      expect([...s]).toEqual([
        ['REDACTED-00112233445566aa', '1234'],
        ['REDACTED-00112233445566bb', null],
        ['REDACTED-00112233445566cc', 'from-env'],
      ]);
      await writeFile(file, 'password: hunter2\n');
      await expect(loadSecrets({ file, env: {} })).rejects.toMatchObject({ code: ErrorCodes.CONFIG_INVALID });
      await expect(loadSecrets({ file: join(dir, 'none.yaml'), env: {} })).rejects.toMatchObject({
        code: ErrorCodes.CONFIG_INVALID,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('puts values back encoded for their place: header as is, query percent-encoded, JSON escaped', () => {
    const ph = 'REDACTED-0011223344556677';
    const secrets = new Map<string, string | null>([[ph, 'a b/"c"+d']]);
    const out = restoreRequest(
      {
        method: 'POST',
        target: `/x?k=${ph}`,
        headers: [
          ['X-Key', ph],
          ['Content-Type', 'application/json'],
        ],
        body: enc.encode(`{"k":"${ph}"}`),
      },
      secrets,
    );
    expect(out.target).toBe('/x?k=a%20b%2F%22c%22%2Bd');
    expect(out.headers[0]).toEqual(['X-Key', 'a b/"c"+d']);
    expect(JSON.parse(Buffer.from(out.body).toString())).toEqual({ k: 'a b/"c"+d' });
    const form = restoreRequest(
      {
        target: '/',
        headers: [['Content-Type', 'application/x-www-form-urlencoded']],
        body: enc.encode(`password=${ph}`),
      },
      secrets,
    );
    expect(Buffer.from(form.body).toString()).toBe('password=a+b%2F%22c%22%2Bd');
    const same = { target: '/', headers: [] as HeaderList, body: enc.encode('REDACTED-ffffffffffffffff') };
    expect(restoreRequest(same, secrets)).toBe(same);
  });
});
