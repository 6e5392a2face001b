/**
 * Records the demo's `orders` service into a snapshot store, as a service team would before
 * gating on it: the real demo system, real traffic, the real eBPF capture. Needs root.
 */
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CaptureSession } from '../../capture/session.js';
import type { Exchange } from '../../core/exchange.js';
import { demoPasswords, runTraffic, startDemo } from '../../examples/demo/index.js';
import { createRedactor, createSnapshotWriter } from '../../snapshots/index.js';

export interface OrdersSnapshot {
  /** The version directory written (…/orders/v1). */
  version: string;
  /** The store (…/orders). */
  store: string;
  /** Dependency URLs as recorded: in the replay namespace these names reach the mocks. */
  env: { INVENTORY_URL: string; PAYMENTS_URL: string };
  /**
   * A secrets file (`<dir>/orders-secrets.yaml`) with the demo client's passwords: redaction keeps
   * them out of the snapshot and a replay needs them back (replay.secrets / --secrets).
   */
  secrets: string;
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
    const r = createRedactor(undefined);
    const secrets = join(dir, 'orders-secrets.yaml');
    writeFileSync(secrets, demoPasswords().map((p) => `${r.placeholderOf(p)}: ${JSON.stringify(p)}\n`).join(''), { mode: 0o600 });
    return {
      version: writer.path,
      store: join(dir, 'orders'),
      secrets,
      env: { INVENTORY_URL: system.env.INVENTORY_URL ?? '', PAYMENTS_URL: system.env.PAYMENTS_URL ?? '' },
    };
  } finally {
    await system.stop();
  }
}
