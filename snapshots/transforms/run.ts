/**
 * Running one compiled rule's pieces: extractors read values (recorded and live side by side),
 * steps change the live side, injectors write into a message (set, or substitute recorded → live).
 * Shared by the replay context, the mock transforms and the `--check` dry run.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CompiledExtractor, CompiledInjector, CompiledRule, CompiledStep, Plugins } from './compile.js';
import { decodeJwt, resignJwt } from './jwt.js';
import type { MessageView } from './message.js';
import { render } from './template.js';
import { shiftTimeText, type TimeFormat } from './timefmt.js';

/** One value as recorded and as it is now (live: undefined when the live message lacked it). */
export interface Pair {
  recorded: string | undefined;
  live: string | undefined;
  /** Exchange the value came from. */
  origin?: string;
}

export type Scope = Map<string, Pair[]>;

export interface RunEnv {
  offsetMs: number;
  /** Constant variables (built-ins and the runner's). */
  vars: Record<string, string>;
  plugins: Plugins;
  resolveKey(ref: string): string | Buffer;
  uuid(): string;
  /** Persist pairs for later exchanges. */
  store(name: string, pairs: Pair[]): void;
  /** Stored pairs, most recent last. */
  load(name: string): Pair[];
  /** Something a rule could not do (reported by --check, logged by the engine). */
  note(message: string): void;
}

export function defaultResolveKey(ref: string): string | Buffer {
  if (ref.startsWith('env:')) {
    const v = process.env[ref.slice(4)];
    if (v === undefined) throw new Error(`environment variable ${ref.slice(4)} is not set`);
    return v;
  }
  if (ref.startsWith('file:')) return readFileSync(ref.slice(5));
  throw new Error(`'${ref}' is not env:NAME or file:PATH`);
}

export const defaultUuid = (): string => randomUUID();

function groupOf(m: RegExpExecArray, group: number | string | undefined): string | undefined {
  if (group === undefined) return m.length > 1 ? m[1] : m[0];
  return typeof group === 'number' ? m[group] : m.groups?.[group];
}

function stripScheme(v: string): string {
  const m = /^(?:Bearer|JWT|Token)\s+(.+)$/i.exec(v);
  return m ? m[1]! : v;
}

/** Values an extractor reads from a message. */
export function extractValues(x: CompiledExtractor, view: MessageView, plugins: Plugins): string[] {
  if (x.kind.startsWith('x-')) return plugins.extractors?.[x.kind]?.(view, x.def) ?? [];
  if (x.kind === 'jwt') {
    if (!x.jwtSource) return [];
    const out: string[] = [];
    for (const raw of view.read(x.jwtSource)) {
      const jwt = decodeJwt(stripScheme(raw));
      const claim = jwt?.claims[x.def.claim ?? ''];
      if (claim === undefined) continue;
      out.push(typeof claim === 'string' ? claim : JSON.stringify(claim));
    }
    return out;
  }
  if (!x.loc) return [];
  const values = view.read(x.loc);
  if (!x.post) return values;
  const out: string[] = [];
  for (const v of values) {
    const m = x.post.exec(v);
    const g = m ? groupOf(m, x.group) : undefined;
    if (g !== undefined) out.push(g);
  }
  return out;
}

/** Pairs recorded[i] with live[i]. */
export function pairUp(recorded: string[], live: string[], origin?: string): Pair[] {
  const n = Math.max(recorded.length, live.length);
  const out: Pair[] = [];
  for (let i = 0; i < n; i++) {
    const p: Pair = { recorded: recorded[i], live: live[i] };
    if (origin !== undefined) p.origin = origin;
    out.push(p);
  }
  return out;
}

function mapLive(pairs: Pair[], f: (v: string) => string): Pair[] {
  return pairs.map((p) => (p.live === undefined ? p : { ...p, live: f(p.live) }));
}

function latestLive(pairs: Pair[] | undefined): string | undefined {
  if (!pairs) return undefined;
  for (let i = pairs.length - 1; i >= 0; i--) if (pairs[i]!.live !== undefined) return pairs[i]!.live;
  return undefined;
}

function runStep(s: CompiledStep, current: Pair[], scope: Scope, env: RunEnv, ruleId: string): Pair[] {
  const def = s.def;
  const liveOf = (name: string): string | undefined => (name in env.vars && !scope.has(name) ? env.vars[name] : latestLive(scope.get(name) ?? env.load(name)));
  switch (def.op) {
    case 'replace': {
      const w = s.with ? render(s.with, liveOf) : undefined;
      if (w === undefined) {
        env.note(`rule '${ruleId}': replace: a variable in '${def.with}' has no value`);
        return current;
      }
      return mapLive(current, (v) => (s.re ? v.replace(s.re, w) : w));
    }
    case 'shiftTime': {
      const delta = s.byMs ?? env.offsetMs;
      const fmt = def.format === undefined || def.format === 'auto' ? undefined : (def.format as TimeFormat);
      return mapLive(current, (v) => {
        const out = shiftTimeText(v, delta, fmt);
        if (out === undefined) env.note(`rule '${ruleId}': shiftTime: '${v.slice(0, 40)}' is not a time${fmt ? ` in ${fmt}` : ''}`);
        return out ?? v;
      });
    }
    case 'resignJwt': {
      const delta = s.byMs ?? env.offsetMs;
      let key: string | Buffer;
      try {
        key = env.resolveKey(def.key ?? '');
      } catch (e) {
        env.note(`rule '${ruleId}': resignJwt: ${(e as Error).message}`);
        return current;
      }
      return mapLive(current, (v) => {
        const token = stripScheme(v);
        try {
          return v.slice(0, v.length - token.length) + resignJwt(token, key, delta, def.alg);
        } catch (e) {
          env.note(`rule '${ruleId}': resignJwt: ${(e as Error).message}`);
          return v;
        }
      });
    }
    case 'uuid':
      return mapLive(current, () => env.uuid());
    case 'base64Encode':
      return mapLive(current, (v) => Buffer.from(v, 'utf8').toString(def.format === 'base64url' ? 'base64url' : 'base64'));
    case 'base64Decode':
      return mapLive(current, (v) => Buffer.from(v, def.format === 'base64url' ? 'base64url' : 'base64').toString('utf8'));
    case 'urlRewrite': {
      const from = s.from ? render(s.from, liveOf) : undefined;
      const to = s.to ? render(s.to, liveOf) : undefined;
      if (!from || to === undefined) return current;
      const re = new RegExp(`${from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-]|\\.\\w|:\\d)`, 'g');
      return mapLive(current, (v) => v.replace(re, to));
    }
    default: {
      const op = env.plugins.ops?.[def.op];
      return op ? mapLive(current, (v) => op(v, def)) : current;
    }
  }
}

