/** Starts the database mock of one endpoint: the touch point between the HTTP mocks' index and db/. */
import type { DbSystem } from '../../../core/db.js';
import { ErrorCodes, RetapError } from '../../../core/errors.js';
import type { Exchange } from '../../../core/exchange.js';
import type { MockMiss } from '../../../core/results.js';
import { serveMysql } from '../mysql/server.js';
import { endpointKey } from '../plan.js';
import { servePostgres } from '../postgres/server.js';
import { serveRedis } from '../redis/server.js';
import type { Listener } from '../transport.js';
import type { MockEndpoint, MockOptions } from '../types.js';
import { bookFor, createContext, type DbConnectionHandler, listenDb } from './index.js';

const SERVERS: Record<DbSystem, DbConnectionHandler> = {
  postgres: servePostgres,
  mysql: serveMysql,
  redis: serveRedis,
};

/** Which recorded inbound request each call was made for: the one whose recorded time span holds it. */
export function duringFrom(inbound: Exchange[] | undefined): (ex: Exchange) => string | undefined {
  const spans = (inbound ?? [])
    .map((e) => ({
      id: e.id,
      start: e.timing.startUs,
      end:
        e.timing.startUs +
        (e.timing.responseEndNs ?? e.timing.responseStartNs ?? e.timing.requestEndNs) / 1000,
    }))
    .sort((a, b) => a.start - b.start);
  return (ex) => {
    const t = ex.timing.startUs;
    let best: string | undefined;
    for (const s of spans) {
      if (s.start > t) break;
      if (t <= s.end) best = s.id;
    }
    return best;
  };
}

export async function bindDb(
  system: DbSystem,
  ep: MockEndpoint,
  recorded: Exchange[],
  opts: MockOptions,
  tlsPair: { cert: string; key: string } | undefined,
  hooks: {
    during(): string | undefined;
    counted(matched: boolean): void;
    onMiss(m: MockMiss): void;
  },
): Promise<{ listener: Listener; note?: string }> {
  const book = bookFor(recorded, duringFrom(opts.inbound));
  const ctx = createContext(book, {
    system,
    endpoint: endpointKey(ep.host, ep.port),
    miss: opts.miss === 'passthrough' ? 'fail' : opts.miss,
    ...(tlsPair ? { tls: tlsPair } : {}),
    during: hooks.during,
    onCall: (c) => opts.onCall?.(c),
    onMiss: hooks.onMiss,
    counted: hooks.counted,
  });
  const addr = opts.bindAddr?.(ep) ?? ep.addr;
  const port = opts.bindPort?.(ep) ?? ep.port;
  try {
    return { listener: await listenDb(addr, port, ctx, SERVERS[system]) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (opts.portFallback && port !== 0 && (code === 'EADDRINUSE' || code === 'EACCES')) {
      return {
        listener: await listenDb(addr, 0, ctx, SERVERS[system]),
        note: `port ${port} not available (${code}): took a free port`,
      };
    }
    throw new RetapError(
      ErrorCodes.ENV_SETUP,
      `cannot listen on ${addr}:${port} for the ${system} mock of ${endpointKey(ep.host, ep.port)} (${code || (e as Error).message})`,
      {
        hint: 'Free the port, or let the mock take a free one (retap mock --ports auto).',
        cause: e,
      },
    );
  }
}
