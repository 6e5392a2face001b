/** The demo shop's products: inventory seeds its stock from here, the traffic generator picks SKUs. */

export interface Product {
  sku: string;
  name: string;
  /** Price in cents, so totals are exact. */
  priceCents: number;
  stock: number;
}

export const CATALOG: readonly Product[] = [
  { sku: 'BOOK-001', name: 'Field guide to packets', priceCents: 2499, stock: 100_000 },
  { sku: 'MUG-002', name: 'Kernel mug', priceCents: 1299, stock: 100_000 },
  { sku: 'TEE-003', name: 'Tracepoint tee', priceCents: 1999, stock: 100_000 },
  { sku: 'PEN-004', name: 'Probe pen', priceCents: 399, stock: 100_000 },
  { sku: 'CAP-005', name: 'Ring buffer cap', priceCents: 1599, stock: 100_000 },
];

export const SKU_PATTERN = /^[A-Z0-9-]{1,32}$/;
