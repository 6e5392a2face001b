/**
 * A small JSONPath subset for rules and token locations: `$`, `.name`, `['name']`, `[3]`, `[*]`.
 * Enough to name one place (or every element of an array) in a JSON body; no filters or
 * recursive descent, so a path always means the same places and is cheap to evaluate.
 */

export type PathPart = { key: string } | { index: number } | { all: true };

export class JsonPathError extends Error {}

const IDENT = /^[A-Za-z_$][\w$-]*/;

export function parseJsonPath(text: string): PathPart[] {
  if (!text.startsWith('$')) throw new JsonPathError(`'${text}' must start with '$'`);
  const parts: PathPart[] = [];
  let i = 1;
  while (i < text.length) {
    const c = text[i];
    if (c === '.') {
      const m = IDENT.exec(text.slice(i + 1));
      if (!m) throw new JsonPathError(`'${text}': expected a name after '.' at position ${i + 1}`);
      parts.push({ key: m[0] });
      i += 1 + m[0].length;
    } else if (c === '[') {
      const close = findClose(text, i);
      const inner = text.slice(i + 1, close).trim();
      if (inner === '*') parts.push({ all: true });
      else if (/^\d+$/.test(inner)) parts.push({ index: Number(inner) });
      else if (/^'(?:[^'\\]|\\.)*'$/.test(inner) || /^"(?:[^"\\]|\\.)*"$/.test(inner)) {
        parts.push({ key: inner.slice(1, -1).replace(/\\(.)/g, '$1') });
      } else throw new JsonPathError(`'${text}': '[${inner}]' is not an index, '*' or a quoted name`);
      i = close + 1;
    } else {
      throw new JsonPathError(`'${text}': unexpected '${c}' at position ${i}`);
    }
  }
  return parts;
}

function findClose(text: string, open: number): number {
  let quote: string | undefined;
  for (let j = open + 1; j < text.length; j++) {
    const c = text[j];
    if (quote) {
      if (c === '\\') j++;
      else if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === ']') return j;
  }
  throw new JsonPathError(`'${text}': '[' at position ${open} is never closed`);
}

export function formatJsonPath(parts: Array<string | number>): string {
  let out = '$';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += /^[A-Za-z_$][\w$-]*$/.test(p) ? `.${p}` : `['${p.replace(/[\\']/g, '\\$&')}']`;
  }
  return out;
}

/** Every value the path names (several when it holds `[*]`). */
export function getAll(root: unknown, parts: PathPart[]): unknown[] {
  let current: unknown[] = [root];
  for (const p of parts) {
    const next: unknown[] = [];
    for (const v of current) {
      if (v === null || typeof v !== 'object') continue;
      if ('all' in p) {
        if (Array.isArray(v)) next.push(...v);
        else next.push(...Object.values(v));
      } else if ('index' in p) {
        if (Array.isArray(v) && p.index < v.length) next.push(v[p.index]);
      } else if (!Array.isArray(v) && Object.hasOwn(v, p.key)) {
        next.push((v as Record<string, unknown>)[p.key]);
      }
    }
    current = next;
  }
  return current;
}

/**
 * Calls `update` for every existing place the path names and stores what it returns
 * (`undefined` keeps the old value). Returns how many places changed. `$` itself cannot be set.
 */
export function updateAll(root: unknown, parts: PathPart[], update: (old: unknown) => unknown): number {
  if (parts.length === 0) return 0;
  let parents: unknown[] = [root];
  for (const p of parts.slice(0, -1)) parents = parents.flatMap((v) => getAll(v, [p]));
  const last = parts[parts.length - 1]!;
  let changed = 0;
  const put = (container: Record<string | number, unknown>, key: string | number): void => {
    const old = container[key];
    const value = update(old);
    if (value !== undefined && value !== old) {
      container[key] = value;
      changed++;
    }
  };
  for (const parent of parents) {
    if (parent === null || typeof parent !== 'object') continue;
    const c = parent as Record<string | number, unknown>;
    if ('all' in last) {
      for (const k of Array.isArray(parent) ? parent.keys() : Object.keys(parent)) put(c, k);
    } else if ('index' in last) {
      if (Array.isArray(parent) && last.index < parent.length) put(c, last.index);
    } else if (!Array.isArray(parent) && Object.hasOwn(parent, last.key)) put(c, last.key);
  }
  return changed;
}
