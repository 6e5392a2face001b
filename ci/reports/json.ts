/** The verdict as JSON (stable key order as built; values are JSON-safe). */
import type { Verdict } from '../../assertions/index.js';

export function renderJson(v: Verdict): string {
  return [...renderJsonChunks(v)].join('');
}

const indent = (text: string, by: string): string => text.replace(/\n/g, `\n${by}`);

/**
 * The same text as `JSON.stringify(v, null, 2)`, in pieces: one per top-level field and one per
 * item, so a verdict of any number of items is written without ever being one string (a JS
 * string holds at most 512 MiB: ~300,000 items with their differences).
 */
export function* renderJsonChunks(v: Verdict): Generator<string> {
  const fields = Object.entries(v).filter(
    ([, value]) => value !== undefined && typeof value !== 'function' && typeof value !== 'symbol',
  );
  yield '{';
  let first = true;
  for (const [key, value] of fields) {
    yield `${first ? '' : ','}\n  ${JSON.stringify(key)}: `;
    first = false;
    if (key === 'items' && Array.isArray(value) && value.length > 0) {
      yield '[';
      for (let i = 0; i < value.length; i++)
        yield `${i === 0 ? '' : ','}\n    ${indent(JSON.stringify(value[i] ?? null, null, 2), '    ')}`;
      yield '\n  ]';
    } else yield indent(JSON.stringify(value, null, 2), '  ');
  }
  yield first ? '}\n' : '\n}\n';
}
