/**
 * Assertion settings: defaults, the `assertions:` section of retap.yaml, and `--budget` flags.
 *
 *   assertions:
 *     failOn: warning            # or breaking: only breaking differences fail the gate
 *     budgets: ['p95 < 250ms', 'GET /orders/{id}: p99 < +10%', 'errors < 1%']
 *     headers: { ignore: [x-build], compare: [etag] }
 *     ignore:                    # differences never counted (listed as noise)
 *       - { route: 'GET /orders/*', path: '$.createdAt', reason: 'clock' }
 *       - { header: x-served-by }
 *       - { outbound: 'GET inventory /stock/{id}' }
 *     keep:                      # automatic noise decisions overridden
 *       - { route: 'POST /orders', path: '$.id' }
 *     noise: { volatileFormats: true, margin: 0.1 }
 *     latency: { minSamples: 20, confidence: 0.95, slackMs: 2 }
 *     validity: { maxStatusChange: 0.5, minCallsMade: 0.5 }
 *     schema: true
 */
import { ErrorCodes, RetapError } from '../core/errors.js';
import { parseBudget } from './budgets.js';
import type { MessageSchema } from './grpc.js';
import type { Budget, DiffKind, Rating } from './types.js';

/**
 * The part of a discovered token (tokens.yaml entry) noise cancellation uses. Kept structural so
 * assertions do not depend on the discovery code's internals.
 */
export interface TokenHint {
  id: string;
  kind?: string;
  route?: string;
  volatile?: boolean;
  origin?: { exchange: string; in?: 'request' | 'response'; where: string };
  uses?: Array<{ exchange: string; in?: 'request' | 'response'; where: string }>;
}

export interface MatchRule {
  /** Route template or glob; absent = every route. */
  route?: string;
  /** JSON path pattern in the body (`$.a[*].b`, `$..createdAt`). */
  path?: string;
  header?: string;
  /** Outbound call signature (`GET inventory /stock/{id}`) or a prefix of it. */
  outbound?: string;
  kind?: DiffKind;
  reason?: string;
}

/**
 * When the reference build (baseline, else candidate) counts as not having reproduced a route:
 * more than `maxStatusChange` of its answers in another status class than recorded (or none at
 * all), or fewer than `minCallsMade` of the recorded outbound calls made and answered.
 */
export interface ValidityConfig {
  maxStatusChange: number;
  minCallsMade: number;
}

export interface EvaluateConfig {
  budgets: Budget[];
  ignore: MatchRule[];
  keep: MatchRule[];
  headers: { ignore: string[]; compare: string[] };
  failOn: Rating;
  schema: boolean;
  /** Discovered tokens of the snapshot (tokens.yaml): their response locations are noise. */
  tokens: TokenHint[];
  noise: { volatileFormats: boolean; margin: number };
  latency: { minSamples: number; confidence: number; slackMs: number; resamples: number; seed: number };
  /** Adds `mocks >= 100%` when no mocks budget is given (mocks fail closed). */
  defaultMocksBudget: boolean;
  /**
   * gRPC messages with names and types (from `.proto` files: `--proto DIR`, `assertions.proto`);
   * without it messages are compared by field number.
   */
  protos?: MessageSchema | undefined;
  /** `.proto` folders named by retap.yaml (`assertions.proto`); the CLI loads them into `protos`. */
  protoDirs?: string[];
  validity: ValidityConfig;
}

export function defaultConfig(): EvaluateConfig {
  return {
    budgets: [],
    ignore: [],
    keep: [],
    headers: { ignore: [], compare: [] },
    failOn: 'warning',
    schema: true,
    tokens: [],
    noise: { volatileFormats: true, margin: 0.1 },
    latency: { minSamples: 20, confidence: 0.95, slackMs: 2, resamples: 1000, seed: 1 },
    defaultMocksBudget: true,
    // Broken replays seen so far are near-total on the routes they touch (66 of 67 answers 401 after
    // a token was not carried; 0 of 73 recorded calls made), while a real regression of one route
    // changes part of its behaviour (an error burst on a fifth of it, one of two calls dropped). Half
    // keeps the two apart; past it, a route without a baseline cannot be told from a broken one anyway.
    validity: { maxStatusChange: 0.5, minCallsMade: 0.5 },
  };
}

function invalid(where: string, problem: string): RetapError {
  return new RetapError(ErrorCodes.CONFIG_INVALID, `${where}: ${problem}`, {
    hint: 'See docs/assertions.md for the assertions section of retap.yaml.',
  });
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function strings(v: unknown, where: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw invalid(where, 'must be a list of strings');
  return v as string[];
}

function num(v: unknown, where: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !(v >= min && v <= max))
    throw invalid(where, `must be a number from ${min} to ${max}`);
  return v;
}

function known(obj: Record<string, unknown>, where: string, keys: string[]): void {
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) throw invalid(where, `${k} is not a known setting (known: ${keys.join(', ')})`);
  }
}

