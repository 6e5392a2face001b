/**
 * Replay driver: sends the recorded inbound requests to the build. Sessions run `concurrency` at
 * a time; requests inside a session keep their recorded order. Optional global rate limit and
 * recorded pacing (`speed`). Retries are off: a failure is a result.
 *
 * Two clients: `h1` (runner/h1.ts, the default for plain-HTTP origins) and undici (`client:
 * 'undici'`, and always for https origins). Both send the same bytes: headers in recorded order,
 * hop-by-hop ones dropped, Content-Length for bodies, the id header last.
 */
import { type Dispatcher, Pool } from 'undici';
import type { HeaderList } from '../core/exchange.js';
import { H1Pool } from './h1.js';
import type { DriverOptions, SpecItem, WorkerItem } from './spec.js';

/**
 * A WorkerItem before encoding: request body as bytes, the answer as the client returned it
 * (headers and body become WorkerItem fields only when the results are written).
 */
export type DrivenItem = Omit<WorkerItem, 'body' | 'responseBody' | 'responseHeaders'> & {
  body?: Uint8Array;
  answer?: LiveAnswer;
};

const base64 = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

export function toWorkerItem(d: DrivenItem): WorkerItem {
  const { body, answer, ...rest } = d;
  return {
    ...rest,
    ...(body ? { body: base64(body) } : {}),
    ...(answer ? { responseHeaders: answer.headers, responseBody: base64(answer.body) } : {}),
  };
}

/** Request as sent, after the token engine and transforms had their say. */
export interface OutgoingRequest {
  method: string;
  target: string;
  headers: HeaderList;
  body: Uint8Array;
}

export interface LiveAnswer {
  readonly status: number;
  readonly headers: HeaderList;
  readonly body: Uint8Array;
}

/** Token engine / transforms hook points (identity when absent). */
export interface DriverHooks {
  prepare?(item: SpecItem, req: OutgoingRequest): OutgoingRequest;
  observe?(item: SpecItem, sent: OutgoingRequest, answer: LiveAnswer | undefined): void;
}

/** Headers that belong to one connection, never replayed as recorded. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
]);
const MAX_BODY = 32 << 20;

const NO_BODY = new Uint8Array(0);
const sendable = ([n]: [string, string]): boolean => !HOP_BY_HOP.has(n.toLowerCase()) && !n.startsWith(':');

function toRequest(item: SpecItem): OutgoingRequest {
  return {
    method: item.method,
    target: item.target,
    // the recorded list itself when nothing is dropped (the common case): no copy per request
    headers: item.headers.every(sendable) ? item.headers : item.headers.filter(sendable),
    body: item.body ? new Uint8Array(Buffer.from(item.body, 'base64')) : NO_BODY,
  };
}

function headerList(raw: Record<string, string | string[] | undefined>): HeaderList {
  const out: HeaderList = [];
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push([k, one]);
  }
  return out;
}

/**
 * One request through undici's dispatch API: no stream objects per answer (the request() API
 * costs a Readable per call), the body gathered in chunks up to MAX_BODY.
 */
function send(pool: Pool, opts: Dispatcher.DispatchOptions & { signal?: AbortSignal }): Promise<LiveAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let status = 0;
    let headers: HeaderList = [];
    const { signal, ...dispatchOpts } = opts;
    let settled = false;
    const fail = (e: Error): void => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    };
    let controllerRef: Dispatcher.DispatchController | undefined;
    const onAbort = (): void => controllerRef?.abort(new Error('replay interrupted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    pool.dispatch(dispatchOpts, {
      onRequestStart(controller) {
        controllerRef = controller;
      },
      onResponseStart(_c, statusCode, raw) {
        status = statusCode;
        headers = headerList(raw as Record<string, string | string[] | undefined>);
      },
      onResponseData(controller, chunk) {
        size += chunk.length;
        if (size > MAX_BODY)
          controller.abort(new Error(`answer over the ${MAX_BODY >> 20} MiB the driver keeps`));
        else chunks.push(chunk);
      },
      onResponseEnd() {
        signal?.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        resolve({ status, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
      },
      onResponseError(_c, err) {
        signal?.removeEventListener('abort', onAbort);
        fail(err);
      },
    });
  });
}

export interface DriveProgress {
  done: number;
  total: number;
  errors: number;
}

type Sender = (req: OutgoingRequest, id: string, signal?: AbortSignal) => Promise<LiveAnswer>;

interface Client {
  send: Sender;
  close(): Promise<void>;
}

