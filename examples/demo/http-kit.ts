/**
 * Small helpers shared by the demo services: bounded JSON bodies, JSON answers, a tiny router,
 * the "ready" line the launcher waits for, and a clean shutdown.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

/** Requests bodies above this are refused with 413. */
export const MAX_BODY_BYTES = 64 * 1024;
/** Prefix of the line a service prints on stdout once it listens. */
export const READY_PREFIX = 'RETAP_DEMO_READY ';

export interface ReadyLine {
  service: string;
  port: number;
  pid: number;
  protocol: 'http' | 'https';
}

export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpProblem(413, `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new HttpProblem(400, 'body must be a JSON object');
    }
    return value as Record<string, unknown>;
  } catch (e) {
    if (e instanceof HttpProblem) throw e;
    throw new HttpProblem(400, 'body is not valid JSON');
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export type Handler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void> | void;

export interface Route {
  method: string;
  /** Matched against the path without the query string; capture groups become `params`. */
  pattern: RegExp;
  /** Route name used in stats, e.g. `GET /orders/:id`. */
  name: string;
  handler: Handler;
}

/** Finds the route, runs it, and turns thrown HttpProblems (or anything else) into JSON errors. */
export function router(
  routes: Route[],
  onRequest?: (route: string) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    let route: Route | undefined;
    let params: string[] = [];
    let pathKnown = false;
    for (const r of routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      pathKnown = true;
      if (r.method === method) {
        route = r;
        params = m.slice(1).map((p) => decodeURIComponent(p ?? ''));
        break;
      }
    }
    onRequest?.(route ? route.name : `${method} (unmatched)`);
    if (!route) {
      req.resume();
      sendJson(res, pathKnown ? 405 : 404, { error: pathKnown ? 'method not allowed' : 'not found' });
      return;
    }
    Promise.resolve()
      .then(() => route.handler(req, res, params))
      .catch((e: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (e instanceof HttpProblem) sendJson(res, e.status, { error: e.message });
        else sendJson(res, 500, { error: 'internal error' });
      });
  };
}

/** Counts requests per route name; the `/stats` endpoints expose it. */
export function counter(): { hit(name: string): void; snapshot(): Record<string, number> } {
  const counts = new Map<string, number>();
  return {
    hit: (name) => counts.set(name, (counts.get(name) ?? 0) + 1),
    snapshot: () => Object.fromEntries([...counts.entries()].sort(([a], [b]) => a.localeCompare(b))),
  };
}

export interface ServiceArgs {
  port: number;
  host: string;
  variant: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  /** Exit when stdin closes: the launcher's pipe, so a dead launcher leaves nothing behind. */
  exitWithParent: boolean;
}

export function parseServiceArgs(service: string, argv: string[]): ServiceArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      variant: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      'exit-with-parent': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${service}: --port '${values.port}' must be a whole number from 0 to 65535`);
  }
  return {
    port,
    host: values.host ?? '127.0.0.1',
    variant: values.variant,
    cert: values.cert,
    key: values.key,
    exitWithParent: values['exit-with-parent'] ?? false,
  };
}

/** Listens, prints the ready line, and closes cleanly on SIGTERM/SIGINT (or when the parent goes). */
export async function serve(
  service: string,
  server: Server,
  args: ServiceArgs,
  protocol: 'http' | 'https',
  onClose?: () => void,
): Promise<void> {
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.port, args.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : args.port;
  const ready: ReadyLine = { service, port, pid: process.pid, protocol };
  process.stdout.write(`${READY_PREFIX}${JSON.stringify(ready)}\n`);

  let closing = false;
  const close = (): void => {
    if (closing) return;
    closing = true;
    onClose?.();
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2_000).unref();
  };
  process.once('SIGTERM', close);
  process.once('SIGINT', close);
  if (args.exitWithParent) {
    process.stdin.on('data', () => {});
    process.stdin.once('end', close);
    process.stdin.once('error', close);
  }
}

/** Runs a service's main and prints a one-line reason before exiting non-zero on failure. */
export function runMain(service: string, main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    process.stderr.write(`${service}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
