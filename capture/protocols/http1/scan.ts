/** Byte scans over a buffer: end of a header section, and message starts for resync after a gap. */
import { parseRequestLine, parseStatusLine } from '../../../core/http1.js';

export const KNOWN_METHODS = new Set([
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'CONNECT',
  'TRACE',
]);

const LF = 10;
const CR = 13;

/**
 * Finds the empty line ending a header section that starts at or before `from`. Returns the
 * index where the section's text ends (the `\n` of its last line) and the index after the empty
 * line; or `resume`, where the next search should start once more bytes arrive.
 */
export function findHeadEnd(
  buf: Uint8Array,
  from: number,
): { textEnd: number; after: number; resume?: undefined } | { resume: number } {
  const len = buf.length;
  let i = (buf as Buffer).indexOf(LF, from);
  while (i !== -1) {
    const n = i + 1;
    if (n >= len) break;
    const c = buf[n];
    if (c === LF) return { textEnd: i, after: n + 1 };
    if (c === CR) {
      if (n + 1 >= len) break;
      if (buf[n + 1] === LF) return { textEnd: i, after: n + 2 };
    }
    i = (buf as Buffer).indexOf(LF, n);
  }
  return { resume: Math.max(from, len - 2) };
}

const STATUS_PREFIX = Buffer.from('HTTP/1.');
const REQUEST_MARK = Buffer.from(' HTTP/1.');

export type StartScan =
  /** A message starts at `at`. */
  | { at: number }
  /** Not decided: keep bytes from `keep` and scan again with more data. */
  | { keep: number };

function lineAt(buf: Buffer, start: number, nl: number): string {
  const end = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
  return buf.toString('latin1', start, end);
}

/**
 * What is known about the byte before `from`: `line` (a line break, so a start line may begin
 * at `from`), `gap` (lost bytes: accepted for requests only with a well-known method, so the tail
 * of a cut line does not pass for a request), or `none`.
 */
export type StartContext = 'line' | 'gap' | 'none';

/** Looks for the start of the next message in `buf[from..]`. */
export function findMessageStart(
  buf: Buffer,
  from: number,
  kind: 'request' | 'response',
  ctx: StartContext,
): StartScan {
  const len = buf.length;
  if (kind === 'response') {
    let i = buf.indexOf(STATUS_PREFIX, from);
    while (i !== -1) {
      if ((i === from && ctx !== 'none') || (i > from && buf[i - 1] === LF)) {
        const nl = buf.indexOf(LF, i);
        if (nl === -1) return len - i > 1024 ? { keep: len } : { keep: i };
        if (parseStatusLine(lineAt(buf, i, nl))) return { at: i };
      }
      i = buf.indexOf(STATUS_PREFIX, i + 1);
    }
    return { keep: Math.max(from, len - STATUS_PREFIX.length) };
  }
  let i = buf.indexOf(REQUEST_MARK, from);
  while (i !== -1) {
    const prev = buf.lastIndexOf(LF, i);
    const start = prev >= from ? prev + 1 : from;
    const afterBreak = prev >= from || ctx === 'line';
    const nl = buf.indexOf(LF, i);
    if (nl === -1) return len - start > 16 * 1024 ? { keep: len } : { keep: start };
    if (afterBreak || ctx === 'gap') {
      const parsed = parseRequestLine(lineAt(buf, start, nl));
      if (parsed && (afterBreak || KNOWN_METHODS.has(parsed[0]))) return { at: start };
    }
    i = buf.indexOf(REQUEST_MARK, i + 1);
  }
  // Keep the last (possibly incomplete) line: it may become a request line.
  const prev = buf.lastIndexOf(LF, len - 1);
  const keep = prev >= from ? prev + 1 : from;
  return { keep: len - keep > 16 * 1024 ? len : keep };
}
