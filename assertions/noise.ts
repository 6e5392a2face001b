/**
 * Noise cancellation. Static: `ignore:` rules, volatile headers, locations of discovered tokens,
 * and values that changed but kept a volatile format (uuid → uuid, timestamp → timestamp).
 * Dynamic, per route and generalised path: a difference does not count when the same build
 * differs from itself about as often (second candidate run, or baseline runs), and, with a
 * baseline, when the baseline answers the same as the candidate (three-way comparison).
 */
import type { MatchRule, TokenHint } from './config.js';
import { generalise, pathMatches } from './paths.js';
import { routeMatches } from './routes.js';
import type { Difference, NoiseDecision, NoiseMark } from './types.js';

export function ruleMatches(rule: MatchRule, d: Difference, route: string): boolean {
  if (!routeMatches(rule.route, route)) return false;
  if (rule.kind !== undefined && rule.kind !== d.kind) return false;
  if (rule.path !== undefined) {
    if (d.target !== 'body' && d.target !== 'schema') return false;
    if (!pathMatches(rule.path, d.path)) return false;
  }
  if (rule.header !== undefined && d.path !== `header:${rule.header.toLowerCase()}`) return false;
  if (rule.outbound !== undefined && !d.path.startsWith(`outbound:${rule.outbound}`)) return false;
  return true;
}

const describeRule = (r: MatchRule): string =>
  [
    r.route && `route ${r.route}`,
    r.path,
    r.header && `header ${r.header}`,
    r.outbound && `outbound ${r.outbound}`,
    r.kind,
  ]
    .filter(Boolean)
    .join(' ');

/** Ignore rules derived from discovered tokens found in answers. */
export function tokenRules(
  tokens: TokenHint[],
  routeOfExchange: (id: string) => string | undefined,
): MatchRule[] {
  const out: MatchRule[] = [];
  for (const t of tokens) {
    for (const loc of [t.origin, ...(t.uses ?? [])]) {
      if (!loc || loc.in === 'request') continue;
      const route = t.route ?? routeOfExchange(loc.exchange);
      if (route === undefined) continue; // found in a dependency's answer, not in ours
      const reason = `token ${t.id}${t.kind ? ` (${t.kind})` : ''}`;
      if (loc.where.startsWith('jsonpath:'))
        out.push({ route, path: loc.where.slice('jsonpath:'.length), reason });
      else if (loc.where.startsWith('header:'))
        out.push({ route, header: loc.where.slice('header:'.length).toLowerCase(), reason });
      else if (loc.where.startsWith('cookie:')) out.push({ route, header: 'set-cookie', reason });
      // a gRPC message field (schema-less paths are the field numbers the differences name)
      else if (loc.where.startsWith('protobuf:'))
        out.push({ route, path: loc.where.slice('protobuf:'.length), reason });
    }
  }
  return out;
}

const FORMATS: Array<[string, (s: string) => boolean]> = [
  ['uuid', (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s)],
  [
    'timestamp',
    (s) =>
      /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$/i.test(s) &&
      !Number.isNaN(Date.parse(s)),
  ],
  ['http-date', (s) => /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(s)],
  ['jwt', (s) => /^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(s)],
  ['redacted', (s) => /^REDACTED-[0-9a-f]{16}$/.test(s)],
  ['hex', (s) => /^[0-9a-f]{16,}$/i.test(s)],
  [
    'opaque token',
    (s) =>
      s.length >= 16 &&
      /^[A-Za-z0-9_+/=-]+$/.test(s) &&
      (/\d/.test(s) || (/[a-z]/.test(s) && /[A-Z]/.test(s))),
  ],
];

/** The volatile format a value has, if any (epoch milliseconds count as timestamps). */
export function volatileFormat(v: unknown): string | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v > 9.4e11 && v < 4.2e12 ? 'epoch-ms' : undefined;
  if (typeof v !== 'string') return undefined;
  for (const [name, test] of FORMATS) if (test(v)) return name;
  return undefined;
}

export interface StaticNoise {
  ignore: MatchRule[];
  tokens: MatchRule[];
  volatileHeaders: Set<string>;
  volatileFormats: boolean;
}

export function staticMark(d: Difference, route: string, s: StaticNoise): NoiseMark | undefined {
  for (const r of s.ignore) {
    if (ruleMatches(r, d, route))
      return { source: 'ignore-rule', reason: r.reason ?? `ignore rule: ${describeRule(r)}` };
  }
  if (d.target === 'header' && s.volatileHeaders.has(d.path.slice('header:'.length))) {
    return { source: 'volatile-header', reason: 'volatile header (ignored by default)' };
  }
  for (const r of s.tokens)
    if (ruleMatches(r, d, route)) return { source: 'token', reason: r.reason ?? 'discovered token' };
  if (s.volatileFormats && (d.kind === 'changed-value' || d.kind === 'changed-header')) {
    const fa = volatileFormat(d.recorded);
    if (fa !== undefined && fa === volatileFormat(d.candidate))
      return { source: 'volatile-format', reason: `changing ${fa} value` };
  }
  return undefined;
}

export const noiseKey = (route: string, d: Difference): string =>
  `${route}\t${generalise(d.path)}\t${d.kind}`;
export const exactKey = (d: Difference): string => `${d.path}\t${d.kind}`;

/** Counts, per route, in how many items each generalised difference occurred. */
export interface RateTable {
  /** Records one item's differences (each key counted once per item). */
  add(route: string, diffs: Difference[]): void;
  rate(route: string, key: string): number;
  counted(route: string): number;
}

export function rateTable(): RateTable {
  const items = new Map<string, number>();
  const hits = new Map<string, number>();
  return {
    add(route, diffs) {
      items.set(route, (items.get(route) ?? 0) + 1);
      for (const k of new Set(diffs.map((d) => noiseKey(route, d)))) hits.set(k, (hits.get(k) ?? 0) + 1);
    },
    rate(route, key) {
      const n = items.get(route) ?? 0;
      return n === 0 ? 0 : (hits.get(key) ?? 0) / n;
    },
    counted: (route) => items.get(route) ?? 0,
  };
}

/** Groups the noise-marked differences into decisions per route, path, kind and source. */
export function noiseDecisions(
  entries: Array<{ route: string; diffs: Difference[] }>,
  rates: (route: string, key: string) => { diffRate?: number; noiseRate?: number },
): NoiseDecision[] {
  const map = new Map<string, NoiseDecision>();
  for (const { route, diffs } of entries) {
    for (const d of diffs) {
      if (!d.noise) continue;
      const path = generalise(d.path);
      const k = `${route}\t${path}\t${d.kind}\t${d.noise.source}`;
      const prev = map.get(k);
      if (prev) prev.occurrences++;
      else {
        const r = d.noise.source === 'noise-run' ? rates(route, noiseKey(route, d)) : {};
        map.set(k, {
          route,
          path,
          kind: d.kind,
          source: d.noise.source,
          reason: d.noise.reason,
          occurrences: 1,
          ...r,
        });
      }
    }
  }
  return [...map.values()].sort((a, b) =>
    a.route === b.route
      ? a.path === b.path
        ? a.kind.localeCompare(b.kind)
        : a.path.localeCompare(b.path)
      : a.route.localeCompare(b.route),
  );
}
