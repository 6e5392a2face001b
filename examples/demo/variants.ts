/**
 * Seeded regressions of the `orders` service, so a replay has something real to catch.
 * Each variant changes exactly one observable thing on one route.
 */

export const VARIANTS = ['changed-field', 'slow', 'extra-call', 'error'] as const;
export type Variant = (typeof VARIANTS)[number];

/** What each variant does, for `--help` texts and `/debug/config`. */
export const VARIANT_EFFECTS: Record<Variant, string> = {
  'changed-field': 'orders carry `total` as a string ("59.97") instead of a number',
  slow: 'GET /orders/:id answers 150 ms later',
  'extra-call': 'POST /orders checks stock a second time (one more GET /stock/:sku at inventory)',
  error: 'GET /orders (the list) answers 500',
};

/** Extra delay of the `slow` variant, per route. */
export const SLOW_DELAY_MS = 150;
export const SLOW_ROUTE = 'GET /orders/:id';
export const ERROR_ROUTE = 'GET /orders';

export interface VariantConfig {
  variants: Variant[];
  /** Added delay in ms per route name. */
  delays: Record<string, number>;
  /** Routes that answer 500. */
  failing: string[];
  totalAsString: boolean;
  extraStockCheck: boolean;
}

/**
 * `undefined`/empty → no variant; `all` → every variant; otherwise a comma-separated list of
 * known names. Unknown names throw with the list of valid ones.
 */
export function parseVariants(text: string | undefined): Variant[] {
  if (text === undefined) return [];
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.includes('all')) return [...VARIANTS];
  const out: Variant[] = [];
  for (const name of names) {
    if (!(VARIANTS as readonly string[]).includes(name)) {
      throw new Error(`unknown variant '${name}'; valid: ${VARIANTS.join(', ')}, all`);
    }
    if (!out.includes(name as Variant)) out.push(name as Variant);
  }
  return out;
}

export function variantConfig(variants: Variant[]): VariantConfig {
  const has = (v: Variant): boolean => variants.includes(v);
  return {
    variants: [...variants],
    delays: has('slow') ? { [SLOW_ROUTE]: SLOW_DELAY_MS } : {},
    failing: has('error') ? [ERROR_ROUTE] : [],
    totalAsString: has('changed-field'),
    extraStockCheck: has('extra-call'),
  };
}
