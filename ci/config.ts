/**
 * The one reader of retap.yaml (`retap ci`, `retap report`): the whole file is validated with ajv
 * against snapshots/schema/retap.schema.json, then the `replay:`, `ci:` and `snapshots:` sections
 * become a CiConfig and `assertions:` an EvaluateConfig (assertions/config.ts checks its values).
 * Errors name the file, the line and the JSON path; a key the schema does not define is a usage
 * error (RETAP_CONFIG_UNKNOWN_KEY, exit 64) that names the nearest known key.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { type Document, isMap, isNode, isScalar, LineCounter, parseDocument } from 'yaml';
import { configFromYaml, defaultConfig, type EvaluateConfig } from '../assertions/config.js';
import { ErrorCodes, RetapError } from '../core/errors.js';
import { parseDurationMs } from '../core/http.js';
import { packageRoot } from '../core/paths.js';
import { nearestWord } from '../core/suggest.js';

export type MockMiss = 'fail' | 'closest' | 'passthrough';
export type CiFormat = 'junit' | 'markdown' | 'html' | 'json';

export interface BuildConfig {
  command: string;
  port: number;
  ready?: string;
  readyTimeoutMs?: number;
  env: Record<string, string>;
  cwd?: string;
}

export interface K8sConfig {
  image: string;
  command?: string[];
  args?: string[];
  baselineImage?: string;
  /** The baseline's arguments (default: the build's). */
  baselineArgs?: string[];
  shards?: number;
  /** Where the node agents run (default retap-system). */
  agentNamespace?: string;
  /** Absolute (resolved against retap.yaml's folder). */
  kubeconfig?: string;
  context?: string;
  retapImage?: string;
  pullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  keepNamespace?: boolean;
}

export interface CiConfig {
  /** Absolute path of the file read; undefined when there was none. */
  file?: string;
  /** Folder relative paths in the file are resolved against (the file's folder, else cwd). */
  dir: string;
  snapshotsDir?: string;
  /** `snapshots.gzip`: snapshots written by capture and import are compressed. */
  gzip?: boolean;
  /**
   * The `redaction:` section as the schema checked it (snapshots/redaction.ts RedactionConfig):
   * capture and import redact with it, and the snapshot carries its rules to the replay.
   */
  redaction?: Readonly<Record<string, unknown>>;
  replay: {
    snapshot?: string;
    build?: BuildConfig;
    baseline?: Partial<BuildConfig> & { command: string };
    runs?: number;
    concurrency?: number;
    rate?: number;
    speed?: number;
    timeoutMs?: number;
    client?: 'h1' | 'undici';
    connections?: 'recorded' | 'pooled';
    protocol?: 'auto' | 'h1' | 'h2';
    /** Ask a gRPC build for its schema over server reflection (default true). */
    reflection?: boolean;
    mockMiss?: MockMiss;
    /** Secrets file (absolute), for static client credentials redaction replaced. */
    secrets?: string;
    /** Replay on Kubernetes instead of a local network namespace (replay.k8s). */
    k8s?: K8sConfig;
  };
  ci: {
    reports?: string;
    formats?: CiFormat[];
    warnOnly?: Array<'assertions' | 'budgets'>;
    failOn?: 'breaking' | 'warning';
    stepSummary: boolean;
    annotations: boolean;
    maxAnnotations: number;
  };
  /** The `assertions:` section over the defaults; `.proto` folders resolved against `dir`. */
  assertions: EvaluateConfig;
}

const CI_DEFAULTS: CiConfig['ci'] = { stepSummary: true, annotations: true, maxAnnotations: 10 };

let compiled: ValidateFunction | undefined;

function schemaFile(): string {
  return join(packageRoot(), 'snapshots', 'schema', 'retap.schema.json');
}

function validator(): ValidateFunction {
  if (compiled) return compiled;
  const ajv = new Ajv({
    allErrors: false,
    verbose: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
  });
  compiled = ajv.compile(JSON.parse(readFileSync(schemaFile(), 'utf8')) as object);
  return compiled;
}

