/**
 * The discovered tokens of the replayed snapshot, for `retap report` and `retap ci`. (The
 * `assertions:` section of retap.yaml is read with the rest of the file by ci/config.ts.)
 */
import { existsSync } from 'node:fs';
import { logger } from '../core/log.js';
import { openSnapshot } from '../snapshots/index.js';
import type { TokenHint } from './config.js';

const log = logger('assertions');

/** Tokens discovered in the snapshot (tokens.yaml); empty when the snapshot is not at hand. */
export async function readSnapshotTokens(snapshotPath: string): Promise<TokenHint[]> {
  if (!snapshotPath || !existsSync(snapshotPath)) return [];
  try {
    const snap = await openSnapshot(snapshotPath, { verify: false });
    const file = await snap.tokens();
    return file.tokens as unknown as TokenHint[];
  } catch (e) {
    log.warn(`tokens of ${snapshotPath} not used: ${(e as Error).message}`);
    return [];
  }
}
