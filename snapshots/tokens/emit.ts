/**
 * Discovery → tokens.yaml and transforms.yaml. Flows of the same kind (same origin route and
 * place) share one rule: extract at the origin, store, substitute at every use. Volatile values
 * get rules where replay needs them: times in inbound requests are shifted, times in answers
 * mocks serve are shifted, echoed values in mocked answers follow the live call, and JWTs nobody
 * issued during the recording get a re-sign rule that is off until a key is given.
 * Everything is plain YAML the user can read, edit, disable or delete.
 */
import type { Rule, Extractor, Injector } from '../transforms/types.js';
import type { TokensFile, TransformsFile } from '../yamlfile.js';
import type { Discovery, Flow, VolatileSpot } from './discover.js';
import type { TokenEntry } from './types.js';

/** Key reference written into disabled re-sign rules. */
export const JWT_KEY_ENV = 'RETAP_JWT_KEY';

function slug(text: string): string {
  return text
    .replace(/\{[^}]*\}/g, 'id')
    .replace(/\[\*\]/g, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .replace(/-{2,}/g, '-');
}

function routeSlug(method: string, route: string): string {
  if (method === '*') return 'any';
  return slug(`${method.toLowerCase()}-${route.replace(/^\//, '')}`) || method.toLowerCase();
}

function whereSlug(where: string): string {
  if (where.startsWith('jsonpath:')) return slug(where.slice('jsonpath:$'.length).replace(/^\./, '')) || 'body';
  return slug(where.replace(':', '-'));
}

function ids(): (base: string) => string {
  const used = new Set<string>();
  return (base) => {
    let id = base;
    for (let n = 2; used.has(id); n++) id = `${base}-${n}`;
    used.add(id);
    return id;
  };
}

/** The extractor that reads a `where` (with an optional pattern) on one side. */
export function extractorFor(where: string, side: 'request' | 'response', as: string, pattern?: string): Extractor | undefined {
  const colon = where.indexOf(':');
  const kind = colon === -1 ? where : where.slice(0, colon);
  const arg = where.slice(colon + 1);
  let x: Extractor;
  switch (kind) {
    case 'header':
    case 'cookie':
    case 'query':
    case 'form':
      x = { from: kind, in: side, name: arg, as };
      break;
    case 'path':
      x = { from: 'path', in: side, segment: Number(arg), as };
      break;
    case 'jsonpath':
      x = { from: 'jsonpath', in: side, path: arg, as };
      break;
    case 'protobuf':
      x = { from: 'protobuf', in: side, path: arg, as };
      break;
    case 'body':
      if (!pattern) return undefined;
      return { from: 'regex', in: side, pattern, as };
    default:
      return undefined;
  }
  if (pattern) x.pattern = pattern;
  return x;
}

/** The injector that writes at a `where` (body fragments cannot be targeted by place). */
export function injectorFor(where: string, side: 'request' | 'response', value: string, mode: 'set' | 'substitute'): Injector | undefined {
  const colon = where.indexOf(':');
  const kind = colon === -1 ? where : where.slice(0, colon);
  const arg = where.slice(colon + 1);
  switch (kind) {
    case 'header':
    case 'cookie':
    case 'query':
    case 'form':
      return { to: kind, in: side, name: arg, value, mode };
    case 'path':
      return { to: 'path', in: side, segment: Number(arg), value, mode };
    case 'jsonpath':
      return { to: 'jsonpath', in: side, path: arg, value, mode };
    case 'protobuf':
      return { to: 'protobuf', in: side, path: arg, value, mode };
    case 'body':
      return { to: 'body', in: side, value, mode };
    default:
      return undefined;
  }
}

function confidence(flows: Flow[]): number {
  const k = flows[0]!.kind;
  const v = flows[0]!.value;
  let c = k.kind === 'jwt' || k.kind === 'uuid' || k.kind === 'session' ? 0.95 : v.length >= 16 ? 0.9 : /^\d+$/.test(v) ? 0.6 : 0.75;
  if (c < 0.9) c = Math.min(0.9, c + 0.05 * (flows.length - 1));
  return Math.round(c * 100) / 100;
}

