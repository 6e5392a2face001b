/**
 * Path-level structural diff of two JSON values: changed value, changed type, missing field,
 * new field, array length. Arrays are compared element by element over the common length.
 */
import { childPath, preview } from './paths.js';

export type JsonDiffKind = 'changed-value' | 'changed-type' | 'missing-field' | 'new-field' | 'array-length';

export interface JsonDiff {
  path: string;
  kind: JsonDiffKind;
  recorded?: unknown;
  candidate?: unknown;
}

export type JsonType = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object';

export function jsonType(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  const t = typeof v;
  if (t === 'boolean' || t === 'number' || t === 'string') return t;
  return 'object';
}

/** Differences from `recorded` to `candidate`, at most `limit` (deep diffs of huge bodies stay bounded). */
export function diffJson(recorded: unknown, candidate: unknown, limit = 200): JsonDiff[] {
  const out: JsonDiff[] = [];
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (out.length >= limit) return;
    const ta = jsonType(a);
    const tb = jsonType(b);
    if (ta !== tb) {
      out.push({ path, kind: 'changed-type', recorded: preview(a), candidate: preview(b) });
      return;
    }
    if (ta === 'array') {
      const xa = a as unknown[];
      const xb = b as unknown[];
      if (xa.length !== xb.length)
        out.push({ path, kind: 'array-length', recorded: xa.length, candidate: xb.length });
      const n = Math.min(xa.length, xb.length);
      for (let i = 0; i < n; i++) walk(xa[i], xb[i], childPath(path, i));
      return;
    }
    if (ta === 'object') {
      const oa = a as Record<string, unknown>;
      const ob = b as Record<string, unknown>;
      for (const k of Object.keys(oa)) {
        if (!Object.hasOwn(ob, k))
          out.push({ path: childPath(path, k), kind: 'missing-field', recorded: preview(oa[k]) });
        else walk(oa[k], ob[k], childPath(path, k));
      }
      for (const k of Object.keys(ob)) {
        if (!Object.hasOwn(oa, k))
          out.push({ path: childPath(path, k), kind: 'new-field', candidate: preview(ob[k]) });
      }
      return;
    }
    if (a !== b) out.push({ path, kind: 'changed-value', recorded: preview(a), candidate: preview(b) });
  };
  walk(recorded, candidate, '$');
  return out.slice(0, limit);
}
