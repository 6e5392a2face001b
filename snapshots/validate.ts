/**
 * `retap snapshot validate`: every check there is, in one pass: schemas of all files, all hashes,
 * every line (JSON, schema, order), line count, and the manifest counts recomputed from the lines.
 */
import { isRetapError } from '../core/errors.js';
import { fromStored } from './format.js';
import { openSnapshot } from './reader.js';
import type { SchemaIssue } from './schema.js';
import { createStats } from './stats.js';

export interface ValidationReport {
  ok: boolean;
  path: string;
  exchanges: number;
  issues: SchemaIssue[];
}

export async function validateSnapshot(pathOrName: string): Promise<ValidationReport> {
  let path = pathOrName;
  let exchanges = 0;
  const issue = (e: unknown): SchemaIssue[] => {
    if (isRetapError(e) && Array.isArray(e.details?.issues)) return e.details.issues as SchemaIssue[];
    throw e;
  };
  try {
    const snap = await openSnapshot(pathOrName);
    path = snap.path;
    const stats = createStats();
    for await (const l of snap.lines()) {
      exchanges++;
      stats.add(fromStored(l.value));
    }
    const counts = JSON.stringify(stats.counts());
    if (counts !== JSON.stringify(snap.manifest.counts)) {
      return {
        ok: false,
        path,
        exchanges,
        issues: [{ file: 'snapshot.yaml', path: '$.counts', message: 'differs from the counts of the exchanges', fix: 'write the snapshot again (retap snapshot filter with no conditions rewrites it)' }],
      };
    }
    return { ok: true, path, exchanges, issues: [] };
  } catch (e) {
    return { ok: false, path, exchanges, issues: issue(e) };
  }
}
