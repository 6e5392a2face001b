/** The HTTP/1.x decoder as registered in the protocol registry. */
import type { ProtocolDecoder } from '../types.js';
import { Http1Decoder } from './decoder.js';
import { detectHttp1 } from './detect.js';

export { Http1Decoder } from './decoder.js';
export { detectHttp1 } from './detect.js';

export const http1: ProtocolDecoder = {
  name: 'http1',
  detect: detectHttp1,
  create: (sink, options) => new Http1Decoder(sink, options),
};
