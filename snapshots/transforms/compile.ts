/**
 * transforms.yaml → compiled rules. Checks what the JSON Schema cannot: JSON paths, regexes,
 * locations, status specs, variables used but never made, extensions nobody registered, a rule
 * with extractors on both sides, and rules that feed each other in a cycle. Every error names the
 * rule (id and JSON path, with the YAML line when the text is known).
 */
import { isNode, LineCounter, parseDocument } from 'yaml';
import { invalid, type SchemaIssue, validator, issuesFrom } from '../schema.js';
import { parseJsonPath, type PathPart } from './jsonpath.js';
import { compileMatch, type MatchFn, statusTest } from './match.js';
import type { Location, LocationKind, MessageView } from './message.js';
import { parseTemplate, type Template } from './template.js';
import type { Extractor, Injector, Rule, Side, Step } from './types.js';
import { parseWhere, whereOf } from './where.js';
import type { TransformsFile } from '../yamlfile.js';

/** Extension points for `x-` extractors, ops and injectors. */
export interface Plugins {
  extractors?: Record<string, (view: MessageView, def: Extractor) => string[]>;
  ops?: Record<string, (value: string, step: Step) => string>;
  injectors?: Record<string, (view: MessageView, def: Injector, value: string) => number>;
}

export interface CompiledExtractor {
  def: Extractor;
  side: Side;
  kind: string;
  loc?: Location;
  /** jwt: where the token sits. */
  jwtSource?: Location;
  /** Applied to what the location holds (non-regex extractors). */
  post?: RegExp;
  group?: number | string;
  where: string;
}

export interface CompiledStep {
  def: Step;
  re?: RegExp;
  with?: Template;
  /** shiftTime/resignJwt: fixed shift in ms, or undefined for the replay offset. */
  byMs?: number;
  from?: Template;
  to?: Template;
}

export interface CompiledInjector {
  def: Injector;
  side: Side;
  kind: string;
  loc?: Location;
  mode: 'set' | 'substitute';
  match?: MatchFn;
  template: Template;
  where: string;
  index: number;
}

export interface CompiledRule {
  id: string;
  index: number;
  rule: Rule;
  match: MatchFn;
  /** Side the extractors read: request rules run before sending, response rules on answers. */
  phase: Side;
  extract: CompiledExtractor[];
  steps: CompiledStep[];
  inject: CompiledInjector[];
  /** Variables this rule stores for later exchanges. */
  stores: Set<string>;
  /** Variables this rule reads that it does not make itself. */
  needs: Set<string>;
}

export interface CompileOptions {
  file?: string;
  /** Extra variables the runner provides (e.g. `replay.host`). */
  vars?: string[];
  plugins?: Plugins;
  /** Maps a JSON path like `$.rules[2].extract[0]` to a YAML line. */
  locate?: (parts: string[]) => number | undefined;
}

/** Variables every context provides. */
export const BUILTIN_VARS = ['replay.offsetMs', 'replay.now', 'replay.nowMs'];

const DURATION = /^([+-])?(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

export function parseDurationMs(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[3] as 'ms'];
  return (m[1] === '-' ? -1 : 1) * Number(m[2]) * unit;
}

function pathParts(p: string): string[] {
  const out: string[] = [];
  for (const m of p.matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)) out.push(m[1] ?? m[2]!);
  return out;
}

class Problems {
  list: SchemaIssue[] = [];
  constructor(
    private file: string,
    private locate?: (parts: string[]) => number | undefined,
  ) {}
  add(path: string, ruleId: string | undefined, message: string, fix: string): void {
    const issue: SchemaIssue = { file: this.file, path, message: ruleId === undefined ? message : `(rule '${ruleId}') ${message}`, fix };
    const line = this.locate?.(pathParts(path));
    if (line !== undefined) issue.line = line;
    this.list.push(issue);
  }
}

function regexOf(pattern: string, flags = ''): RegExp {
  try {
    return new RegExp(pattern, flags);
  } catch (e) {
    throw new Error(`'${pattern}' is not a valid regular expression (${(e as Error).message.replace(/^Invalid regular expression: /, '')})`);
  }
}

