/**
 * The results of replaying a snapshot: what the runner writes and what assertions and reports
 * read. Self-contained: the recorded exchanges travel with the live ones, so a results file can be
 * judged and rendered without the snapshot at hand.
 *
 * On disk (`results.json`, see snapshots/results.ts and docs/reports.md "The results file"):
 * JSON Lines since format version 2 — a header, one line per replayed item with every run's answer
 * to it, a trailer with the counts — so a run of any size is written, read and judged line by line.
 * Version 1 files (one JSON document) still read. Exchanges are encoded like snapshot lines.
 */
import type { Exchange, HeaderList } from './exchange.js';

export const RESULTS_FORMAT = 'retap-results';
/** The version written; readers take 1 (one JSON document) and 2 (JSON Lines). */
export const RESULTS_FORMAT_VERSION = 2;

/** One recorded inbound exchange that was replayed, with what the build called while answering it. */
export interface RecordedItem {
  /** The recorded exchange's id (stable key across runs). */
  id: string;
  /** Route template, e.g. `GET /orders/{id}`. */
  route: string;
  /** Replay session this request belongs to (requests of one session keep their recorded order). */
  session: string;
  exchange: Exchange;
  /** Outbound calls the recorded service made while answering it (each with its `cause` link). */
  outbound: Exchange[];
}

/**
 * The driver connection a request went out on. Capture at the build sees that connection from
 * the other end (its peer port is `port`), which is how a captured answer is joined to its request
 * without adding anything to the request.
 */
export interface SocketUse {
  /** The driver socket's local port. */
  port: number;
  /** When the driver opened that socket, µs since epoch (tells reuses of a port apart). */
  openedUs: number;
  /** 0-based position of the request on that socket. */
  seq: number;
  /** When the request was written, µs since epoch. */
  sentUs: number;
  /** HTTP/2: the stream id it went out on (capture at the build names the same stream). */
  stream?: number;
}

/** What the replay driver sent and what the client saw (used when capture missed the exchange). */
export interface ClientView {
  method: string;
  target: string;
  headers: HeaderList;
  /** Request body actually sent, after tokens and transforms. */
  body?: Uint8Array;
  status?: number;
  responseHeaders?: HeaderList;
  responseBody?: Uint8Array;
  /** HTTP/2 trailers (gRPC: grpc-status, grpc-message, grpc-status-details-bin). */
  responseTrailers?: HeaderList;
  /**
   * gRPC: the build reset the call (CANCEL) once its grpc-timeout had passed; `status` and the
   * trailers are DEADLINE_EXCEEDED as a gRPC client reports it, not something the build sent.
   */
  deadline?: string;
  /** Transport error (timeout, reset, refused) instead of an answer. */
  error?: string;
  /** Wall time seen by the client, ms (includes the runner's own scheduling: prefer live timings). */
  durationMs: number;
  /** The driver connection it was sent on (absent when it never reached a socket). */
  socket?: SocketUse;
}

export interface RunItem {
  /** RecordedItem.id this is the replay of. */
  id: string;
  client: ClientView;
  /** The build's answer as eBPF captured it at the build's socket (server-side timings). */
  live?: Exchange;
  /** Outbound calls the build made while answering (captured, each with its `cause` link), in order. */
  outbound: Exchange[];
}

export interface MockMiss {
  /** Outbound request that had no recorded answer. */
  method: string;
  host: string;
  target: string;
  /** The closest recorded signature, when there was one, and why it did not match. */
  closest?: string;
  reason: string;
  /** RecordedItem.id being replayed when the call happened, if known. */
  during?: string;
}

export interface RunWarning {
  code: string;
  message: string;
  /** RecordedItem.id concerned. */
  item?: string;
  /** Recorded outbound exchange concerned (`mock-skipped`: the call that cannot be mocked). */
  call?: string;
}

/**
 * The build's gRPC schema as its server reflection gave it (runner/reflection.ts), asked once per
 * run when the recording holds gRPC: serialized FileDescriptorProtos, so the report names fields
 * without the build running. `error` says why there is none (no reflection service…).
 */
export interface GrpcReflection {
  /** The reflection service that answered: `grpc.reflection.v1` or `grpc.reflection.v1alpha`. */
  api?: string;
  /** Services the build lists (the reflection service itself left out). */
  services?: string[];
  /** Serialized FileDescriptorProtos, base64, imports included. */
  files?: string[];
  /** Why there is no schema (no reflection service, an error answer, a timeout). */
  error?: string;
  /** Services or imports whose descriptors the build would not give, each with its reason. */
  missing?: string[];
}

export interface ReplayRun {
  /** `candidate`, `candidate#2` (noise run), `baseline`, `baseline#2`… */
  label: string;
  role: 'candidate' | 'baseline';
  build: { command: string; port: number; env?: Record<string, string> };
  startedAt: string;
  durationMs: number;
  items: RunItem[];
  mocks: { calls: number; matched: number; misses: MockMiss[] };
  capture: {
    exchanges: number;
    ringbufDrops: number;
    userBatchDrops: number;
    gapBytes: number;
  };
  warnings: RunWarning[];
  /**
   * How the driver used connections: `recorded` replays each recorded connection on one of its
   * own, closed where the recording closed it; `pooled` shares keep-alive connections. `reopened`
   * counts (recorded mode) requests that needed a new connection because the build had closed
   * one the recording kept open — each also a `connection-reopened` warning. Absent in results
   * written before connections were replayed.
   */
  connections?: { mode: 'recorded' | 'pooled'; opened: number; reopened: number };
  /** gRPC server reflection of this run's build (absent: not asked — no gRPC, or turned off). */
  reflection?: GrpcReflection;
  /** Infrastructure failure that ended the run early (build did not start, crashed…). */
  error?: { code: string; message: string };
}

export interface ReplayResults {
  format: typeof RESULTS_FORMAT;
  /** The version of the file these were read from (written: RESULTS_FORMAT_VERSION). */
  formatVersion: 1 | typeof RESULTS_FORMAT_VERSION;
  createdAt: string;
  snapshot: { path: string; name: string; version: number; hash: string };
  environment: { kind: 'local' | 'kubernetes'; namespace?: string };
  options: Record<string, unknown>;
  recorded: RecordedItem[];
  runs: ReplayRun[];
}
