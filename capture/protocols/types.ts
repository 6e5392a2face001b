/**
 * The contract between stream reassembly and L7 decoders. Reassembly hands a decoder the bytes of
 * one connection, per side, in stream order, with explicit gaps; the decoder hands back decoded
 * exchanges. Decoders never see sockets, pids or kernel events, so they are tested on plain bytes.
 */
import type { Protocol, Request, Response } from '../../core/exchange.js';

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
}

export interface DecoderSink {
  exchange(ex: DecodedExchange): void;
  /** Bytes the decoder could not interpret; counted and reported as raw/unknown. */
  raw?(side: Side, bytes: number, reason: string): void;
}

export interface StreamDecoder {
  /** Next bytes of one side's stream; `tsNs` is the kernel time the chunk was read or written. */
  push(side: Side, data: Uint8Array, tsNs: number): void;
  /** `length` bytes of this side's stream were lost here (capture loss or the per-call cap). */
  gap(side: Side, length: number, tsNs: number): void;
  /** The connection closed or capture stopped: emit what is pending (unanswered → `no-response`). */
  end(tsNs: number): void;
}

export interface DecoderOptions {
  /** Most bytes a decoder buffers per connection before it gives up on a message (default 8 MiB). */
  maxBufferBytes?: number;
  /** Bodies are kept up to this size; beyond it they are marked truncated (default 16 MiB). */
  maxBodyBytes?: number;
  /** gRPC over HTTP/2: message schemas (from `loadProtos`) to decode messages with field names. */
  grpc?: { schema?: GrpcSchema };
}

/** Decodes gRPC messages with names; `capture/protocols/grpc/protos.ts` builds one from `.proto` files. */
export interface GrpcSchema {
  /**
   * One message of method `path` (`/pkg.Service/Method`) as plain JSON-able data, or undefined
   * when the schema does not know the method. May throw on bytes that do not fit the type.
   */
  decode(path: string, direction: 'request' | 'response', message: Uint8Array): unknown;
  /** Field numbers the method's message type knows (top level). */
  fields?(path: string, direction: 'request' | 'response'): ReadonlySet<number> | undefined;
  /** A decoded value written back as bytes (the token engine's named protobuf fields). */
  encode?(path: string, direction: 'request' | 'response', value: unknown): Uint8Array | undefined;
}

export interface ProtocolDecoder {
  readonly name: Protocol;
  /**
   * Looks at the first bytes one side sent: `match`, `no`, or `more` (need more bytes to tell).
   */
  detect(first: Uint8Array, side: Side): 'match' | 'no' | 'more';
  create(sink: DecoderSink, options?: DecoderOptions): StreamDecoder;
}
