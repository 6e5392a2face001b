/**
 * Registers the built-in decoders. HTTP/2 first: its preface is exact and HTTP/1 rejects it;
 * HTTP/2's mid-stream guess needs binary frame headers, which HTTP/1 text never looks like.
 */
import { http1 } from './http1/index.js';
import { http2 } from './http2/index.js';
import { registerDecoder } from './registry.js';

registerDecoder(http2);
registerDecoder(http1);