/** `30s`, `500ms`, `5m`, `1h` → whole ms (the schema already checked the shape). */
function durationMs(text: string): number {
  return Math.round(parseDurationMs(text, { bare: 's' }) ?? Number.NaN);
}

function pathOf(pointer: string, extra?: string): { parts: string[]; text: string } {
  const parts =
    pointer === ''
      ? []
      : pointer
          .slice(1)
          .split('/')
          .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  let text = '$';
  for (const p of parts)
    text += /^\d+$/.test(p) ? `[${p}]` : /^[A-Za-z_$][\w$-]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;
  return { parts, text };
}

interface Problem {
  pointer: string;
  /** The unknown key (additionalProperties). */
  extra?: string;
  problem: string;
  known?: string[];
}

/** One readable problem from ajv's first error (the deepest non-combinator one). */
function describeError(errors: ErrorObject[]): Problem {
  const concrete = errors.filter(
    (e) => !['anyOf', 'oneOf', 'allOf', 'if', 'not', '$ref'].includes(e.keyword),
  );
  const e = (concrete.length ? concrete : errors).reduce((a, b) =>
    b.instancePath.split('/').length > a.instancePath.split('/').length ? b : a,
  );
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return {
        pointer: e.instancePath,
        extra: String(p.additionalProperty),
        problem: `is not a known setting${known.length ? ` (known: ${known.join(', ')})` : ''}`,
        known,
      };
    }
    case 'required':
      return { pointer: e.instancePath, problem: `is missing '${String(p.missingProperty)}'` };
    case 'enum':
      return {
        pointer: e.instancePath,
        problem: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'pattern':
      return {
        pointer: e.instancePath,
        problem:
          e.instancePath.endsWith('Timeout') || e.instancePath.endsWith('timeout')
            ? 'must be a duration such as 30s or 500ms'
            : `must match ${String(p.pattern)}`,
      };
    default:
      return { pointer: e.instancePath, problem: e.message ?? 'is invalid' };
  }
}

function configError(file: string, line: number | undefined, message: string): RetapError {
  return new RetapError(
    ErrorCodes.CONFIG_INVALID,
    `${file}${line === undefined ? '' : `:${line}`}: ${message}`,
    {
      hint: `The expected shape of retap.yaml is in ${schemaFile()} (see docs/ci.md).`,
      details: { file, ...(line === undefined ? {} : { line }) },
    },
  );
}

function unknownKeyError(file: string, line: number | undefined, path: string, d: Problem): RetapError {
  const key = d.extra as string;
  const near = nearestWord(key, d.known ?? []);
  const at = `${file}${line === undefined ? '' : ` line ${line}`}`;
  return new RetapError(
    ErrorCodes.CONFIG_UNKNOWN_KEY,
    `${file}${line === undefined ? '' : `:${line}`}: ${path} ${d.problem}`,
    {
      hint: near
        ? `Did you mean '${near}'? Rename '${key}' in ${at}, or remove it.`
        : `Remove '${key}' from ${at}: retap reads no such setting (the expected shape is in ${schemaFile()}, see docs/ci.md).`,
      details: {
        file,
        ...(line === undefined ? {} : { line }),
        key,
        path,
        ...(near ? { suggestion: near } : {}),
      },
    },
  );
}

/** The line of `key` inside the mapping at `parts` (the key's own line, not its value's). */
function keyLine(doc: Document, lines: LineCounter, parts: string[], key: string): number | undefined {
  const map = parts.length === 0 ? doc.contents : doc.getIn(parts, true);
  if (!isMap(map)) return undefined;
  for (const pair of map.items) {
    if (isScalar(pair.key) && String(pair.key.value) === key && pair.key.range)
      return lines.linePos(pair.key.range[0]).line;
  }
  return undefined;
}

/** `.budgets[2].path` (the tail of assertions/config.ts's `where`) → ['budgets', '2', 'path']. */
function partsOfTail(tail: string): string[] {
  return [...tail.matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[1] ?? m[2]) as string);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function envOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object') for (const [k, val] of Object.entries(v)) out[k] = String(val);
  return out;
}

