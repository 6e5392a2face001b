/**
 * Canonical forms used in signatures: sorted query parameters, JSON with sorted keys, volatile
 * values replaced by a placeholder. Two requests that differ only in key order, parameter order
 * or run-specific values get the same canonical text.
 */
import { isVolatileName, isVolatileValue, normalisePath, type VolatileFields } from './volatile.js';

export const MASK = '<volatile>';

export interface MaskMode {
  /** Mask values that look volatile (uuid, timestamp, JWT, long hex). */
  values: boolean;
  /** Also mask values of fields named like ids and times (`orderId`, `createdAt`). */
  names: boolean;
  known?: VolatileFields;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** `b=2&a=1&a=0` → `a=0&a=1&b=2` (decoded, sorted by name then value), masking volatile values. */
export function canonicalQuery(query: string, mode: MaskMode): string {
  if (query === '') return '';
  const pairs: Array<[string, string]> = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = safeDecode(eq === -1 ? part : part.slice(0, eq));
    let value = eq === -1 ? '' : safeDecode(part.slice(eq + 1));
    if (
      (mode.values && isVolatileValue(value, name)) ||
      (mode.names && isVolatileName(name)) ||
      mode.known?.queryNames.has(name)
    ) {
      value = MASK;
    }
    pairs.push([name, value]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`).join('&');
}

/** JSON value with sorted keys and volatile leaves masked; `path` is the JSON path so far. */
export function canonicalJson(value: unknown, mode: MaskMode, path = '$', depth = 0, key?: string): unknown {
  if (depth > 64) return MASK;
  if (Array.isArray(value)) return value.map((v) => canonicalJson(v, mode, `${path}[*]`, depth + 1, key));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const p = `${path}.${key}`;
      const v = (value as Record<string, unknown>)[key];
      const leaf = v === null || typeof v !== 'object';
      if (mode.known?.jsonPaths.has(normalisePath(p)) || (leaf && mode.names && isVolatileName(key)))
        out[key] = MASK;
      else out[key] = canonicalJson(v, mode, p, depth + 1, key);
    }
    return out;
  }
  if (mode.values && isVolatileValue(value, key)) return MASK;
  return value;
}
