/** gRPC decoding on top of HTTP/2 (there is no separate gRPC detector: HTTP/2 hands streams over). */
export {
  decodeGrpcExchange,
  type GrpcExtras,
  type GrpcMessage,
  isGrpcContentType,
  splitMessages,
} from './exchange.js';
export { decodeRaw, type RawField } from './protobuf-raw.js';
export { loadProtoDirs, loadProtos } from '../../../core/protos.js';
