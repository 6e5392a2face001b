export * from './errors.js';
export * from './exchange.js';
export * from './log.js';
export * from './paths.js';