function locationOf(kind: string, f: { name?: string; segment?: number; path?: string; pattern?: string; group?: number | string }): Location | undefined {
  switch (kind) {
    case 'header':
      return { kind, name: (f.name ?? '').toLowerCase() };
    case 'cookie':
    case 'query':
    case 'form':
      return { kind: kind as LocationKind, name: f.name ?? '' };
    case 'path':
      return { kind, segment: f.segment ?? 0 };
    case 'jsonpath':
      return { kind, path: parseJsonPath(f.path ?? '$') as PathPart[] };
    case 'protobuf':
      if (!/^#\d+(\.\d+)*$/.test(f.path ?? '')) throw new Error(`'${f.path ?? ''}' is not a field-number path such as #1 or #2.3`);
      return { kind, name: f.path ?? '' };
    case 'regex':
      return { kind, regex: regexOf(f.pattern ?? ''), ...(f.group !== undefined ? { group: f.group } : {}) };
    case 'body':
      return { kind };
    default:
      return undefined;
  }
}

export function compileRules(file: TransformsFile, options: CompileOptions = {}): CompiledRule[] {
  const label = options.file ?? 'transforms.yaml';
  const problems = new Problems(label, options.locate);
  const plugins = options.plugins ?? {};
  const rules = file.rules as unknown as Rule[];
  const compiled: CompiledRule[] = [];

  rules.forEach((rule, ri) => {
    const at = `$.rules[${ri}]`;
    const id = rule.id;
    const guard = <T>(path: string, fix: string, f: () => T): T | undefined => {
      try {
        return f();
      } catch (e) {
        problems.add(path, id, (e as Error).message, fix);
        return undefined;
      }
    };
    const local = new Set<string>();
    const needs = new Set<string>();
    const stores = new Set<string>();
    const sides = new Set<Side>();

    const extract: CompiledExtractor[] = [];
    (rule.extract ?? []).forEach((x, i) => {
      const p = `${at}.extract[${i}]`;
      const side: Side = x.in ?? 'response';
      sides.add(side);
      local.add(x.as);
      if (x.from.startsWith('x-')) {
        if (!plugins.extractors?.[x.from]) problems.add(`${p}.from`, id, `uses the extractor '${x.from}' that no plugin provides`, 'register it with the engine, or use header, cookie, query, path, jsonpath, regex, jwt or form');
        extract.push({ def: x, side, kind: x.from, where: x.from });
        return;
      }
      const c: CompiledExtractor = { def: x, side, kind: x.from, where: '' };
      if (x.from === 'jwt') {
        c.jwtSource = guard(`${p}.source`, "write a location such as 'header:authorization' or 'jsonpath:$.token'", () => parseWhere(x.source ?? 'header:authorization'));
        c.where = x.source ?? 'header:authorization';
      } else if (x.from === 'regex') {
        c.loc = guard(`${p}.pattern`, 'write a valid JavaScript regular expression', () => locationOf('regex', x));
        c.where = whereOf({ kind: 'regex', pattern: x.pattern ?? '' });
      } else {
        const pathField = x.from === 'jsonpath' || x.from === 'protobuf' ? '.path' : '';
        c.loc = guard(`${p}${pathField}`, "write a JSON path such as $.items[0].id or $['a-b']", () => locationOf(x.from, x));
        c.where = whereOf({ kind: x.from, ...x });
        if (x.pattern !== undefined) c.post = guard(`${p}.pattern`, 'write a valid JavaScript regular expression', () => regexOf(x.pattern!));
      }
      if (x.group !== undefined) c.group = x.group;
      extract.push(c);
    });
    if (sides.size > 1) {
      problems.add(`${at}.extract`, id, 'reads both the request and the response', 'split it into two rules: one per side (use store/load to pass values)');
    }

    const steps: CompiledStep[] = [];
    (rule.transform ?? []).forEach((s, i) => {
      const p = `${at}.transform[${i}]`;
      const c: CompiledStep = { def: s };
      const tpl = (field: 'with' | 'from' | 'to'): Template | undefined =>
        guard(`${p}.${field}`, 'write $' + '{name} for variables', () => parseTemplate(String(s[field] ?? '')));
      switch (s.op) {
        case 'replace':
          if (s.pattern !== undefined) c.re = guard(`${p}.pattern`, 'write a valid JavaScript regular expression', () => regexOf(s.pattern!, 'g'));
          c.with = tpl('with');
          if (c.with && s.pattern === undefined) for (const v of c.with.vars) if (!local.has(v)) needs.add(v);
          break;
        case 'store':
          stores.add(s.var!);
          break;
        case 'load':
          if (!local.has(s.var!)) needs.add(s.var!);
          local.add(s.var!);
          break;
        case 'shiftTime':
        case 'resignJwt':
          if (s.by !== undefined && s.by !== 'replay-offset') {
            c.byMs = parseDurationMs(s.by);
            if (c.byMs === undefined) problems.add(`${p}.by`, id, `'${s.by}' is not 'replay-offset' or a duration`, 'write replay-offset or a duration such as 1h, -30m, 90s');
          }
          if (s.op === 'shiftTime' && s.format !== undefined && !['iso8601', 'date', 'http-date', 'unix', 'unix-ms', 'unix-us', 'auto'].includes(s.format)) {
            problems.add(`${p}.format`, id, `'${s.format}' is not a time format`, 'use auto, iso8601, date, http-date, unix, unix-ms or unix-us');
          }
          if (s.op === 'resignJwt') {
            if (s.key === undefined || !/^(env|file):.+/.test(s.key)) problems.add(`${p}.key`, id, 'needs a key reference', "write key: 'env:NAME' or key: 'file:PATH' (never the key itself)");
            if (s.alg !== undefined && !/^(HS|RS|PS|ES)(256|384|512)$|^EdDSA$/.test(s.alg)) problems.add(`${p}.alg`, id, `'${s.alg}' is not a JWS algorithm retap signs with`, 'use HS256/384/512, RS*, PS*, ES* or EdDSA');
          }
          break;
        case 'urlRewrite':
          c.from = tpl('from');
          c.to = tpl('to');
          for (const t of [c.from, c.to]) for (const v of t?.vars ?? []) if (!local.has(v)) needs.add(v);
          break;
        case 'base64Encode':
        case 'base64Decode':
          if (s.format !== undefined && s.format !== 'base64' && s.format !== 'base64url') problems.add(`${p}.format`, id, `'${s.format}' is not base64 or base64url`, 'use base64 or base64url');
          break;
        case 'uuid':
          break;
        default:
          if (!plugins.ops?.[s.op]) problems.add(`${p}.op`, id, `uses the op '${s.op}' that no plugin provides`, 'register it with the engine, or use a built-in op');
      }
      if (s.var !== undefined && s.op !== 'store' && s.op !== 'load' && !local.has(s.var)) {
        problems.add(`${p}.var`, id, `works on '${s.var}', which no extractor or load of this rule made`, `extract it first (as: ${s.var}) or load it`);
      }
      steps.push(c);
    });
    if (steps.length > 0 && local.size === 0) {
      problems.add(`${at}.transform`, id, 'has steps but no value to work on', 'add an extractor or a load step before them');
    }

    const inject: CompiledInjector[] = [];
    (rule.inject ?? []).forEach((j, i) => {
      const p = `${at}.inject[${i}]`;
      const template = guard(`${p}.value`, 'write a variable name or a template such as Bearer $' + '{token}', () => parseTemplate(j.value, true));
      for (const v of template?.vars ?? []) if (!local.has(v)) needs.add(v);
      if (j.to.startsWith('x-') && !plugins.injectors?.[j.to]) {
        problems.add(`${p}.to`, id, `uses the injector '${j.to}' that no plugin provides`, 'register it with the engine, or use a built-in injector');
      }
      const pathField = j.to === 'jsonpath' || j.to === 'protobuf' ? '.path' : j.to === 'regex' ? '.pattern' : '';
      const loc = j.to.startsWith('x-') ? undefined : guard(`${p}${pathField}`, "write a JSON path such as $.items[0].id, or a valid regex", () => locationOf(j.to, j));
      const needField = { header: 'name', cookie: 'name', query: 'name', form: 'name', path: 'segment', jsonpath: 'path', protobuf: 'path', regex: 'pattern' }[j.to as 'header'];
      if (needField && (j as unknown as Record<string, unknown>)[needField] === undefined) {
        problems.add(p, id, `is missing the field '${needField}' that 'to: ${j.to}' needs`, `add '${needField}:'`);
      }
      if (j.match?.status !== undefined) guard(`${p}.match.status`, 'write 200, 2xx or 400-499', () => statusTest(j.match!.status!));
      const c: CompiledInjector = {
        def: j,
        side: j.in ?? 'request',
        kind: j.to,
        mode: j.mode ?? 'set',
        template: template ?? { parts: [''], vars: [] },
        where: whereOf({ kind: j.to, ...j }),
        index: i,
      };
      if (loc) c.loc = loc;
      if (j.match) c.match = compileMatch(j.match);
      inject.push(c);
    });
    if (rule.match?.status !== undefined) guard(`${at}.match.status`, 'write 200, 2xx or 400-499', () => statusTest(rule.match!.status!));

    compiled.push({
      id,
      index: ri,
      rule,
      match: compileMatch(rule.match),
      phase: sides.has('response') ? 'response' : 'request',
      extract,
      steps,
      inject,
      stores,
      needs,
    });
  });

  // Variables: every need must be stored by some rule or provided by the context.
  const provided = new Set([...BUILTIN_VARS, ...(options.vars ?? [])]);
  const storedBy = new Map<string, string[]>();
  for (const r of compiled) for (const v of r.stores) storedBy.set(v, [...(storedBy.get(v) ?? []), r.id]);
  for (const r of compiled) {
    for (const v of r.needs) {
      if (!storedBy.has(v) && !provided.has(v)) {
        problems.add(`$.rules[${r.index}]`, r.id, `uses the variable '${v}' that no rule extracts or stores`, `extract it in this rule (as: ${v}), store it in another rule, or fix the name`);
      }
    }
  }
  if (problems.list.length === 0) {
    const cycle = findCycle(compiled, storedBy);
    if (cycle) {
      const first = compiled.find((r) => r.id === cycle[0])!;
      problems.add(`$.rules[${first.index}]`, undefined, `rules feed each other in a cycle: ${cycle.map((c) => `'${c}'`).join(' → ')}`, 'a rule may only load variables stored by rules that do not depend on it; break the loop');
    }
  }
  if (problems.list.length > 0) throw invalid(problems.list, 'transforms');
  return orderRules(compiled, storedBy);
}

function edges(r: CompiledRule, storedBy: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const v of r.needs) for (const s of storedBy.get(v) ?? []) if (s !== r.id) out.push(s);
  return out;
}

