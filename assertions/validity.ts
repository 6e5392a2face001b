/**
 * Replay validity: before the candidate is judged, did the reference build reproduce the
 * recording? The reference is the baseline when one ran (same code as recorded, so whatever it
 * fails to reproduce is the environment's doing), else the candidate itself.
 *
 * Per route, over every run of the reference:
 *   - the share of answers in another status class than recorded (no answer at all — transport
 *     error, timeout — counts as another class), and
 *   - the share of recorded outbound calls that were made and answered by a mock (recorded calls
 *     per item compared with the reference's captured calls by signature, less the calls the mocks
 *     could not serve).
 * A route past either threshold was not reproduced; the verdict is then `error`. Each such route
 * gets the likely causes with the evidence behind them (a credential not carried, a dependency
 * that cannot be mocked, connection reuse, an unreachable build…).
 */
import type { Exchange } from '../core/exchange.js';
import type { MockMiss, RecordedItem, ReplayRun, RunItem, RunWarning } from '../core/results.js';
import type { TokenHint, ValidityConfig } from './config.js';
import { callSignature } from './outbound.js';
import type { CauseFinding, RouteValidity, Validity, ValidityCause } from './types.js';

/** One reference answer to one recorded request. */
interface Observation {
  rec: RecordedItem;
  run: ReplayRun;
  item: RunItem | undefined;
  recordedStatus: number;
  status?: number;
  error?: string;
  changed: boolean;
  recordedCalls: number;
  callsMade: number;
  misses: MockMiss[];
}

/** Share of the reference's requests without any answer past which the build counts as unreachable. */
const UNREACHABLE = 0.95;

const classOf = (s: number): number => Math.floor(s / 100);

const answerOf = (item: RunItem | undefined): { status?: number; error?: string } => {
  if (!item) return { error: 'not replayed' };
  const r = item.live?.response;
  if (r) return { status: r.status };
  if (item.client.error !== undefined || item.client.status === undefined)
    return { error: item.client.error ?? 'no response' };
  return { status: item.client.status };
};

/** Recorded calls that were made (same signature) and not left unanswered by the mocks. */
function callsMade(recorded: Exchange[], made: Exchange[], misses: number): number {
  const want = new Map<string, number>();
  for (const ex of recorded) want.set(callSignature(ex), (want.get(callSignature(ex)) ?? 0) + 1);
  let matched = 0;
  for (const ex of made) {
    const sig = callSignature(ex);
    const n = want.get(sig) ?? 0;
    if (n > 0) {
      want.set(sig, n - 1);
      matched++;
    }
  }
  return Math.max(0, Math.min(matched, made.length - misses));
}

