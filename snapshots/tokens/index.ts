/** Token discovery: which values flow from answers into later requests, and which are volatile. */
export type { TokenEntry, TokenKind, TokenLocation } from './types.js';
export { classify, isCandidate, entropy, volatileKind, type Classified } from './classify.js';
export { createDiscoverer, discoverTokens, type Discovery, type Discoverer, type Flow, type VolatileSpot, type Echo } from './discover.js';
export { emitFiles, extractorFor, injectorFor, JWT_KEY_ENV, type Emitted } from './emit.js';
