/**
 * What travels from a node agent to `retap k8s capture`: one JSON object per line (NDJSON), each
 * with a sequence number so a broken stream resumes where it stopped. Exchanges are the model's
 * plain data with byte arrays as base64 (`{"$b64": "…"}`).
 */
import type { Exchange } from '../../core/exchange.js';

/** The agent's API, on 127.0.0.1 inside its pod: reached only through pods/portforward. */
export const AGENT_API_PORT = 9440;
/** The agent's /healthz and /readyz, for the kubelet's probes. */
export const AGENT_HEALTH_PORT = 9441;

/** Every event of a capture's stream, in the order the agent produced them. */
export type WireEvent =
  | {
      t: 'hello';
      seq: number;
      node: string;
      capture: string;
      agent: string;
      version: string;
      startedUs: number;
    }
  /** `n`: 1-based ordinal among exchange events, so a gap in `n` counts lost exchanges exactly. */
  | { t: 'exchange'; seq: number; n: number; ex: Exchange }
  | { t: 'targets'; seq: number; pods: TargetPod[] }
  | { t: 'stats'; seq: number; exchanges: number; counters: Record<string, number> }
  /** Events the agent no longer had when a reader asked for them (its buffer is bounded). */
  | { t: 'lost'; seq: number; fromSeq: number; toSeq: number }
  | {
      t: 'end';
      seq: number;
      /** Why, for programs: `shutdown` means the agent went away and its successor can take over. */
      code: EndCode;
      reason: string;
      exchanges: number;
      counters: Record<string, number>;
      error?: string;
    };

export type EndCode = 'stopped' | 'max-duration' | 'idle' | 'shutdown' | 'failed';

export interface TargetPod {
  namespace: string;
  pod: string;
  uid: string;
  /** Containers whose cgroups are targeted: names where the pod's status names them, else ids. */
  containers: string[];
}

/** What `retap k8s capture` asks an agent for. */
export interface CaptureRequest {
  namespace?: string;
  /** Label selector text (Kubernetes syntax). */
  selector?: string;
  container?: string;
  annotated?: boolean;
  /** The agent stops on its own this long after the start, should the client never come back. */
  maxDurationMs: number;
  /** Attach the OpenSSL probes (default true). */
  tls?: boolean;
  /** Bytes of events kept for a reader that comes back (default 64 MiB). */
  bufferBytes?: number;
}

export function encodeEvent(ev: WireEvent): string {
  return `${JSON.stringify(ev, bytesToBase64)}\n`;
}

export function decodeEvent(line: string): WireEvent {
  return JSON.parse(line, base64ToBytes) as WireEvent;
}

function bytesToBase64(this: unknown, key: string, value: unknown): unknown {
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Uint8Array) {
    return {
      $b64: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64'),
    };
  }
  return value;
}

function base64ToBytes(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const b = (value as { $b64?: unknown }).$b64;
    if (typeof b === 'string' && Object.keys(value).length === 1) {
      const buf = Buffer.from(b, 'base64');
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    }
  }
  return value;
}
