/**
 * The Exchange model: one request and its answer, seen at one process's socket.
 *
 * Everything in retap speaks this shape: capture produces it, snapshots store it, the runner
 * replays it and assertions compare it. It is plain data (no classes) so it crosses worker
 * threads and JSON without ceremony; bodies are Uint8Array because payloads may be binary.
 */

/** Application protocols retap decodes. Decoders registered later add their own names. */
export type Protocol = 'http1' | 'http2' | 'grpc' | 'unknown' | (string & {});

/**
 * `inbound`: the observed process answered a request it received (it is the server).
 * `outbound`: the observed process made a call to a dependency (it is the client).
 */
export type Direction = 'inbound' | 'outbound';

/** Headers in wire order; duplicates kept; names as sent (HTTP/2 names are lower case). */
export type HeaderList = Array<[name: string, value: string]>;

export interface Body {
  /** Bytes as captured, after transfer decoding (chunked framing removed), before content decoding. */
  data: Uint8Array;
  /** Size the message declared or carried on the wire, which exceeds data.length when truncated. */
  size: number;
  /** True when bytes are missing: capture loss, the per-call cap, or a connection cut mid-body. */
  truncated: boolean;
  /** Content-Encoding decoded for comparison (gzip/deflate/br); absent when identity or undecodable. */
  decoded?: Uint8Array;
}

/**
 * Where an endpoint lives in Kubernetes, when a capture knows it (`retap k8s capture`: the node
 * agent labels the observed side, the client the peers it can name).
 */
export interface K8sRef {
  namespace: string;
  pod?: string;
  container?: string;
  /** The pod's controller as users name it: a ReplicaSet's Deployment; a StatefulSet, DaemonSet or Job as it is. */
  workload?: { kind: string; name: string };
  /** The Service whose cluster IP the address is (peers only). */
  service?: string;
  node?: string;
}

/** The process side of a connection: the one retap observed. */
export interface ServiceEndpoint {
  addr: string;
  port: number;
  /** Process id as the capturing host sees it (on Kubernetes: the node's pid namespace). */
  pid?: number;
  /** Short process name (kernel `comm`). */
  comm?: string;
  /** User-facing service name, from the capture's `--service` or the command (on Kubernetes: the workload). */
  name?: string;
  k8s?: K8sRef;
}

/** The remote side of a connection. */
export interface PeerEndpoint {
  addr: string;
  port: number;
  /** Host name the client asked for (Host/:authority header or TLS SNI) when known. */
  host?: string;
  k8s?: K8sRef;
}

export interface Request {
  method: string;
  /** Request target as sent: path and query (`/orders/7?full=1`), or authority for CONNECT. */
  target: string;
  /** `HTTP/1.1`, `HTTP/1.0`, `HTTP/2`. */
  version: string;
  headers: HeaderList;
  body: Body;
  trailers?: HeaderList;
}

export interface Response {
  status: number;
  reason?: string;
  version: string;
  headers: HeaderList;
  body: Body;
  trailers?: HeaderList;
  /** 1xx interim responses that came before the final one, in order. */
  interim?: Array<{ status: number; headers: HeaderList }>;
}

/**
 * Timings from kernel timestamps at the observed socket. `startUs` is wall-clock time of the
 * request's first byte in microseconds since the Unix epoch; the other fields are nanoseconds
 * after that first byte, so sub-microsecond differences survive JSON.
 */
export interface Timing {
  startUs: number;
  requestEndNs: number;
  responseStartNs?: number;
  responseEndNs?: number;
}

/** Per-protocol extras (e.g. gRPC messages, HTTP/2 stream id) that do not fit the common shape. */
export type Extras = Record<string, unknown>;

export interface Exchange {
  /** Stable within a snapshot: `<connection id>#<order>`. */
  id: string;
  protocol: Protocol;
  direction: Direction;
  tls: boolean;
  service: ServiceEndpoint;
  peer: PeerEndpoint;
  connection: {
    /** Unique per connection within a capture (tgid, fd and generation). */
    id: string;
    /** 0-based position of this exchange on its connection (HTTP/2: order of stream start). */
    order: number;
  };
  request: Request;
  /** Absent when the connection ended (or capture stopped) before an answer was seen. */
  response?: Response;
  timing: Timing;
  /**
   * Facts a reader must know to trust this exchange: `gap` (bytes lost), `truncated`,
   * `hpack-state-unknown` (joined an HTTP/2 connection mid-stream), `no-response`, `reset`.
   */
  notes?: string[];
  extras?: Extras;
  /**
   * Set on a quarantined exchange: what was seen could not become a valid exchange (a request
   * lost in a gap, a status outside 100–599, a shape the snapshot schema refuses). Its
   * `protocol` is `unknown`; request and response keep what was valid (sizes always, bytes when
   * they were whole). Counted in the manifest, shown by `retap snapshot show`, never replayed
   * and never served by a mock.
   */
  quarantine?: Quarantine;
}

export interface Quarantine {
  /** Protocol the decoder (or the source) gave the exchange before it was quarantined. */
  protocol: string;
  /** Why, in words: the first problem found (a JSON path and what is wrong with it). */
  reason: string;
}

/**
 * Method of a request whose start line was never seen or could not be kept (quarantined
 * exchanges only). Not a real method: such a request is never sent.
 */
export const UNKNOWN_METHOD = '-';

/** True for a quarantined exchange: shown and counted, never replayed or served. */
export function isQuarantined(ex: Exchange): boolean {
  return ex.quarantine !== undefined;
}

export function emptyBody(): Body {
  return { data: new Uint8Array(0), size: 0, truncated: false };
}

/** First value of a header, compared case-insensitively. */
export function headerValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (n.toLowerCase() === lower) return v;
  return undefined;
}

/** Server-side latency: request's last byte read to response's first byte written, in ns. */
export function serverLatencyNs(ex: Exchange): number | undefined {
  const t = ex.timing;
  if (t.responseStartNs === undefined) return undefined;
  return Math.max(0, t.responseStartNs - t.requestEndNs);
}

/** Path of a request target without its query string. */
export function targetPath(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}
