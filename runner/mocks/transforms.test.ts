import { describe, expect, it } from 'vitest';
import type { Exchange } from '../../core/exchange.js';
import { loadTransformsText } from '../../snapshots/transforms/index.js';
import { planMocks, startMocks } from './index.js';

const json = (v: unknown) => new Uint8Array(Buffer.from(JSON.stringify(v)));

const recorded: Exchange = {
  id: 'o1',
  protocol: 'http1',
  direction: 'outbound',
  tls: false,
  service: { addr: '127.0.0.1', port: 1 },
  peer: { addr: '10.0.0.1', port: 80, host: 'inventory' },
  connection: { id: 'c', order: 0 },
  request: {
    method: 'POST',
    target: '/reservations',
    version: 'HTTP/1.1',
    headers: [['content-type', 'application/json']],
    body: { data: json({ sku: 'A', reference: 'ord-OLD-1234' }), size: 41, truncated: false },
  },
  response: {
    status: 201,
    version: 'HTTP/1.1',
    headers: [
      ['content-type', 'application/json'],
      ['content-length', '48'],
    ],
    body: { data: json({ id: 'res-1', reference: 'ord-OLD-1234' }), size: 48, truncated: false },
  },
  timing: { startUs: Date.UTC(2024, 4, 1, 12) * 1000, requestEndNs: 0 },
};

describe('mocks with transform rules', () => {
  it('matches despite the value a rule extracts, and serves the answer the rules shape', async () => {
    const { file: transforms } = loadTransformsText(`version: 1
rules:
  - id: echo
    match: { direction: outbound, route: /reservations }
    extract: [{ from: jsonpath, in: request, path: $.reference, as: ref }]
    inject: [{ to: jsonpath, in: response, path: $.reference, value: ref, mode: substitute }]
`);
    const mocks = await startMocks(planMocks([recorded]), [recorded], {
      miss: 'fail',
      transforms,
      bindAddr: () => '127.0.0.1',
      bindPort: () => 0,
    });
    try {
      const res = await fetch(`http://127.0.0.1:${mocks.endpoints[0]!.port}/reservations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ reference: 'ord-NEW-98765', sku: 'A' }),
      });
      const text = await res.text();
      expect(res.status).toBe(201);
      expect(JSON.parse(text)).toEqual({ id: 'res-1', reference: 'ord-NEW-98765' });
      expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
      expect(mocks.stats()).toMatchObject({ calls: 1, matched: 1, misses: [] });
    } finally {
      await mocks.stop();
    }
  });
});
