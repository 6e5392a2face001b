/**
 * External sort of encoded exchange lines by (startUs, id, line) with bounded memory: lines are
 * buffered, sorted runs spill to files in the writer's temp dir when the buffer is full, and the
 * runs are merged at the end. Spill lines are `startUs \t JSON(id) \t need \t line` (JSON
 * escapes tabs).
 *
 * Spilled lines are not redacted yet (the writer redacts at the end, once it knows every secret
 * of the snapshot), so each run file is encrypted with AES-256-GCM under a key made for this
 * sorter that lives only in this process's memory: what reaches the disk cannot be read by
 * anyone, and dies with the process. The GCM tag of each run is kept in memory too, so a run
 * changed on disk fails the merge instead of feeding altered lines into the snapshot.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import { FILE_MODE } from './store.js';

export interface SortEntry {
  us: number;
  id: string;
  line: string;
  /** One digit that travels with the line (the writer's redaction need, 0–9). */
  need?: number;
}

export function compareEntries(a: SortEntry, b: SortEntry): number {
  if (a.us !== b.us) return a.us < b.us ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return a.line < b.line ? -1 : a.line > b.line ? 1 : 0;
}

export interface Sorter {
  push(entry: SortEntry): Promise<void>;
  /** All entries in order; call once. */
  drain(): AsyncIterable<SortEntry>;
  runs(): number;
  dispose(): Promise<void>;
}

/** Write strings to a stream in ~64 KiB chunks, waiting on backpressure; `tap` sees each chunk. */
export function chunkedWriter(
  stream: NodeJS.WritableStream,
  tap?: (chunk: string) => void,
): { write(s: string): Promise<void>; flush(): Promise<void> } {
  let parts: string[] = [];
  let size = 0;
  const flush = async (): Promise<void> => {
    if (parts.length === 0) return;
    const chunk = parts.join('');
    parts = [];
    size = 0;
    tap?.(chunk);
    if (!stream.write(chunk)) await once(stream, 'drain');
  };
  return {
    async write(s) {
      parts.push(s);
      size += s.length;
      if (size >= 65536) await flush();
    },
    flush,
  };
}

export async function closeStream(stream: WriteStream | NodeJS.WritableStream): Promise<void> {
  const done = once(stream, 'finish');
  stream.end();
  await done;
}

/** Lines of a text stream (utf8), without the newline, in batches (one per chunk read). */
export async function* readLineBatches(stream: NodeJS.ReadableStream): AsyncGenerator<string[]> {
  let rest = '';
  for await (const chunk of stream as AsyncIterable<string | Buffer>) {
    const text = rest + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    const batch = text.split('\n');
    rest = batch.pop()!;
    if (batch.length > 0) yield batch;
  }
  if (rest.length > 0) yield [rest];
}

/** Lines of a text stream (utf8), without the newline. */
export async function* readLines(stream: NodeJS.ReadableStream): AsyncGenerator<string> {
  for await (const batch of readLineBatches(stream)) yield* batch;
}

function parseSpill(text: string): SortEntry {
  const t1 = text.indexOf('\t');
  const t2 = text.indexOf('\t', t1 + 1);
  const e: SortEntry = { us: Number(text.slice(0, t1)), id: JSON.parse(text.slice(t1 + 1, t2)) as string, line: text.slice(t2 + 3) };
  const need = text.charCodeAt(t2 + 1) - 48;
  if (need > 0) e.need = need;
  return e;
}

/** A run file's key material: the sorter's key (memory only), this run's IV and GCM tag. */
interface Sealed {
  key: Buffer;
  iv: Buffer;
  tag?: Buffer;
}

/** Runs of one level merged into one run of the next level (tiered, like an LSM tree): the final
 * merge reads at most (MAX_FAN_IN - 1) runs per level, and levels grow as log16 of the size. */
const MAX_FAN_IN = 16;

