/** The demo system's library API, used by `retap demo`, tests and later the capture/replay stages. */
export { CATALOG } from './catalog.js';
export { type DemoOptions, type DemoService, type DemoSystem, startDemo } from './launcher.js';
export { serviceCommand } from './spawn-service.js';
export { formatSummary, type TrafficError, type TrafficSummary } from './traffic-summary.js';
export { demoPasswords, passwordOf, runTraffic, type TrafficOptions } from './traffic.js';
export { parseVariants, VARIANT_EFFECTS, VARIANTS, type Variant, variantConfig } from './variants.js';