/** The `assertions:` section; its value errors get the line of the value they name. */
function assertionsOf(
  section: unknown,
  label: string,
  dir: string,
  lineOf: (parts: string[]) => number | undefined,
): EvaluateConfig {
  const where = `${label} assertions`;
  let cfg: EvaluateConfig;
  try {
    cfg = configFromYaml(section, defaultConfig(), where);
  } catch (e) {
    if (e instanceof RetapError && e.details?.file === undefined) {
      const at = e.message.indexOf(where);
      const tail = at === -1 ? '' : (/^[^\s:)'`]*/.exec(e.message.slice(at + where.length))?.[0] ?? '');
      const line = lineOf(['assertions', ...partsOfTail(tail)]);
      throw new RetapError(e.code, e.message, {
        ...(e.hint ? { hint: e.hint } : {}),
        cause: e.cause,
        details: { ...e.details, file: label, ...(line === undefined ? {} : { line }) },
      });
    }
    throw e;
  }
  // .proto folders are relative to the file that names them
  if (cfg.protoDirs) cfg.protoDirs = cfg.protoDirs.map((d) => resolve(dir, d));
  return cfg;
}

/** Parses and checks retap.yaml text; `label` is the name shown in errors. */
export function parseCiConfig(text: string, label: string, dir: string): CiConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0] as (typeof doc.errors)[number];
    throw configError(label, lines.linePos(err.pos[0]).line, `not valid YAML: ${err.message.split('\n')[0]}`);
  }
  const value = (doc.toJS({ maxAliasCount: 100 }) ?? {}) as Record<string, unknown>;
  if (typeof value !== 'object' || Array.isArray(value)) throw configError(label, 1, '$ must be a mapping');
  const lineOf = (parts: string[]): number | undefined => {
    for (let n = parts.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(parts.slice(0, n), true);
      if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const check = validator();
  if (!check(value)) {
    const d = describeError(check.errors ?? []);
    const { parts, text: path } = pathOf(d.pointer, d.extra);
    if (d.extra !== undefined) {
      const line = keyLine(doc, lines, parts.slice(0, -1), d.extra) ?? lineOf(parts);
      throw unknownKeyError(label, line, path, d);
    }
    throw configError(label, lineOf(parts), `${path} ${d.problem}`);
  }
  const replay = (value.replay ?? {}) as Record<string, unknown>;
  const ci = (value.ci ?? {}) as Record<string, unknown>;
  const build = replay.build as Record<string, unknown> | undefined;
  const baseline = replay.baseline as Record<string, unknown> | undefined;
  const snapshots = value.snapshots as { dir?: string; gzip?: boolean } | undefined;
  const cfg: CiConfig = {
    dir,
    replay: {},
    ci: { ...CI_DEFAULTS },
    assertions: assertionsOf(value.assertions, label, dir, lineOf),
  };
  if (snapshots?.dir) cfg.snapshotsDir = resolve(dir, snapshots.dir);
  if (typeof snapshots?.gzip === 'boolean') cfg.gzip = snapshots.gzip;
  const redaction = value.redaction as
    | { jsonFields?: string[]; patterns?: Array<{ regex: string }> }
    | undefined;
  if (redaction) {
    // a rule that cannot compile would fail mid-capture: say where it is now
    const regexes: Array<[string[], string]> = [
      ...(redaction.jsonFields ?? []).map((r, i): [string[], string] => [
        ['redaction', 'jsonFields', String(i)],
        r,
      ]),
      ...(redaction.patterns ?? []).map((p, i): [string[], string] => [
        ['redaction', 'patterns', String(i), 'regex'],
        p.regex,
      ]),
    ];
    for (const [parts, re] of regexes) {
      try {
        new RegExp(re, 'gi');
      } catch (e) {
        throw configError(
          label,
          lineOf(parts),
          `$.${parts.join('.')} is not a JavaScript regular expression: ${(e as Error).message}`,
        );
      }
    }
    cfg.redaction = redaction;
  }
  const r = cfg.replay;
  if (typeof replay.snapshot === 'string') r.snapshot = replay.snapshot;
  if (build) {
    // no command: a Kubernetes replay (replay.k8s.image); retap ci says so when neither is set
    r.build = {
      command: (build.command as string | undefined) ?? '',
      port: build.port as number,
      env: envOf(build.env),
    };
    if (str(build.ready)) r.build.ready = build.ready as string;
    if (str(build.readyTimeout)) r.build.readyTimeoutMs = durationMs(build.readyTimeout as string);
    if (str(build.cwd)) r.build.cwd = resolve(dir, build.cwd as string);
  }
  if (baseline) {
    r.baseline = { command: baseline.command as string };
    if (typeof baseline.port === 'number') r.baseline.port = baseline.port;
    if (str(baseline.ready)) r.baseline.ready = baseline.ready as string;
    if (baseline.env) r.baseline.env = envOf(baseline.env);
    if (str(baseline.cwd)) r.baseline.cwd = resolve(dir, baseline.cwd as string);
  }
  if (typeof replay.runs === 'number') r.runs = replay.runs;
  if (typeof replay.concurrency === 'number') r.concurrency = replay.concurrency;
  if (typeof replay.rate === 'number') r.rate = replay.rate;
  if (typeof replay.speed === 'number') r.speed = replay.speed;
  if (str(replay.timeout)) r.timeoutMs = durationMs(replay.timeout as string);
  if (str(replay.mockMiss)) r.mockMiss = replay.mockMiss as MockMiss;
  if (replay.client === 'h1' || replay.client === 'undici') r.client = replay.client;
  if (str(replay.secrets)) r.secrets = resolve(dir, replay.secrets as string);
  if (replay.connections === 'recorded' || replay.connections === 'pooled')
    r.connections = replay.connections;
  if (replay.protocol === 'auto' || replay.protocol === 'h1' || replay.protocol === 'h2')
    r.protocol = replay.protocol;
  const k8s = replay.k8s as (K8sConfig & Record<string, unknown>) | undefined;
  if (k8s) {
    r.k8s = { ...k8s };
    if (str(k8s.kubeconfig)) r.k8s.kubeconfig = resolve(dir, k8s.kubeconfig as string);
  }
  if (typeof replay.reflection === 'boolean') r.reflection = replay.reflection;
  const c = cfg.ci;
  if (str(ci.reports)) c.reports = resolve(dir, ci.reports as string);
  if (Array.isArray(ci.formats)) c.formats = ci.formats as CiFormat[];
  if (Array.isArray(ci.warnOnly)) c.warnOnly = ci.warnOnly as Array<'assertions' | 'budgets'>;
  if (str(ci.failOn)) c.failOn = ci.failOn as 'breaking' | 'warning';
  if (typeof ci.stepSummary === 'boolean') c.stepSummary = ci.stepSummary;
  if (typeof ci.annotations === 'boolean') c.annotations = ci.annotations;
  if (typeof ci.maxAnnotations === 'number') c.maxAnnotations = ci.maxAnnotations;
  return cfg;
}

/** What retap runs with when there is no retap.yaml: everything from flags and defaults. */
export function defaultCiConfig(dir: string): CiConfig {
  return { dir, replay: {}, ci: { ...CI_DEFAULTS }, assertions: defaultConfig() };
}

/**
 * Reads retap.yaml: the named file (must exist), else ./retap.yaml when present, else defaults
 * (everything then comes from flags).
 */
export async function loadCiConfig(file: string | undefined, cwd = process.cwd()): Promise<CiConfig> {
  const path = resolve(cwd, file ?? 'retap.yaml');
  if (!file && !existsSync(path)) return defaultCiConfig(cwd);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new RetapError(ErrorCodes.CONFIG_INVALID, `cannot read ${path}: ${(e as Error).message}`, {
      cause: e,
      hint: 'Give an existing file with --config, or leave it out to use ./retap.yaml.',
    });
  }
  const cfg = parseCiConfig(text, file ?? 'retap.yaml', dirname(path));
  cfg.file = path;
  return cfg;
}
