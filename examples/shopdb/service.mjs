/**
 * shopdb: a small catalogue service behind an HTTP API, using PostgreSQL (node `pg`, a pool,
 * parameterised and named statements, a transaction) and Redis (ioredis, a read-through cache).
 *
 *   GET  /items           all items                       SELECT … ORDER BY id
 *   GET  /items/:id       one item, cached in Redis       GET item:<id> → SELECT … WHERE id = $1 → SET item:<id> EX 60
 *   POST /orders          {"item":1,"qty":2}              BEGIN; UPDATE stock; INSERT … RETURNING id; COMMIT; DEL item:<id>
 *
 * Configuration: PORT, PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (read by pg), REDIS_HOST,
 * REDIS_PORT, REDIS_PASSWORD. SHOPDB_VARIANT seeds one regression for the gate's tests:
 *   changed-query   GET /items/:id selects `*` instead of the listed columns
 *   n-plus-one      GET /items then re-reads each listed item with its own query
 *   changed-param   POST /orders books one more than asked
 *   no-cache-write  GET /items/:id no longer fills the cache
 * and two changes that are not regressions: the Redis connection is opened by the first GET /items
 * (which waits for it) instead of at start, from the request (lazy-cache) or from a timer it sets
 * (lazy-cache-timer).
 */
import http from 'node:http';
import { Redis } from 'ioredis';
import pg from 'pg';

const variant = process.env.SHOPDB_VARIANT ?? '';
const pool = new pg.Pool({ max: 4 });
const cache = new Redis({
  host: process.env.REDIS_HOST ?? '127.0.0.1',
  port: Number(process.env.REDIS_PORT ?? 6379),
  password: process.env.REDIS_PASSWORD || undefined,
  maxRetriesPerRequest: 1,
  lazyConnect: variant.startsWith('lazy-cache'),
});

/** lazy-cache*: the first GET /items opens the Redis connection and waits until it is ready. */
async function openCache() {
  if (cache.status !== 'wait') return;
  if (variant === 'lazy-cache') await cache.connect();
  else await new Promise((resolve, reject) => setTimeout(() => cache.connect().then(resolve, reject), 0));
}

const ITEM_SQL =
  variant === 'changed-query'
    ? 'SELECT * FROM items WHERE id = $1'
    : 'SELECT id, name, price, stock FROM items WHERE id = $1';

async function listItems() {
  await openCache();
  const rows = (await pool.query('SELECT id, name, price, stock FROM items ORDER BY id')).rows;
  if (variant === 'n-plus-one') {
    // re-reads every listed item with its own query: one query more per item
    const out = [];
    for (const { id } of rows) {
      const r = await pool.query({
        name: 'item',
        text: 'SELECT id, name, price, stock FROM items WHERE id = $1',
        values: [id],
      });
      out.push(r.rows[0]);
    }
    return out;
  }
  return rows;
}

async function getItem(id) {
  const hit = await cache.get(`item:${id}`);
  if (hit) return { ...JSON.parse(hit), cached: true };
  const r = await pool.query({
    name: variant === 'changed-query' ? 'item-star' : 'item',
    text: ITEM_SQL,
    values: [id],
  });
  const item = r.rows[0];
  if (!item) return undefined;
  if (variant !== 'no-cache-write') await cache.set(`item:${id}`, JSON.stringify(item), 'EX', 60);
  return { ...item, cached: false };
}

async function order(body) {
  const qty = variant === 'changed-param' ? body.qty + 1 : body.qty;
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const u = await c.query(
      'UPDATE items SET stock = stock - $2 WHERE id = $1 AND stock >= $2 RETURNING stock',
      [body.item, qty],
    );
    if (u.rowCount === 0) {
      await c.query('ROLLBACK');
      return { status: 409, body: { error: 'out of stock' } };
    }
    const o = await c.query('INSERT INTO orders(item_id, qty) VALUES ($1, $2) RETURNING id', [
      body.item,
      qty,
    ]);
    await c.query('COMMIT');
    await cache.del(`item:${body.item}`);
    return { status: 201, body: { order: o.rows[0].id, stock: u.rows[0].stock } };
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

const send = (res, status, body) => {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
};

const server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (d) => (raw += d));
  req.on('end', async () => {
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const m = /^\/items\/(\d+)$/.exec(url.pathname);
      if (req.method === 'GET' && url.pathname === '/items') return send(res, 200, await listItems());
      if (req.method === 'GET' && m) {
        const item = await getItem(Number(m[1]));
        return item ? send(res, 200, item) : send(res, 404, { error: 'no such item' });
      }
      if (req.method === 'POST' && url.pathname === '/orders') {
        const r = await order(JSON.parse(raw || '{}'));
        return send(res, r.status, r.body);
      }
      send(res, 404, { error: 'not found' });
    } catch (e) {
      send(res, 500, { error: String(e?.message ?? e) });
    }
  });
});

server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1');
const stop = () => {
  server.close();
  Promise.allSettled([pool.end(), cache.quit()]).then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
