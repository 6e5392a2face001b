/**
 * The node agent (`retap agent`, run by the DaemonSet): watches its node's pods and, when a
 * `retap k8s capture` client asks, records the matching pods' traffic and streams it back.
 *
 * Two listeners:
 *   - the API on 127.0.0.1 (default port 9440) inside the agent pod's own network namespace, so
 *     only `pods/portforward` through the API server reaches it — nothing else on the network can
 *     ask for captured plaintext;
 *   - /healthz and /readyz on all addresses (default port 9441) for the kubelet's probes, which
 *     say nothing about traffic.
 *
 * API (JSON; events as NDJSON, see wire.ts):
 *   GET    /v1/status                      node, pods watched, cgroup layout, captures
 *   POST   /v1/captures                    CaptureRequest → 201 { id, node, … } once attached
 *   GET    /v1/captures/<id>/events?after=N  the events after sequence N, then the new ones as
 *                                          they come; ends after the `end` event
 *   DELETE /v1/captures/<id>               stop (the stream delivers the rest, then `end`)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { logger } from '../../core/log.js';
import { type CgroupRoot, findCgroup2Root, PodCgroups } from './cgroups.js';
import { serveEvents } from './eventlog.js';
import { NodeCapture } from './node-capture.js';
import { NodePods } from './node-pods.js';
import { parseSelector } from './selector.js';
import { AGENT_API_PORT, AGENT_HEALTH_PORT, type CaptureRequest } from './wire.js';

const log = logger('agent');

/** Captures one agent runs at once (each loads its own BPF programs). */
const MAX_CAPTURES = 4;
/** An ended capture stays readable this long after its last reader left. */
const LINGER_MS = 60_000;
const MAX_BODY = 64 * 1024;

export interface AgentOptions {
  kc: KubeConfig;
  node: string;
  version: string;
  /** Where the host's /sys/fs/cgroup is mounted. */
  hostCgroup: string;
  apiHost?: string;
  apiPort?: number;
  healthPort?: number;
  ringBufferBytes?: number;
  idleMs?: number;
}

export class Agent {
  readonly pods: NodePods;
  readonly cgroups: PodCgroups;
  private readonly captures = new Map<string, NodeCapture>();
  private api: Server | undefined;
  private health: Server | undefined;
  private readonly name = hostname();
  private stopping = false;

  constructor(private readonly opts: AgentOptions) {
    this.pods = new NodePods(opts.kc, opts.node);
    this.cgroups = new PodCgroups(findCgroup2Root(opts.hostCgroup));
  }

  get cgroupRoot(): CgroupRoot {
    return this.cgroups.root;
  }

