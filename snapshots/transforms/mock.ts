/**
 * Transforms for answers served by mocks. The mock found the recorded outbound exchange that
 * matches the build's live call; rules then shape the recorded answer for this call:
 * request rules read the recorded and the live request (so `substitute` injectors put the live
 * value, e.g. a new order id echoed back, where the recorded one was); response rules read the
 * answer to serve (e.g. shift its times, re-sign its JWTs, give it fresh uuids). Only injectors
 * with `in: response` write. A mock context keeps stored variables across calls.
 */
import type { Exchange, Request, Response } from '../../core/exchange.js';
import type { TransformsFile } from '../yamlfile.js';
import { type CompiledRule, compileRules } from './compile.js';
import { builtinVars, type Change, type ReplayOptions } from './engine.js';
import { openMessage } from './message.js';
import { defaultResolveKey, defaultUuid, extractValues, pairUp, type Pair, type RunEnv, runInjector, runSteps, type Scope } from './run.js';
import { createVarStore } from './store.js';

export interface LiveRequest {
  method: string;
  target: string;
  headers: Request['headers'];
  body: Uint8Array | string;
}

export interface MockAnswer {
  response: Response;
  changes: Change[];
  notes: string[];
}

export interface MockContext {
  respond(recorded: Exchange, live: LiveRequest, session?: string): MockAnswer;
}

export function createMockContext(transforms: TransformsFile | CompiledRule[], options: ReplayOptions = {}): MockContext {
  const rules = Array.isArray(transforms)
    ? transforms
    : compileRules(transforms, { file: options.file ?? 'transforms.yaml', vars: Object.keys(options.vars ?? {}), ...(options.plugins ? { plugins: options.plugins } : {}) });
  const store = createVarStore();
  const replayStartMs = options.replayStartMs ?? Date.now();

  return {
    respond(recorded, live, session = 'mock') {
      const res = recorded.response;
      if (!res) throw new Error(`recorded exchange ${recorded.id} has no response to serve`);
      const startUs = options.recordedStartUs ?? recorded.timing.startUs;
      const offsetMs = replayStartMs - Math.floor(startUs / 1000);
      const vars = { ...builtinVars(offsetMs, replayStartMs), ...(options.vars ?? {}) };
      const notes: string[] = [];
      const env: RunEnv = {
        offsetMs,
        vars,
        plugins: options.plugins ?? {},
        resolveKey: options.resolveKey ?? defaultResolveKey,
        uuid: options.uuid ?? defaultUuid,
        store: (name, pairs) => store.put(session, name, pairs),
        load: (name) => store.pairs(session, name),
        note: (m) => notes.push(m),
      };
      const liveBody = typeof live.body === 'string' ? new Uint8Array(Buffer.from(live.body)) : live.body;
      const recReq = openMessage('request', recorded.request.headers, recorded.request.body, recorded.request.target);
      const liveReq = openMessage('request', live.headers, { data: liveBody, size: liveBody.length, truncated: false }, live.target);
      const recRes = openMessage('response', res.headers, res.body);
      const out = openMessage('response', res.headers, res.body);
      const changes: Change[] = [];
      for (const r of rules) {
        if (r.rule.enabled === false || !r.match(recorded)) continue;
        const scope: Scope = new Map();
        for (const x of r.extract) {
          const pairs =
            r.phase === 'request'
              ? pairUp(extractValues(x, recReq, env.plugins), extractValues(x, liveReq, env.plugins), recorded.id)
              : pairUp(extractValues(x, recRes, env.plugins), extractValues(x, out, env.plugins), recorded.id);
          scope.set(x.def.as, pairs);
        }
        runSteps(r, scope, env);
        const resolver = {
          pairs: (name: string): Pair[] => scope.get(name) ?? (name in vars ? [{ recorded: vars[name], live: vars[name] }] : store.pairs(session, name)),
          byRecorded: (name: string, value: string): Pair | undefined =>
            scope.get(name)?.find((p) => p.recorded === value) ?? store.byRecorded(session, name, value),
        };
        for (const j of r.inject) {
          if (j.side !== 'response') continue;
          if (j.match && !j.match(recorded)) continue;
          for (const d of runInjector(j, out, resolver, env)) {
            if (d.missing) {
              notes.push(`rule '${r.id}' ${d.where}: no live value for '${d.var}'`);
              continue;
            }
            changes.push({ rule: r.id, exchange: recorded.id, side: 'response', where: d.where, before: d.before, after: d.after, var: d.var });
          }
        }
      }
      return { response: out.toResponse(res), changes, notes };
    },
  };
}

/** One-shot form: the answer a mock should serve for `live`, given the recorded outbound exchange. */
export function applyMockTransforms(
  transforms: TransformsFile | CompiledRule[],
  recorded: Exchange,
  live: LiveRequest,
  options: ReplayOptions = {},
): MockAnswer {
  return createMockContext(transforms, options).respond(recorded, live);
}
