/**
 * `inventory`: plain HTTP/1.1 JSON with in-memory stock.
 *   GET  /stock/:sku      → { sku, name, available, priceCents }
 *   POST /reservations    { sku, qty, reference } → 201 { id, sku, qty, reference }; 409 when short
 *   GET  /stats           → requests per route (tests count downstream calls with it)
 *   GET  /health
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { CATALOG, SKU_PATTERN } from './catalog.js';
import { counter, HttpProblem, readJson, router, sendJson } from './http-kit.js';

/** Reservations kept in memory; the oldest are forgotten beyond this. */
const MAX_RESERVATIONS = 10_000;

export function createInventoryServer(): Server {
  const stock = new Map(CATALOG.map((p) => [p.sku, { ...p }]));
  const reservations = new Map<string, { sku: string; qty: number; reference: string }>();
  const stats = counter();

  const handle = router(
    [
      {
        method: 'GET',
        pattern: /^\/stock\/([^/]+)$/,
        name: 'GET /stock/:sku',
        handler: (_req, res, [sku]) => {
          const item = stock.get(sku ?? '');
          if (!item) throw new HttpProblem(404, `unknown sku ${sku}`);
          sendJson(res, 200, {
            sku: item.sku,
            name: item.name,
            available: item.stock,
            priceCents: item.priceCents,
          });
        },
      },
      {
        method: 'POST',
        pattern: /^\/reservations$/,
        name: 'POST /reservations',
        handler: async (req, res) => {
          const body = await readJson(req);
          const { sku, qty, reference } = body;
          if (typeof sku !== 'string' || !SKU_PATTERN.test(sku))
            throw new HttpProblem(400, 'sku is required');
          if (typeof qty !== 'number' || !Number.isInteger(qty) || qty < 1) {
            throw new HttpProblem(400, 'qty must be a positive whole number');
          }
          const item = stock.get(sku);
          if (!item) throw new HttpProblem(404, `unknown sku ${sku}`);
          if (item.stock < qty) throw new HttpProblem(409, `only ${item.stock} of ${sku} left`);
          item.stock -= qty;
          const id = randomUUID();
          reservations.set(id, { sku, qty, reference: String(reference ?? '') });
          if (reservations.size > MAX_RESERVATIONS) {
            const oldest = reservations.keys().next().value;
            if (oldest !== undefined) reservations.delete(oldest);
          }
          sendJson(res, 201, { id, sku, qty, reference: String(reference ?? '') });
        },
      },
      {
        method: 'GET',
        pattern: /^\/stats$/,
        name: 'GET /stats',
        handler: (_req, res) => sendJson(res, 200, { service: 'inventory', requests: stats.snapshot() }),
      },
      {
        method: 'GET',
        pattern: /^\/health$/,
        name: 'GET /health',
        handler: (_req, res) => sendJson(res, 200, { status: 'ok', service: 'inventory' }),
      },
    ],
    (name) => {
      if (name !== 'GET /stats') stats.hit(name);
    },
  );
  return createServer(handle);
}
