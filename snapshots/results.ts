/**
 * The replay results file (`results.json`): a ReplayResults (core/results.ts) with exchanges and
 * byte fields encoded as in snapshot lines.
 *
 * Format version 2 is JSON Lines (docs/reports.md "The results file"): a header line (the run's
 * settings and every run's outcome), one line per recorded item holding every run's replay of it
 * (so an item is judged from one line), and a trailer line with the counts. Written through one
 * streaming writer (temp file + rename, 0600): no part of it is ever one string, so a run's size is
 * bounded by the disk, not by V8's 512 MiB string limit. Read through one reader that takes both
 * version 2 and version 1 (one JSON document) and refuses a file whose trailer is missing or whose
 * counts disagree with the lines read — a cut-short file is never judged as what it holds.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { ErrorCodes, RetapError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import {
  type ClientView,
  RESULTS_FORMAT,
  RESULTS_FORMAT_VERSION,
  type RecordedItem,
  type ReplayResults,
  type ReplayRun,
  type RunItem,
} from '../core/results.js';
import { fromStored, toStored } from './format.js';

export const RESULTS_FILE = 'results.json';

/** A run without its items: what the header holds for each run. */
export type RunHead = Omit<ReplayRun, 'items'>;

/** Everything but the items: the header line. */
export interface ResultsHeader extends Omit<ReplayResults, 'recorded' | 'runs'> {
  runs: RunHead[];
}

/**
 * One item line: a recorded item and each run's replay of it, by the run's index in the header
 * (`undefined`: that run has no answer for it — it ended early). `recorded` is absent only for a
 * run's item that matches no recorded item (kept, never dropped).
 */
export interface ResultsEntry {
  id: string;
  recorded?: RecordedItem;
  runs: Array<RunItem | undefined>;
}

/** The trailer line: what the writer wrote, checked against what the reader read. */
export interface ResultsTrailer {
  /** Item lines. */
  items: number;
  /** Items of each run (header order). */
  runItems: number[];
}

const b64 = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
const unb64 = (s: string | undefined): Uint8Array | undefined =>
  s === undefined ? undefined : new Uint8Array(Buffer.from(s, 'base64'));

function encodeClient(c: ClientView): Record<string, unknown> {
  return { ...c, body: b64(c.body), responseBody: b64(c.responseBody) };
}

function decodeClient(c: Record<string, unknown>): ClientView {
  const out = { ...c } as unknown as ClientView;
  const body = unb64(c.body as string | undefined);
  const responseBody = unb64(c.responseBody as string | undefined);
  if (body) out.body = body;
  else delete out.body;
  if (responseBody) out.responseBody = responseBody;
  else delete out.responseBody;
  return out;
}

const enc = (ex: Exchange): Record<string, unknown> => toStored(ex);
const dec = (s: unknown): Exchange => fromStored(s);

// biome-ignore lint/suspicious/noExplicitAny: stored shapes, checked where they are read
type Stored = any;

function decodeRunItem(it: Stored): RunItem {
  const item = { ...it, client: decodeClient(it.client), outbound: it.outbound.map(dec) };
  if (it.live) item.live = dec(it.live);
  else delete item.live;
  return item as RunItem;
}

const decodeRecorded = (it: Stored): RecordedItem => ({
  ...it,
  exchange: dec(it.exchange),
  outbound: it.outbound.map(dec),
});

/**
 * One results item (a recorded request and every run's replay of it) is past what one string can
 * hold (512 MiB), or a version 1 file is: turns V8's RangeError into what happened and what to do.
 */
