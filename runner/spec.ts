/**
 * The contract between the replay orchestrator (outside the namespace, owning capture) and the
 * worker it starts inside the namespace (mocks, the build under test, the replay driver).
 * Passed as JSON files; bodies base64.
 */
import type { HeaderList } from '../core/exchange.js';
import type { GrpcReflection, MockMiss, RunWarning, SocketUse } from '../core/results.js';
import type { RedactionRules } from '../snapshots/replay.js';
import type { H2Plan } from './h2.js';

/**
 * `recorded`: each recorded connection is replayed on a connection of its own, its requests in
 * recorded order, closed where the recording closed it. `pooled`: keep-alive connections shared
 * by whatever request comes next (more throughput, but a server that reads a connection's state —
 * an unread body, per-connection settings — sees other traffic than it did when recorded).
 */
export type ConnectionMode = 'recorded' | 'pooled';

export interface DriverOptions {
  /** Lanes replayed at once (requests within a lane stay in order). */
  concurrency: number;
  /** Most requests per second over the whole run; undefined = as fast as answers come. */
  rate?: number | undefined;
  /** Keep recorded pacing, sped up by this factor (1 = as recorded); undefined = no pacing. */
  speed?: number | undefined;
  timeoutMs: number;
  /** Default `recorded`. */
  connections?: ConnectionMode | undefined;
  /** HTTP client: `h1` (default, runner/h1.ts) or `undici`. https origins always use undici. */
  client?: 'h1' | 'undici' | undefined;
  /**
   * Protocol per exchange: `auto` (default) sends what was recorded over HTTP/2 over HTTP/2
   * (runner/h2.ts) and the rest over HTTP/1.1; `h1` and `h2` send everything over one.
   */
  protocol?: ReplayProtocol | undefined;
  /**
   * Ask a build that serves gRPC for its schema over server reflection before replaying
   * (runner/reflection.ts); default true. `false`: `--no-reflection`, `replay.reflection: false`.
   */
  reflection?: boolean | undefined;
}

export type ReplayProtocol = 'auto' | 'h1' | 'h2';

export interface SpecItem {
  id: string;
  session: string;
  method: string;
  target: string;
  headers: HeaderList;
  body: string;
  /** Recorded start, µs since epoch (for --speed pacing). */
  startUs: number;
  /**
   * The recorded connection this request rides on (recorded mode): requests with the same key go
   * out on one driver connection, in order. A key ends where the recording closed its connection.
   */
  connection: string;
  /** The recording closed the connection after this request (its last, or an explicit close). */
  closeAfter: boolean;
  /** Request line version when it was not HTTP/1.1 (`HTTP/1.0`); sent as recorded by h1 in recorded mode. */
  version?: string;
  /** Sent over HTTP/2 (runner/h2.ts), as this plan from the recording says. */
  h2?: H2Plan;
  /** Recorded end of the exchange, µs since epoch: HTTP/2 streams that overlapped run at once. */
  endUs?: number;
}

/**
 * Requests that must keep their relative order, sent one after another. Recorded mode: a lane
 * holds every request of the credential sessions and recorded connections it joins; pooled: one
 * session. Lanes run `concurrency` at a time.
 */
export interface Lane {
  key: string;
  items: number[];
}

export interface WorkerSpec {
  runId: string;
  label: string;
  build: {
    command: string;
    port: number;
    ready?: string | undefined;
    readyTimeoutMs: number;
    env: Record<string, string>;
    cwd: string;
    /** cgroup.procs file the build joins before exec. */
    cgroupProcs: string;
  };
  items: SpecItem[];
  lanes: Lane[];
  mocks: {
    /** JSON Lines of the recorded outbound exchanges (snapshot line encoding). */
    outboundFile: string;
    miss: 'fail' | 'closest' | 'passthrough';
    caDir: string;
    /** Host name → loopback address, as written in the namespace's hosts file. */
    addrs: Record<string, string>;
  };
  snapshotPath: string;
  /** Unix socket of the live link feed (runner/links.ts): which request each call of the build is for. */
  linksSocket?: string;
  /** JSON file with { transforms, tokens } for the token engine and the mocks (runner/rules.ts). */
  rulesFile: string;
  /** JSON Lines of the recorded inbound exchanges (the token engine works on them). */
  inboundFile: string;
  driver: DriverOptions;
  /** The orchestrator writes restored secrets (JSON placeholder → value) on the worker's stdin. */
  secrets?: boolean;
  /** The snapshot is redacted: the worker redacts its output the same way before writing it. */
  redact?: boolean;
  /** The snapshot's own redaction rules (retap.yaml `redaction:` at capture), applied the same way. */
  redactionRules?: RedactionRules;
  /** Where the worker writes its WorkerOutput. */
  out: string;
}

export interface WorkerItem {
  id: string;
  method: string;
  target: string;
  headers: HeaderList;
  body?: string;
  status?: number;
  responseHeaders?: HeaderList;
  responseBody?: string;
  responseTrailers?: HeaderList;
  /** gRPC: the status is the client's DEADLINE_EXCEEDED, not one the build sent (why, in words). */
  deadline?: string;
  error?: string;
  durationMs: number;
  /** The driver connection it went out on (for joining the answer capture saw at the build). */
  socket?: SocketUse;
  /**
   * Recorded mode: the request's recorded connection was still open in the recording, but the
   * build had closed the driver's (why, in words); it went out on a new connection.
   */
  reopened?: string;
}

export interface WorkerOutput {
  items: WorkerItem[];
  mocks: { calls: number; matched: number; misses: MockMiss[] };
  warnings: RunWarning[];
  buildLog: string;
  buildExit?: { code: number | null; signal: string | null; during: 'startup' | 'replay' | 'stop' };
  /** The build's gRPC server reflection, when the recording holds gRPC and it was asked. */
  reflection?: GrpcReflection;
  error?: { code: string; message: string };
}
