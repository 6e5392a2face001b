/** The viewer's JSON API (server.ts), relative to the page so the token path carries over. */
export interface RowView {
  n: number;
  startUs: number;
  dir: 'inbound' | 'outbound';
  method: string;
  target: string;
  host: string;
  status?: number;
  grpcStatus?: number;
  durUs?: number;
  srvUs?: number;
  protocol: string;
  service: string;
  peer: string;
  size: number;
  flags: number;
}

export const FLAG_GAP = 1;
export const FLAG_TRUNCATED = 2;
export const FLAG_NO_RESPONSE = 4;
export const FLAG_TLS = 8;
export const FLAG_RESET = 16;
export const FLAG_REPLAY_FAIL = 32;
export const FLAG_REPLAY_ERROR = 64;

export interface Term {
  key: string;
  values: string[];
  raw: string;
}

export interface RowsAnswer {
  count: number;
  total: number;
  query: string;
  terms: Term[];
  offset: number;
  rows: RowView[];
}

export interface NodeHealth {
  node: string;
  ringbufDrops: number;
  userBatchDrops: number;
  gapBytes: number;
  connections?: number;
  unknownConnections?: number;
  events?: number;
  running?: boolean;
}

export interface State {
  count: number;
  generation: number;
  source: { kind: string; label: string; path?: string; newestFirst: boolean; live: boolean; save: { available: boolean; how: string } };
  health: { nodes: NodeHealth[]; warnings: string[]; indexed: number; total?: number; done: boolean };
}

export interface Histogram {
  fromUs: number;
  toUs: number;
  counts: number[];
  errors: number[];
}

export interface MapAnswer {
  nodes: Array<{ id: string; kind: 'caller' | 'service' | 'dependency'; label: string; count: number }>;
  edges: Array<{ from: string; to: string; protocols: string[]; count: number; errors: number; errorRate: number; p95Us?: number; query: string }>;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

async function answer<T>(r: Response): Promise<T> {
  const body = (await r.json()) as T & { error?: { message: string; hint?: string } };
  if (!r.ok || body.error) throw new ApiError(body.error?.message ?? `HTTP ${r.status}`, body.error?.hint);
  return body;
}

export async function get<T>(path: string, params: Record<string, string | number | undefined> = {}, signal?: AbortSignal): Promise<T> {
  const u = new URL(`api/${path}`, document.baseURI);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, String(v));
  return answer<T>(await fetch(u, { headers: { accept: 'application/json' }, ...(signal ? { signal } : {}) }));
}

/** True for the error a fetch throws when its AbortController fired (the page moved on). */
export function isAbort(e: unknown): boolean {
  return (e as { name?: string } | undefined)?.name === 'AbortError';
}

export async function post<T>(path: string, body: unknown): Promise<T> {
  return answer<T>(
    await fetch(new URL(`api/${path}`, document.baseURI), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  );
}
