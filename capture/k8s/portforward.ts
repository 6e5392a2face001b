/**
 * A TCP connection to a port inside a pod, through the API server's `pods/portforward`
 * (client-node's PortForward: a WebSocket with `v4.channel.k8s.io` framing; channel 0 carries
 * data, channel 1 the kubelet's error text). Exposed as a Duplex so node:http can speak HTTP over
 * it (`createConnection`). One forward per connection, as kubectl does.
 */
import { type IncomingMessage, request } from 'node:http';
import { Duplex, PassThrough } from 'node:stream';
import { type KubeConfig, PortForward } from '@kubernetes/client-node';
import { ErrorCodes, RetapError } from '../../core/errors.js';

/** The part of the `ws` client the forward uses. */
interface WsLike {
  close(): void;
  on(event: 'close', f: () => void): void;
  on(event: 'error', f: (e: Error) => void): void;
}

export async function openPortForward(
  kc: KubeConfig,
  namespace: string,
  pod: string,
  port: number,
  openTimeoutMs = 30_000,
): Promise<Duplex> {
  const fromPod = new PassThrough();
  const errors = new PassThrough();
  const toPod = new PassThrough();
  let errorText = '';
  errors.on('data', (c: Buffer) => {
    errorText += c.toString('utf8');
  });
  // the WebSocket's upgrade, bounded: an API server or kubelet that never answers it is an error
  const opening = new PortForward(kc, true).portForward(namespace, pod, [port], fromPod, errors, toPod);
  let timer: NodeJS.Timeout | undefined;
  let ws: WsLike;
  try {
    ws = (await Promise.race([
      opening,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no WebSocket upgrade within ${openTimeoutMs / 1000} s`)),
          openTimeoutMs,
        );
      }),
    ])) as unknown as WsLike;
  } catch (e) {
    // one that opens after all is closed at once
    opening.then((late) => (late as unknown as WsLike).close()).catch(() => undefined);
    throw forwardError(namespace, pod, port, e);
  } finally {
    clearTimeout(timer);
  }
  // node:http's socket timeout (ClientRequest.setTimeout): idle means nothing read or written
  let idle: NodeJS.Timeout | undefined;
  const stopIdle = (): void => {
    clearTimeout(idle);
    idle = undefined;
  };
  const touch = (): void => {
    idle?.refresh();
  };
  const duplex: Duplex = new Duplex({
    read() {
      fromPod.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      touch();
      toPod.write(chunk, cb);
    },
    final(cb) {
      ws.close();
      cb();
    },
    destroy(err, cb) {
      stopIdle();
      try {
        ws.close();
      } catch {
        /* already closed */
      }
      cb(err);
    },
  });
  fromPod.on('data', (c: Buffer) => {
    touch();
    if (!duplex.push(c)) fromPod.pause();
  });
  ws.on('close', () => {
    stopIdle();
    if (errorText)
      duplex.destroy(new Error(`port-forward to ${namespace}/${pod}:${port}: ${errorText.trim()}`));
    else duplex.push(null);
  });
  ws.on('error', (e: Error) => duplex.destroy(e));
  // node:http treats the stream as a socket
  Object.assign(duplex, {
    setTimeout(ms: number, onTimeout?: () => void) {
      stopIdle();
      if (onTimeout) duplex.once('timeout', onTimeout);
      if (ms > 0 && !duplex.destroyed) {
        idle = setTimeout(() => duplex.emit('timeout'), ms);
        idle.unref();
      }
      return duplex;
    },
    setNoDelay: () => duplex,
    setKeepAlive: () => duplex,
  });
  return duplex;
}

function forwardError(namespace: string, pod: string, port: number, e: unknown): RetapError {
  const text = e instanceof Error ? e.message : String((e as { message?: string })?.message ?? e);
  const forbidden = /403|forbidden/i.test(text);
  return new RetapError(
    forbidden ? ErrorCodes.K8S_FORBIDDEN : ErrorCodes.K8S_UNREACHABLE,
    `cannot port-forward to ${namespace}/${pod}:${port}: ${text || 'the connection failed'}`,
    {
      hint: forbidden
        ? `Your user needs create on pods/portforward in namespace ${namespace} (docs/kubernetes.md, RBAC).`
        : 'Is the pod running, and the API server reachable? (kubectl port-forward tells the same)',
      cause: e,
    },
  );
}

export interface PodHttpRequest {
  method: string;
  path: string;
  body?: unknown;
  /** Abort the request (and its streamed answer). */
  signal?: AbortSignal;
  /** Ends the request when nothing is read or written for this long (the socket's idle timeout). */
  timeoutMs?: number;
}

/** One HTTP request to a port inside a pod over a port-forward; the answer may stream. */
export function podHttp(
  kc: KubeConfig,
  target: { namespace: string; pod: string; port: number },
  r: PodHttpRequest,
): Promise<IncomingMessage> {
  const payload = r.body === undefined ? undefined : Buffer.from(JSON.stringify(r.body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method: r.method,
        path: r.path,
        host: 'retap-agent',
        headers: {
          connection: 'close',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        ...(r.signal ? { signal: r.signal } : {}),
        // node:http waits for the callback form: the forward takes a round trip to open
        createConnection: ((_opts: unknown, done: (err: Error | null, s?: Duplex) => void) => {
          openPortForward(kc, target.namespace, target.pod, target.port, r.timeoutMs).then(
            (s) => done(null, s),
            (e: Error) => done(e),
          );
          return undefined;
        }) as never,
      },
      (res) => {
        answer = res;
        resolve(res);
      },
    );
    let answer: IncomingMessage | undefined;
    req.on('error', reject);
    const idleMs = r.timeoutMs;
    if (idleMs) {
      req.setTimeout(idleMs, () => {
        const e = new RetapError(
          ErrorCodes.K8S_UNREACHABLE,
          `nothing from ${target.namespace}/${target.pod}:${target.port} for ${idleMs / 1000} s (${r.method} ${r.path} through a port-forward)`,
          {
            hint: 'Is the pod alive (kubectl describe pod), and the API server and kubelet answering? A stalled forward ends this way; rerun.',
          },
        );
        // a reader of a streamed answer gets this error, not node's "aborted"
        answer?.destroy(e);
        req.destroy(e);
      });
    }
    req.end(payload);
  });
}

/** Reads a whole (small) answer as JSON; a non-2xx answer becomes an error with its text. */
export async function readJson<T>(res: IncomingMessage): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: text.slice(0, 300) };
  }
  if ((res.statusCode ?? 0) >= 300) {
    const err = new Error((body as { error?: string }).error ?? `HTTP ${res.statusCode}`);
    Object.assign(err, { status: res.statusCode });
    throw err;
  }
  return body as T;
}
