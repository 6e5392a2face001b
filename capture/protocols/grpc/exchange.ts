/**
 * gRPC over HTTP/2: length-prefixed messages (1 byte compressed flag, 4 byte length), per-message
 * compression named by `grpc-encoding`, status from `grpc-status`/`grpc-message` (trailers, or
 * the headers of a trailers-only response), service and method from `:path`.
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import type { HeaderList, Request, Response } from '../../../core/exchange.js';
import { decodeRaw, type RawField } from '../../../core/protobuf.js';
import type { GrpcSchema } from '../types.js';

export interface GrpcMessage {
  compressed: boolean;
  /** Length on the wire (compressed size when compressed). */
  length: number;
  /** Schema-less decoding of the (decompressed) message. */
  fields?: RawField[];
  /** Decoded with the user's .proto files, when a schema knows the method. */
  value?: unknown;
  /** Why the message could not be decoded (cut, unknown compression, not protobuf…). */
  error?: string;
  /**
   * When its last byte arrived at the observed socket, ns after the exchange's first request byte
   * (the replay driver keeps a stream's messages in this order and, with --speed, this pacing).
   */
  atNs?: number;
}

/** DATA arrival marks of a stream (flat [body bytes so far, ts ns] pairs) and the exchange start. */
export interface MessageTimes {
  startNs: number;
  request?: number[] | undefined;
  response?: number[] | undefined;
}

export interface GrpcExtras {
  service: string;
  method: string;
  requestEncoding?: string;
  responseEncoding?: string;
  requestMessages: GrpcMessage[];
  responseMessages: GrpcMessage[];
  /** grpc-status (0 = OK); absent when no status was seen. */
  status?: number;
  /** grpc-message, percent-decoded. */
  message?: string;
}

export function isGrpcContentType(ct: string | undefined): boolean {
  return ct?.toLowerCase().startsWith('application/grpc') === true;
}

function header(headers: HeaderList | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [n, v] of headers) if (n.toLowerCase() === name) return v;
  return undefined;
}

function decompress(encoding: string | undefined, data: Uint8Array, maxOut: number): Uint8Array {
  const opts = { maxOutputLength: Math.max(1, maxOut) };
  switch ((encoding ?? 'identity').toLowerCase()) {
    case 'gzip':
      return gunzipSync(data, opts);
    case 'deflate':
      return inflateSync(data, opts);
    case 'identity':
      return data;
    default:
      throw new Error(`unsupported grpc-encoding ${encoding}`);
  }
}

/** Splits a gRPC body into messages; a cut last message is reported with an error. */
export function splitMessages(
  body: Uint8Array,
  encoding: string | undefined,
  maxOut: number,
  decodeOne: (bytes: Uint8Array) => Pick<GrpcMessage, 'value' | 'error'>,
  marks?: number[],
  startNs = 0,
): GrpcMessage[] {
  const out: GrpcMessage[] = [];
  let pos = 0;
  let mark = 0;
  /** Time of the first DATA frame that completed the body up to `end`. */
  const timeOf = (end: number): number | undefined => {
    if (!marks || marks.length === 0) return undefined;
    while (mark + 2 < marks.length && marks[mark]! < end) mark += 2;
    return Math.max(0, marks[mark + 1]! - startNs);
  };
  while (pos < body.length && out.length < 100_000) {
    if (pos + 5 > body.length) {
      out.push({ compressed: false, length: 0, error: 'cut message prefix' });
      break;
    }
    const compressed = body[pos] === 1;
    const length =
      ((body[pos + 1]! << 24) >>> 0) + (body[pos + 2]! << 16) + (body[pos + 3]! << 8) + body[pos + 4]!;
    pos += 5;
    const msg: GrpcMessage = { compressed, length };
    if (pos + length > body.length) {
      msg.error = 'cut message';
      out.push(msg);
      break;
    }
    let bytes: Uint8Array = body.subarray(pos, pos + length);
    pos += length;
    const at = timeOf(pos);
    if (at !== undefined) msg.atNs = at;
    try {
      if (compressed) bytes = decompress(encoding, bytes, maxOut);
      const fields = decodeRaw(bytes);
      if (fields) msg.fields = fields;
      else msg.error = 'not protobuf wire format';
      const named = decodeOne(bytes);
      if (named.value !== undefined) msg.value = named.value;
      if (named.error !== undefined) msg.error = named.error;
    } catch (e) {
      msg.error = (e as Error).message;
    }
    out.push(msg);
  }
  return out;
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function decodeGrpcExchange(
  request: Request,
  response: Response | undefined,
  maxOut: number,
  options: { schema?: GrpcSchema } | undefined,
  times?: MessageTimes,
): GrpcExtras {
  const path = request.target;
  const slash = path.lastIndexOf('/');
  const service = slash > 0 ? path.slice(1, slash) : '';
  const method = slash >= 0 ? path.slice(slash + 1) : path;
  const schema = options?.schema;
  const named = (direction: 'request' | 'response') => (bytes: Uint8Array) => {
    if (!schema) return {};
    try {
      const value = schema.decode(path, direction, bytes);
      return value === undefined ? {} : { value };
    } catch (e) {
      return { error: `schema: ${(e as Error).message}` };
    }
  };
  const reqEnc = header(request.headers, 'grpc-encoding');
  const extras: GrpcExtras = {
    service,
    method,
    requestMessages:
      request.body.truncated && request.body.data.length === 0
        ? []
        : splitMessages(request.body.data, reqEnc, maxOut, named('request'), times?.request, times?.startNs),
    responseMessages: [],
  };
  if (reqEnc) extras.requestEncoding = reqEnc;
  if (response) {
    const respEnc = header(response.headers, 'grpc-encoding');
    if (respEnc) extras.responseEncoding = respEnc;
    extras.responseMessages = splitMessages(
      response.body.data,
      respEnc,
      maxOut,
      named('response'),
      times?.response,
      times?.startNs,
    );
    const status = header(response.trailers, 'grpc-status') ?? header(response.headers, 'grpc-status');
    if (status !== undefined && /^\d+$/.test(status)) extras.status = Number(status);
    const message = header(response.trailers, 'grpc-message') ?? header(response.headers, 'grpc-message');
    if (message !== undefined) extras.message = percentDecode(message);
  }
  return extras;
}
