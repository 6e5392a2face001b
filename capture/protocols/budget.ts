/**
 * Per-connection memory budget. Every byte a decoder keeps (bodies, carried header bytes, queued
 * requests) is charged here; when the budget is spent, bodies stop being kept (marked truncated)
 * and over-long header blocks are given up on.
 */
import type { Body } from '../../core/exchange.js';
import { joinParts } from './bytes.js';

export const DEFAULT_MAX_BUFFER = 8 * 1024 * 1024;
export const DEFAULT_MAX_BODY = 16 * 1024 * 1024;

export interface Budget {
  held: number;
  max: number;
  /** Kept free for partial header blocks and frames, which bodies may not use. */
  reserve: number;
}

export function newBudget(max = DEFAULT_MAX_BUFFER, reserve = 0): Budget {
  const m = Math.max(1024, max);
  return { held: 0, max: m, reserve: Math.min(reserve, m / 2) };
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

/** Adds wire bytes to a body, keeping a copy while both the body cap and the budget allow. */
export function bodyAdd(
  acc: BodyAcc,
  data: Uint8Array,
  start: number,
  end: number,
  cap: number,
  budget: Budget,
): void {
  const n = end - start;
  if (n <= 0) return;
  acc.size += n;
  const room = Math.min(cap - acc.kept, budget.max - budget.reserve - budget.held);
  if (room <= 0) {
    acc.truncated = true;
    return;
  }
  const take = Math.min(n, room);
  if (take < n) acc.truncated = true;
  // A copy: the pushed memory may be reused by the caller (and Buffer#slice would not copy).
  const copy = Buffer.allocUnsafe(take);
  copy.set(data.subarray(start, start + take));
  acc.parts.push(copy);
  acc.kept += take;
  budget.held += take;
}

/** Bytes lost inside a body: counted in the size, body marked truncated. */
export function bodyLost(acc: BodyAcc, n: number): void {
  acc.size += n;
  acc.truncated = true;
}

export function bodyFinish(acc: BodyAcc): Body {
  return { data: joinParts(acc.parts, acc.kept), size: acc.size, truncated: acc.truncated };
}
