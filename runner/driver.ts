/**
 * Replay driver: sends the recorded inbound requests to the build with undici. Sessions run
 * `concurrency` at a time; requests inside a session keep their recorded order. Optional global
 * rate limit and recorded pacing (`speed`). Retries are off: a failure is a result.
 */
import { type Dispatcher, Pool } from 'undici';
import type { HeaderList } from '../core/exchange.js';
import type { DriverOptions, SpecItem, WorkerItem } from './spec.js';

/** A WorkerItem with bodies as bytes (the worker base64-encodes them once, when writing). */
export type DrivenItem = Omit<WorkerItem, 'body' | 'responseBody'> & {
  body?: Uint8Array;
  responseBody?: Uint8Array;
};

export function toWorkerItem(d: DrivenItem): WorkerItem {
  const { body, responseBody, ...rest } = d;
  return {
    ...rest,
    ...(body ? { body: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64') } : {}),
    ...(responseBody
      ? {
          responseBody: Buffer.from(
            responseBody.buffer,
            responseBody.byteOffset,
            responseBody.byteLength,
          ).toString('base64'),
        }
      : {}),
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
  status: number;
  headers: HeaderList;
  body: Uint8Array;
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

function toRequest(item: SpecItem): OutgoingRequest {
  return {
    method: item.method,
    target: item.target,
    headers: item.headers.filter(([n]) => !HOP_BY_HOP.has(n.toLowerCase()) && !n.startsWith(':')),
    body: new Uint8Array(Buffer.from(item.body, 'base64')),
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

export async function drive(
  origin: string,
  items: SpecItem[],
  sessions: Array<{ key: string; items: number[] }>,
  opts: DriverOptions,
  hooks: DriverHooks = {},
  onProgress?: (p: DriveProgress) => void,
  signal?: AbortSignal,
): Promise<DrivenItem[]> {
  const pool = new Pool(origin, {
    connections: Math.max(1, opts.concurrency),
    pipelining: 1,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connectTimeout: opts.timeoutMs,
  });
  const results: DrivenItem[] = new Array(items.length);
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
    if (hooks.prepare) req = hooks.prepare(item, req);
    // undici takes a flat [name, value, …] array: order and duplicates kept, no object building
    const headers: string[] = [];
    for (const [n, v] of req.headers) headers.push(n, v);
    headers.push(opts.idHeader, item.id);
    const started = performance.now();
    const out: DrivenItem = {
      id: item.id,
      method: req.method,
      target: req.target,
      headers: req.headers,
      ...(req.body.length ? { body: req.body } : {}),
      durationMs: 0,
    };
    let answer: LiveAnswer | undefined;
    try {
      answer = await send(pool, {
        method: req.method,
        path: req.target,
        headers,
        body: req.body.length || !['GET', 'HEAD'].includes(req.method) ? Buffer.from(req.body) : null,
        ...(signal ? { signal } : {}),
      });
      out.status = answer.status;
      out.responseHeaders = answer.headers;
      out.responseBody = answer.body;
    } catch (e) {
      out.error = (e as Error).message || String(e);
      errors++;
    }
    out.durationMs = performance.now() - started;
    hooks.observe?.(item, req, answer);
    results[index] = out;
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
    await pool.close().catch(() => undefined);
  }
  // Requests never sent (interrupted) are reported as such, not silently dropped.
  for (let i = 0; i < items.length; i++) {
    if (!results[i]) {
      const it = items[i]!;
      results[i] = {
        id: it.id,
        method: it.method,
        target: it.target,
        headers: it.headers,
        error: 'not sent (replay interrupted)',
        durationMs: 0,
      };
    }
  }
  return results;
}
