/**
 * The replay engine the runner calls. Pure: no network, no clock unless asked (replayStartMs).
 *
 *   const ctx = createReplayContext({ transforms, tokens }, { recordedStartUs });
 *   for (const ex of inboundInRecordedOrder) {
 *     const { request } = ctx.prepareRequest(ex);      // substitutions done
 *     const live = await send(request);                // the runner's job
 *     ctx.observeResponse(ex, live);                   // learn the build's new values
 *   }
 *   ctx.warnings();                                     // tokens that could not be replaced
 *
 * Per client session (see sessionOf), in recorded order: response rules extract the value from
 * the recorded and the live answer and store the pair; request injectors put the live value
 * where the recorded one was. tokens.yaml says which requests need which token, so a token the
 * build's answer lacked is reported with the exchange that needed it.
 */
import type { Exchange, HeaderList, Request, Response } from '../../core/exchange.js';
import type { TokensFile, TransformsFile } from '../yamlfile.js';
import type { TokenEntry } from '../tokens/types.js';
import { type CompiledRule, compileRules, type Plugins } from './compile.js';
import { openMessage } from './message.js';
import { defaultResolveKey, defaultUuid, extractValues, type Injected, pairUp, type Pair, type RunEnv, runInjector, runSteps, type Scope } from './run.js';
import { createVarStore } from './store.js';

export interface LiveResponse {
  status: number;
  headers: HeaderList | Record<string, string | string[] | number | undefined>;
  body: Uint8Array | string;
}

export interface Change {
  rule: string;
  exchange: string;
  side: 'request' | 'response';
  where: string;
  before: string;
  after: string;
  var: string;
  origin?: string;
}

export interface ReplayWarning {
  kind: 'unreplaced-token' | 'missing-value' | 'rule-note';
  /** The exchange that needed the value. */
  exchange: string;
  token?: string;
  rule?: string;
  where?: string;
  /** Exchange whose answer should have carried the value. */
  origin?: string;
  message: string;
}

export interface PreparedRequest {
  request: Request;
  changes: Change[];
  session: string;
}

export interface ObservedResponse {
  /** Values learned from the live answer, per rule: recorded → live (live undefined: lacking). */
  learned: Array<{ rule: string; var: string; recorded?: string; live?: string }>;
}

export interface ReplayOptions {
  /** Start of the recording (µs since epoch); default: the earliest exchange prepared. */
  recordedStartUs?: number;
  /** Start of this replay (ms since epoch); default: Date.now() when the context is created. */
  replayStartMs?: number;
  /** Values for `${name}` besides stored variables (e.g. `replay.host`). */
  vars?: Record<string, string>;
  plugins?: Plugins;
  /** Resolves `env:NAME` / `file:PATH` key references for resignJwt. */
  resolveKey?: (ref: string) => string | Buffer;
  uuid?: () => string;
  /** Label for errors in the rules (default transforms.yaml). */
  file?: string;
  /**
   * Dry runs (`transforms --check`): the live value of each extracted answer value is made by
   * this function instead of being read from the live answer.
   */
  simulateLive?: (rule: string, recorded: string) => string;
}

export interface ReplayInput {
  transforms: TransformsFile | CompiledRule[];
  tokens?: TokensFile;
}

export interface ReplayContext {
  /** Session an exchange belongs to: from tokens.yaml, else `conn:<connection id>`. */
  sessionOf(ex: Exchange): string;
  prepareRequest(recorded: Exchange, session?: string): PreparedRequest;
  observeResponse(recorded: Exchange, live: LiveResponse, session?: string): ObservedResponse;
  warnings(): ReplayWarning[];
  stats(): { prepared: number; observed: number; substitutions: number; unreplaced: number };
}

export function liveHeaders(h: LiveResponse['headers']): HeaderList {
  if (Array.isArray(h)) return h;
  const out: HeaderList = [];
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push([k, x]);
    else out.push([k, String(v)]);
  }
  return out;
}

export function liveBody(b: Uint8Array | string): Uint8Array {
  return typeof b === 'string' ? new Uint8Array(Buffer.from(b, 'utf8')) : b;
}

export function builtinVars(offsetMs: number, replayStartMs: number): Record<string, string> {
  return { 'replay.offsetMs': String(offsetMs), 'replay.now': new Date(replayStartMs).toISOString(), 'replay.nowMs': String(replayStartMs) };
}

interface Expected {
  token: TokenEntry;
  where: string;
}