/** `recorded call ID cannot be mocked: REASON` (runner/worker.ts), or the structured field. */
function skippedCall(w: RunWarning): { call: string; reason: string } | undefined {
  if (w.code !== 'mock-skipped') return undefined;
  if (w.call) return { call: w.call, reason: w.message.replace(/^.*cannot be mocked: /, '') };
  const m = /^recorded call (\S+) cannot be mocked: (.*)$/.exec(w.message);
  return m ? { call: m[1] as string, reason: m[2] as string } : undefined;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const pct = (x: number): string => `${Math.round(x * 100)}%`;
const shortStatus = (o: Observation): string =>
  o.status !== undefined ? String(o.status) : (o.error ?? '?');

function countBy<T>(xs: T[], key: (x: T) => string): Array<[string, number]> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
  return [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

const tally = (xs: Array<[string, number]>, max = 4): string =>
  xs
    .slice(0, max)
    .map(([k, n]) => `${k} ×${n}`)
    .join(', ') + (xs.length > max ? `, … (${xs.length - max} more)` : '');

/** `localhost:39177` → `localhost`, as call signatures name hosts (mocks listen elsewhere). */
const hostName = (h: string): string => h.replace(/:\d+$/, '');

const PLACEHOLDER = /REDACTED-[0-9a-f]{8,}/;

/** The credentials a request presents, described without their values. */
function credentialsOf(item: RunItem | undefined, rec: RecordedItem): string[] {
  const headers = item?.client.headers?.length ? item.client.headers : rec.exchange.request.headers;
  const mark = (v: string): string => (PLACEHOLDER.test(v) ? ' (a redaction placeholder)' : '');
  const out: string[] = [];
  for (const [name, v] of headers) {
    const n = name.toLowerCase();
    if (n === 'authorization' || n === 'proxy-authorization') {
      const scheme = /^(\S+)\s/.exec(v)?.[1];
      out.push(`${name}: ${scheme ? `${scheme} …` : '…'}${mark(v)}`);
    } else if (n === 'cookie') out.push(`Cookie: …${mark(v)}`);
    else if (/(token|api[-_]?key|session|auth|signature|proof|secret|csrf|xsrf)/.test(n))
      out.push(`${name}: …${mark(v)}`);
  }
  return out;
}

/** Where the recorded request carried a redaction placeholder besides its headers. */
function placeholderInRequest(rec: RecordedItem): string | undefined {
  if (PLACEHOLDER.test(rec.exchange.request.target)) return 'its target';
  const b = rec.exchange.request.body;
  try {
    if (PLACEHOLDER.test(new TextDecoder().decode(b.decoded ?? b.data))) return 'its body';
  } catch {
    /* not text */
  }
  return undefined;
}

/** Token kinds that are not credentials (created ids carried into paths). */
const NOT_CREDENTIALS = new Set(['id']);

/** The driver connection a request went out on (results written by a replay that records it). */
interface SocketUse {
  port: number;
  openedUs: number;
  seq: number;
}
const socketOf = (i: RunItem | undefined): SocketUse | undefined =>
  (i?.client as { socket?: SocketUse } | undefined)?.socket;

interface Context {
  recorded: RecordedItem[];
  byId: Map<string, RecordedItem>;
  bySession: Map<string, RecordedItem[]>;
  tokenOrigins: Map<string, TokenHint[]>;
  skipped: Map<string, { call: string; reason: string; item: RecordedItem }[]>;
  noBaseline: boolean;
  /** Every observation of the reference, all routes. */
  all: Observation[];
}

function earlierInSession(ctx: Context, rec: RecordedItem): RecordedItem[] {
  const list = ctx.bySession.get(rec.session) ?? [];
  const i = list.indexOf(rec);
  return i > 0 ? list.slice(0, i) : [];
}

/** The values of the templated segments of a target (`/notes/{id}` + `/notes/ab12` → `ab12`). */
function idSegments(route: string, target: string): string[] {
  const tpl = (route.split(' ')[1] ?? '').split('/');
  const path = (target.split('?')[0] ?? '').split('/');
  const out: string[] = [];
  tpl.forEach((seg, i) => {
    const v = path[i];
    if (/^\{.*\}$/.test(seg) && v) out.push(decodeURIComponent(v));
  });
  return out;
}

const bodyText = (ex: Exchange): string => {
  const b = ex.response?.body;
  if (!b) return '';
  try {
    return new TextDecoder().decode(b.decoded ?? b.data);
  } catch {
    return '';
  }
};

function diagnose(route: string, obs: Observation[], ctx: Context, unreachable: boolean): CauseFinding[] {
  const causes: CauseFinding[] = [];
  const changed = obs.filter((o) => o.changed);
  const add = (cause: ValidityCause, summary: string, evidence: string[]): void => {
    causes.push({ cause, summary, evidence: evidence.filter(Boolean).slice(0, 6) });
  };
  const explained = new Set<Observation>();

  if (unreachable) {
    const errs = countBy(
      obs.filter((o) => o.error !== undefined),
      (o) => o.error as string,
    );
    add('unreachable', 'the build is not reachable: every request of the replay failed', [
      `${plural(obs.length, 'request')} on this route: ${tally(errs)}`,
      'check the build command, its port (--port) and that it listens on 0.0.0.0 or 127.0.0.1 inside the namespace',
    ]);
    return causes;
  }

  // a dependency that cannot be mocked: misses, unmockable recorded calls
  const missed = obs.flatMap((o) => o.misses);
  const skipped = [...new Set(obs.map((o) => o.rec))].flatMap((r) => ctx.skipped.get(r.id) ?? []);
  if (missed.length > 0 || skipped.length > 0) {
    const evidence: string[] = [];
    if (missed.length > 0) {
      evidence.push(
        `${plural(missed.length, 'call')} the mocks could not answer: ${tally(
          countBy(missed, (m) => `${m.method} ${hostName(m.host)} ${m.target.split('?')[0]}`),
          3,
        )}`,
      );
      const m = missed[0] as MockMiss;
      evidence.push(
        `e.g. ${m.method} ${hostName(m.host)} ${m.target}: ${m.reason}${m.closest ? ` (closest recording: ${m.closest})` : ''}`,
      );
    }
    if (skipped.length > 0) {
      const s = skipped[0] as { call: string; reason: string; item: RecordedItem };
      const ex = s.item.outbound.find((o) => o.id === s.call);
      evidence.push(
        `${plural(skipped.length, 'recorded call')} of this route cannot be mocked (runner warning mock-skipped): ${ex ? `${callSignature(ex)}: ` : `${s.call}: `}${s.reason}`,
      );
    }
    const hurt = changed.filter((o) => o.misses.length > 0 || (ctx.skipped.get(o.rec.id)?.length ?? 0) > 0);
    for (const o of hurt) explained.add(o);
    if (hurt.length > 0)
      evidence.push(
        `${plural(hurt.length, 'answer')} changed status where this happened: ${tally(countBy(hurt, shortStatus))}`,
      );
    add(
      'dependency',
      'a dependency that cannot be mocked: the build called it and got no recorded answer',
      evidence,
    );
  }

  // a credential not carried: refused after a credential exchange
  const refused = changed.filter(
    (o) => (o.status === 401 || o.status === 403) && o.recordedStatus !== 401 && o.recordedStatus !== 403,
  );
  if (refused.length > 0) {
    const evidence = [
      `${plural(refused.length, 'answer')} ${tally(countBy(refused, (o) => String(o.status)))} where the recording had ${tally(countBy(refused, (o) => String(o.recordedStatus)))}`,
    ];
    const first = refused[0] as Observation;
    const req = `${first.rec.exchange.request.method} ${first.rec.exchange.request.target}`;
    const creds = credentialsOf(first.item, first.rec);
    const inRequest = placeholderInRequest(first.rec);
    if (creds.length > 0) evidence.push(`they present credentials, e.g. ${req} sends ${creds.join(', ')}`);
    const credentialToken = (r: RecordedItem): TokenHint | undefined =>
      [...(ctx.tokenOrigins.get(r.exchange.id) ?? []), ...(ctx.tokenOrigins.get(r.id) ?? [])].find(
        (t) => !NOT_CREDENTIALS.has(t.kind ?? ''),
      );
    const issuer = earlierInSession(ctx, first.rec).find((r) => credentialToken(r) !== undefined);
    // other requests of the same sessions answered as recorded: the session itself was carried
    const sessions = new Set(refused.map((o) => `${o.run.label}\t${o.rec.session}`));
    const carried = ctx.all.filter(
      (o) =>
        !o.changed &&
        o.rec.route !== route &&
        sessions.has(`${o.run.label}\t${o.rec.session}`) &&
        credentialsOf(o.item, o.rec).length > 0,
    );
    if (inRequest)
      evidence.push(
        `${req} carried a redaction placeholder in ${inRequest} where the client sent a secret (a password, a key): give its value at replay with --secrets FILE`,
      );
    else if (carried.length === 0 && !issuer && creds.some((c) => c.includes('placeholder')))
      evidence.push(
        'the request carried a redaction placeholder instead of the credential: give the value with --secrets FILE',
      );
    if (issuer) {
      const t = credentialToken(issuer) as TokenHint;
      evidence.push(
        `the session's credential is handed out by ${issuer.route} (token ${t.id}${t.kind ? `, ${t.kind}` : ''}, at ${t.origin?.where ?? '?'})`,
      );
    }
    const names = (o: Observation): string[] =>
      credentialsOf(o.item, o.rec).map((c) => c.slice(0, c.indexOf(':')).toLowerCase());
    const carriedNames = new Set(carried.flatMap(names));
    const extra = [...new Set(refused.flatMap(names))].filter((n) => !carriedNames.has(n));
    if (carried.length > 0) {
      const c = carried[0] as Observation;
      const was = `${plural(carried.length, 'other request')} of the same sessions presenting ${[...carriedNames].join(', ')} answered as recorded (e.g. ${c.rec.route} → ${c.status})`;
      evidence.push(
        extra.length > 0
          ? `the session itself was carried: ${was}; these requests also present ${extra.join(', ')}, which the client derives (a signature or proof over the request or the session) and no answer hands out: retap cannot recompute it`
          : `the same credentials were accepted elsewhere: ${was}; the refusal is specific to this route (a permission or scope that differs at replay)`,
      );
    } else if (issuer) {
      evidence.push(
        'later requests of those sessions did not carry the live value (check tokens.yaml and the transform rules)',
      );
    } else if (creds.length > 0 && !inRequest) {
      evidence.push(
        'no token chain from an earlier answer was discovered for it (tokens.yaml): if the client held this credential before the recording, give its value at replay with --secrets FILE; if it is derived (a signature, a hash of the session), retap cannot recompute it',
      );
    }
    for (const o of refused) explained.add(o);
    add(
      'credential',
      'a credential not carried: requests are refused (401/403) after a credential exchange',
      evidence,
    );
  }

  // connection reuse: a body left unread is read as the next request on the same connection
  const framing = changed.filter(
    (o) =>
      (o.status === 400 || o.status === 501 || o.status === 505 || o.status === 408) && !explained.has(o),
  );
  const before = (o: Observation): { prev: RecordedItem; bytes: number; sameSocket: boolean } | undefined => {
    const sock = socketOf(o.item);
    if (sock && sock.seq > 0) {
      const prevItem = o.run.items.find((i) => {
        const s = socketOf(i);
        return s?.port === sock.port && s.openedUs === sock.openedUs && s.seq === sock.seq - 1;
      });
      const prev = prevItem && ctx.byId.get(prevItem.id);
      if (prevItem && prev) {
        const bytes = prevItem.client.body?.length ?? prev.exchange.request.body.size;
        return bytes > 0 ? { prev, bytes, sameSocket: true } : undefined;
      }
    }
    if (sock) return undefined; // first request on its connection: nothing was left on it
    const prev = earlierInSession(ctx, o.rec)
      .reverse()
      .find((r) => r.exchange.request.body.size > 0);
    return prev ? { prev, bytes: prev.exchange.request.body.size, sameSocket: false } : undefined;
  };
  const afterBody = framing.filter((o) => before(o) !== undefined);
  if (afterBody.length > 0) {
    const o = afterBody[0] as Observation;
    const { prev, bytes, sameSocket } = before(o) as {
      prev: RecordedItem;
      bytes: number;
      sameSocket: boolean;
    };
    const recordedApart = prev.exchange.connection.id !== o.rec.exchange.connection.id;
    const mode = (o.run as { connections?: { mode?: string } }).connections?.mode;
    add('connection', 'connection reuse: a request body the build left unread was read as the next request', [
      `${plural(afterBody.length, 'answer')} ${tally(countBy(afterBody, (x) => String(x.status)))} where the recording had ${tally(countBy(afterBody, (x) => String(x.recordedStatus)))}, each after a request with a body ${sameSocket ? 'on the same connection' : 'in the same session'}`,
      `e.g. ${prev.exchange.request.method} ${prev.exchange.request.target} (${bytes} bytes), then ${o.rec.exchange.request.method} ${o.rec.exchange.request.target} → ${o.status}`,
      recordedApart
        ? `the recording sent these on separate connections${mode === 'pooled' ? ': this replay pooled them (--connections pooled); replay with --connections recorded, the default' : ': replay with --connections recorded (the default), not pooled'}`
        : 'the recording sent these on one connection too: the build now reads a body it used to leave, or the other way round',
    ]);
    for (const x of afterBody) explained.add(x);
  }

  // a created id not carried: 404 on a path naming an id an earlier answer handed out
  const notFound = changed.filter((o) => (o.status === 404 || o.status === 410) && !explained.has(o));
  if (notFound.length > 0) {
    const withOrigin = notFound.filter((o) => {
      const ids = idSegments(o.rec.route, o.rec.exchange.request.target);
      return (
        ids.length > 0 &&
        earlierInSession(ctx, o.rec).some((r) => ids.some((id) => bodyText(r.exchange).includes(id)))
      );
    });
    if (withOrigin.length > 0) {
      const o = withOrigin[0] as Observation;
      add(
        'created-id',
        'a created id not carried: requests name an id an earlier answer created, and the build does not know it',
        [
          `${plural(withOrigin.length, 'answer')} 404/410 where the recording had ${tally(countBy(withOrigin, (x) => String(x.recordedStatus)))}`,
          `e.g. ${o.rec.exchange.request.method} ${o.rec.exchange.request.target}: its id comes from an earlier answer of the same session`,
          'check tokens.yaml (retap snapshot tokens) and the transform rules that carry ids into later paths',
        ],
      );
      for (const x of withOrigin) explained.add(x);
    }
  }

  // no answer at all
  const silent = changed.filter((o) => o.error !== undefined && !explained.has(o));
  if (silent.length > 0) {
    add('no-answer', 'requests got no answer (transport error or timeout)', [
      `${plural(silent.length, 'request')}: ${tally(countBy(silent, (o) => o.error as string))}`,
    ]);
    for (const x of silent) explained.add(x);
  }

  // server errors not explained by a dependency
  const failing = changed.filter((o) => (o.status ?? 0) >= 500 && !explained.has(o));
  if (failing.length > 0) {
    add('server-error', 'the build answers with server errors', [
      `${plural(failing.length, 'answer')} ${tally(countBy(failing, (o) => String(o.status)))} where the recording had ${tally(countBy(failing, (o) => String(o.recordedStatus)))}; no mock miss while they were answered`,
    ]);
    for (const x of failing) explained.add(x);
  }

  const rest = changed.filter((o) => !explained.has(o));
  if (rest.length > 0) {
    add('status', 'answers changed status class', [
      `${plural(rest.length, 'answer')}: ${tally(countBy(rest, (o) => `${o.recordedStatus} → ${shortStatus(o)}`))}`,
    ]);
  }

  // recorded calls not made where the answer kept its status and no miss shows why
  const kept = obs.filter((o) => !o.changed);
  const recordedCalls = kept.reduce((s, o) => s + o.recordedCalls, 0);
  const made = kept.reduce((s, o) => s + o.callsMade, 0);
  if (recordedCalls > made && missed.length === 0 && skipped.length === 0) {
    const want = new Map<string, { recorded: number; made: number }>();
    for (const o of kept) {
      for (const ex of o.rec.outbound) {
        const e = want.get(callSignature(ex)) ?? { recorded: 0, made: 0 };
        e.recorded++;
        want.set(callSignature(ex), e);
      }
      for (const ex of o.item?.outbound ?? []) {
        const e = want.get(callSignature(ex));
        if (e) e.made++;
      }
    }
    const short = [...want.entries()]
      .filter(([, v]) => v.made < v.recorded)
      .map(([k, v]) => `${k} (recorded ${v.recorded}, made ${Math.min(v.made, v.recorded)})`);
    add('calls-not-made', 'recorded dependency calls were not made', [
      `${recordedCalls - made} of ${recordedCalls} recorded calls missing where the answer kept its status: ${short.slice(0, 3).join('; ')}`,
      'the build may not be configured to reach this dependency at replay (its environment), or it stopped calling it',
    ]);
  }
  return causes;
}

export interface ValidityInput {
  recorded: RecordedItem[];
  baselines: ReplayRun[];
  candidates: ReplayRun[];
  tokens: TokenHint[];
  config: ValidityConfig;
}

export function checkValidity(input: ValidityInput): Validity {
  const { recorded, config } = input;
  const reference = input.baselines.length > 0 ? 'baseline' : 'candidate';
  const runs = reference === 'baseline' ? input.baselines : input.candidates;
  const bySession = new Map<string, RecordedItem[]>();
  for (const r of recorded) {
    const list = bySession.get(r.session) ?? [];
    list.push(r);
    bySession.set(r.session, list);
  }
  const tokenOrigins = new Map<string, TokenHint[]>();
  for (const t of input.tokens) {
    const ex = t.origin?.exchange;
    if (!ex || t.origin?.in === 'request') continue;
    const list = tokenOrigins.get(ex) ?? [];
    list.push(t);
    tokenOrigins.set(ex, list);
  }
  const callOwner = new Map<string, RecordedItem>();
  for (const r of recorded) for (const ex of r.outbound) callOwner.set(ex.id, r);
  const skipped = new Map<string, { call: string; reason: string; item: RecordedItem }[]>();
  const seenSkips = new Set<string>();
  for (const run of runs) {
    for (const w of run.warnings) {
      const s = skippedCall(w);
      const owner = s && callOwner.get(s.call);
      if (!s || !owner || seenSkips.has(s.call)) continue;
      seenSkips.add(s.call);
      const list = skipped.get(owner.id) ?? [];
      list.push({ ...s, item: owner });
      skipped.set(owner.id, list);
    }
  }
  const obs: Observation[] = [];
  const ctx: Context = {
    recorded,
    byId: new Map(recorded.map((r) => [r.id, r])),
    bySession,
    tokenOrigins,
    skipped,
    noBaseline: reference === 'candidate',
    all: obs,
  };

  for (const run of runs) {
    const items = new Map(run.items.map((i) => [i.id, i]));
    const missesByItem = new Map<string, MockMiss[]>();
    for (const m of run.mocks.misses) {
      if (!m.during) continue;
      const list = missesByItem.get(m.during) ?? [];
      list.push(m);
      missesByItem.set(m.during, list);
    }
    for (const rec of recorded) {
      const rs = rec.exchange.response?.status;
      if (rs === undefined) continue; // nothing recorded to reproduce
      const item = items.get(rec.id);
      const a = answerOf(item);
      const misses = missesByItem.get(rec.id) ?? [];
      const changed = a.status === undefined || classOf(a.status) !== classOf(rs);
      obs.push({
        rec,
        run,
        item,
        recordedStatus: rs,
        ...(a.status !== undefined ? { status: a.status } : {}),
        ...(a.error !== undefined ? { error: a.error } : {}),
        changed,
        recordedCalls: rec.outbound.length,
        callsMade: item ? callsMade(rec.outbound, item.outbound, misses.length) : 0,
        misses,
      });
    }
  }
  const unreachable =
    obs.length > 0 && obs.filter((o) => o.error !== undefined).length / obs.length >= UNREACHABLE;

  const routeNames = [...new Set(recorded.map((r) => r.route))].sort();
  const routes: RouteValidity[] = [];
  for (const route of routeNames) {
    const list = obs.filter((o) => o.rec.route === route);
    if (list.length === 0) continue;
    const statusChanged = list.filter((o) => o.changed).length;
    const recordedCalls = list.reduce((s, o) => s + o.recordedCalls, 0);
    const made = list.reduce((s, o) => s + o.callsMade, 0);
    const statusShare = statusChanged / list.length;
    const callsShare = recordedCalls === 0 ? 1 : made / recordedCalls;
    const reproduced =
      !unreachable && statusShare <= config.maxStatusChange && callsShare >= config.minCallsMade;
    routes.push({
      route,
      answers: list.length,
      statusChanged,
      statusChangedShare: statusShare,
      recordedCalls,
      callsMade: made,
      callsMadeShare: callsShare,
      reproduced,
      causes: reproduced ? [] : diagnose(route, list, ctx, unreachable),
    });
  }
  const bad = routes.filter((r) => !r.reproduced);
  const totals = {
    routes: routes.length,
    notReproduced: bad.length,
    answers: routes.reduce((s, r) => s + r.answers, 0),
    statusChanged: routes.reduce((s, r) => s + r.statusChanged, 0),
    recordedCalls: routes.reduce((s, r) => s + r.recordedCalls, 0),
    callsMade: routes.reduce((s, r) => s + r.callsMade, 0),
  };
  const v: Validity = {
    reference,
    runs: runs.map((r) => r.label),
    reproduced: bad.length === 0,
    thresholds: {
      maxStatusChange: config.maxStatusChange,
      minCallsMade: config.minCallsMade,
    },
    summary: totals,
    routes,
  };
  if (bad.length > 0) {
    const worst = [...bad].sort(
      (a, b) => b.statusChangedShare - a.statusChangedShare || a.callsMadeShare - b.callsMadeShare,
    );
    const causes = [...new Set(worst.flatMap((r) => r.causes.map((c) => c.summary)))];
    v.message =
      `the replay did not reproduce the recording: the ${reference} (${v.runs.join(', ')}) ` +
      `failed to reproduce ${plural(bad.length, 'route')} of ${routes.length} — ` +
      worst
        .slice(0, 4)
        .map((r) => `${r.route} (${describeRoute(r)})`)
        .join('; ') +
      (worst.length > 4 ? `; … ${worst.length - 4} more` : '') +
      (causes.length ? `. Likely: ${causes.slice(0, 3).join('; ')}` : '');
  }
  if (reference === 'candidate') {
    v.note =
      'No baseline ran, so the candidate is its own reference: a drastic regression cannot be told from a broken replay environment. Replay the unchanged build too (--baseline-cmd, or replay.baseline in retap.yaml) to tell them apart.';
  }
  return v;
}

export function describeRoute(r: RouteValidity): string {
  const parts: string[] = [];
  if (r.statusChanged > 0)
    parts.push(
      `${r.statusChanged}/${r.answers} answers in another status class (${pct(r.statusChangedShare)})`,
    );
  if (r.recordedCalls > 0 && r.callsMade < r.recordedCalls)
    parts.push(`${r.callsMade}/${r.recordedCalls} recorded calls made (${pct(r.callsMadeShare)})`);
  return parts.join(', ') || 'reproduced';
}