export interface Emitted {
  tokens: TokensFile;
  transforms: TransformsFile;
}

export function emitFiles(d: Discovery): Emitted {
  const ruleId = ids();
  const tokenId = ids();
  const rules: Rule[] = [];
  const tokens: TokenEntry[] = [];

  // Flow classes, in order of first origin.
  const classes = new Map<string, Flow[]>();
  for (const f of d.flows) {
    const p = f.producer;
    const key = `${p.method}|${p.route}|${p.found.where}|${p.found.pattern ?? ''}`;
    const list = classes.get(key);
    if (list) list.push(f);
    else classes.set(key, [f]);
  }
  const useKeys = new Set<string>();
  for (const flows of classes.values()) {
    const p = flows[0]!.producer;
    const id = ruleId(`${routeSlug(p.method, p.route)}.${whereSlug(p.found.where)}`);
    const extract = extractorFor(p.found.where, 'response', id, p.found.pattern);
    if (!extract) continue;
    // One injector per place (and text around the value) the uses had.
    const places = new Map<string, { where: string; prefix: string; suffix: string; methods: Set<string>; routes: Set<string>; count: number }>();
    for (const f of flows) {
      for (const u of f.uses) {
        useKeys.add(`${u.method}|${u.route}|${u.where}`);
        const k = `${u.where}|${u.prefix ?? ''}|${u.suffix ?? ''}`;
        let pl = places.get(k);
        if (!pl) places.set(k, (pl = { where: u.where, prefix: u.prefix ?? '', suffix: u.suffix ?? '', methods: new Set(), routes: new Set(), count: 0 }));
        pl.methods.add(u.method);
        pl.routes.add(u.route);
        pl.count++;
      }
    }
    const inject: Injector[] = [];
    for (const pl of places.values()) {
      const j = injectorFor(pl.where, 'request', `${pl.prefix}\${${id}}${pl.suffix}`, 'substitute');
      if (!j) continue;
      j.match = { direction: 'inbound' };
      if (pl.methods.size === 1) j.match.method = [...pl.methods][0]!;
      if (pl.routes.size === 1) j.match.route = [...pl.routes][0]!;
      inject.push(j);
    }
    const uses = flows.reduce((n, f) => n + f.uses.length, 0);
    const kind = flows[0]!.kind;
    rules.push({
      id,
      description: `${kind.kind} from the answer to ${p.method} ${p.route} (${p.found.where}); ${flows.length} value(s) used ${uses} time(s) later in the same session: ${[...places.values()].map((x) => x.where).join(', ')}`,
      match: { direction: 'inbound', method: p.method, route: p.route },
      extract: [extract],
      transform: [{ op: 'store', var: id }],
      inject,
    });
    const conf = confidence(flows);
    for (const f of flows) {
      const t: TokenEntry = {
        id: tokenId(`${id}.${tokens.length + 1}`),
        kind: f.kind.kind,
        origin: { exchange: f.producer.exchange, in: 'response', where: f.producer.found.where },
        uses: f.uses.map((u) => ({ exchange: u.exchange, in: 'request', where: u.where })),
        confidence: conf,
        rule: id,
        route: `${p.method} ${p.route}`,
        session: f.producer.session,
      };
      if (f.value.startsWith('REDACTED-')) t.placeholder = f.value;
      if (f.kind.format) t.format = f.kind.format;
      if (f.kind.jwt) t.jwt = f.kind.jwt;
      tokens.push(t);
    }
  }

  // Volatile values.
  for (const v of d.volatile) {
    const base = `${v.side === 'request' ? 'req' : 'res'}.${routeSlug(v.method, v.route)}.${whereSlug(v.where)}`;
    const t: TokenEntry = {
      id: tokenId(`volatile.${base}`),
      kind: v.kind.kind,
      volatile: true,
      origin: { exchange: v.example, in: v.side, where: v.where },
      route: `${v.method} ${v.route}`,
      count: v.count,
    };
    if (v.kind.format) t.format = v.kind.format;
    if (v.kind.jwt) t.jwt = v.kind.jwt;
    const rule = volatileRule(v, useKeys, ruleId);
    if (rule) {
      rules.push(rule);
      t.rule = rule.id;
    }
    tokens.push(t);
  }

  for (const e of d.echoes) {
    const id = ruleId(`mock-echo.${routeSlug(e.method, e.route)}.${whereSlug(e.responseWhere)}`);
    const x = extractorFor(e.requestWhere, 'request', id);
    const j = injectorFor(e.responseWhere, 'response', `\${${id}}`, 'substitute');
    if (!x || !j) continue;
    rules.push({
      id,
      description: `mocks: the answer to ${e.method} ${e.route}${e.host ? ` on ${e.host}` : ''} echoes ${e.requestWhere} of the call at ${e.responseWhere} (${e.count}×); serve the live call's value`,
      match: { direction: 'outbound', method: e.method, route: e.route, ...(e.host ? { host: e.host } : {}) },
      extract: [x],
      inject: [j],
    });
  }

  return { tokens: { version: 1, tokens: tokens as TokensFile['tokens'] }, transforms: { version: 1, rules: rules as unknown as TransformsFile['rules'] } };
}