function undiciClient(origin: string, opts: DriverOptions): Client {
  const pool = new Pool(origin, {
    connections: Math.max(1, opts.concurrency),
    pipelining: 1,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connectTimeout: opts.timeoutMs,
  });
  return {
    send(req, id, signal) {
      // undici takes a flat [name, value, …] array: order and duplicates kept, no object building
      const headers: string[] = [];
      for (const [n, v] of req.headers) headers.push(n, v);
      headers.push(opts.idHeader, id);
      return send(pool, {
        method: req.method,
        path: req.target,
        headers,
        body: req.body.length || !['GET', 'HEAD'].includes(req.method) ? Buffer.from(req.body) : null,
        ...(signal ? { signal } : {}),
      });
    },
    close: () => pool.close().catch(() => undefined),
  };
}

function h1Client(origin: URL, opts: DriverOptions, signal?: AbortSignal): Client {
  const pool = new H1Pool(origin.hostname.replace(/^\[|\]$/g, ''), Number(origin.port || 80), {
    connections: Math.max(1, opts.concurrency),
    timeoutMs: opts.timeoutMs,
    maxBody: MAX_BODY,
  });
  signal?.addEventListener('abort', () => pool.abort('replay interrupted'), { once: true });
  return {
    send: (req, id) => pool.request(req, opts.idHeader, id),
    close: () => pool.close(),
  };
}

/** The client a run uses: h1 unless undici is asked for or the origin is not plain HTTP. */
export function clientFor(origin: string, opts: DriverOptions): 'h1' | 'undici' {
  return opts.client === 'undici' || new URL(origin).protocol !== 'http:' ? 'undici' : 'h1';
}

export async function drive(
  origin: string,
  items: SpecItem[],
  sessions: Array<{ key: string; items: number[] }>,
  opts: DriverOptions,
  hooks: DriverHooks = {},
  onProgress?: (p: DriveProgress) => void,
  signal?: AbortSignal,
): Promise<DrivenItem[]> {
  const client =
    clientFor(origin, opts) === 'h1' ? h1Client(new URL(origin), opts, signal) : undiciClient(origin, opts);
  // Per-request results live in flat arrays while the replay runs (fewer objects for the GC to
  // carry along); they become DrivenItems once it is over.
  const answers: Array<LiveAnswer | undefined> = new Array(items.length);
  const sentAs: Array<OutgoingRequest | undefined> = new Array(items.length);
  const durations = new Float64Array(items.length).fill(-1);
  const failures = new Map<number, string>();
  // requests are decoded once, before the clock starts
  const prepared = items.map(toRequest);
  const firstUs = items.reduce((m, it) => Math.min(m, it.startUs), Number.POSITIVE_INFINITY);
  const t0 = Date.now();
  let nextSlot = t0;
  let done = 0;
  let errors = 0;

  const wait = async (ms: number): Promise<void> => {
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  };

  const one = async (index: number): Promise<void> => {
    const item = items[index]!;
    if (opts.speed) await wait(t0 + (item.startUs - firstUs) / 1000 / opts.speed - Date.now());
    if (opts.rate) {
      const slot = Math.max(nextSlot, Date.now());
      nextSlot = slot + 1000 / opts.rate;
      await wait(slot - Date.now());
    }
    let req = prepared[index]!;
    if (hooks.prepare) {
      req = hooks.prepare(item, req);
      sentAs[index] = req;
    }
    const started = performance.now();
    let answer: LiveAnswer | undefined;
    try {
      answer = await client.send(req, item.id, signal);
      answers[index] = answer;
    } catch (e) {
      failures.set(index, (e as Error).message || String(e));
      errors++;
    }
    durations[index] = performance.now() - started;
    hooks.observe?.(item, req, answer);
    done++;
    onProgress?.({ done, total: items.length, errors });
  };

  let nextSession = 0;
  const lane = async (): Promise<void> => {
    while (nextSession < sessions.length && !signal?.aborted) {
      const s = sessions[nextSession++]!;
      for (const index of s.items) {
        if (signal?.aborted) return;
        await one(index);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, sessions.length)) }, lane));
  } finally {
    await client.close();
  }
  const results: DrivenItem[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    if (durations[i]! < 0) {
      // never sent (interrupted): reported as such, not silently dropped
      results[i] = {
        id: it.id,
        method: it.method,
        target: it.target,
        headers: it.headers,
        error: 'not sent (replay interrupted)',
        durationMs: 0,
      };
      continue;
    }
    const req = sentAs[i] ?? prepared[i]!;
    const out: DrivenItem = {
      id: it.id,
      method: req.method,
      target: req.target,
      headers: req.headers,
      durationMs: durations[i]!,
    };
    if (req.body.length) out.body = req.body;
    const answer = answers[i];
    if (answer) {
      out.status = answer.status;
      out.answer = answer;
    } else out.error = failures.get(i) ?? 'no answer';
    results[i] = out;
  }
  return results;
}
