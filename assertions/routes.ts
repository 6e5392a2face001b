/**
 * Route patterns of budgets and `ignore:` rules, matched against the route templates the runner
 * gives each recorded item (`GET /orders/{id}`). A pattern is a template or a glob: `*` is one
 * path segment, `**` any depth, `{name}` one segment; the method is optional (`/orders/*` covers
 * every method) and `*` alone matches every route. (Templates themselves come from one place,
 * core/http.ts `pathTemplate`, through snapshots/routes.ts; snapshots/routes.ts `routeMatches`
 * matches a request target, this one a `METHOD /template` route.)
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
