/** Registers the built-in decoders, precise signatures first. */
import { http1 } from './http1/index.js';
import { registerDecoder } from './registry.js';

registerDecoder(http1);
