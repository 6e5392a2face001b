/**
 * One direction of one stream, put back in order by byte position. Records that arrive ahead of
 * the expected position wait until the end of the current batch (the reorder window); then the
 * hole becomes an explicit gap. Overlaps (a record already delivered) are trimmed, never repeated.
 */

export interface StreamOutput {
  data(bytes: Uint8Array, ts: number): void;
  gap(length: number, ts: number): void;
}

interface Held {
  pos: number;
  size: number;
  payload: Uint8Array;
  ts: number;
}

export class Reassembler {
  /** Next expected byte position. */
  next = 0;
  /** Bytes lost so far (explicit gaps, including size-only records). */
  lost = 0;
  private held: Held[] = [];
  private started = false;

  constructor(private readonly out: StreamOutput) {}

  /** `payload.length` bytes were captured of the `size` bytes at `pos`. */
  push(pos: number, size: number, payload: Uint8Array, ts: number): void {
    if (!this.started) {
      // A stream first seen mid-way (fd opened before capture) starts where we joined it.
      this.started = true;
      this.next = pos;
    }
    if (pos === this.next) {
      this.deliver(pos, size, payload, ts);
      if (this.held.length) this.drainHeld();
      return;
    }
    if (pos < this.next) {
      const skip = this.next - pos;
      if (skip >= size) return; // duplicate
      const keep = payload.length > skip ? payload.subarray(skip) : new Uint8Array(0);
      this.deliver(this.next, size - skip, keep, ts);
      if (this.held.length) this.drainHeld();
      return;
    }
    // Copy: the batch buffer behind `payload` may be reused once the batch is done.
    this.held.push({ pos, size, payload: payload.slice(), ts });
  }

  /** End of a batch (or of the stream): whatever still waits is behind a hole; declare it. */
  flush(): void {
    while (this.held.length) {
      this.held.sort((a, b) => a.pos - b.pos);
      const first = this.held[0]!;
      if (first.pos > this.next) {
        const hole = first.pos - this.next;
        this.lost += hole;
        this.out.gap(hole, first.ts);
        this.next = first.pos;
      }
      this.drainHeld();
    }
  }

  /** The stream ended at byte `end`: anything between here and there was lost. */
  endAt(end: number, ts: number): void {
    // a direction that never delivered anything started at 0 (connections are tracked from their first byte)
    this.started = true;
    if (end <= this.next) return;
    const hole = end - this.next;
    this.lost += hole;
    this.out.gap(hole, ts);
    this.next = end;
  }

  get pending(): number {
    return this.held.length;
  }

  private deliver(pos: number, size: number, payload: Uint8Array, ts: number): void {
    if (payload.length) this.out.data(payload, ts);
    if (size > payload.length) {
      this.lost += size - payload.length;
      this.out.gap(size - payload.length, ts);
    }
    this.next = pos + size;
  }

  private drainHeld(): void {
    let progressed = true;
    while (progressed && this.held.length) {
      progressed = false;
      for (let i = 0; i < this.held.length; i++) {
        const h = this.held[i]!;
        if (h.pos <= this.next) {
          this.held.splice(i, 1);
          progressed = true;
          if (h.pos + h.size <= this.next) break; // fully duplicate
          const skip = this.next - h.pos;
          this.deliver(this.next, h.size - skip, h.payload.subarray(Math.min(skip, h.payload.length)), h.ts);
          break;
        }
      }
    }
  }
}
