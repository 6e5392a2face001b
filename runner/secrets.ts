/**
 * Credentials at replay, both ways:
 * - in: static client credentials that redaction replaced come back from the user's secrets
 *   (snapshots/secrets.ts), checked before anything is sent, handed to the worker through its
 *   stdin (never a file), put into each request just before it goes out;
 * - out: what the replay learned and wrote (the worker's answers, captured exchanges, mock misses,
 *   messages) is redacted like a snapshot before it is written: a restored secret goes back to
 *   its placeholder, a token the build handed out gets the placeholder of the recorded token it
 *   replaced, any other credential its own placeholder.
 */
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import type { Exchange, HeaderList } from '../core/exchange.js';
import { headerValue } from '../core/exchange.js';
import type { ClientView, ReplayRun, RunItem } from '../core/results.js';
import {
  createRedactor,
  createReplayContext,
  type LiveResponse,
  loadSecrets,
  missingSecretsError,
  PLACEHOLDER,
  type RedactionRules,
  type Redactor,
  type SecretNeed,
  type Secrets,
  secretNeeds,
  unguessable,
} from '../snapshots/replay.js';
import type { ReplayRules } from './rules.js';
import type { WorkerItem, WorkerOutput } from './spec.js';

export { restoreRequest } from '../snapshots/replay.js';

/**
 * The secrets a replay of these inbound exchanges needs, from the file and the environment;
 * throws RETAP_SECRET_MISSING (naming each placeholder, its places and requests) when one lacks a
 * value. Returns only the values the replay uses.
 */
export async function secretsForReplay(
  inbound: Exchange[],
  rules: ReplayRules,
  opts: { file?: string | undefined; snapshot: string; env?: NodeJS.ProcessEnv },
): Promise<{ secrets: Secrets; needs: SecretNeed[] }> {
  const given = await loadSecrets({ file: opts.file, ...(opts.env ? { env: opts.env } : {}) });
  const needs = secretNeeds(inbound, rules, given);
  const err = missingSecretsError(needs, opts.snapshot);
  if (err) throw err;
  const secrets: Secrets = new Map();
  for (const n of needs) if (n.state === 'provided') secrets.set(n.placeholder, given.get(n.placeholder)!);
  return { secrets, needs };
}

/** Environment without RETAP_SECRET_* (the worker gets the values on stdin, the build never). */
export function withoutSecretEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!/^RETAP_SECRET_/i.test(k)) out[k] = v;
  return out;
}

export function encodeSecrets(secrets: Secrets): string {
  return JSON.stringify(Object.fromEntries([...secrets].filter(([, v]) => v !== null)));
}

/** Worker side: the secrets the orchestrator wrote on stdin (JSON), read to the end. */
export async function readSecretsFrom(stream: NodeJS.ReadableStream): Promise<Secrets> {
  let text = '';
  for await (const chunk of stream as AsyncIterable<Buffer | string>) text += chunk.toString();
  const out: Secrets = new Map();
  if (text.trim() === '') return out;
  for (const [k, v] of Object.entries(JSON.parse(text) as Record<string, string>))
    if (PLACEHOLDER.test(k)) out.set(k, v);
  return out;
}

/**
 * Live value → recorded placeholder for every token the build handed out in place of a recorded
 * (redacted) one: the token engine's extractors read both answers, as during the replay.
 */
export function liveTokenPairs(
  rules: ReplayRules,
  answers: Array<{ recorded: Exchange; live?: LiveResponse | undefined }>,
): Array<[string, string]> {
  const ctx = createReplayContext({ transforms: rules.transforms, tokens: rules.tokens });
  const out: Array<[string, string]> = [];
  for (const a of answers) {
    if (!a.live) continue;
    try {
      for (const l of ctx.observeResponse(a.recorded, a.live).learned) {
        if (
          l.recorded !== undefined &&
          l.live !== undefined &&
          PLACEHOLDER.test(l.recorded) &&
          unguessable(l.live)
        ) {
          out.push([l.live, l.recorded]);
        }
      }
    } catch {
      // a rule failing on this answer failed during the replay too, where it was reported
    }
  }
  return out;
}

