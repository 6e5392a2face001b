/**
 * Static client credentials at replay. A credential the client had before the recording (Basic,
 * an API key, a bearer token, a cookie no answer set) cannot come from the build: redaction left
 * its placeholder in the requests, and the user gives the value back, placeholder → value, from a
 * secrets file and/or the environment:
 *
 *   # secrets.yaml (a file outside the repository, or one CI writes from its secret store)
 *   REDACTED-3f2a9c0d1e4b5a6f: dXNlcjpodW50ZXIy      # value as it stood (Basic: the base64)
 *   REDACTED-9b8c7d6e5f4a3b2c: null                   # known, not needed: send the placeholder
 *
 *   RETAP_SECRET_3F2A9C0D1E4B5A6F=dXNlcjpodW50ZXIy    # the same through the environment
 *
 * `secretNeeds` says which placeholders a replay will send that no recorded token flow replaces
 * (it runs the token engine over the recording with simulated live values), with where and in
 * which requests; the replay refuses to start when one of them has no value (RETAP_SECRET_MISSING).
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ErrorCodes, RetapError } from '../core/errors.js';
import type { Exchange, HeaderList } from '../core/exchange.js';
import { PLACEHOLDER, PLACEHOLDER_IN_TEXT } from './redaction/rules.js';
import { routeTemplate } from './routes.js';
import { createReplayContext } from './transforms/engine.js';
import type { TokensFile, TransformsFile } from './yamlfile.js';

/** Environment variables `RETAP_SECRET_<16 hex of the placeholder>` (either case). */
export const SECRET_ENV_PREFIX = 'RETAP_SECRET_';

/** placeholder → value; `null`: acknowledged, the placeholder itself is sent. */
export type Secrets = Map<string, string | null>;

export interface SecretSources {
  /** Path of a YAML/JSON map `REDACTED-…: value`. */
  file?: string | undefined;
  /** Environment to read RETAP_SECRET_* from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export async function loadSecrets(src: SecretSources = {}): Promise<Secrets> {
  const out: Secrets = new Map();
  if (src.file !== undefined) {
    let text: string;
    try {
      text = await readFile(src.file, 'utf8');
    } catch (e) {
      throw new RetapError(
        ErrorCodes.CONFIG_INVALID,
        `cannot read the secrets file ${src.file}: ${(e as Error).message}`,
        {
          hint: 'Give --secrets (or replay.secrets in retap.yaml) the path of a YAML file of `REDACTED-…: value` lines.',
          cause: e,
        },
      );
    }
    for (const [k, v] of Object.entries(parseSecretsFile(text, src.file))) out.set(k, v);
  }
  for (const [name, value] of Object.entries(src.env ?? process.env)) {
    if (!name.toUpperCase().startsWith(SECRET_ENV_PREFIX) || value === undefined) continue;
    const hex = name.slice(SECRET_ENV_PREFIX.length).toLowerCase();
    if (!/^[0-9a-f]{16}$/.test(hex)) continue;
    out.set(`REDACTED-${hex}`, value);
  }
  return out;
}

export function parseSecretsFile(text: string, label: string): Record<string, string | null> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new RetapError(
      ErrorCodes.CONFIG_INVALID,
      `${label}: not YAML or JSON (${(e as Error).message.split('\n')[0]})`,
      {
        hint: 'Write one `REDACTED-<16 hex>: value` line per secret.',
      },
    );
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new RetapError(ErrorCodes.CONFIG_INVALID, `${label}: expected a map of placeholder → value`, {
      hint: 'Write one `REDACTED-<16 hex>: value` line per secret.',
    });
  }
  const out: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!PLACEHOLDER.test(k)) {
      throw new RetapError(
        ErrorCodes.CONFIG_INVALID,
        `${label}: '${k}' is not a placeholder (REDACTED- and 16 lower-case hex digits)`,
        {
          hint: '`retap snapshot secrets SNAPSHOT` lists the placeholders a replay needs.',
        },
      );
    }
    if (v !== null && typeof v !== 'string' && typeof v !== 'number') {
      throw new RetapError(
        ErrorCodes.CONFIG_INVALID,
        `${label}: the value of ${k} must be a string (or null to send the placeholder)`,
        {
          hint: 'Quote values that YAML would read otherwise: "1234", "true".',
        },
      );
    }
    out[k] = v === null ? null : String(v);
  }
  return out;
}

export interface SecretUse {
  /** Recorded exchange id and its route (`GET /orders/{id}`). */
  exchange: string;
  route: string;
  /** `header:authorization`, `cookie:sid`, `query:api_key`, `form:password`, `jsonpath:$.key`, `path:2`, `body`. */
  where: string;
}

