/**
 * `payments`: HTTPS only (Node's TLS), so `orders` makes a real TLS call that capture must see
 * through the SSL uprobes.
 *   POST /charges  { amount, currency, reference } → 201 { id, amount, currency, reference, status, createdAt }
 *   GET  /stats    → requests per route and the TLS versions seen
 *   GET  /health
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { counter, HttpProblem, readJson, router, sendJson } from './http-kit.js';

export interface PaymentsTls {
  cert: string | Buffer;
  key: string | Buffer;
}

export function createPaymentsServer(tls: PaymentsTls): Server {
  const stats = counter();
  const protocols = counter();
  let charged = 0;

  const handle = router(
    [
      {
        method: 'POST',
        pattern: /^\/charges$/,
        name: 'POST /charges',
        handler: async (req, res) => {
          const body = await readJson(req);
          const { amount, currency, reference } = body;
          if (typeof amount !== 'number' || !Number.isInteger(amount) || amount <= 0) {
            throw new HttpProblem(400, 'amount must be a positive whole number of cents');
          }
          if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) {
            throw new HttpProblem(400, 'currency must be an ISO 4217 code');
          }
          charged += amount;
          sendJson(res, 201, {
            id: `ch_${randomBytes(12).toString('hex')}`,
            amount,
            currency,
            reference: String(reference ?? ''),
            status: 'captured',
            createdAt: new Date().toISOString(),
          });
        },
      },
      {
        method: 'GET',
        pattern: /^\/stats$/,
        name: 'GET /stats',
        handler: (_req, res) =>
          sendJson(res, 200, {
            service: 'payments',
            requests: stats.snapshot(),
            tlsProtocols: protocols.snapshot(),
            chargedCents: charged,
          }),
      },
      {
        method: 'GET',
        pattern: /^\/health$/,
        name: 'GET /health',
        handler: (_req, res) => sendJson(res, 200, { status: 'ok', service: 'payments' }),
      },
    ],
    (name) => {
      if (name !== 'GET /stats') stats.hit(name);
    },
  );
  return createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    protocols.hit((req.socket as TLSSocket).getProtocol?.() ?? 'unknown');
    handle(req, res);
  });
}
