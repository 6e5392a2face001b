/**
 * Streaming snapshot reader. Opening checks the manifest and side files against their schemas and
 * verifies every hash (one streaming pass over the exchanges, without parsing); iterating parses
 * and schema-checks each line, checks the sort order and the line count.
 */
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Exchange } from '../core/exchange.js';
import { ErrorCodes, RetapError } from '../core/errors.js';
import { fromStored, MANIFEST_FILE, type Manifest } from './format.js';
import { contentHash } from './hash.js';
import { checkValue, invalid, type SchemaIssue } from './schema.js';
import { validateTokens, validateTransforms } from './sidefiles.js';
import { readLineBatches } from './sorter.js';
import { resolveSnapshot } from './store.js';
import { readYamlChecked, type TokensFile, type TransformsFile } from './yamlfile.js';

export interface OpenOptions {
  /** Verify all hashes on open (default true). */
  verify?: boolean;
}

/** One exchange line as stored, with its sort key. */
export interface StoredLine {
  lineNo: number;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: schema-checked stored exchange
  value: any;
  us: number;
  id: string;
}

export interface OpenedSnapshot {
  path: string;
  manifest: Manifest;
  exchanges(): AsyncIterable<Exchange>;
  lines(): AsyncIterable<StoredLine>;
  transforms(): Promise<TransformsFile>;
  tokens(): Promise<TokensFile>;
}

function rawStream(path: string, gzip: boolean): NodeJS.ReadableStream {
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  if (!gzip) return file;
  const gz = createGunzip();
  file.on('error', (e) => gz.destroy(e));
  return file.pipe(gz);
}

function mismatch(file: string, path: string, what: string, fix: string): RetapError {
  return invalid([{ file, path, message: what, fix }], undefined);
}

async function sideFile<T>(dir: string, m: Manifest, key: 'transforms' | 'tokens', check: (v: unknown, f: string) => T): Promise<T> {
  const entry = m.files[key];
  const { text, value } = await readYamlChecked(join(dir, entry.path), key);
  const out = check(value, entry.path);
  const sum = createHash('sha256').update(text).digest('hex');
  if (sum !== entry.sha256) {
    throw mismatch(entry.path, '$', `does not match the sha256 in ${MANIFEST_FILE} (files.${key}.sha256)`, 'versions are immutable: undo the edit, or write a new version (retap snapshot filter/merge) instead of editing in place');
  }
  return out;
}

/** Parses and checks stored lines in order; `emit` turns each into what the caller yields. */
async function* iterateLines<T>(dir: string, m: Manifest, emit: (l: StoredLine) => T): AsyncGenerator<T> {
  const entry = m.files.exchanges;
  const file = entry.path;
  let lineNo = 0;
  let prevUs = -1;
  let prevId = '';
  for await (const batch of readLineBatches(rawStream(join(dir, file), entry.gzip === true))) {
    for (const text of batch) {
      lineNo++;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw invalid([{ file, line: lineNo, path: '$', message: `is not valid JSON (${(e as Error).message})`, fix: 'each line must be one complete JSON object' }], 'exchange', e);
      }
      checkValue(value, 'exchange', file, lineNo);
      const v = value as { id: string; timing: { startUs: number } };
      const us = v.timing.startUs;
      if (us < prevUs || (us === prevUs && v.id < prevId)) {
        throw invalid([{ file, line: lineNo, path: '$.timing.startUs', message: `is out of order (lines are sorted by timing.startUs, then id)`, fix: 'rewrite the snapshot with retap snapshot filter (it sorts), do not reorder lines by hand' }], 'exchange');
      }
      prevUs = us;
      prevId = v.id;
      yield emit({ lineNo, text, value, us, id: v.id });
    }
  }
  if (entry.lines !== undefined && lineNo !== entry.lines) {
    throw mismatch(file, '$', `has ${lineNo} lines but ${MANIFEST_FILE} says files.exchanges.lines is ${entry.lines}`, 'restore the file; a snapshot must not be edited in place');
  }
}

const asLine = (l: StoredLine): StoredLine => l;
const asExchange = (l: StoredLine): Exchange => fromStored(l.value);

/** Streams the exchanges file through sha256 without parsing. */
async function verifyExchanges(dir: string, m: Manifest): Promise<void> {
  const entry = m.files.exchanges;
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of rawStream(join(dir, entry.path), entry.gzip === true) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
  } catch (e) {
    throw new RetapError(ErrorCodes.SNAPSHOT_INVALID, `${entry.path}: cannot be read (${(e as Error).message})`, {
      hint: 'The file is missing or damaged: restore it from version control or write the snapshot again.',
      cause: e,
    });
  }
  if (hash.digest('hex') === entry.sha256 && bytes === entry.bytes) return;
  // Report the first schema problem if the edit broke a line; otherwise the hash mismatch itself.
  const issue = await firstLineIssue(dir, m);
  if (issue) throw invalid([issue], 'exchange');
  throw mismatch(entry.path, '$', `does not match the sha256 in ${MANIFEST_FILE} (files.exchanges.sha256)`, 'versions are immutable: undo the edit, or write a new version (retap snapshot filter/merge) instead of editing in place');
}

async function firstLineIssue(dir: string, m: Manifest): Promise<SchemaIssue | undefined> {
  try {
    const loose = { ...m, files: { ...m.files, exchanges: { ...m.files.exchanges, lines: undefined } } } as Manifest;
    for await (const _ of iterateLines(dir, loose, asLine)) {
      // walk only
    }
  } catch (e) {
    const issues = (e as RetapError).details?.issues as SchemaIssue[] | undefined;
    return issues?.[0];
  }
  return undefined;
}

export async function readManifest(dir: string): Promise<Manifest> {
  const { value } = await readYamlChecked(join(dir, MANIFEST_FILE), 'manifest');
  const m = value as Manifest;
  const expected = contentHash(m);
  if (expected !== m.hash) {
    const text = await readFile(join(dir, MANIFEST_FILE), 'utf8');
    const line = text.split('\n').findIndex((l) => l.startsWith('hash:')) + 1;
    throw invalid(
      [{ file: MANIFEST_FILE, ...(line > 0 ? { line } : {}), path: '$.hash', message: `does not match the manifest's content (computed ${expected})`, fix: 'versions are immutable: undo the edit to snapshot.yaml, or write a new version with retap snapshot filter' }],
      undefined,
    );
  }
  return m;
}

export async function openSnapshot(pathOrName: string, opts: OpenOptions = {}): Promise<OpenedSnapshot> {
  const dir = await resolveSnapshot(pathOrName);
  const manifest =
    opts.verify === false
      ? ((await readYamlChecked(join(dir, MANIFEST_FILE), 'manifest')).value as Manifest)
      : await readManifest(dir);
  if (opts.verify !== false) {
    await sideFile(dir, manifest, 'transforms', validateTransforms);
    await sideFile(dir, manifest, 'tokens', validateTokens);
    await verifyExchanges(dir, manifest);
  }
  return {
    path: dir,
    manifest,
    lines: () => iterateLines(dir, manifest, asLine),
    exchanges: () => iterateLines(dir, manifest, asExchange),
    transforms: () => sideFile(dir, manifest, 'transforms', validateTransforms),
    tokens: () => sideFile(dir, manifest, 'tokens', validateTokens),
  };
}
