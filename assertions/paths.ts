/**
 * JSON paths as retap writes them (`$.orders[0].total`, `$["odd key"]`), their generalised form
 * (`$.orders[*].total`, one key per route and field) and the patterns of `ignore:` rules:
 * `$.a.b`, `$.orders[*].id`, `$.a.*` (any one key), `$..createdAt` (at any depth). A pattern also
 * covers everything below the node it names.
 */

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return IDENT.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

/** Array indices become `[*]`, so the same field of every element is one key. */
export function generalise(path: string): string {
  return path.replace(/\[\d+\]/g, '[*]');
}

/** JSON pointer (ajv's `instancePath`, `/orders/0/total`) → `$.orders[0].total`. */
export function fromPointer(pointer: string): string {
  if (pointer === '') return '$';
  let out = '$';
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out = /^\d+$/.test(seg) ? childPath(out, Number(seg)) : childPath(out, seg);
  }
  return out;
}

const cache = new Map<string, RegExp>();

function compile(pattern: string): RegExp {
  let re = '';
  let i = 0;
  while (i < pattern.length) {
    const rest = pattern.slice(i);
    if (rest.startsWith('[*]')) {
      re += '\\[\\d+\\]';
      i += 3;
    } else if (rest.startsWith('..')) {
      re += '(?:\\.[^.[]+|\\[[^\\]]*\\])*\\.';
      i += 2;
    } else if (rest.startsWith('.*')) {
      re += '\\.[^.[]+';
      i += 2;
    } else if (rest.startsWith('*')) {
      re += '[^.[]*';
      i += 1;
    } else {
      re += (pattern[i] as string).replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
      i += 1;
    }
  }
  return new RegExp(`^${re}(?:$|[.[])`);
}

/** True when `path` is the node `pattern` names or lies below it. */
export function pathMatches(pattern: string, path: string): boolean {
  let re = cache.get(pattern);
  if (!re) {
    re = compile(pattern);
    if (cache.size > 1000) cache.clear();
    cache.set(pattern, re);
  }
  return re.test(path);
}

/** Short, JSON-safe preview of a value for reports. */
export function preview(value: unknown, max = 200): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'number') return value;
  if (typeof value === 'string') return value.length > max ? `${value.slice(0, max)}…` : value;
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max)}…` : value;
}
