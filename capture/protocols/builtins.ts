/**
 * Registers the built-in decoders. HTTP/2 first: its preface is exact and HTTP/1 rejects it;
 * HTTP/2's mid-stream guess needs binary frame headers, which HTTP/1 text never looks like.
 * The database decoders come next: their first bytes (a length-prefixed startup message, a RESP
 * array, a server handshake) are never an HTTP start line.
 */
import { http1 } from './http1/index.js';
import { http2 } from './http2/index.js';
import { mysql } from './mysql/index.js';
import { postgres } from './postgres/index.js';
import { redis } from './redis/index.js';
import { registerDecoder } from './registry.js';

registerDecoder(http2);
registerDecoder(postgres);
registerDecoder(mysql);
registerDecoder(redis);
registerDecoder(http1);
