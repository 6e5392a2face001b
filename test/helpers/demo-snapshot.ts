/**
 * Records the demo's `orders` service into a snapshot store, as a service team would before
 * gating on it: the real demo system, real traffic, the real eBPF capture. Needs root.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CaptureSession } from '../../capture/session.js';
import type { Exchange } from '../../core/exchange.js';
import { runTraffic, startDemo } from '../../examples/demo/index.js';
import { createSnapshotWriter } from '../../snapshots/index.js';

export interface OrdersSnapshot {
  /** The version directory written (…/orders/v1). */
  version: string;
  /** The store (…/orders). */
  store: string;
  /** Dependency URLs as recorded: in the replay namespace these names reach the mocks. */
  env: { INVENTORY_URL: string; PAYMENTS_URL: string };
}

/** Records `sessions` sessions of seeded demo traffic into `<dir>/orders`; stops the demo after. */
export async function recordOrdersSnapshot(dir: string, sessions = 3): Promise<OrdersSnapshot> {
  const system = await startDemo({});
  try {
    const writer = await createSnapshotWriter({
      dir: join(dir, 'orders'),
      name: 'orders',
      source: { host: hostname(), service: 'orders', filters: { pids: [system.orders.pid] } },
    });
    let pending = Promise.resolve();
    const session = CaptureSession.start({ pids: [system.orders.pid], service: 'orders' }, (ex: Exchange) => {
      pending = pending.then(() => writer.append(ex));
    });
    try {
      // one session at a time: every outbound call belongs to exactly one request
      await runTraffic(system.orders.url, { sessions, seed: 3, concurrency: 1 });
    } finally {
      await session.stop();
      await pending;
    }
    await writer.finish();
    return {
      version: writer.path,
      store: join(dir, 'orders'),
      env: { INVENTORY_URL: system.env.INVENTORY_URL ?? '', PAYMENTS_URL: system.env.PAYMENTS_URL ?? '' },
    };
  } finally {
    await system.stop();
  }
}