export function createReplayContext(input: ReplayInput, options: ReplayOptions = {}): ReplayContext {
  const rules = Array.isArray(input.transforms)
    ? input.transforms
    : compileRules(input.transforms, { file: options.file ?? 'transforms.yaml', vars: Object.keys(options.vars ?? {}), ...(options.plugins ? { plugins: options.plugins } : {}) });
  const ruleIds = new Set(rules.filter((r) => r.rule.enabled !== false).map((r) => r.id));
  const tokens = (input.tokens?.tokens ?? []) as unknown as TokenEntry[];
  const replayStartMs = options.replayStartMs ?? Date.now();
  let recordedStartUs = options.recordedStartUs;
  const store = createVarStore();
  const warnings: ReplayWarning[] = [];
  const warned = new Set<string>();
  const counters = { prepared: 0, observed: 0, substitutions: 0, unreplaced: 0 };
  const pendingMissing: ReplayWarning[] = [];

  // Sessions and expected uses from tokens.yaml.
  const sessionByExchange = new Map<string, string>();
  const expected = new Map<string, Expected[]>();
  for (const t of tokens) {
    if (t.session) {
      if (t.origin) sessionByExchange.set(t.origin.exchange, t.session);
      for (const u of t.uses ?? []) sessionByExchange.set(u.exchange, t.session);
    }
    if (t.volatile || !t.origin) continue;
    for (const u of t.uses ?? []) {
      if (u.in === 'response') continue;
      let list = expected.get(u.exchange);
      if (!list) expected.set(u.exchange, (list = []));
      list.push({ token: t, where: u.where });
    }
  }
  // Origin exchange → rule → did the live answer carry the value?
  const originState = new Map<string, Map<string, 'ok' | 'missing'>>();

  const offsetMs = (): number => (recordedStartUs === undefined ? 0 : replayStartMs - Math.floor(recordedStartUs / 1000));
  const constVars = (): Record<string, string> => ({ ...builtinVars(offsetMs(), replayStartMs), ...(options.vars ?? {}) });

  const warn = (w: ReplayWarning): void => {
    const key = `${w.kind} ${w.exchange} ${w.rule ?? ''} ${w.where ?? ''} ${w.token ?? ''}`;
    if (warned.has(key)) return;
    warned.add(key);
    if (w.kind === 'unreplaced-token' || w.kind === 'missing-value') counters.unreplaced++;
    warnings.push(w);
  };

  const envFor = (session: string, exchange: string): RunEnv => ({
    offsetMs: offsetMs(),
    vars: constVars(),
    plugins: options.plugins ?? {},
    resolveKey: options.resolveKey ?? defaultResolveKey,
    uuid: options.uuid ?? defaultUuid,
    store: (name, pairs) => store.put(session, name, pairs),
    load: (name) => store.pairs(session, name),
    note: (message) => warn({ kind: 'rule-note', exchange, message }),
  });

  const resolverFor = (session: string, scope: Scope) => {
    const vars = constVars();
    return {
      pairs: (name: string): Pair[] => {
        const local = scope.get(name);
        if (local) return local;
        if (name in vars) return [{ recorded: vars[name], live: vars[name] }];
        return store.pairs(session, name);
      },
      byRecorded: (name: string, value: string): Pair | undefined => {
        const local = scope.get(name);
        if (local) return local.find((p) => p.recorded === value);
        return store.byRecorded(session, name, value);
      },
    };
  };

  const sessionOf = (ex: Exchange): string => sessionByExchange.get(ex.id) ?? `conn:${ex.connection.id}`;

  return {
    sessionOf,

    prepareRequest(recorded, session = sessionOf(recorded)) {
      counters.prepared++;
      if (options.recordedStartUs === undefined && (recordedStartUs === undefined || recorded.timing.startUs < recordedStartUs)) {
        recordedStartUs = recorded.timing.startUs;
      }
      const view = openMessage('request', recorded.request.headers, recorded.request.body, recorded.request.target);
      const before = openMessage('request', recorded.request.headers, recorded.request.body, recorded.request.target);
      const changes: Change[] = [];
      const env = envFor(session, recorded.id);
      for (const r of rules) {
        if (r.rule.enabled === false) continue;
        const scope: Scope = new Map();
        const ruleApplies = r.match(recorded);
        if (r.phase === 'request' && ruleApplies) {
          for (const x of r.extract) {
            const rec = extractValues(x, before, env.plugins);
            scope.set(x.def.as, pairUp(rec, extractValues(x, view, env.plugins), recorded.id));
          }
          runSteps(r, scope, env);
        }
        const resolver = resolverFor(session, scope);
        for (const j of r.inject) {
          if (j.side !== 'request') continue;
          if (!(j.match ? j.match(recorded) : ruleApplies)) continue;
          for (const done of runInjector(j, view, resolver, env)) record(r, recorded, done, changes);
        }
      }
      const missing = pendingMissing.splice(0);
      const covered = checkExpected(recorded, changes);
      for (const m of missing) {
        if (covered.has(`${m.rule} ${m.where}`)) continue;
        warn(m);
      }
      return { request: view.toRequest(recorded.request), changes, session };
    },

    observeResponse(recorded, live, session = sessionOf(recorded)) {
      counters.observed++;
      const learned: ObservedResponse['learned'] = [];
      const rec = recorded.response;
      const recView = openMessage('response', rec?.headers ?? [], rec?.body ?? { data: new Uint8Array(0), size: 0, truncated: false });
      const liveView = openMessage('response', liveHeaders(live.headers), { data: liveBody(live.body), size: 0, truncated: false });
      const env = envFor(session, recorded.id);
      for (const r of rules) {
        if (r.rule.enabled === false || r.phase !== 'response' || !r.match(recorded, live.status)) continue;
        const scope: Scope = new Map();
        let lacking = false;
        let any = false;
        for (const x of r.extract) {
          const recValues = extractValues(x, recView, env.plugins);
          const sim = options.simulateLive;
          const liveValues = sim ? recValues.map((v) => sim(r.id, v)) : extractValues(x, liveView, env.plugins);
          const pairs = pairUp(recValues, liveValues, recorded.id);
          scope.set(x.def.as, pairs);
          for (const p of pairs) {
            if (p.recorded === undefined) continue;
            any = true;
            if (p.live === undefined) lacking = true;
            learned.push({ rule: r.id, var: x.def.as, recorded: p.recorded, ...(p.live !== undefined ? { live: p.live } : {}) });
          }
        }
        if (any) {
          let m = originState.get(recorded.id);
          if (!m) originState.set(recorded.id, (m = new Map()));
          m.set(r.id, lacking ? 'missing' : 'ok');
        }
        runSteps(r, scope, env);
      }
      return { learned };
    },

    warnings: () => [...warnings],
    stats: () => ({ ...counters }),
  };

  function record(r: CompiledRule, ex: Exchange, done: Injected, changes: Change[]): void {
    if (done.missing) {
      pendingMissing.push({
        kind: 'missing-value',
        exchange: ex.id,
        rule: r.id,
        where: done.where,
        ...(done.origin ? { origin: done.origin } : {}),
        message: `${ex.id} ${done.where}: rule '${r.id}' has no live value for '${done.var}'${done.origin ? ` (the build's answer to ${done.origin} lacked it)` : ''}`,
      });
      return;
    }
    counters.substitutions++;
    const c: Change = { rule: r.id, exchange: ex.id, side: 'request', where: done.where, before: done.before, after: done.after, var: done.var };
    if (done.origin) c.origin = done.origin;
    changes.push(c);
  }

  /** Warns for expected token uses not replaced; returns the `rule where` keys it looked at. */
  function checkExpected(ex: Exchange, changes: Change[]): Set<string> {
    const covered = new Set<string>();
    for (const e of expected.get(ex.id) ?? []) {
      const t = e.token;
      const origin = t.origin!;
      covered.add(`${t.rule ?? ''} ${e.where}`);
      if (changes.some((c) => c.rule === t.rule && c.where === e.where)) continue;
      let why: string;
      const state = originState.get(origin.exchange)?.get(t.rule ?? '');
      if (!t.rule || !ruleIds.has(t.rule)) why = `its rule '${t.rule ?? '(none)'}' is missing or disabled in transforms.yaml`;
      else if (state === 'missing') why = `the build's answer to ${origin.exchange} lacked it at ${origin.where}`;
      else if (state === undefined) why = `the answer to ${origin.exchange} was not observed (not replayed, failed, or its status did not match the rule)`;
      else why = `the recorded value was not found at ${e.where}`;
      warn({
        kind: 'unreplaced-token',
        exchange: ex.id,
        token: t.id,
        ...(t.rule ? { rule: t.rule } : {}),
        where: e.where,
        origin: origin.exchange,
        message: `token '${t.id}' needed by ${ex.id} at ${e.where} was not replaced: ${why}`,
      });
    }
    return covered;
  }
}

/** The recorded response with a live status/headers/body, for callers that want a Response. */
export function toResponse(live: LiveResponse, version = 'HTTP/1.1'): Response {
  const data = liveBody(live.body);
  return { status: live.status, version, headers: liveHeaders(live.headers), body: { data, size: data.length, truncated: false } };
}