/**
 * Extracted pairs go into `scope` under their `as` names; then the steps run in order on the
 * current variable (the last extracted or loaded, or the step's `var`).
 */
export function runSteps(rule: CompiledRule, scope: Scope, env: RunEnv): void {
  let currentName = rule.extract.length > 0 ? rule.extract[rule.extract.length - 1]!.def.as : undefined;
  for (const s of rule.steps) {
    const def = s.def;
    if (def.op === 'load') {
      scope.set(def.var!, [...env.load(def.var!)]);
      currentName = def.var;
      continue;
    }
    const name = def.op === 'store' ? currentName : (def.var ?? currentName);
    if (name === undefined) continue;
    const pairs = scope.get(name) ?? [];
    if (def.op === 'store') {
      if (pairs.length > 0) env.store(def.var!, pairs);
      if (def.var !== name) scope.set(def.var!, pairs);
      continue;
    }
    scope.set(name, runStep(s, pairs, scope, env, rule.id));
    currentName = name;
  }
}

export interface Injected {
  where: string;
  before: string;
  after: string;
  /** Origin exchange of the value substituted. */
  origin?: string;
  /** Set when the recorded value was found but no live value exists for it. */
  missing?: boolean;
  /** Variable of the template that was substituted or set. */
  var: string;
}

export interface Resolver {
  /** Pairs a variable holds (local scope, then the session, then every session). */
  pairs(name: string): Pair[];
  /** Pair whose recorded value equals `value` exactly, if any (fast path for substitution). */
  byRecorded(name: string, value: string): Pair | undefined;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Writes one injector into `view`; returns what changed (and recorded values left unreplaced). */
export function runInjector(j: CompiledInjector, view: MessageView, resolve: Resolver, env: RunEnv): Injected[] {
  const out: Injected[] = [];
  const t = j.template;
  const key = t.vars[0];
  const latest = (name: string): string | undefined => latestLive(resolve.pairs(name));
  if (j.mode === 'set' || key === undefined) {
    const value = render(t, latest);
    if (value === undefined) {
      const lacking = t.vars.find((v) => latest(v) === undefined)!;
      const rec = resolve.pairs(lacking).at(-1);
      out.push({ where: j.where, before: '', after: '', missing: true, var: lacking, ...(rec?.origin ? { origin: rec.origin } : {}) });
      return out;
    }
    if (j.kind.startsWith('x-')) {
      env.plugins.injectors?.[j.kind]?.(view, j.def, value);
      out.push({ where: j.where, before: '', after: value, var: key ?? '' });
      return out;
    }
    if (!j.loc) return out;
    const before = view.read(j.loc)[0] ?? '';
    if (view.set(j.loc, value) > 0) out.push({ where: j.where, before, after: value, var: key ?? '' });
    return out;
  }
  if (!j.loc) return out;
  // substitute: find the recorded rendering of the template and put the live rendering there.
  const others = (name: string, pair: Pair, side: 'recorded' | 'live'): string | undefined =>
    name === key ? pair[side] : side === 'live' ? latest(name) : resolve.pairs(name).at(-1)?.recorded;
  const single = t.vars.length === 1;
  const prefix = t.parts[0]!;
  const suffix = t.parts[t.parts.length - 1]!;
  view.write(j.loc, (value) => {
    const found: Pair[] = [];
    if (single && value.startsWith(prefix) && value.endsWith(suffix) && value.length >= prefix.length + suffix.length) {
      const hit = resolve.byRecorded(key, value.slice(prefix.length, value.length - suffix.length));
      if (hit) found.push(hit);
    }
    if (found.length === 0) {
      for (const p of resolve.pairs(key)) {
        if (p.recorded === undefined || p.recorded.length === 0) continue;
        const rec = render(t, (n) => others(n, p, 'recorded'));
        if (rec !== undefined && value.includes(rec)) found.push(p);
      }
    }
    let next = value;
    for (const p of found) {
      const rec = render(t, (n) => others(n, p, 'recorded'))!;
      const live = p.live === undefined ? undefined : render(t, (n) => others(n, p, 'live'));
      if (live === undefined) {
        out.push({ where: j.where, before: rec, after: rec, missing: true, var: key, ...(p.origin ? { origin: p.origin } : {}) });
        continue;
      }
      next = next.replace(new RegExp(escapeRe(rec), 'g'), () => live);
      out.push({ where: j.where, before: rec, after: live, var: key, ...(p.origin ? { origin: p.origin } : {}) });
    }
    return next;
  });
  return out;
}