export interface SecretNeed {
  placeholder: string;
  /** Places and requests, first ones first (at most 20 kept; `count` has them all). */
  uses: SecretUse[];
  count: number;
  /**
   * `provided` (a value is given), `acknowledged` (null: sent as is), `rejected` (every request
   * carrying it was answered 401/403/407 in the recording: sent as is, it is refused again, as
   * recorded) or `missing`.
   */
  state: 'provided' | 'acknowledged' | 'rejected' | 'missing';
}

/** Answers that say "this credential is not accepted". */
const REFUSED = new Set([401, 403, 407]);

export interface ReplayRulesInput {
  transforms: TransformsFile;
  tokens: TokensFile;
}

/**
 * Placeholders the replay of these inbound exchanges (in replay order) would send as they are:
 * the token engine runs over the recording with every extracted answer value standing in for a
 * live one, so a placeholder that a recorded token flow replaces is not a need.
 */
export function secretNeeds(
  inbound: Exchange[],
  rules: ReplayRulesInput,
  provided: Secrets = new Map(),
): SecretNeed[] {
  const ctx = createReplayContext(
    { transforms: rules.transforms, tokens: rules.tokens },
    {
      simulateLive: (_rule, recorded) =>
        PLACEHOLDER.test(recorded) ? `live-${recorded.slice(9)}` : recorded,
    },
  );
  const needs = new Map<string, SecretNeed>();
  const accepted = new Set<string>();
  for (const ex of inbound) {
    let prepared: Exchange['request'];
    try {
      prepared = ctx.prepareRequest(ex).request;
    } catch {
      prepared = ex.request;
    }
    for (const { placeholder, where } of placeholdersIn(
      prepared.target,
      prepared.headers,
      prepared.body.decoded ?? prepared.body.data,
    )) {
      let n = needs.get(placeholder);
      if (!n) {
        const given = provided.get(placeholder);
        n = {
          placeholder,
          uses: [],
          count: 0,
          state: given === undefined ? 'missing' : given === null ? 'acknowledged' : 'provided',
        };
        needs.set(placeholder, n);
      }
      n.count++;
      if (n.uses.length < 20)
        n.uses.push({
          exchange: ex.id,
          route: `${ex.request.method} ${routeTemplate(ex.request.target)}`,
          where,
        });
      if (!REFUSED.has(ex.response?.status ?? 0)) accepted.add(placeholder);
    }
    if (ex.response) {
      try {
        ctx.observeResponse(ex, {
          status: ex.response.status,
          headers: ex.response.headers,
          body: ex.response.body.decoded ?? ex.response.body.data,
        });
      } catch {
        // a rule that cannot run here fails the same way at replay, where it is reported
      }
    }
  }
  for (const n of needs.values())
    if (n.state === 'missing' && !accepted.has(n.placeholder)) n.state = 'rejected';
  return [...needs.values()];
}

