/**
 * What the viewer knows about the traffic: the rows (columns.ts), the text index, and the file
 * the rows point into. Sources feed it one stored exchange at a time; it never keeps the decoded
 * exchanges. Lines are read back by byte offset when shown or filtered on their contents.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { searchableTexts } from '../snapshots/index.js';
import { Columns } from './columns.js';
import { TextIndex } from './text-index.js';

// biome-ignore lint/suspicious/noExplicitAny: schema-checked stored exchange
export type Stored = any;

export interface BrokenLine {
  where: string;
  message: string;
}

/** Reads byte ranges of a file that may still be growing (live spools). */
export class LineFile {
  private fh: Promise<FileHandle> | undefined;
  constructor(readonly path: string) {}

  private handle(): Promise<FileHandle> {
    this.fh ??= open(this.path, 'r');
    return this.fh;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const fh = await this.handle();
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) throw new Error(`${this.path}: ends before byte ${offset + length}`);
      got += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh) await (await fh).close();
  }
}

export class Store {
  readonly columns = new Columns();
  readonly text = new TextIndex();
  readonly broken: BrokenLine[] = [];
  brokenCount = 0;
  /** Lines read back from the file (for tests and the health line: the text index should keep it low). */
  linesRead = 0;
  /** Bumped on every change; cached searches extend themselves when it moved. */
  generation = 0;
  private listeners = new Set<() => void>();

  constructor(readonly file: LineFile) {}

  /** Indexes one stored exchange at [offset, offset + length) of the file. */
  add(v: Stored, offset: number, length: number, extraFlags = 0): number {
    const texts = searchableTexts(v); // first: a malformed exchange throws before any column moves
    const n = this.columns.add(v, offset, length, extraFlags);
    this.text.add(n, texts);
    return n;
  }

  /** A line that could not be used: counted and shown, the rest is kept. */
  addBroken(where: string, message: string): void {
    this.brokenCount++;
    if (this.broken.length < 100) this.broken.push({ where, message });
  }

  /** Tells listeners (searches, the browser's event stream) that rows were added. */
  changed(): void {
    this.generation++;
    for (const l of this.listeners) l();
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get count(): number {
    return this.columns.count;
  }

  /** The stored line of row `n`, parsed. */
  async line(n: number): Promise<Stored> {
    const c = this.columns;
    if (n < 0 || n >= c.count) throw new RangeError(`no row ${n}`);
    const buf = await this.file.read(c.off[n]!, c.len[n]!);
    return JSON.parse(buf.toString('utf8'));
  }

  /**
   * Reads the lines of sorted rows `rows[from..to)`, in spans of neighbouring rows read at once
   * (rows of a block sit next to each other in the file), calling `fn(row, text)` for each.
   */
  async eachLine(rows: ArrayLike<number>, from: number, to: number, fn: (row: number, text: string) => void): Promise<void> {
    const c = this.columns;
    const SPAN = 1 << 20;
    let i = from;
    while (i < to) {
      const first = rows[i]!;
      const start = c.off[first]!;
      let j = i + 1;
      let end = start + c.len[first]!;
      while (j < to) {
        const r = rows[j]!;
        const o = c.off[r]!;
        const e = o + c.len[r]!;
        if (o < start || e - start > SPAN || o - end > 64 * 1024) break;
        end = Math.max(end, e);
        j++;
      }
      const buf = await this.file.read(start, end - start);
      this.linesRead += j - i;
      for (let k = i; k < j; k++) {
        const r = rows[k]!;
        const o = c.off[r]! - start;
        fn(r, buf.toString('utf8', o, o + c.len[r]!));
      }
      i = j;
    }
  }

  memory(): { columns: number; text: number } {
    return { columns: this.columns.bytes(), text: this.text.bytes() };
  }
}
