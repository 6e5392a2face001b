/**
 * The contract between stream reassembly and L7 decoders. Reassembly hands a decoder the bytes of
 * one connection, per side, in stream order, with explicit gaps; the decoder hands back decoded
 * exchanges. Decoders never see sockets, pids or kernel events, so they are tested on plain bytes.
 */
import type { Protocol, Request, Response } from '../../core/exchange.js';
import type { GrpcSchema } from '../../core/protobuf.js';

/** `client`: bytes the client sent (requests). `server`: bytes the server sent (responses). */
export type Side = 'client' | 'server';

/** A decoded request/response pair, before capture adds connection identity and wall-clock time. */
export interface DecodedExchange {
  protocol: Protocol;
  request: Request;
  response?: Response;
  /** Kernel monotonic nanoseconds of the first/last byte of each message. */
  requestStartNs: number;
  requestEndNs: number;
  responseStartNs?: number;
  responseEndNs?: number;
  /** See Exchange.notes: `gap`, `truncated`, `no-response`, `hpack-state-unknown`, `reset`… */
  notes?: string[];
  /** Protocol extras: HTTP/2 stream id, gRPC messages, upgrade target… */
  extras?: Record<string, unknown>;
  /**
   * Set when what was seen cannot be a valid exchange (its request was lost, its status is not
   * 100–599…): capture keeps it quarantined with this reason. Decoders never emit an empty
   * method, a status outside 100–599 or a negative size otherwise.
   */
  quarantine?: string;
}

export interface DecoderSink {
  exchange(ex: DecodedExchange): void;
  /**
   * Bytes the decoder saw and could not interpret (resync, not HTTP, upgraded tunnels…); counted
   * as not decoded. Only bytes that arrived: never a declared length, never bytes lost in a gap.
   */
  raw?(side: Side, bytes: number, reason: string): void;
  /** A message was cut at a limit (a head, chunk line or frame that never ends; a 1xx storm…). */
  cut?(side: Side, what: string): void;
  /**
   * The decoder caught an internal failure (a bug, never bad input) and dropped that side's
   * state. Capture marks the connection, reports the reason and stops decoding it.
   */
  fault?(side: Side, reason: string): void;
}

export interface StreamDecoder {
  /** Next bytes of one side's stream; `tsNs` is the kernel time the chunk was read or written. */
  push(side: Side, data: Uint8Array, tsNs: number): void;
  /** `length` bytes of this side's stream were lost here (capture loss or the per-call cap). */
  gap(side: Side, length: number, tsNs: number): void;
  /** The connection closed or capture stopped: emit what is pending (unanswered → `no-response`). */
  end(tsNs: number): void;
}

/**
 * Memory shared by every connection of one capture (budget.ts: newPool). Decoders add what they
 * hold after each call and give it back at `end`.
 */
export interface MemoryPool {
  held: number;
  max: number;
}

export interface DecoderOptions {
  /** Most bytes a decoder buffers per connection before it gives up on a message (default 8 MiB). */
  maxBufferBytes?: number;
  /** Shared with the other connections of the same capture; none: this connection's budget only. */
  pool?: MemoryPool;
  /** Bodies are kept up to this size; beyond it they are marked truncated (default 16 MiB). */
  maxBodyBytes?: number;
  /** gRPC over HTTP/2: message schemas (from `loadProtos`) to decode messages with field names. */
  grpc?: { schema?: GrpcSchema };
}

export type { GrpcSchema };

export interface ProtocolDecoder {
  readonly name: Protocol;
  /**
   * Looks at the first bytes one side sent: `match`, `no`, or `more` (need more bytes to tell).
   */
  detect(first: Uint8Array, side: Side): 'match' | 'no' | 'more';
  create(sink: DecoderSink, options?: DecoderOptions): StreamDecoder;
}
