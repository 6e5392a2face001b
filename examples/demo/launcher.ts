/**
 * Starts the whole demo system: inventory (HTTP), payments (HTTPS with a throwaway CA) and
 * orders (the service under test), each its own process. `stop()` ends every child by pid and
 * removes the temp dir; if starting fails half way, what was started is stopped before throwing.
 */
import { rm } from 'node:fs/promises';
import { makeDemoCerts } from './certs.js';
import { type Service, spawnService, stopService } from './spawn-service.js';
import { parseVariants, type Variant } from './variants.js';

export interface DemoOptions {
  /** Variant list as on the command line (`slow,error`, `all`) or already parsed. */
  variant?: string | Variant[];
  /** Ports base, base+1, base+2 for inventory, payments, orders; default: any free port. */
  portBase?: number;
  /** Receives the services' own output lines. */
  log?: (service: string, line: string) => void;
}

export interface DemoService {
  url: string;
  pid: number;
  port: number;
}

export interface DemoSystem {
  orders: DemoService;
  inventory: DemoService;
  payments: DemoService;
  variants: Variant[];
  /** The CA that signed payments' certificate (PEM file). */
  caFile: string;
  /** The environment `orders` was started with (dependency URLs, NODE_EXTRA_CA_CERTS). */
  env: Record<string, string>;
  /** The command line that started `orders` (for the replay runner's "build under test"). */
  ordersCommand: string[];
  stop(): Promise<void>;
}

/** Dependency URLs use host names, as a deployed service's configuration would. */
const DEPENDENCY_HOST = 'localhost';

export async function startDemo(options: DemoOptions = {}): Promise<DemoSystem> {
  const variants = Array.isArray(options.variant) ? options.variant : parseVariants(options.variant);
  const port = (offset: number): string[] =>
    options.portBase === undefined ? ['--port', '0'] : ['--port', String(options.portBase + offset)];
  const started: Service[] = [];
  let tempDir: string | undefined;
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(started.map((s) => stopService(s.child)));
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  };

  try {
    const certs = await makeDemoCerts();
    tempDir = certs.dir;
    const common = { log: options.log, urlHost: DEPENDENCY_HOST };
    // Start both dependencies together; keep whichever started so a failure stops it too.
    const deps = await Promise.allSettled([
      spawnService('inventory', { ...common, args: port(0) }),
      spawnService('payments', {
        ...common,
        args: [...port(1), '--cert', certs.certFile, '--key', certs.keyFile],
      }),
    ]);
    for (const d of deps) if (d.status === 'fulfilled') started.push(d.value);
    for (const d of deps) if (d.status === 'rejected') throw d.reason;
    const [inventory, payments] = started as [Service, Service];
    const env: Record<string, string> = {
      INVENTORY_URL: inventory.url,
      PAYMENTS_URL: payments.url,
      NODE_EXTRA_CA_CERTS: certs.caFile,
    };
    const ordersArgs = [...port(2), ...(variants.length ? ['--variant', variants.join(',')] : [])];
    const orders = await spawnService('orders', {
      log: options.log,
      args: ordersArgs,
      env: { ...process.env, ...env },
    });
    started.push(orders);
    const view = (s: Service): DemoService => ({ url: s.url, pid: s.pid, port: s.port });
    return {
      orders: view(orders),
      inventory: view(inventory),
      payments: view(payments),
      variants,
      caFile: certs.caFile,
      env,
      ordersCommand: [...orders.child.spawnargs],
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
