/** L7 decoders: importing this module registers the built-in ones. */
import './builtins.js';

export * from './types.js';
export * from './registry.js';
export { decodeContent } from './content-encoding.js';
export { decodeEvents, type StreamEvent, type Collected } from './collect.js';
export { http1, Http1Decoder, detectHttp1 } from './http1/index.js';
export { http2, Http2Decoder, detectHttp2, HpackDecoder, HpackError } from './http2/index.js';
export { loadProtos, decodeRaw, type GrpcExtras, type GrpcMessage, type RawField } from './grpc/index.js';
export { postgres, PostgresDecoder, detectPostgres } from './postgres/index.js';
export { mysql, MysqlDecoder, detectMysql } from './mysql/index.js';
export { redis, RedisDecoder, detectRedis } from './redis/index.js';
