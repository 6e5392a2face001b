/**
 * Injector values: a variable name (`token`) or a template (`Bearer ${token}`). Variable names
 * may hold letters, digits, `_`, `-` and `.` (rule ids are valid names).
 */

export interface Template {
  /** Literal pieces; `vars[i]` sits between `parts[i]` and `parts[i + 1]`. */
  parts: string[];
  vars: string[];
}

const VAR = /\$\{([A-Za-z0-9_][A-Za-z0-9_.-]*)\}/g;
const BARE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** `bareIsVar`: a value without `${` that looks like a name is that variable (injector values). */
export function parseTemplate(value: string, bareIsVar = false): Template {
  if (bareIsVar && !value.includes('${') && BARE.test(value)) return { parts: ['', ''], vars: [value] };
  const parts: string[] = [];
  const vars: string[] = [];
  let last = 0;
  for (const m of value.matchAll(VAR)) {
    parts.push(value.slice(last, m.index));
    vars.push(m[1]!);
    last = m.index + m[0].length;
  }
  parts.push(value.slice(last));
  if (parts.some((p) => p.includes('${'))) throw new Error(`'${value}' has a '\${' that is not a variable reference like \${name}`);
  return { parts, vars };
}

export function render(t: Template, lookup: (name: string) => string | undefined): string | undefined {
  let out = t.parts[0]!;
  for (let i = 0; i < t.vars.length; i++) {
    const v = lookup(t.vars[i]!);
    if (v === undefined) return undefined;
    out += v + t.parts[i + 1]!;
  }
  return out;
}
