/**
 * The token and transform rules a replay uses: the snapshot's own transforms.yaml/tokens.yaml when
 * they hold rules, else discovered now from the recorded traffic (the same discovery as
 * `retap snapshot tokens`), so dynamic values (login tokens, created ids) replay without setup.
 */
import type { Exchange } from '../core/exchange.js';
import {
  discoverTokens,
  emitFiles,
  type OpenedSnapshot,
  type TokensFile,
  type TransformsFile,
} from '../snapshots/index.js';

export interface ReplayRules {
  transforms: TransformsFile;
  tokens: TokensFile;
  /** `snapshot` (from its files) or `discovered` (computed for this replay). */
  source: 'snapshot' | 'discovered';
}

export async function rulesFor(snap: OpenedSnapshot, exchanges: Exchange[]): Promise<ReplayRules> {
  const transforms = await snap.transforms();
  const tokens = await snap.tokens();
  if ((transforms.rules?.length ?? 0) > 0) return { transforms, tokens, source: 'snapshot' };
  const emitted = emitFiles(await discoverTokens(exchanges));
  return { transforms: emitted.transforms, tokens: emitted.tokens, source: 'discovered' };
}