const EMPTY = new Uint8Array(0);
/** Environment variables of the build whose values are credentials by name. */
const SECRET_ENV_NAME = /secret|token|passw|api_?key|credential|private_?key|auth/i;

function decoded(headers: HeaderList, body: Uint8Array): Uint8Array | undefined {
  const enc = headerValue(headers, 'content-encoding')?.trim().toLowerCase();
  if (!enc || enc === 'identity' || body.length === 0) return undefined;
  try {
    const opts = { maxOutputLength: 64 << 20 };
    if (enc === 'gzip' || enc === 'x-gzip') return new Uint8Array(gunzipSync(body, opts));
    if (enc === 'deflate') return new Uint8Array(inflateSync(body, opts));
    if (enc === 'br') return new Uint8Array(brotliDecompressSync(body, opts));
  } catch {
    // undecodable: only its bytes can be looked at
  }
  return undefined;
}

/** What the client sent and saw, as an exchange the redactor can walk. */
function clientExchange(c: {
  method: string;
  target: string;
  headers: HeaderList;
  body?: Uint8Array | undefined;
  status?: number | undefined;
  responseHeaders?: HeaderList | undefined;
  responseBody?: Uint8Array | undefined;
  responseTrailers?: HeaderList | undefined;
}): Exchange {
  const reqBody = c.body ?? EMPTY;
  const ex: Exchange = {
    id: 'client',
    protocol: 'http1',
    direction: 'inbound',
    tls: false,
    service: { addr: '', port: 0 },
    peer: { addr: '', port: 0 },
    connection: { id: 'client', order: 0 },
    request: {
      method: c.method,
      target: c.target,
      version: 'HTTP/1.1',
      headers: c.headers,
      body: { data: reqBody, size: reqBody.length, truncated: false },
    },
    timing: { startUs: 0, requestEndNs: 0 },
  };
  if (c.status !== undefined || c.responseBody !== undefined) {
    const headers = c.responseHeaders ?? [];
    const data = c.responseBody ?? EMPTY;
    const body: Exchange['request']['body'] = { data, size: data.length, truncated: false };
    const d = decoded(headers, data);
    if (d) body.decoded = d;
    ex.response = { status: c.status ?? 0, version: 'HTTP/1.1', headers, body };
    if (c.responseTrailers) ex.response.trailers = c.responseTrailers;
  }
  return ex;
}

function redactClient(r: Redactor, c: ClientView): ClientView {
  const ex = r.apply(clientExchange(c));
  const out: ClientView = { ...c, target: ex.request.target, headers: ex.request.headers };
  if (c.body !== undefined) out.body = ex.request.body.data;
  if (ex.response && c.responseHeaders !== undefined) out.responseHeaders = ex.response.headers;
  if (ex.response && c.responseBody !== undefined) out.responseBody = ex.response.body.data;
  if (ex.response?.trailers && c.responseTrailers !== undefined) out.responseTrailers = ex.response.trailers;
  if (c.error !== undefined) out.error = r.redactText(c.error, 'message');
  return out;
}

const b64 = (s: string | undefined): Uint8Array | undefined =>
  s === undefined ? undefined : new Uint8Array(Buffer.from(s, 'base64'));
const unb64 = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

function seed(r: Redactor, secrets: Secrets, pairs: Array<[string, string]>): void {
  for (const [ph, v] of secrets) if (v !== null) r.assign(v, ph);
  for (const [live, ph] of pairs) r.assign(live, ph);
}

