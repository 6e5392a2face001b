/**
 * Mocks of a build's dependencies, served from a snapshot's recorded outbound exchanges.
 * `planMocks` says which endpoints are needed; `startMocks` listens on them and answers every call
 * with the matching recording (docs/mocks.md: signatures, order, misses, protocols).
 */

import { isDbProtocol } from '../../core/db.js';
import { ErrorCodes, RetapError } from '../../core/errors.js';
import type { Exchange } from '../../core/exchange.js';
import type { MockMiss } from '../../core/results.js';
import { traceIdOf } from '../../core/trace.js';
import { type Answer, answerFrom, grpcMissAnswer, type MissInfo, missAnswer } from './answer.js';
import { type Book, createBook, describeSignature } from './book.js';
import { bindDb } from './db/start.js';
import { passThrough } from './passthrough.js';
import { endpointKey, hostOf, planMocks } from './plan.js';
import { signatureOf } from './signature.js';
import { createAnswerer } from './transforms.js';
import { type Listener, type LiveCall, listenEndpoint } from './transport.js';
import type {
  BoundEndpoint,
  MockCall,
  MockEndpoint,
  MockOptions,
  MockPlan,
  MockStats,
  RunningMocks,
} from './types.js';
import { mergeVolatile, volatileFromPlaceholders, volatileFromTransforms } from './volatile.js';

export { MISS_REASON, MISS_STATUS } from './answer.js';
export type {
  BoundEndpoint,
  MissMode,
  MockCall,
  MockEndpoint,
  MockOptions,
  MockPlan,
  MockProtocol,
  MockStats,
  RunningMocks,
} from './types.js';
export { type VolatileFields, volatileFromTokens, volatileFromTransforms } from './volatile.js';
export { planMocks };

const PORT_FALLBACK_CODES = new Set(['EADDRINUSE', 'EACCES']);