export function tooLarge(e: unknown, items: number): unknown {
  if (!(e instanceof RangeError)) return e;
  return new RetapError(
    ErrorCodes.RESULTS_TOO_LARGE,
    items === 1
      ? 'one replayed request and its answers do not fit in one line of the results file (a JS string holds at most 512 MiB)'
      : `the results of ${items} replayed requests do not fit in one JSON document (a JS string holds at most 512 MiB)`,
    {
      cause: e,
      hint: 'Leave that request out (`retap snapshot filter`), or replay it with smaller bodies.',
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Version 1: one JSON document (read only)

/** Decodes a version 1 results file (one JSON document). */
export function decodeResults(text: string, where = RESULTS_FILE): ReplayResults {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new RetapError(ErrorCodes.SNAPSHOT_INVALID, `${where}: not JSON (${(e as Error).message})`, {
      hint: 'Point at the results.json that `retap replay` wrote.',
    });
  }
  checkFormat(raw, where, 1);
  const r = raw as Stored;
  return {
    ...r,
    recorded: r.recorded.map(decodeRecorded),
    runs: r.runs.map((run: Stored) => ({ ...run, items: run.items.map(decodeRunItem) })),
  } as ReplayResults;
}

function checkFormat(raw: Record<string, unknown> | null, where: string, version?: number): void {
  const ok =
    raw !== null &&
    typeof raw === 'object' &&
    raw.format === RESULTS_FORMAT &&
    (version === undefined
      ? raw.formatVersion === 1 || raw.formatVersion === RESULTS_FORMAT_VERSION
      : raw.formatVersion === version);
  if (ok) return;
  const newer =
    raw?.format === RESULTS_FORMAT &&
    typeof raw.formatVersion === 'number' &&
    raw.formatVersion > RESULTS_FORMAT_VERSION;
  throw new RetapError(
    ErrorCodes.SNAPSHOT_INVALID,
    `${where}: not a retap results file this version reads (format ${String(raw?.format)} v${String(raw?.formatVersion)})`,
    {
      hint: newer
        ? `It was written by a newer retap (results format ${String(raw?.formatVersion)}); read it with that version.`
        : `Expected format ${RESULTS_FORMAT} version 1 or ${RESULTS_FORMAT_VERSION}: point at the results.json that \`retap replay\` wrote.`,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Version 2: JSON Lines

/** The header of in-memory results (runs without their items). */
export function headerOf(r: ReplayResults): ResultsHeader {
  const { recorded: _recorded, runs, ...rest } = r;
  return {
    ...rest,
    runs: runs.map(({ items: _items, ...head }) => head),
  };
}

/**
 * In-memory results as item lines: each recorded item with every run's replay of it (matched by
 * id, in order when an id repeats), then any run item no recorded item names.
 */
export function* entriesOf(r: ReplayResults): Generator<ResultsEntry> {
  const queues = r.runs.map((run) => {
    const q = new Map<string, RunItem[]>();
    for (const it of run.items) {
      const list = q.get(it.id);
      if (list) list.push(it);
      else q.set(it.id, [it]);
    }
    return q;
  });
  for (const rec of r.recorded)
    yield { id: rec.id, recorded: rec, runs: queues.map((q) => q.get(rec.id)?.shift()) };
  for (let i = 0; i < r.runs.length; i++) {
    const q = queues[i]!;
    for (const it of r.runs[i]!.items) {
      const list = q.get(it.id);
      if (list?.[0] !== it) continue;
      list.shift();
      const runs: Array<RunItem | undefined> = r.runs.map(() => undefined);
      runs[i] = it;
      yield { id: it.id, runs };
    }
  }
}

/** An item line's text (no newline). */
export function encodeEntry(n: number, e: ResultsEntry): string {
  const line: Record<string, unknown> = { t: 'item', n, id: e.id };
  if (e.recorded) {
    line.route = e.recorded.route;
    line.session = e.recorded.session;
    line.exchange = enc(e.recorded.exchange);
    line.outbound = e.recorded.outbound.map(enc);
  }
  line.runs = e.runs.map((it) =>
    it === undefined
      ? null
      : {
          client: encodeClient(it.client),
          ...(it.live ? { live: enc(it.live) } : {}),
          outbound: it.outbound.map(enc),
        },
  );
  try {
    return JSON.stringify(line);
  } catch (e) {
    throw tooLarge(e, 1);
  }
}

/**
 * Writes a results file line by line: `create` (header), `add` each item, `close` (trailer, then
 * the temp file takes the final name). Lines are buffered and written in chunks, with the disk's
 * pace (await each `add`). `abort` removes the temp file; nothing half-written keeps the name.
 */
export class ResultsWriter {
  private pending: string[] = [];
  private pendingBytes = 0;
  private items = 0;
  private readonly runItems: number[];
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly tmp: string,
    private readonly fh: FileHandle,
    private readonly runCount: number,
  ) {
    this.runItems = new Array<number>(runCount).fill(0);
  }

  /** Opens `dir/results.json` for writing (a temp file until `close`) and writes the header. */
  static async create(dir: string, header: ResultsHeader): Promise<ResultsWriter> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, RESULTS_FILE);
    const tmp = join(dirname(path), `.${RESULTS_FILE}.${randomBytes(4).toString('hex')}.tmp`);
    const fh = await open(tmp, 'wx', 0o600);
    const w = new ResultsWriter(path, tmp, fh, header.runs.length);
    const { format: _f, formatVersion: _v, ...rest } = header;
    await w.push(
      JSON.stringify({ t: 'header', format: RESULTS_FORMAT, formatVersion: RESULTS_FORMAT_VERSION, ...rest }),
    );
    return w;
  }

  async add(e: ResultsEntry): Promise<void> {
    if (e.runs.length !== this.runCount)
      throw new Error(`results item ${e.id}: ${e.runs.length} run answers for ${this.runCount} runs`);
    await this.push(encodeEntry(this.items, e));
    this.items++;
    e.runs.forEach((it, i) => {
      if (it) this.runItems[i]!++;
    });
  }

  /** What was added so far (the trailer's counts). */
  counts(): ResultsTrailer {
    return { items: this.items, runItems: [...this.runItems] };
  }

  /** Writes the trailer, syncs, and renames the file into place; returns its path. */
  async close(): Promise<string> {
    const trailer: ResultsTrailer = { items: this.items, runItems: this.runItems };
    await this.push(JSON.stringify({ t: 'end', ...trailer }));
    await this.flush();
    await this.fh.sync();
    await this.fh.close();
    this.closed = true;
    await rename(this.tmp, this.path);
    return this.path;
  }

  async abort(): Promise<void> {
    if (!this.closed) await this.fh.close().catch(() => undefined);
    this.closed = true;
    await rm(this.tmp, { force: true });
  }

  private async push(line: string): Promise<void> {
    this.pending.push(line, '\n');
    this.pendingBytes += line.length + 1;
    if (this.pendingBytes >= 1 << 20) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const chunk = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    await this.fh.write(chunk);
  }
}

/** Writes `dir/results.json` (format 2, JSON Lines) atomically; returns its path. */
export async function writeResults(dir: string, r: ReplayResults): Promise<string> {
  // every run item goes out on some line: checked before the file takes its name
  const expected = r.runs.map((run) => run.items.length);
  return writeResultsStream(dir, headerOf(r), entriesOf(r), (t) => {
    if (t.items < r.recorded.length || t.runItems.some((n, i) => n !== expected[i]))
      throw new RetapError(
        ErrorCodes.INTERNAL,
        `results writer: ${JSON.stringify(t.runItems)} run items written of ${JSON.stringify(expected)}`,
      );
  });
}

/** Writes a results file from a header and its items as they come; returns its path. */
export async function writeResultsStream(
  dir: string,
  header: ResultsHeader,
  entries: Iterable<ResultsEntry> | AsyncIterable<ResultsEntry>,
  check?: (written: ResultsTrailer) => void,
): Promise<string> {
  const w = await ResultsWriter.create(dir, header);
  try {
    for await (const e of entries) await w.add(e);
    check?.(w.counts());
    return await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading (both versions)

/** A results file open for reading: its header, then its items, once, in file order. */
export interface ResultsStream {
  path: string;
  header: ResultsHeader;
  /**
   * The items, read as they are iterated (version 2) or from the decoded document (version 1).
   * Throws RETAP_RESULTS_INCOMPLETE at the end when the trailer is missing or its counts disagree
   * with the lines read, RETAP_SNAPSHOT_INVALID at a line that is not an item.
   */
  entries(): AsyncGenerator<ResultsEntry>;
  /** The trailer as read (after `entries()` ran to its end). */
  trailer(): ResultsTrailer | undefined;
  /** A version 1 file: the whole document, already decoded (its runs' items in their own order). */
  document?: ReplayResults;
}

async function resolvePath(pathOrDir: string): Promise<string> {
  const st = await stat(pathOrDir).catch((e: unknown) => {
    throw new RetapError(
      ErrorCodes.SNAPSHOT_NOT_FOUND,
      `cannot read results ${pathOrDir}: ${(e as Error).message}`,
      {
        cause: e,
        hint: 'Run `retap replay … --out DIR` first, and give that DIR or its results.json.',
      },
    );
  });
  if (!st.isDirectory()) return pathOrDir;
  const path = join(pathOrDir, RESULTS_FILE);
  await stat(path).catch((e: unknown) => {
    throw new RetapError(ErrorCodes.SNAPSHOT_NOT_FOUND, `no ${RESULTS_FILE} in ${pathOrDir}`, {
      cause: e,
      hint: 'Run `retap replay … --out DIR` first.',
    });
  });
  return path;
}

/** Opens a results file (or `DIR/results.json`) of either version for reading item by item. */
export async function openResults(pathOrDir: string): Promise<ResultsStream> {
  const path = await resolvePath(pathOrDir);
  const input = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  const lines = rl[Symbol.asyncIterator]();
  const close = (): void => {
    rl.close();
    input.destroy();
  };
  let first: IteratorResult<string>;
  try {
    first = await lines.next();
  } catch (e) {
    close();
    throw new RetapError(
      ErrorCodes.SNAPSHOT_NOT_FOUND,
      `cannot read results ${path}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  let head: Stored;
  try {
    head = first.done ? undefined : JSON.parse(first.value);
  } catch {
    head = undefined; // a version 1 document starts with a line of its own ("{")
  }
  if (head?.t !== 'header') {
    close();
    return openV1(path);
  }
  checkFormat(head, `${path}:1`, RESULTS_FORMAT_VERSION);
  const { t: _t, ...fields } = head;
  const header = fields as ResultsHeader;
  if (!Array.isArray(header.runs))
    throw new RetapError(ErrorCodes.SNAPSHOT_INVALID, `${path}:1: the header has no runs list`);
  const runCount = header.runs.length;
  let trailer: ResultsTrailer | undefined;
  let used = false;

  async function* entries(): AsyncGenerator<ResultsEntry> {
    if (used) throw new Error(`${path}: the results' items were already read`);
    used = true;
    let lineNo = 1;
    let n = 0;
    const runItems = new Array<number>(runCount).fill(0);
    const invalid = (msg: string): RetapError =>
      new RetapError(ErrorCodes.SNAPSHOT_INVALID, `${path}:${lineNo}: ${msg}`, {
        hint: 'The results file was changed after `retap replay` wrote it; replay again.',
      });
    try {
      for (;;) {
        const next = await lines.next();
        if (next.done) break;
        lineNo++;
        if (next.value === '') continue;
        if (trailer) throw invalid('a line after the trailer');
        let line: Stored;
        try {
          line = JSON.parse(next.value);
        } catch (e) {
          const after = await lines.next();
          if (after.done)
            throw new RetapError(
              ErrorCodes.RESULTS_INCOMPLETE,
              `${path}: ends inside line ${lineNo} after ${n} items, without its trailer: the replay or the copy was cut short; not judged`,
              { hint: 'Replay again, or copy the whole file.' },
            );
          throw invalid(`not JSON (${(e as Error).message})`);
        }
        if (line?.t === 'end') {
          trailer = { items: line.items, runItems: line.runItems };
          continue;
        }
        if (line?.t !== 'item') throw invalid(`not an item line (t: ${String(line?.t)})`);
        if (line.n !== n)
          throw invalid(`item ${n} expected, found item ${String(line.n)}: a line is missing or repeated`);
        if (!Array.isArray(line.runs) || line.runs.length !== runCount)
          throw invalid(
            `item ${line.id} has answers for ${line.runs?.length ?? 0} runs, the header lists ${runCount}`,
          );
        const runs = line.runs.map((r: Stored, i: number) => {
          if (r === null) return undefined;
          runItems[i]!++;
          return decodeRunItem({ id: line.id, ...r });
        });
        const entry: ResultsEntry = { id: line.id, runs };
        if (line.exchange)
          entry.recorded = decodeRecorded({
            id: line.id,
            route: line.route,
            session: line.session,
            exchange: line.exchange,
            outbound: line.outbound ?? [],
          });
        n++;
        yield entry;
      }
    } finally {
      close();
    }
    if (!trailer)
      throw new RetapError(
        ErrorCodes.RESULTS_INCOMPLETE,
        `${path}: ends after ${n} items without its trailer line: the replay or the copy was cut short; not judged`,
        {
          hint: 'Replay again, or copy the whole file (`tail -1` of a whole results file is its {"t":"end",…} line).',
        },
      );
    const t: ResultsTrailer = trailer;
    const counts = t.runItems?.length === runCount && t.runItems.every((c, i) => c === runItems[i]);
    if (t.items !== n || !counts)
      throw new RetapError(
        ErrorCodes.RESULTS_INCOMPLETE,
        `${path}: the trailer counts ${t.items} items (per run ${JSON.stringify(t.runItems)}) but ${n} were read (per run ${JSON.stringify(runItems)}): items were lost; not judged`,
        { hint: 'Replay again, or copy the whole file.' },
      );
  }

  return { path, header, entries, trailer: () => trailer };
}

async function openV1(path: string): Promise<ResultsStream> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw code === 'ERR_STRING_TOO_LONG' || e instanceof RangeError
      ? new RetapError(
          ErrorCodes.RESULTS_TOO_LARGE,
          `${path}: a version 1 results file (one JSON document) past 512 MiB cannot be read`,
          { cause: e, hint: 'Replay again with this retap: it writes results as JSON Lines.' },
        )
      : new RetapError(
          ErrorCodes.SNAPSHOT_NOT_FOUND,
          `cannot read results ${path}: ${(e as Error).message}`,
          {
            cause: e,
          },
        );
  }
  const r = decodeResults(text, path);
  text = '';
  let used = false;
  let trailer: ResultsTrailer | undefined;
  return {
    path,
    header: headerOf(r),
    document: r,
    trailer: () => trailer,
    async *entries() {
      if (used) throw new Error(`${path}: the results' items were already read`);
      used = true;
      let items = 0;
      for (const e of entriesOf(r)) {
        items++;
        yield e;
      }
      trailer = { items, runItems: r.runs.map((run) => run.items.length) };
    },
  };
}

/** Reads a whole results file (either version), or `DIR/results.json` when given a directory. */
export async function readResults(pathOrDir: string): Promise<ReplayResults> {
  const s = await openResults(pathOrDir);
  if (s.document) return s.document;
  const recorded: RecordedItem[] = [];
  const runs: ReplayRun[] = s.header.runs.map((h) => ({ ...h, items: [] }));
  for await (const e of s.entries()) {
    if (e.recorded) recorded.push(e.recorded);
    e.runs.forEach((it, i) => {
      if (it) runs[i]!.items.push(it);
    });
  }
  const { runs: _runs, ...rest } = s.header;
  return { ...rest, recorded, runs } as ReplayResults;
}
