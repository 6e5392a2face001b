/**
 * `orders`: the service retap captures and later replays. Inbound JSON API on HTTP/1.1; every
 * order calls `inventory` (plain HTTP) and `payments` (HTTPS).
 *   POST /login        { user, password } → { token, expiresAt }
 *   POST /orders       Bearer; { sku, qty } → 201 { id, sku, qty, total, status, createdAt }
 *   GET  /orders/:id   Bearer → the order (404 unknown or someone else's)
 *   GET  /orders       Bearer → { orders, count } of the token's user
 *   GET  /health
 *   GET  /debug/config → the seeded variants (not part of the generated traffic)
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { SKU_PATTERN } from './catalog.js';
import { callJson, type Downstream, type JsonAnswer } from './downstream.js';
import { HttpProblem, readJson, router, sendJson } from './http-kit.js';
import { VARIANT_EFFECTS, type VariantConfig } from './variants.js';

const TOKEN_TTL_MS = 60 * 60 * 1000;
const MAX_SESSIONS = 10_000;
const MAX_ORDERS = 10_000;
const MAX_LISTED = 100;
const MAX_QTY = 100;

export interface OrdersConfig {
  inventory: Downstream;
  payments: Downstream;
  variant: VariantConfig;
}

interface Order {
  id: string;
  user: string;
  sku: string;
  qty: number;
  totalCents: number;
  status: 'confirmed';
  createdAt: string;
  reservationId: string;
  chargeId: string;
}

/** Drops the oldest entries of an insertion-ordered map beyond `max`. */
function bound<K, V>(map: Map<K, V>, max: number): void {
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done) return;
    map.delete(oldest.value);
  }
}

export function createOrdersServer(config: OrdersConfig): Server {
  const sessions = new Map<string, { user: string; expiresAt: number }>();
  const orders = new Map<string, Order>();
  const { variant } = config;

  const render = (o: Order): Record<string, unknown> => ({
    id: o.id,
    sku: o.sku,
    qty: o.qty,
    total: variant.totalAsString ? (o.totalCents / 100).toFixed(2) : o.totalCents / 100,
    status: o.status,
    createdAt: o.createdAt,
  });

  const userOf = (req: IncomingMessage): string => {
    const m = /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(req.headers.authorization ?? '');
    const session = m ? sessions.get(m[1] ?? '') : undefined;
    if (!session || session.expiresAt < Date.now())
      throw new HttpProblem(401, 'missing, unknown or expired token');
    return session.user;
  };

  const depend = async (name: string, call: Promise<JsonAnswer>): Promise<JsonAnswer> => {
    try {
      return await call;
    } catch (e) {
      throw new HttpProblem(502, `${name} unavailable: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  const slowdown = async (route: string): Promise<void> => {
    const ms = variant.delays[route];
    if (ms) await sleep(ms);
  };

  const createOrder = async (user: string, sku: string, qty: number): Promise<Order> => {
    const id = randomUUID();
    const stockPath = `/stock/${encodeURIComponent(sku)}`;
    const stock = await depend('inventory', callJson(config.inventory, 'GET', stockPath));
    if (stock.status === 404) throw new HttpProblem(422, `unknown sku ${sku}`);
    if (stock.status !== 200) throw new HttpProblem(502, `inventory answered ${stock.status}`);
    const priceCents = Number(stock.body.priceCents);
    if (Number(stock.body.available) < qty) throw new HttpProblem(409, `not enough ${sku} in stock`);

    const reservation = await depend(
      'inventory',
      callJson(config.inventory, 'POST', '/reservations', { sku, qty, reference: id }),
    );
    if (reservation.status === 409) throw new HttpProblem(409, `not enough ${sku} in stock`);
    if (reservation.status !== 201) throw new HttpProblem(502, `inventory answered ${reservation.status}`);
    if (variant.extraStockCheck) await depend('inventory', callJson(config.inventory, 'GET', stockPath));

    const totalCents = priceCents * qty;
    const charge = await depend(
      'payments',
      callJson(config.payments, 'POST', '/charges', { amount: totalCents, currency: 'EUR', reference: id }),
    );
    if (charge.status !== 201) throw new HttpProblem(502, `payments answered ${charge.status}`);

    const order: Order = {
      id,
      user,
      sku,
      qty,
      totalCents,
      status: 'confirmed',
      createdAt: new Date().toISOString(),
      reservationId: String(reservation.body.id),
      chargeId: String(charge.body.id),
    };
    orders.set(id, order);
    bound(orders, MAX_ORDERS);
    return order;
  };

  const handle = router([
    {
      method: 'POST',
      pattern: /^\/login$/,
      name: 'POST /login',
      handler: async (req, res) => {
        const { user, password } = await readJson(req);
        if (typeof user !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(user)) {
          throw new HttpProblem(400, 'user is required (letters, digits, . _ -)');
        }
        if (typeof password !== 'string' || password.length === 0)
          throw new HttpProblem(400, 'password is required');
        const token = randomBytes(24).toString('base64url');
        const expiresAt = Date.now() + TOKEN_TTL_MS;
        sessions.set(token, { user, expiresAt });
        bound(sessions, MAX_SESSIONS);
        sendJson(res, 200, { token, expiresAt: new Date(expiresAt).toISOString() });
      },
    },
    {
      method: 'POST',
      pattern: /^\/orders$/,
      name: 'POST /orders',
      handler: async (req, res) => {
        const user = userOf(req);
        const { sku, qty } = await readJson(req);
        if (typeof sku !== 'string' || !SKU_PATTERN.test(sku)) throw new HttpProblem(400, 'sku is required');
        if (typeof qty !== 'number' || !Number.isInteger(qty) || qty < 1 || qty > MAX_QTY) {
          throw new HttpProblem(400, `qty must be a whole number from 1 to ${MAX_QTY}`);
        }
        await slowdown('POST /orders');
        const order = await createOrder(user, sku, qty);
        sendJson(res, 201, render(order));
      },
    },
    {
      method: 'GET',
      pattern: /^\/orders\/([^/]+)$/,
      name: 'GET /orders/:id',
      handler: async (req, res, [id]) => {
        const user = userOf(req);
        const order = orders.get(id ?? '');
        if (!order || order.user !== user) throw new HttpProblem(404, `no order ${id}`);
        await slowdown('GET /orders/:id');
        sendJson(res, 200, render(order));
      },
    },
    {
      method: 'GET',
      pattern: /^\/orders$/,
      name: 'GET /orders',
      handler: async (req, res) => {
        const user = userOf(req);
        if (variant.failing.includes('GET /orders')) throw new Error('seeded failure (variant error)');
        await slowdown('GET /orders');
        const mine = [...orders.values()].filter((o) => o.user === user).slice(-MAX_LISTED);
        sendJson(res, 200, { orders: mine.map(render), count: mine.length });
      },
    },
    {
      method: 'GET',
      pattern: /^\/health$/,
      name: 'GET /health',
      handler: (_req, res) => sendJson(res, 200, { status: 'ok', service: 'orders' }),
    },
    {
      method: 'GET',
      pattern: /^\/debug\/config$/,
      name: 'GET /debug/config',
      handler: (_req, res) =>
        sendJson(res, 200, {
          service: 'orders',
          variants: variant.variants,
          effects: Object.fromEntries(variant.variants.map((v) => [v, VARIANT_EFFECTS[v]])),
          delays: variant.delays,
          failing: variant.failing,
          dependencies: { inventory: config.inventory.base.href, payments: config.payments.base.href },
        }),
    },
  ]);
  return createServer(handle);
}