/** A cycle among distinct rules in "needs a variable stored by" edges, as rule ids. */
function findCycle(rules: CompiledRule[], storedBy: Map<string, string[]>): string[] | undefined {
  const byId = new Map(rules.map((r) => [r.id, r]));
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    state.set(id, 1);
    stack.push(id);
    for (const next of edges(byId.get(id)!, storedBy)) {
      if (state.get(next) === 1) return [...stack.slice(stack.indexOf(next)), next];
      if (state.get(next) === undefined) {
        const c = visit(next);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(id, 2);
    return undefined;
  };
  for (const r of rules) {
    if (state.get(r.id) === undefined) {
      const c = visit(r.id);
      if (c) return c;
    }
  }
  return undefined;
}

/** Producers before consumers, file order otherwise. */
function orderRules(rules: CompiledRule[], storedBy: Map<string, string[]>): CompiledRule[] {
  const byId = new Map(rules.map((r) => [r.id, r]));
  const done = new Set<string>();
  const out: CompiledRule[] = [];
  const place = (r: CompiledRule): void => {
    if (done.has(r.id)) return;
    done.add(r.id);
    for (const dep of edges(r, storedBy)) place(byId.get(dep)!);
    out.push(r);
  };
  for (const r of rules) place(r);
  return out;
}

/**
 * Parses transforms.yaml text, checks it against the schema and compiles it. Schema errors are
 * reported like the snapshot reader's, plus the id of the rule they are in.
 */
export function loadTransformsText(text: string, options: CompileOptions = {}): { file: TransformsFile; rules: CompiledRule[] } {
  const label = options.file ?? 'transforms.yaml';
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    throw invalid([{ file: label, line: lines.linePos(err.pos[0]).line, path: '$', message: `is not valid YAML: ${err.message.split('\n')[0]}`, fix: 'fix the YAML syntax on that line' }], undefined);
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  const locate = (parts: string[]): number | undefined => {
    for (let n = parts.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(parts.slice(0, n).map((p) => (/^\d+$/.test(p) ? Number(p) : p)), true);
      if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const check = validator('transforms');
  if (!check(value)) {
    const issues = issuesFrom(check.errors, label, (parts) => locate(parts));
    const rules = (value as { rules?: Array<{ id?: unknown }> } | null)?.rules;
    for (const issue of issues) {
      const m = /^\$\.rules\[(\d+)\]/.exec(issue.path);
      const id = m && Array.isArray(rules) ? rules[Number(m[1])]?.id : undefined;
      if (typeof id === 'string') issue.message = `(rule '${id}') ${issue.message}`;
    }
    throw invalid(issues, 'transforms');
  }
  const file = value as TransformsFile;
  const seen = new Map<string, number>();
  file.rules.forEach((r, i) => {
    const before = seen.get(r.id);
    if (before !== undefined) {
      throw invalid([{ file: label, line: locate(['rules', String(i), 'id']), path: `$.rules[${i}].id`, message: `(rule '${r.id}') repeats the id of $.rules[${before}]`, fix: 'give every rule its own id' }], 'transforms');
    }
    seen.set(r.id, i);
  });
  return { file, rules: compileRules(file, { ...options, file: label, locate }) };
}
