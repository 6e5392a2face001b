/**
 * Route patterns of budgets and `ignore:` rules, matched against the route templates the runner
 * gives each recorded item (`GET /orders/{id}`). A pattern is a template or a glob: `*` is one
 * path segment, `**` any depth, `{name}` one segment; the method is optional (`/orders/*` covers
 * every method) and `*` alone matches every route.
 */

const cache = new Map<string, RegExp>();

function compile(pattern: string): RegExp {
  const m = /^([A-Z]+|\*)\s+(.*)$/.exec(pattern.trim());
  const method = m ? m[1] : undefined;
  const path = (m ? m[2] : pattern.trim()) as string;
  const body = path
    .split('/')
    .map((seg) => {
      if (seg === '**') return '.*';
      if (/^\{[^}]*\}$/.test(seg) || seg === '*') return '[^/]+';
      return seg.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&').replace(/\\\*/g, '[^/]*');
    })
    .join('/');
  const meth = method === undefined || method === '*' ? '[A-Z]+' : method;
  return new RegExp(`^${meth} ${body}$`);
}

export function routeMatches(pattern: string | undefined, route: string): boolean {
  if (pattern === undefined || pattern === '*' || pattern === '**') return true;
  if (pattern === route) return true;
  let re = cache.get(pattern);
  if (!re) {
    re = compile(pattern);
    cache.set(pattern, re);
  }
  return re.test(route);
}

const ID_SEGMENT =
  /^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{12,}|[0-9A-Za-z_-]{24,}|REDACTED-[0-9a-f]{16})$/i;

/** `/stock/SKU-1?x=1` → `/stock/SKU-1`; identifier-looking segments → `{id}`. */
export function pathTemplate(target: string): string {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  if (!path.startsWith('/')) return path;
  return path
    .split('/')
    .map((s) => (s !== '' && ID_SEGMENT.test(s) ? '{id}' : s))
    .join('/');
}
