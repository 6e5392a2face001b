/** Small byte helpers shared by the decoders: zero-copy views and a bounded growable buffer. */

/** A Buffer view over the same memory (no copy). */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export const EMPTY = Buffer.alloc(0);

/**
 * Bytes carried over between pushes (a header block split across chunks, a partial frame).
 * Grows by doubling; `clear` keeps the memory only while it is small.
 */
export class Carry {
  buf: Buffer = EMPTY;
  len = 0;

  append(data: Uint8Array, start = 0, end = data.length): void {
    const n = end - start;
    if (n <= 0) return;
    if (this.len + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(256, this.buf.length * 2, this.len + n));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    this.buf.set(data.subarray(start, end), this.len);
    this.len += n;
  }

  view(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  clear(): void {
    this.len = 0;
    if (this.buf.length > 64 * 1024) this.buf = EMPTY;
  }
}

/** Concatenates parts into one Buffer (no copy when there is a single Buffer part). */
export function joinParts(parts: Uint8Array[], total: number): Buffer {
  if (parts.length === 1 && Buffer.isBuffer(parts[0])) return parts[0];
  if (parts.length === 0) return EMPTY;
  return Buffer.concat(parts, total);
}
