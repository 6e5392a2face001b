/** The HTTP/2 decoder (and gRPC on top of it) as registered in the protocol registry. */
import type { ProtocolDecoder } from '../types.js';
import { Http2Decoder } from './decoder.js';
import { detectHttp2 } from './detect.js';

export { Http2Decoder } from './decoder.js';
export { detectHttp2 } from './detect.js';
export { HpackDecoder, HpackError } from './hpack/decoder.js';
export { huffmanDecode, huffmanEncode } from './hpack/huffman.js';

export const http2: ProtocolDecoder = {
  name: 'http2',
  detect: detectHttp2,
  create: (sink, options) => new Http2Decoder(sink, options),
};