/** The worker's output, redacted before it is written (its file lives in the run's temp folder). */
export function redactWorkerOutput(
  out: WorkerOutput,
  o: {
    enabled: boolean;
    secrets: Secrets;
    rules: ReplayRules;
    recorded: Map<string, Exchange>;
    key?: string | undefined;
    config?: RedactionRules | undefined;
  },
): void {
  if (!o.enabled) return;
  const r = createRedactor({ ...o.config, ...(o.key ? { key: o.key } : {}) });
  const views = out.items.map((w) => ({
    w,
    c: { ...w, body: b64(w.body), responseBody: b64(w.responseBody) },
  }));
  const answers = views.map(({ w, c }) => ({
    recorded: o.recorded.get(w.id)!,
    live:
      c.status !== undefined
        ? {
            status: c.status,
            headers: c.responseHeaders ?? [],
            body: clientExchange(c).response?.body.decoded ?? c.responseBody ?? EMPTY,
          }
        : undefined,
  }));
  seed(
    r,
    o.secrets,
    liveTokenPairs(
      o.rules,
      answers.filter((a) => a.recorded),
    ),
  );
  for (const { c } of views) r.learn(clientExchange(c));
  out.items = views.map(({ w, c }): WorkerItem => {
    const red = redactClient(r, { ...c, durationMs: w.durationMs } as ClientView);
    const item: WorkerItem = { ...w, target: red.target, headers: red.headers };
    if (w.body !== undefined) item.body = unb64(red.body);
    if (w.responseHeaders !== undefined && red.responseHeaders) item.responseHeaders = red.responseHeaders;
    if (w.responseBody !== undefined) item.responseBody = unb64(red.responseBody);
    if (w.responseTrailers !== undefined && red.responseTrailers) item.responseTrailers = red.responseTrailers;
    if (w.error !== undefined && red.error !== undefined) item.error = red.error;
    return item;
  });
  texts(r, out);
}

/** Messages and logs: whatever secret value they mention. */
function texts(r: Redactor, out: WorkerOutput | ReplayRun): void {
  out.warnings = out.warnings.map((w) => ({ ...w, message: r.redactText(w.message, 'message') }));
  out.mocks = {
    ...out.mocks,
    misses: out.mocks.misses.map((m) => ({
      ...m,
      target: r.redactText(m.target, 'mock.target'),
      reason: r.redactText(m.reason, 'message'),
      ...(m.closest !== undefined ? { closest: r.redactText(m.closest, 'message') } : {}),
    })),
  };
  if (out.error) out.error = { ...out.error, message: r.redactText(out.error.message, 'message') };
  if ('buildLog' in out) out.buildLog = r.redactText(out.buildLog, 'message');
}

/**
 * Runs redacted in place before results.json is written: captured answers and calls, the
 * client's views, misses, warnings and the build's environment values.
 */
export function redactRuns(
  runs: ReplayRun[],
  o: {
    enabled: boolean;
    secrets: Secrets;
    rules: ReplayRules;
    recorded: Map<string, Exchange>;
    config?: RedactionRules | undefined;
  },
): void {
  if (!o.enabled) return;
  const r = createRedactor(o.config ?? undefined);
  const pairs: Array<[string, string]> = [];
  for (const run of runs) {
    const answers = run.items.map((it: RunItem) => {
      const live = it.live?.response;
      return {
        recorded: o.recorded.get(it.id)!,
        live: live
          ? { status: live.status, headers: live.headers, body: live.body.decoded ?? live.body.data }
          : undefined,
      };
    });
    pairs.push(
      ...liveTokenPairs(
        o.rules,
        answers.filter((a) => a.recorded),
      ),
    );
  }
  seed(r, o.secrets, pairs);
  for (const run of runs) {
    for (const it of run.items) {
      if (it.live) r.learn(it.live);
      for (const e of it.outbound) r.learn(e);
      r.learn(clientExchange(it.client));
    }
  }
  for (const run of runs) {
    run.items = run.items.map((it) => {
      const next: RunItem = {
        ...it,
        client: redactClient(r, it.client),
        outbound: it.outbound.map((e) => r.apply(e)),
      };
      if (it.live) next.live = r.apply(it.live);
      return next;
    });
    texts(r, run);
    if (run.build.env) {
      const env = Object.entries(run.build.env).map(([k, v]): [string, string] => [
        k,
        SECRET_ENV_NAME.test(k) && v !== '' ? r.placeholderOf(v) : r.redactText(v, 'build.env'),
      ]);
      run.build = { ...run.build, env: Object.fromEntries(env) };
    }
  }
}