async function bind(
  ep: MockEndpoint,
  opts: MockOptions,
  tlsPair: { cert: string; key: string } | undefined,
  handle: (c: LiveCall) => Promise<Answer>,
): Promise<{ listener: Listener; note?: string }> {
  const addr = opts.bindAddr?.(ep) ?? ep.addr;
  const port = opts.bindPort?.(ep) ?? ep.port;
  const listen = (p: number) =>
    listenEndpoint({ addr, port: p, ...(tlsPair ? { tls: tlsPair } : {}) }, handle);
  try {
    return { listener: await listen(port) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (opts.portFallback && port !== 0 && PORT_FALLBACK_CODES.has(code)) {
      return { listener: await listen(0), note: `port ${port} not available (${code}): took a free port` };
    }
    throw new RetapError(
      ErrorCodes.ENV_SETUP,
      `cannot listen on ${addr}:${port} for the mock of ${endpointKey(ep.host, ep.port)} (${code || (e as Error).message})`,
      {
        hint:
          code === 'EADDRNOTAVAIL'
            ? `The address ${addr} is not configured here: inside the replay namespace the runner adds it; elsewhere bind 127.0.0.1 (retap mock does).`
            : 'Free the port, or let the mock take a free one (retap mock --ports auto).',
        cause: e,
      },
    );
  }
}

export async function startMocks(
  plan: MockPlan,
  outbound: Exchange[],
  opts: MockOptions,
): Promise<RunningMocks> {
  const byEndpoint = new Map<string, Exchange[]>();
  const skipped = new Set(plan.skipped.map((s) => s.id));
  for (const ex of outbound) {
    if (skipped.has(ex.id) || !ex.response) continue;
    const k = endpointKey(hostOf(ex), ex.peer.port);
    const list = byEndpoint.get(k);
    if (list) list.push(ex);
    else byEndpoint.set(k, [ex]);
  }
  const answerer = createAnswerer(opts.transforms);
  // redacted credentials in recorded calls: the build sends its own values there
  const known = mergeVolatile(opts.volatile, volatileFromTransforms(opts.transforms), volatileFromPlaceholders(outbound));
  const stats: MockStats = { calls: 0, matched: 0, misses: [] };
  // recorded requests by the trace id they carry (null: several share it, it says nothing)
  const byTrace = new Map<string, string | null>();
  for (const ex of opts.inbound ?? []) {
    const t = traceIdOf(ex.request.headers);
    if (t) byTrace.set(t, byTrace.has(t) ? null : ex.id);
  }
  let during: string | undefined;
  const listeners: Listener[] = [];
  const endpoints: BoundEndpoint[] = [];

  const handlerFor =
    (ep: MockEndpoint, book: Book) =>
    async (call: LiveCall): Promise<Answer> => {
      stats.calls++;
      const key = endpointKey(ep.host, ep.port);
      const sig = signatureOf(
        { method: call.method, target: call.target, headers: call.headers, body: call.body },
        known,
      );
      const report = (c: Omit<MockCall, 'endpoint' | 'protocol' | 'method' | 'target'>) => {
        opts.onCall?.({
          endpoint: key,
          protocol: call.protocol,
          method: call.method,
          target: call.target,
          ...c,
          ...((scope ?? during) ? { during: scope ?? during } : {}),
        });
      };
      const serve = (recorded: Exchange): Answer => {
        const live = { method: call.method, target: call.target, headers: call.headers, body: call.body };
        const shaped = answerer(recorded, live);
        const a = answerFrom(shaped.response, call.method);
        a.warnings.push(...shaped.notes);
        return a;
      };
      // the request that made this call, when the recording knows which request made each answer:
      // the trace id it carries (exact, nothing to wait for), else capture's link
      let scope: string | undefined;
      if (book.scoped) {
        const t = traceIdOf(call.headers);
        scope = t ? (byTrace.get(t) ?? undefined) : undefined;
        if (scope === undefined && opts.scopeOf) scope = await opts.scopeOf(call);
      }
      const pick = book.match(sig, scope);
      if (pick) {
        stats.matched++;
        const a = serve(pick.entry.exchange);
        report({
          outcome: 'matched',
          tier: pick.tier,
          recorded: pick.entry.exchange.id,
          status: a.status,
          warnings: a.warnings,
        });
        return a;
      }
      const near = book.closest(sig);
      const info: MissInfo = {
        method: call.method,
        host: key,
        target: call.target,
        reason: near
          ? `no recorded call with this signature; closest ${near.reason}`
          : 'no recorded calls on this endpoint',
        ...(near ? { closest: describeSignature(near.entry.sig) } : {}),
      };
      const miss: MockMiss = {
        method: info.method,
        host: info.host,
        target: info.target,
        reason: info.reason,
        ...(info.closest ? { closest: info.closest } : {}),
        ...((scope ?? during) ? { during: scope ?? during } : {}),
      };
      if (opts.miss === 'closest' && near) {
        book.take(near.entry);
        const a = serve(near.entry.exchange);
        a.headers.push(['x-retap-mock', 'closest']);
        miss.reason = `served the closest recording (${near.entry.exchange.id}): ${info.reason}`;
        stats.misses.push(miss);
        report({
          outcome: 'closest',
          recorded: near.entry.exchange.id,
          status: a.status,
          warnings: a.warnings,
        });
        return a;
      }
      if (opts.miss === 'passthrough') {
        try {
          const a = await passThrough({ host: ep.host, port: ep.port, tls: ep.tls }, call);
          miss.reason = `passed through to ${key}: ${info.reason}`;
          stats.misses.push(miss);
          report({ outcome: 'passthrough', status: a.status, warnings: a.warnings });
          return a;
        } catch (e) {
          info.reason = `${info.reason}; passthrough to ${key} failed: ${(e as Error).message}`;
          miss.reason = info.reason;
        }
      }
      stats.misses.push(miss);
      const a = call.protocol === 'grpc' ? grpcMissAnswer(info) : missAnswer(info);
      report({ outcome: 'miss', status: a.status, warnings: [] });
      return a;
    };

  try {
    for (const ep of plan.endpoints) {
      let tlsPair: { cert: string; key: string } | undefined;
      if (ep.tls) {
        if (!opts.ca) {
          throw new RetapError(
            ErrorCodes.INTERNAL,
            `the mock of ${endpointKey(ep.host, ep.port)} serves TLS but no CA was given to startMocks`,
            {
              hint: 'Pass opts.ca from createEphemeralCa(dir).',
            },
          );
        }
        const addr = opts.bindAddr?.(ep) ?? ep.addr;
        tlsPair = opts.ca.certFor([ep.host, ep.addr, addr, 'localhost', '127.0.0.1', '::1']);
      }
      const recorded = byEndpoint.get(endpointKey(ep.host, ep.port)) ?? [];
      const db = ep.protocols.find(isDbProtocol);
      const { listener, note } = db
        ? await bindDb(db, ep, recorded, opts, tlsPair, {
            during: () => during,
            counted: (ok) => {
              stats.calls++;
              if (ok) stats.matched++;
            },
            onMiss: (m) => stats.misses.push(m),
          })
        : await bind(ep, opts, tlsPair, handlerFor(ep, createBook(recorded, known)));
      listeners.push(listener);
      endpoints.push({
        ...ep,
        boundAddr: listener.addr,
        port: listener.port,
        recordedPort: ep.port,
        ...(note ? { note } : {}),
      });
    }
  } catch (e) {
    await Promise.all(listeners.map((l) => l.close()));
    throw e;
  }

  let stopped: Promise<void> | undefined;
  return {
    endpoints,
    stats: () => ({ calls: stats.calls, matched: stats.matched, misses: [...stats.misses] }),
    setDuring: (id) => {
      during = id;
    },
    stop: () => {
      stopped ??= Promise.all(listeners.map((l) => l.close())).then(() => undefined);
      return stopped;
    },
  };
}
