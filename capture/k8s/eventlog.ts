/**
 * A capture's events, numbered and kept in a bounded buffer so a reader whose connection broke
 * can come back and continue after the last sequence number it saw. When the buffer is full the
 * oldest events go; a reader that asks for them is told exactly which sequence numbers are gone.
 */
import type { ServerResponse } from 'node:http';
import { encodeEvent, type WireEvent } from './wire.js';

type Pending = WireEvent extends infer E ? (E extends { seq: number } ? Omit<E, 'seq'> : never) : never;

interface Entry {
  seq: number;
  line: string;
}

export class EventLog {
  private entries: Entry[] = [];
  private head = 0; // index of the oldest kept entry in `entries`
  private bytes = 0;
  private nextSeq = 1;
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(private readonly maxBytes: number) {}

  /** Appends an event and returns its sequence number. Ignored once closed. */
  push(ev: Pending): number {
    if (this.closed) return 0;
    const seq = this.nextSeq++;
    const line = encodeEvent({ ...ev, seq } as WireEvent);
    this.entries.push({ seq, line });
    this.bytes += line.length;
    // keep at least the newest event, whatever its size
    while (this.bytes > this.maxBytes && this.entries.length - this.head > 1) {
      this.bytes -= this.entries[this.head]!.line.length;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    this.wake();
    return seq;
  }

  /** No more events will come (the last one pushed was `end`). */
  close(): void {
    this.closed = true;
    this.wake();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  get bufferedBytes(): number {
    return this.bytes;
  }

  /**
   * Lines after `after`, and the range of sequence numbers that were wanted but are gone. At
   * most `maxLines` lines at a time so a writer can respect backpressure.
   */
  read(
    after: number,
    maxLines = 512,
  ): { lines: string[]; last: number; lost?: { fromSeq: number; toSeq: number } } {
    const oldest = this.entries[this.head]?.seq ?? this.nextSeq;
    let lost: { fromSeq: number; toSeq: number } | undefined;
    let from = after + 1;
    if (from < oldest) {
      lost = { fromSeq: from, toSeq: oldest - 1 };
      from = oldest;
    }
    const start = this.head + (from - oldest);
    const slice = this.entries.slice(start, start + maxLines);
    const last = slice.length ? slice[slice.length - 1]!.seq : from - 1;
    return { lines: slice.map((e) => e.line), last, ...(lost ? { lost } : {}) };
  }

  /** Resolves when an event is pushed or the log closes (or at once if either already happened after `after`). */
  wait(after: number): Promise<void> {
    if (this.closed || this.lastSeq > after) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/**
 * Writes a log's events after `after` to an HTTP answer (NDJSON) until the log closes or the
 * client goes, honouring backpressure; a range the log no longer holds is announced with a
 * `lost` event first. `done` is called when the client stops reading.
 */
export async function serveEvents(
  log: EventLog,
  after: number,
  res: ServerResponse,
  done: () => void,
): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  res.flushHeaders();
  let gone = false;
  const closed = new Promise<void>((r) => {
    res.once('close', () => {
      gone = true;
      r();
    });
  });
  let cursor = after;
  try {
    while (!gone) {
      const { lines, last, lost } = log.read(cursor);
      if (lost)
        res.write(encodeEvent({ t: 'lost', seq: lost.toSeq, fromSeq: lost.fromSeq, toSeq: lost.toSeq }));
      if (lines.length) {
        cursor = last;
        if (!res.write(lines.join('')))
          await Promise.race([new Promise<void>((r) => res.once('drain', r)), closed]);
        continue;
      }
      if (log.isClosed && cursor >= log.lastSeq) break;
      await Promise.race([log.wait(cursor), closed]);
    }
    if (!gone) res.end();
  } finally {
    done();
  }
}
