/**
 * Snapshot format v1: file names, the manifest shape, and the JSON line an exchange becomes.
 *
 * Determinism: every object is built here with its keys in code point order, so
 * `JSON.stringify` of the result is canonical without a sorting pass (extras are sorted
 * recursively because their keys come from decoders).
 */
import type { Body, Exchange, HeaderList, K8sRef } from '../core/exchange.js';

export const FORMAT = 'retap-snapshot';
export const FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'snapshot.yaml';
export const EXCHANGES_FILE = 'exchanges.jsonl';
export const EXCHANGES_GZ_FILE = 'exchanges.jsonl.gz';
export const TRANSFORMS_FILE = 'transforms.yaml';
export const TOKENS_FILE = 'tokens.yaml';

export interface FileEntry {
  path: string;
  /** sha256 (hex) of the file's uncompressed bytes. */
  sha256: string;
  /** Uncompressed size in bytes. */
  bytes: number;
  /** Exchanges file only: number of lines (exchanges). */
  lines?: number;
  gzip?: boolean;
}

export interface RouteCount {
  direction: string;
  host?: string;
  method: string;
  route: string;
  count: number;
  statuses: Record<string, number>;
}

export interface Counts {
  exchanges: number;
  byDirection: Record<string, number>;
  byProtocol: Record<string, number>;
  byStatus: Record<string, number>;
  routes: RouteCount[];
  /** Routes beyond the route cap are counted here instead of listed. */
  otherRoutes: number;
  truncatedBodies: number;
  noResponse: number;
  /**
   * Quarantined exchanges (protocol `unknown`, see snapshots/quarantine.ts); present when > 0.
   * They count in `exchanges`, `byDirection` and `byProtocol`, never in routes or statuses.
   */
  quarantined?: number;
  /**
   * Outbound exchanges linked to the inbound request that caused them, per method
   * (`Exchange.cause`); present when some are. Calls without a link are linked by time window
   * when the snapshot is planned.
   */
  links?: Record<string, number>;
}

export interface RedactionSummary {
  enabled: boolean;
  /** True when placeholders were keyed with a secret (RETAP_REDACTION_KEY or config). */
  keyed: boolean;
  rules: string[];
  redacted: Array<{ rule: string; location: string; count: number }>;
  /**
   * The user's own rules, when any were given (retap.yaml `redaction:`): never the key. A replay
   * redacts its results with the same rules, so what the snapshot hides its results hide too.
   */
  config?: RedactionRules;
}

/** The rule part of a redaction configuration (what a snapshot may carry). */
export interface RedactionRules {
  /** Include the built-in rules (default true). */
  defaults?: boolean;
  headers?: string[];
  allowHeaders?: string[];
  /** Regular expressions (case-insensitive) for JSON field names. */
  jsonFields?: string[];
  queryParams?: string[];
  cards?: boolean;
  patterns?: Array<{ id: string; regex: string }>;
}

export interface Manifest {
  format: typeof FORMAT;
  formatVersion: number;
  name: string;
  version: number;
  /** `sha256:<hex>` over the content; excludes name, version, parent and created. */
  hash: string;
  parent: { hash: string; version?: number; name?: string } | null;
  created: string;
  source: {
    host: string;
    service?: string;
    command?: string[];
    filters: Record<string, unknown>;
  };
  counts: Counts;
  timeRange: { firstStartUs: number; lastStartUs: number } | null;
  counters: Record<string, number>;
  notes: string[];
  redaction: RedactionSummary;
  files: { exchanges: FileEntry; transforms: FileEntry; tokens: FileEntry };
}

/** The stored body: text inline when it is printable UTF-8, base64 otherwise. */
export interface StoredBody {
  data: string;
  decoded?: { data: string; encoding: 'base64' | 'utf8' };
  encoding: 'base64' | 'utf8';
  size: number;
  truncated: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** C0 controls other than tab, LF, FF, CR, plus DEL: a body holding them is treated as binary. */
const BINARY_CONTROL = /[\u0000-\u0008\u000b\u000e-\u001f\u007f]/;

function encodeBytes(data: Uint8Array): { data: string; encoding: 'base64' | 'utf8' } {
  if (data.length === 0) return { data: '', encoding: 'utf8' };
  let text: string | undefined;
  try {
    text = utf8.decode(data);
  } catch {
    text = undefined;
  }
  if (text !== undefined && !BINARY_CONTROL.test(text) && !text.includes('\ufeff')) {
    return { data: text, encoding: 'utf8' };
  }
  return { data: Buffer.from(data.buffer, data.byteOffset, data.length).toString('base64'), encoding: 'base64' };
}

function decodeBytes(data: string, encoding: 'base64' | 'utf8'): Uint8Array {
  if (data.length === 0) return new Uint8Array(0);
  const b = Buffer.from(data, encoding === 'base64' ? 'base64' : 'utf8');
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

export function encodeBody(body: Body): StoredBody {
  const main = encodeBytes(body.data);
  const out: StoredBody = { data: main.data } as StoredBody;
  if (body.decoded !== undefined) {
    const d = encodeBytes(body.decoded);
    out.decoded = { data: d.data, encoding: d.encoding };
  }
  out.encoding = main.encoding;
  out.size = body.size;
  out.truncated = body.truncated;
  return out;
}

export function decodeBody(s: StoredBody): Body {
  const body: Body = { data: decodeBytes(s.data, s.encoding), size: s.size, truncated: s.truncated };
  if (s.decoded) body.decoded = decodeBytes(s.decoded.data, s.decoded.encoding);
  return body;
}

/** Recursively sorted copy of plain JSON data (for decoder-provided extras). */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = sortKeys(v);
  }
  return out;
}

