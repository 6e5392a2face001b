/** L7 decoders: importing this module registers the built-in ones. */
import './builtins.js';

export * from './types.js';
export * from './registry.js';
export { decodeContent } from './content-encoding.js';
export { http1, Http1Decoder, detectHttp1 } from './http1/index.js';