function volatileRule(v: VolatileSpot, useKeys: Set<string>, ruleId: (b: string) => string): Rule | undefined {
  const inbound = v.direction === 'inbound';
  // Inbound answers are the build's to give; only requests (inbound) and mocked answers (outbound) are rewritten.
  if (inbound !== (v.side === 'request')) return undefined;
  if (v.flows || useKeys.has(`${v.method}|${v.route}|${v.where}`)) return undefined;
  const isTime = v.kind.kind === 'timestamp';
  const isJwt = v.kind.kind === 'jwt';
  if (!isTime && !isJwt) return undefined;
  const prefix = `${inbound ? '' : 'mock-'}${isTime ? 'shift' : 'resign'}`;
  const place = v.method === '*' ? slug(v.host ?? '') || 'any' : routeSlug(v.method, v.route);
  const id = ruleId(`${prefix}.${place}.${whereSlug(v.where)}`);
  const x = extractorFor(v.where, v.side, id, v.pattern);
  const j = injectorFor(v.where, v.side, `\${${id}}`, 'substitute');
  if (!x || !j || (v.where === 'body' && !v.pattern)) return undefined;
  const match = { direction: v.direction, ...(v.method === '*' ? {} : { method: v.method, route: v.route }), ...(v.host ? { host: v.host } : {}) };
  const what = v.method === '*' ? `every ${v.side === 'request' ? 'request' : 'answer'}${v.host ? ` of ${v.host}` : ''}` : `${v.method} ${v.route}`;
  if (isTime) {
    return {
      id,
      description: `${v.side === 'request' ? 'requests to' : 'mocked answers of'} ${what} carry a ${v.kind.format} time at ${v.where}; move it by the replay offset`,
      match,
      extract: [x],
      transform: [{ op: 'shiftTime', by: 'replay-offset', format: v.kind.format ?? 'auto' }],
      inject: [j],
    };
  }
  return {
    id,
    description: `${v.side === 'request' ? 'requests to' : 'mocked answers of'} ${what} carry a JWT (${v.kind.jwt?.alg}) at ${v.where} that no recorded answer issued; enable with the signing key in $${JWT_KEY_ENV} to move iat/exp and re-sign`,
    enabled: false,
    match,
    extract: [x],
    transform: [{ op: 'resignJwt', key: `env:${JWT_KEY_ENV}`, by: 'replay-offset' }],
    inject: [j],
  };
}
