/**
 * Database mocks: one TCP listener per recorded database endpoint, speaking the recorded protocol
 * (PostgreSQL, MySQL/MariaDB, Redis) and answering each query from the recording (book.ts). The
 * HTTP mocks' index starts these for endpoints whose protocol is a database.
 */
import net from 'node:net';
import type { DbSystem } from '../../../core/db.js';
import type { Exchange } from '../../../core/exchange.js';
import type { MockMiss } from '../../../core/results.js';
import type { EphemeralCa } from '../../tls/ca.js';
import type { Listener } from '../transport.js';
import type { MissMode, MockCall } from '../types.js';
import { DbBook, type DbEntry, describeEntry, type LiveDbCall } from './book.js';

export { DbBook, normaliseSql, paramsMatch } from './book.js';

export interface DbMockHooks {
  system: DbSystem;
  /** `host:port` as recorded. */
  endpoint: string;
  miss: MissMode;
  tls?: { cert: string; key: string };
  during(): string | undefined;
  onCall(c: MockCall): void;
  onMiss(m: MockMiss): void;
  counted(matched: boolean): void;
}

/** What a protocol server asks of the book: an answer, or a miss with its reason. */
export interface DbLookup {
  entry?: DbEntry;
  /** Set on a miss: the message the protocol's error carries. */
  missMessage?: string;
}

export type DbConnectionHandler = (socket: net.Socket, ctx: DbContext) => void;

export interface DbContext {
  book: DbBook;
  hooks: DbMockHooks;
  /** Looks a live call up, counts it and reports it (miss → fail closed, or the closest with `closest`). */
  lookup(live: LiveDbCall, label: string): DbLookup;
}

export function createContext(book: DbBook, hooks: DbMockHooks): DbContext {
  return {
    book,
    hooks,
    lookup(live, label) {
      const during = hooks.during();
      const entry = book.match(live, during);
      const base = {
        endpoint: hooks.endpoint,
        protocol: hooks.system,
        method: label,
        target: live.text.slice(0, 200),
        ...(during ? { during } : {}),
      } as const;
      if (entry) {
        hooks.counted(true);
        hooks.onCall({
          ...base,
          outcome: 'matched',
          tier: 'exact',
          recorded: entry.exchange.id,
          status: 200,
          warnings: [],
        } as MockCall);
        return { entry };
      }
      hooks.counted(false);
      const near = book.nearest(live);
      const reason = near
        ? `no recorded call with this text and parameters; closest ${describeEntry(near.entry)}: ${near.reason}`
        : 'no recorded calls on this endpoint';
      const miss: MockMiss = {
        method: label,
        host: hooks.endpoint,
        target: live.text.slice(0, 500),
        reason,
        ...(near ? { closest: describeEntry(near.entry) } : {}),
        ...(during ? { during } : {}),
      };
      if (hooks.miss === 'closest' && near) {
        near.entry.used = true;
        miss.reason = `served the closest recording (${near.entry.exchange.id}): ${reason}`;
        hooks.onMiss(miss);
        hooks.onCall({
          ...base,
          outcome: 'closest',
          recorded: near.entry.exchange.id,
          status: 200,
          warnings: [],
        } as MockCall);
        return { entry: near.entry };
      }
      hooks.onMiss(miss);
      hooks.onCall({ ...base, outcome: 'miss', status: 500, warnings: [] } as MockCall);
      return {
        missMessage: `retap mock: no recorded answer for ${label} ${live.text.slice(0, 200)} — ${reason}`,
      };
    },
  };
}

/** Listens on addr:port and hands each connection to the protocol's handler. */
export async function listenDb(
  addr: string,
  port: number,
  ctx: DbContext,
  handler: DbConnectionHandler,
): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.setNoDelay(true);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    try {
      handler(s, ctx);
    } catch {
      s.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, addr, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as net.AddressInfo;
  return {
    addr: a.address,
    port: a.port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export function bookFor(recorded: Exchange[], duringOf: (ex: Exchange) => string | undefined): DbBook {
  return new DbBook(recorded, duringOf);
}

export type { EphemeralCa };
