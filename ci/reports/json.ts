/** The verdict as JSON (stable key order as built; values are JSON-safe). */
import type { Verdict } from '../../assertions/index.js';

export function renderJson(v: Verdict): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}