async function* runEntries(path: string, sealed: Sealed): AsyncGenerator<SortEntry> {
  const decipher = createDecipheriv('aes-256-gcm', sealed.key, sealed.iv);
  decipher.setAuthTag(sealed.tag!);
  decipher.setEncoding('utf8');
  // Small read buffers: fan-in × buffer is the merge's memory. Errors of either end (and a tag
  // that does not verify) surface on the decipher, which the loop reads.
  pipeline(createReadStream(path, { highWaterMark: 64 * 1024 }), decipher, () => undefined);
  for await (const batch of readLineBatches(decipher)) {
    for (const l of batch) yield parseSpill(l);
  }
}

/** k-way merge (k ≤ MAX_FAN_IN + 1, so a linear pick is fine). */
async function* mergeSources(sources: Array<AsyncIterator<SortEntry> | Iterator<SortEntry>>): AsyncGenerator<SortEntry> {
  const heads: Array<SortEntry | undefined> = [];
  for (const s of sources) heads.push((await s.next()).value as SortEntry | undefined);
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h !== undefined && (best === -1 || compareEntries(h, heads[best]!) < 0)) best = i;
    }
    if (best === -1) return;
    yield heads[best]!;
    const r = await sources[best]!.next();
    heads[best] = r.done ? undefined : (r.value as SortEntry);
  }
}

async function writeRun(path: string, entries: Iterable<SortEntry> | AsyncIterable<SortEntry>, sealed: Sealed): Promise<void> {
  const out = createWriteStream(path, { mode: FILE_MODE, highWaterMark: 256 * 1024 });
  const cipher = createCipheriv('aes-256-gcm', sealed.key, sealed.iv);
  const written = new Promise<void>((resolve, reject) => pipeline(cipher, out, (e) => (e ? reject(e) : resolve())));
  const w = chunkedWriter(cipher);
  for await (const e of entries) await w.write(`${e.us}\t${JSON.stringify(e.id)}\t${e.need ?? 0}\t${e.line}\n`);
  await w.flush();
  cipher.end();
  await written;
  sealed.tag = cipher.getAuthTag();
}

/** `memoryLimitBytes`: a number, or a function read at each push (a budget shared with others). */
export function createSorter(tempDir: string, memoryLimitBytes: number | (() => number)): Sorter {
  const limit = typeof memoryLimitBytes === 'number' ? () => memoryLimitBytes : memoryLimitBytes;
  let buffer: SortEntry[] = [];
  let bytes = 0;
  let files: Array<{ path: string; level: number; sealed: Sealed }> = [];
  const key = randomBytes(32);
  const seal = (): Sealed => ({ key, iv: randomBytes(12) });
  let made = 0;
  let spilled = 0;

  const spill = async (): Promise<void> => {
    buffer.sort(compareEntries);
    const path = join(tempDir, `run-${made++}.tmp`);
    const sealed = seal();
    await writeRun(path, buffer, sealed);
    files.push({ path, level: 0, sealed });
    spilled++;
    buffer = [];
    bytes = 0;
    for (let level = 0; ; level++) {
      const same = files.filter((f) => f.level === level);
      if (same.length < MAX_FAN_IN) break;
      const merged = join(tempDir, `run-${made++}.tmp`);
      const sealed = seal();
      await writeRun(merged, mergeSources(same.map((f) => runEntries(f.path, f.sealed))), sealed);
      await Promise.all(same.map((f) => rm(f.path, { force: true })));
      files = [...files.filter((f) => f.level !== level), { path: merged, level: level + 1, sealed }];
    }
  };

  return {
    async push(entry) {
      buffer.push(entry);
      bytes += entry.line.length * 2 + 96;
      if (bytes >= limit()) await spill();
    },
    async *drain() {
      buffer.sort(compareEntries);
      if (files.length === 0) {
        yield* buffer;
        return;
      }
      yield* mergeSources([...files.map((f) => runEntries(f.path, f.sealed)), buffer[Symbol.iterator]()]);
      buffer = [];
    },
    runs: () => spilled,
    async dispose() {
      buffer = [];
      await Promise.all(files.map((f) => rm(f.path, { force: true })));
    },
  };
}
