/** Shapes of the mock server's public API (runner/mocks/index.ts). */
import type { Exchange } from '../../core/exchange.js';
import type { MockMiss } from '../../core/results.js';
import type { TransformsFile } from '../../snapshots/replay.js';
import type { LiveCall } from './transport.js';
import type { EphemeralCa } from '../tls/ca.js';
import type { Tier } from './signature.js';
import type { VolatileFields } from './volatile.js';

export type MockProtocol = 'http1' | 'http2' | 'grpc' | 'postgres' | 'mysql' | 'redis';

export interface MockEndpoint {
  /** Recorded host name (Host/:authority/SNI), or the peer address when no name was seen. */
  host: string;
  /** Loopback address assigned to this host (127.0.0.2, 127.0.0.3, … one per host name). */
  addr: string;
  /** Recorded port; after startMocks, the port actually bound. */
  port: number;
  tls: boolean;
  protocols: MockProtocol[];
  /** True when `host` is an IP literal: clients dial it directly, so a hosts file cannot redirect it. */
  literal: boolean;
  /** Recorded exchanges served by this endpoint. */
  exchanges: number;
}

export interface MockPlan {
  endpoints: MockEndpoint[];
  /** Outbound exchanges that no mock can serve, with why (no response, protocol not served). */
  skipped: Array<{ id: string; reason: string }>;
}

export type MissMode = 'fail' | 'passthrough' | 'closest';

export interface MockCall {
  /** `host:port` of the endpoint as recorded. */
  endpoint: string;
  protocol: MockProtocol;
  method: string;
  target: string;
  outcome: 'matched' | 'closest' | 'miss' | 'passthrough';
  /** Which signature matched (docs/mocks.md). */
  tier?: Tier;
  /** Recorded exchange served. */
  recorded?: string;
  status: number;
  warnings: string[];
  during?: string;
}

export interface MockOptions {
  /** Required when the plan has TLS endpoints. */
  ca?: EphemeralCa;
  miss: MissMode;
  /** Address to bind for an endpoint (default endpoint.addr). */
  bindAddr?: (endpoint: MockEndpoint) => string;
  /** Port to bind for an endpoint (default endpoint.port; 0 for any free port). */
  bindPort?: (endpoint: MockEndpoint) => number;
  /** When binding the chosen port fails (in use, privileged), take a free port instead. */
  portFallback?: boolean;
  onCall?: (call: MockCall) => void;
  /** Transform rules of the snapshot, applied to each answer (snapshots/transforms). */
  transforms?: TransformsFile;
  /** Request fields known to be volatile (from tokens.yaml via volatileFromTokens). */
  volatile?: VolatileFields;
  /**
   * Recorded inbound exchanges: a database call recorded while one of them was being answered
   * is scoped to it (matched first while the runner replays that request, see setDuring).
   */
  inbound?: Exchange[];
  /**
   * The recorded request (its id) the build was answering when it made `call`, as capture linked
   * it (runner/links.ts); asked only on endpoints whose recorded calls have exact links. A call
   * with a scope takes the answers recorded for that request first (runner/mocks/book.ts).
   */
  scopeOf?: (call: LiveCall) => Promise<string | undefined>;
}

export interface BoundEndpoint extends MockEndpoint {
  /** Address actually bound. */
  boundAddr: string;
  /** Port of the recording (`port` is the one bound). */
  recordedPort: number;
  /** Set when the recorded port could not be bound and a free one was taken. */
  note?: string;
}

export interface MockStats {
  calls: number;
  matched: number;
  misses: MockMiss[];
}

export interface RunningMocks {
  endpoints: BoundEndpoint[];
  stats(): MockStats;
  /** Names the recorded item being replayed, so misses say `during` (undefined to clear). */
  setDuring(id: string | undefined): void;
  stop(): Promise<void>;
}

export type { Exchange };