/** Where placeholders sit in a request, named like tokens.yaml places. */
export function placeholdersIn(
  target: string,
  headers: HeaderList,
  body: Uint8Array,
): Array<{ placeholder: string; where: string }> {
  const out: Array<{ placeholder: string; where: string }> = [];
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  path.split('/').forEach((seg, i) => {
    for (const m of seg.matchAll(PLACEHOLDER_IN_TEXT))
      out.push({ placeholder: m[0], where: `path:${i - 1}` });
  });
  if (q !== -1) {
    for (const pair of target.slice(q + 1).split('&')) {
      const eq = pair.indexOf('=');
      for (const m of pair.matchAll(PLACEHOLDER_IN_TEXT))
        out.push({ placeholder: m[0], where: `query:${eq === -1 ? pair : pair.slice(0, eq)}` });
    }
  }
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower === 'cookie') {
      for (const part of value.split(';')) {
        const eq = part.indexOf('=');
        for (const m of part.matchAll(PLACEHOLDER_IN_TEXT))
          out.push({ placeholder: m[0], where: `cookie:${part.slice(0, eq).trim()}` });
      }
      continue;
    }
    for (const m of value.matchAll(PLACEHOLDER_IN_TEXT))
      out.push({ placeholder: m[0], where: `header:${lower}` });
  }
  if (body.length > 0) {
    const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
    const type = (headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? '').toLowerCase();
    if (type.includes('x-www-form-urlencoded')) {
      for (const pair of text.split('&')) {
        const eq = pair.indexOf('=');
        for (const m of pair.matchAll(PLACEHOLDER_IN_TEXT))
          out.push({
            placeholder: m[0],
            where: `form:${decodeURIComponentSafe(eq === -1 ? pair : pair.slice(0, eq))}`,
          });
      }
    } else {
      // JSON: name the field the placeholder is the value of, when it is one
      for (const m of text.matchAll(/"((?:[^"\\]|\\.)*)"\s*:\s*"(REDACTED-[0-9a-f]{16})"/g))
        out.push({ placeholder: m[2]!, where: `jsonpath:$..${m[1]}` });
      const named = new Set(out.filter((o) => o.where.startsWith('jsonpath:')).map((o) => o.placeholder));
      for (const m of text.matchAll(PLACEHOLDER_IN_TEXT))
        if (!named.has(m[0])) out.push({ placeholder: m[0], where: 'body' });
    }
  }
  return out;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** The replay cannot start: placeholders without a value, where they are used and by which requests. */
export function missingSecretsError(needs: SecretNeed[], snapshot: string): RetapError | undefined {
  const missing = needs.filter((n) => n.state === 'missing');
  if (missing.length === 0) return undefined;
  const lines = missing.slice(0, 10).map((n) => {
    const places = [...new Set(n.uses.map((u) => u.where))].join(', ');
    const reqs = n.uses
      .slice(0, 3)
      .map((u) => `${u.exchange} (${u.route})`)
      .join(', ');
    return `  ${n.placeholder} at ${places} in ${n.count} request(s): ${reqs}${n.count > 3 ? ', …' : ''}`;
  });
  if (missing.length > 10) lines.push(`  … and ${missing.length - 10} more`);
  return new RetapError(
    ErrorCodes.SECRET_MISSING,
    `the replay needs ${missing.length} redacted credential(s) that no recorded answer hands out and no secret provides — sending the placeholders would not reproduce the recording:\n${lines.join('\n')}`,
    {
      hint: `Give their values in a secrets file (--secrets FILE, or replay.secrets in retap.yaml: one \`REDACTED-…: value\` line each) or as ${SECRET_ENV_PREFIX}<16 hex>=value; \`retap snapshot secrets ${snapshot}\` lists them and \`--lookup\` tells which placeholder a value you know has. A value of null sends the placeholder as recorded.`,
      details: {
        missing: missing.map((n) => ({ placeholder: n.placeholder, count: n.count, uses: n.uses })),
      },
    },
  );
}

/** A request with placeholders replaced by their values, each encoded for where it stands. */
export function restoreRequest<R extends { target: string; headers: HeaderList; body: Uint8Array }>(
  req: R,
  secrets: Secrets,
): R {
  if (secrets.size === 0) return req;
  const value = (ph: string): string | undefined => {
    const v = secrets.get(ph);
    return v === null ? undefined : v;
  };
  const sub = (text: string, encode: (v: string) => string): string =>
    text.includes('REDACTED-')
      ? text.replace(PLACEHOLDER_IN_TEXT, (ph) => {
          const v = value(ph);
          return v === undefined ? ph : encode(v);
        })
      : text;
  const target = sub(req.target, encodeURIComponent);
  let changedHeaders = false;
  const headers: HeaderList = req.headers.map(([n, v]) => {
    const next = sub(v, (x) => x);
    if (next !== v) changedHeaders = true;
    return [n, next];
  });
  let body = req.body;
  if (body.length > 0) {
    const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
    if (text.includes('REDACTED-')) {
      const type = (headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? '').toLowerCase();
      const json = type.includes('json') || /^\s*[[{]/.test(text);
      const form = type.includes('x-www-form-urlencoded');
      const next = sub(text, (v) =>
        json ? JSON.stringify(v).slice(1, -1) : form ? encodeURIComponent(v).replace(/%20/g, '+') : v,
      );
      if (next !== text) body = new Uint8Array(Buffer.from(next, 'utf8'));
    }
  }
  if (target === req.target && !changedHeaders && body === req.body) return req;
  return { ...req, target, headers, body };
}