function rules(v: unknown, where: string): MatchRule[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalid(where, 'must be a list of rules');
  return v.map((r, i) => {
    const at = `${where}[${i}]`;
    if (!isObj(r))
      throw invalid(at, "must be a mapping like { route: 'GET /orders/*', path: '$.createdAt' }");
    known(r, at, ['route', 'path', 'header', 'outbound', 'kind', 'reason']);
    for (const [k, val] of Object.entries(r))
      if (typeof val !== 'string') throw invalid(`${at}.${k}`, 'must be a string');
    if (r.path === undefined && r.header === undefined && r.outbound === undefined && r.kind === undefined) {
      throw invalid(at, 'names nothing to match: give path, header, outbound or kind');
    }
    if (typeof r.path === 'string' && !/^[$#[]/.test(r.path))
      throw invalid(
        `${at}.path`,
        `'${r.path}' must start with $ (e.g. $.createdAt), or name protobuf fields by number (#2.3, [1]#2)`,
      );
    return r as MatchRule;
  });
}

/** Reads the `assertions:` section of retap.yaml over the defaults. */
export function configFromYaml(
  section: unknown,
  base = defaultConfig(),
  where = 'retap.yaml assertions',
): EvaluateConfig {
  if (section === undefined || section === null) return base;
  if (!isObj(section)) throw invalid(where, 'must be a mapping');
  known(section, where, [
    'failOn',
    'budgets',
    'headers',
    'ignore',
    'keep',
    'noise',
    'latency',
    'schema',
    'defaultMocksBudget',
    'proto',
    'validity',
  ]);
  const out: EvaluateConfig = structuredClone(base);
  if (section.proto !== undefined) {
    const list = Array.isArray(section.proto) ? section.proto : [section.proto];
    if (!list.every((d) => typeof d === 'string' && d !== ''))
      throw invalid(`${where}.proto`, 'must be a folder of .proto files, or a list of them');
    out.protoDirs = list as string[];
  }
  if (section.failOn !== undefined) {
    if (section.failOn !== 'warning' && section.failOn !== 'breaking')
      throw invalid(`${where}.failOn`, "must be 'warning' or 'breaking'");
    out.failOn = section.failOn;
  }
  out.budgets.push(
    ...strings(section.budgets, `${where}.budgets`).map((b, i) => parseBudget(b, `${where}.budgets[${i}]`)),
  );
  if (section.headers !== undefined) {
    if (!isObj(section.headers))
      throw invalid(`${where}.headers`, 'must be a mapping with ignore and compare lists');
    known(section.headers, `${where}.headers`, ['ignore', 'compare']);
    out.headers.ignore.push(
      ...strings(section.headers.ignore, `${where}.headers.ignore`).map((h) => h.toLowerCase()),
    );
    out.headers.compare.push(
      ...strings(section.headers.compare, `${where}.headers.compare`).map((h) => h.toLowerCase()),
    );
  }
  out.ignore.push(...rules(section.ignore, `${where}.ignore`));
  out.keep.push(...rules(section.keep, `${where}.keep`));
  if (section.noise !== undefined) {
    if (!isObj(section.noise)) throw invalid(`${where}.noise`, 'must be a mapping');
    known(section.noise, `${where}.noise`, ['volatileFormats', 'margin']);
    if (section.noise.volatileFormats !== undefined) {
      if (typeof section.noise.volatileFormats !== 'boolean')
        throw invalid(`${where}.noise.volatileFormats`, 'must be true or false');
      out.noise.volatileFormats = section.noise.volatileFormats;
    }
    out.noise.margin = num(section.noise.margin, `${where}.noise.margin`, 0, 1) ?? out.noise.margin;
  }
  if (section.latency !== undefined) {
    if (!isObj(section.latency)) throw invalid(`${where}.latency`, 'must be a mapping');
    known(section.latency, `${where}.latency`, ['minSamples', 'confidence', 'slackMs', 'resamples', 'seed']);
    const l = section.latency;
    out.latency.minSamples =
      num(l.minSamples, `${where}.latency.minSamples`, 2, 1e6) ?? out.latency.minSamples;
    out.latency.confidence =
      num(l.confidence, `${where}.latency.confidence`, 0.5, 0.9999) ?? out.latency.confidence;
    out.latency.slackMs = num(l.slackMs, `${where}.latency.slackMs`, 0, 1e6) ?? out.latency.slackMs;
    out.latency.resamples =
      num(l.resamples, `${where}.latency.resamples`, 100, 100000) ?? out.latency.resamples;
    out.latency.seed = num(l.seed, `${where}.latency.seed`, 0, 2 ** 32 - 1) ?? out.latency.seed;
  }
  if (section.schema !== undefined) {
    if (typeof section.schema !== 'boolean') throw invalid(`${where}.schema`, 'must be true or false');
    out.schema = section.schema;
  }
  if (section.validity !== undefined) {
    if (!isObj(section.validity)) throw invalid(`${where}.validity`, 'must be a mapping');
    known(section.validity, `${where}.validity`, ['maxStatusChange', 'minCallsMade']);
    out.validity.maxStatusChange =
      num(section.validity.maxStatusChange, `${where}.validity.maxStatusChange`, 0, 1) ??
      out.validity.maxStatusChange;
    out.validity.minCallsMade =
      num(section.validity.minCallsMade, `${where}.validity.minCallsMade`, 0, 1) ?? out.validity.minCallsMade;
  }
  if (section.defaultMocksBudget !== undefined) {
    if (typeof section.defaultMocksBudget !== 'boolean')
      throw invalid(`${where}.defaultMocksBudget`, 'must be true or false');
    out.defaultMocksBudget = section.defaultMocksBudget;
  }
  return out;
}

/** Adds `--budget` flag values (each parsed, errors name the flag). */
export function withBudgets(config: EvaluateConfig, texts: string[], origin = '--budget'): EvaluateConfig {
  return { ...config, budgets: [...config.budgets, ...texts.map((t) => parseBudget(t, origin))] };
}