  /** Starts watching and listening; resolves with the API's bound port. */
  async start(): Promise<{ apiPort: number; healthPort: number }> {
    this.health = await listen(
      createServer((req, res) => this.onHealth(req, res)),
      '0.0.0.0',
      this.opts.healthPort ?? AGENT_HEALTH_PORT,
    );
    this.api = await listen(
      createServer((req, res) => {
        this.onApi(req, res).catch((e: unknown) =>
          fail(res, 500, e instanceof Error ? e.message : String(e)),
        );
      }),
      this.opts.apiHost ?? '127.0.0.1',
      this.opts.apiPort ?? AGENT_API_PORT,
    );
    await this.pods.start().catch((e: unknown) => {
      log.warn(`the first list of node ${this.opts.node}'s pods failed: ${(e as Error).message}; retrying`);
    });
    return { apiPort: port(this.api), healthPort: port(this.health) };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const c of this.captures.values()) c.stop('the agent is shutting down', 'shutdown');
    await Promise.all([...this.captures.values()].map((c) => c.done));
    // let the clients read the last events (the `end` that tells them to move on), briefly
    const deadline = Date.now() + 5000;
    while ([...this.captures.values()].some((c) => c.readerCount > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all([close(this.api), close(this.health)]);
    await this.pods.stop();
  }

  status(): Record<string, unknown> {
    return {
      node: this.opts.node,
      agent: this.name,
      version: this.opts.version,
      pid: process.pid,
      ready: this.pods.ready,
      ...(this.pods.lastError ? { watchError: this.pods.lastError } : {}),
      podsOnNode: this.pods.list().length,
      cgroup: { root: this.cgroups.root.dir, layout: this.cgroups.root.layout },
      captures: [...this.captures.values()].map((c) => c.status()),
    };
  }

  /** Starts a capture (also used by `retap agent --once`). */
  async startCapture(request: CaptureRequest): Promise<NodeCapture> {
    if (this.stopping) throw new HttpError(503, 'this agent is shutting down');
    const running = [...this.captures.values()].filter((c) => c.state !== 'ended').length;
    if (running >= MAX_CAPTURES) throw new HttpError(429, `this agent already runs ${running} captures`);
    const capture = new NodeCapture(request, {
      node: this.opts.node,
      agent: this.name,
      version: this.opts.version,
      pods: this.pods,
      cgroups: this.cgroups,
      ...(this.opts.ringBufferBytes ? { ringBufferBytes: this.opts.ringBufferBytes } : {}),
      ...(this.opts.idleMs ? { idleMs: this.opts.idleMs } : {}),
    });
    this.captures.set(capture.id, capture);
    void capture.done.then(() => this.forgetLater(capture));
    await capture.ready();
    log.info(`capture ${capture.id} started: ${describe(request)}`);
    return capture;
  }

  private forgetLater(capture: NodeCapture): void {
    const t = setTimeout(() => {
      if (capture.log.isClosed && capture.readerCount === 0) this.captures.delete(capture.id);
      else this.forgetLater(capture);
    }, LINGER_MS);
    t.unref();
  }

  private onHealth(req: IncomingMessage, res: ServerResponse): void {
    if (req.url === '/healthz') json(res, 200, { ok: true });
    else if (req.url === '/readyz') {
      if (this.pods.ready) json(res, 200, { ok: true });
      else json(res, 503, { ok: false, watchError: this.pods.lastError ?? 'pods not listed yet' });
    } else fail(res, 404, 'not found');
  }

  private async onApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    const parts = url.pathname.split('/').filter(Boolean);
    if (req.method === 'GET' && url.pathname === '/v1/status') return json(res, 200, this.status());
    if (parts[0] !== 'v1' || parts[1] !== 'captures')
      return fail(res, 404, `no such endpoint ${url.pathname}`);
    if (parts.length === 2 && req.method === 'POST') {
      let request: CaptureRequest;
      try {
        request = validateRequest(JSON.parse(await readBody(req)));
      } catch (e) {
        return fail(res, e instanceof HttpError ? e.status : 400, (e as Error).message);
      }
      try {
        const c = await this.startCapture(request);
        return json(res, 201, { id: c.id, node: this.opts.node, agent: this.name, startedAt: c.startedAt });
      } catch (e) {
        return fail(res, e instanceof HttpError ? e.status : 500, (e as Error).message);
      }
    }
    const capture = parts[2] ? this.captures.get(parts[2]) : undefined;
    if (!capture)
      return fail(
        res,
        404,
        `no capture ${parts[2] ?? ''} on node ${this.opts.node} (the agent may have restarted)`,
      );
    if (parts.length === 3 && req.method === 'DELETE') {
      capture.stop();
      return json(res, 202, capture.status());
    }
    if (parts.length === 3 && req.method === 'GET') return json(res, 200, capture.status());
    if (parts.length === 4 && parts[3] === 'events' && req.method === 'GET') {
      const after = Number(url.searchParams.get('after') ?? '0');
      if (!Number.isInteger(after) || after < 0) return fail(res, 400, 'after must be a whole number');
      return serveEvents(capture.log, after, res, capture.reader());
    }
    fail(res, 405, `${req.method} ${url.pathname} is not supported`);
  }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function validateRequest(raw: unknown): CaptureRequest {
  if (raw === null || typeof raw !== 'object') throw new HttpError(400, 'the body must be a JSON object');
  const r = raw as Record<string, unknown>;
  const str = (k: string): string | undefined => {
    if (r[k] === undefined) return undefined;
    if (typeof r[k] !== 'string' || r[k] === '') throw new HttpError(400, `${k} must be a non-empty string`);
    return r[k] as string;
  };
  const namespace = str('namespace');
  const selector = str('selector');
  const container = str('container');
  if (selector !== undefined) {
    try {
      parseSelector(selector, 'selector');
    } catch (e) {
      throw new HttpError(400, (e as Error).message);
    }
  }
  if (r.annotated !== undefined && typeof r.annotated !== 'boolean')
    throw new HttpError(400, 'annotated must be true or false');
  if (!selector && !r.annotated)
    throw new HttpError(400, 'give a selector or annotated: true (a capture of every pod is not offered)');
  const maxDurationMs = r.maxDurationMs;
  if (
    typeof maxDurationMs !== 'number' ||
    !Number.isInteger(maxDurationMs) ||
    maxDurationMs < 1000 ||
    maxDurationMs > 24 * 3600_000
  ) {
    throw new HttpError(400, 'maxDurationMs must be a whole number of milliseconds from 1000 to 86400000');
  }
  const bufferBytes = r.bufferBytes;
  if (
    bufferBytes !== undefined &&
    (typeof bufferBytes !== 'number' || bufferBytes < 1 << 20 || bufferBytes > 1 << 30)
  ) {
    throw new HttpError(400, 'bufferBytes must be from 1 MiB to 1 GiB');
  }
  return {
    ...(namespace !== undefined ? { namespace } : {}),
    ...(selector !== undefined ? { selector } : {}),
    ...(container !== undefined ? { container } : {}),
    ...(r.annotated === true ? { annotated: true } : {}),
    maxDurationMs,
    ...(r.tls === false ? { tls: false } : {}),
    ...(typeof bufferBytes === 'number' ? { bufferBytes } : {}),
  };
}

export function describe(r: CaptureRequest): string {
  const what = [
    r.namespace ? `namespace ${r.namespace}` : 'all namespaces',
    r.selector ? `pods ${r.selector}` : undefined,
    r.annotated ? 'pods annotated retap.dev/capture=true' : undefined,
    r.container ? `container ${r.container}` : undefined,
  ];
  return what.filter(Boolean).join(', ');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function fail(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  json(res, status, { error: message });
}

function listen(server: Server, host: string, p: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function port(server: Server): number {
  const a = server.address();
  return typeof a === 'object' && a ? a.port : 0;
}

function close(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });
}
