/**
 * The contract between the replay orchestrator (outside the namespace, owning capture) and the
 * worker it starts inside the namespace (mocks, the build under test, the replay driver).
 * Passed as JSON files; bodies base64.
 */
import type { HeaderList } from '../core/exchange.js';
import type { MockMiss, RunWarning } from '../core/results.js';

export interface DriverOptions {
  /** Sessions replayed at once (requests within a session stay in order). */
  concurrency: number;
  /** Most requests per second over the whole run; undefined = as fast as answers come. */
  rate?: number | undefined;
  /** Keep recorded pacing, sped up by this factor (1 = as recorded); undefined = no pacing. */
  speed?: number | undefined;
  timeoutMs: number;
  /** Header carrying the recorded exchange id, so captured answers join their request. */
  idHeader: string;
  /** HTTP client: `h1` (default, runner/h1.ts) or `undici`. https origins always use undici. */
  client?: 'h1' | 'undici' | undefined;
}

export interface SpecItem {
  id: string;
  session: string;
  method: string;
  target: string;
  headers: HeaderList;
  body: string;
  /** Recorded start, µs since epoch (for --speed pacing). */
  startUs: number;
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
  sessions: Array<{ key: string; items: number[] }>;
  mocks: {
    /** JSON Lines of the recorded outbound exchanges (snapshot line encoding). */
    outboundFile: string;
    miss: 'fail' | 'closest' | 'passthrough';
    caDir: string;
    /** Host name → loopback address, as written in the namespace's hosts file. */
    addrs: Record<string, string>;
  };
  snapshotPath: string;
  /** JSON file with { transforms, tokens } for the token engine and the mocks (runner/rules.ts). */
  rulesFile: string;
  /** JSON Lines of the recorded inbound exchanges (the token engine works on them). */
  inboundFile: string;
  driver: DriverOptions;
  /** The orchestrator writes restored secrets (JSON placeholder → value) on the worker's stdin. */
  secrets?: boolean;
  /** The snapshot is redacted: the worker redacts its output the same way before writing it. */
  redact?: boolean;
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
  error?: string;
  durationMs: number;
}

export interface WorkerOutput {
  items: WorkerItem[];
  mocks: { calls: number; matched: number; misses: MockMiss[] };
  warnings: RunWarning[];
  buildLog: string;
  buildExit?: { code: number | null; signal: string | null; during: 'startup' | 'replay' | 'stop' };
  error?: { code: string; message: string };
}