function headers(h: HeaderList): HeaderList {
  return h.map(([n, v]) => [n, v]);
}

function opt<T extends object>(o: T): T {
  for (const k of Object.keys(o)) if ((o as Record<string, unknown>)[k] === undefined) delete (o as Record<string, unknown>)[k];
  return o;
}

function k8sStored(k: K8sRef | undefined): K8sRef | undefined {
  if (k === undefined) return undefined;
  return opt({
    container: k.container,
    namespace: k.namespace,
    node: k.node,
    pod: k.pod,
    service: k.service,
    workload: k.workload === undefined ? undefined : { kind: k.workload.kind, name: k.workload.name },
  });
}

/** Exchange → plain object with keys in code point order at every level. */
export function toStored(ex: Exchange): Record<string, unknown> {
  const req = ex.request;
  const res = ex.response;
  return opt({
    cause: ex.cause === undefined ? undefined : { exchange: ex.cause.exchange, method: ex.cause.method },
    connection: { id: ex.connection.id, order: ex.connection.order },
    direction: ex.direction,
    extras: ex.extras === undefined ? undefined : sortKeys(ex.extras),
    id: ex.id,
    notes: ex.notes === undefined ? undefined : [...ex.notes],
    peer: opt({ addr: ex.peer.addr, host: ex.peer.host, k8s: k8sStored(ex.peer.k8s), port: ex.peer.port }),
    protocol: ex.protocol,
    quarantine:
      ex.quarantine === undefined
        ? undefined
        : { protocol: ex.quarantine.protocol, reason: ex.quarantine.reason },
    request: opt({
      body: encodeBody(req.body),
      headers: headers(req.headers),
      method: req.method,
      target: req.target,
      trailers: req.trailers === undefined ? undefined : headers(req.trailers),
      version: req.version,
    }),
    response:
      res === undefined
        ? undefined
        : opt({
            body: encodeBody(res.body),
            headers: headers(res.headers),
            interim: res.interim?.map((i) => ({ headers: headers(i.headers), status: i.status })),
            reason: res.reason,
            status: res.status,
            trailers: res.trailers === undefined ? undefined : headers(res.trailers),
            version: res.version,
          }),
    service: opt({
      addr: ex.service.addr,
      comm: ex.service.comm,
      k8s: k8sStored(ex.service.k8s),
      name: ex.service.name,
      pid: ex.service.pid,
      port: ex.service.port,
    }),
    timing: opt({
      requestEndNs: ex.timing.requestEndNs,
      responseEndNs: ex.timing.responseEndNs,
      responseStartNs: ex.timing.responseStartNs,
      startUs: ex.timing.startUs,
    }),
    tls: ex.tls,
  });
}

export function encodeExchange(ex: Exchange): string {
  return JSON.stringify(toStored(ex));
}

// biome-ignore lint/suspicious/noExplicitAny: the stored shape was checked by the schema before this runs
type Stored = any;

/** Stored object (already schema-checked) → Exchange. */
export function fromStored(s: Stored): Exchange {
  const ex: Exchange = {
    id: s.id,
    protocol: s.protocol,
    direction: s.direction,
    tls: s.tls,
    service: s.service,
    peer: s.peer,
    connection: s.connection,
    request: { ...s.request, body: decodeBody(s.request.body) },
    timing: s.timing,
  };
  if (s.response) ex.response = { ...s.response, body: decodeBody(s.response.body) };
  if (s.notes) ex.notes = s.notes;
  if (s.extras) ex.extras = s.extras;
  if (s.quarantine) ex.quarantine = s.quarantine;
  if (s.cause) ex.cause = s.cause;
  return ex;
}
