/**
 * Memory budgets. Every byte a decoder keeps (bodies, carried header bytes, queued requests) is
 * charged to its connection's budget; when the budget is spent, bodies stop being kept (marked
 * truncated) and over-long header blocks are given up on. A capture's connections also share one
 * pool, so many connections together stay bounded too: bodies stop being kept when the pool is
 * three quarters full, and a connection that would carry a partial head or frame past a full
 * pool has that message cut.
 */
import type { Body } from '../../core/exchange.js';
import { joinParts } from './bytes.js';
import type { MemoryPool } from './types.js';

export const DEFAULT_MAX_BUFFER = 8 * 1024 * 1024;
export const DEFAULT_MAX_BODY = 16 * 1024 * 1024;
/** What all connections of one capture may hold together, by default. */
export const DEFAULT_POOL_BYTES = 256 * 1024 * 1024;

export interface Budget {
  held: number;
  max: number;
  /** Kept free for partial header blocks and frames, which bodies may not use. */
  reserve: number;
  pool: MemoryPool | undefined;
  /** Part of `held` already added to the pool (see settle). */
  reported: number;
}

export function newBudget(max = DEFAULT_MAX_BUFFER, reserve = 0, pool?: MemoryPool): Budget {
  const m = Math.max(1024, max);
  return { held: 0, max: m, reserve: Math.min(reserve, m / 2), pool, reported: 0 };
}

export function newPool(max = DEFAULT_POOL_BYTES): MemoryPool {
  return { held: 0, max: Math.max(64 * 1024, max) };
}

/**
 * Brings the pool up to date with this connection's `held` (after each push, gap and end). The
 * pool only ever sees what connections report, so it stays the exact sum of what they hold now.
 */
export function settle(b: Budget): void {
  if (b.held < 0) b.held = 0;
  if (!b.pool) return;
  b.pool.held += b.held - b.reported;
  b.reported = b.held;
}

/** Over the connection's budget, or the pool is full: a partial head or frame must be cut. */
export function overBudget(b: Budget, extra = 0): boolean {
  if (b.held + extra > b.max) return true;
  const p = b.pool;
  return p !== undefined && p.held + (b.held - b.reported) + extra > p.max;
}

function bodyRoom(b: Budget): number {
  const own = b.max - b.reserve - b.held;
  const p = b.pool;
  if (!p) return own;
  return Math.min(own, Math.floor(p.max * 0.75) - p.held - (b.held - b.reported));
}

/** A body being received: copies of the kept bytes, the size seen on the wire, a truncated flag. */
export interface BodyAcc {
  parts: Uint8Array[];
  kept: number;
  size: number;
  truncated: boolean;
}

export function newBodyAcc(): BodyAcc {
  return { parts: [], kept: 0, size: 0, truncated: false };
}

/**
 * Adds wire bytes to a body, keeping a copy while both the body cap and the budget allow.
 * Returns true when this call is where the body stopped being kept (a cut at a limit).
 */
export function bodyAdd(
  acc: BodyAcc,
  data: Uint8Array,
  start: number,
  end: number,
  cap: number,
  budget: Budget,
): boolean {
  const n = end - start;
  if (n <= 0) return false;
  acc.size += n;
  const room = Math.min(cap - acc.kept, bodyRoom(budget));
  const was = acc.truncated;
  if (room <= 0) {
    acc.truncated = true;
    return !was;
  }
  const take = Math.min(n, room);
  if (take < n) acc.truncated = true;
  // A copy: the pushed memory may be reused by the caller (and Buffer#slice would not copy).
  const copy = Buffer.allocUnsafe(take);
  copy.set(data.subarray(start, start + take));
  acc.parts.push(copy);
  acc.kept += take;
  budget.held += take;
  return acc.truncated && !was;
}

/** Bytes lost inside a body: counted in the size, body marked truncated. */
export function bodyLost(acc: BodyAcc, n: number): void {
  acc.size += n;
  acc.truncated = true;
}

export function bodyFinish(acc: BodyAcc): Body {
  return { data: joinParts(acc.parts, acc.kept), size: acc.size, truncated: acc.truncated };
}
