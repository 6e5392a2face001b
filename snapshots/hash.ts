/**
 * Content hash of a snapshot version. It covers what the snapshot holds (the files' sha256,
 * source, counts, counters, notes, redaction summary) and leaves out what says where the content
 * sits (name, version, parent) and when it was written (created), so equal content → equal hash.
 */
import { createHash } from 'node:crypto';
import { sortKeys, type Manifest } from './format.js';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

type HashedPart = Omit<Manifest, 'name' | 'version' | 'parent' | 'created' | 'hash'>;

export function contentHash(m: HashedPart & Partial<Manifest>): string {
  const { name: _n, version: _v, parent: _p, created: _c, hash: _h, ...content } = m;
  const canonical = JSON.stringify(sortKeys(content));
  return `sha256:${sha256Hex(`retap-snapshot-content\n${canonical}`)}`;
}
