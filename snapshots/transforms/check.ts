/**
 * Dry run of transforms.yaml over recorded traffic (`retap snapshot transforms --check`):
 * inbound exchanges go through the replay engine in recorded order, with each value an answer
 * rule extracts standing in as `<live:RULE#N>` (so every substitution is visible); outbound
 * exchanges go through the mock transforms with their own recorded request as the live call.
 * Per rule: how many exchanges it touched and before/after samples.
 */
import type { Exchange } from '../../core/exchange.js';
import type { TokensFile } from '../yamlfile.js';
import type { CompiledRule } from './compile.js';
import { type Change, createReplayContext, type ReplayWarning } from './engine.js';
import { createMockContext } from './mock.js';

export interface RuleCheck {
  rule: string;
  enabled: boolean;
  description?: string;
  /** Exchanges where it changed something. */
  exchanges: number;
  changes: number;
  samples: Change[];
}

export interface CheckReport {
  rules: RuleCheck[];
  warnings: ReplayWarning[];
  notes: string[];
  exchanges: { inbound: number; outbound: number };
}

export async function checkTransforms(
  exchanges: AsyncIterable<Exchange> | Iterable<Exchange>,
  rules: CompiledRule[],
  tokens: TokensFile | undefined,
  options: { samples?: number; replayStartMs?: number; recordedStartUs?: number } = {},
): Promise<CheckReport> {
  const limit = options.samples ?? 3;
  const counters = new Map<string, number>();
  const simulateLive = (rule: string, _recorded: string): string => {
    const n = (counters.get(rule) ?? 0) + 1;
    counters.set(rule, n);
    return `<live:${rule}#${n}>`;
  };
  const opts = { replayStartMs: options.replayStartMs ?? Date.now(), simulateLive, ...(options.recordedStartUs !== undefined ? { recordedStartUs: options.recordedStartUs } : {}) };
  const ctx = createReplayContext({ transforms: rules, ...(tokens ? { tokens } : {}) }, opts);
  const mock = createMockContext(rules, opts);
  const report = new Map<string, RuleCheck>(
    rules.map((r) => [r.id, { rule: r.id, enabled: r.rule.enabled !== false, ...(r.rule.description ? { description: r.rule.description } : {}), exchanges: 0, changes: 0, samples: [] }]),
  );
  const notes: string[] = [];
  const counts = { inbound: 0, outbound: 0 };
  const take = (changes: Change[]): void => {
    const touched = new Set<string>();
    for (const c of changes) {
      const r = report.get(c.rule);
      if (!r) continue;
      r.changes++;
      if (!touched.has(c.rule)) r.exchanges++;
      touched.add(c.rule);
      if (r.samples.length < limit) r.samples.push(c);
    }
  };
  for await (const ex of exchanges) {
    if (ex.quarantine) continue; // never replayed, never served: no rule applies to it
    if (ex.direction === 'inbound') {
      counts.inbound++;
      take(ctx.prepareRequest(ex).changes);
      if (ex.response) ctx.observeResponse(ex, { status: ex.response.status, headers: ex.response.headers, body: ex.response.body.decoded ?? ex.response.body.data });
    } else if (ex.response) {
      counts.outbound++;
      const answer = mock.respond(ex, { method: ex.request.method, target: ex.request.target, headers: ex.request.headers, body: ex.request.body.decoded ?? ex.request.body.data });
      take(answer.changes);
      for (const n of answer.notes) if (notes.length < 100) notes.push(`${ex.id}: ${n}`);
    }
  }
  return { rules: [...report.values()], warnings: ctx.warnings(), notes, exchanges: counts };
}
