/** L7 decoders: importing this module registers the built-in ones. */
import './builtins.js';

export { type Collected, decodeEvents, type StreamEvent } from './collect.js';
export { decodeContent } from './content-encoding.js';
export { decodeRaw, type GrpcExtras, type GrpcMessage, loadProtos, type RawField } from './grpc/index.js';
export { detectHttp1, Http1Decoder, http1 } from './http1/index.js';
export { detectHttp2, HpackDecoder, HpackError, Http2Decoder, http2 } from './http2/index.js';
export * from './registry.js';
export * from './types.js';
