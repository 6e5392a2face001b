/** HTTP/2 framing constants (RFC 9113 §4, §6) and a plausibility check used for detection and resync. */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 1,
  MAX_FRAME_SIZE: 5,
} as const;

export interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  stream: number;
}

export function readFrameHeader(b: Uint8Array, at: number): FrameHeader {
  return {
    length: (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!,
    type: b[at + 3]!,
    flags: b[at + 4]!,
    stream: ((b[at + 5]! & 0x7f) * 0x1000000 + (b[at + 6]! << 16)) | (b[at + 7]! << 8) | b[at + 8]!,
  };
}

/** Largest frame length we accept when guessing frame boundaries (the default max is 16 KiB). */
const GUESS_MAX_LENGTH = 1 << 20;

/**
 * Could a well-formed frame header start here? Strict per type (stream 0 or not, fixed lengths,
 * known flags), so random bytes rarely pass twice in a row.
 */
export function plausibleFrame(h: FrameHeader, reservedBit: number): boolean {
  if (reservedBit !== 0 || h.length > GUESS_MAX_LENGTH) return false;
  switch (h.type) {
    case FrameType.DATA:
      return h.stream !== 0 && (h.flags & ~0x09) === 0;
    case FrameType.HEADERS:
      return h.stream !== 0 && (h.flags & ~0x2d) === 0 && h.length > 0;
    case FrameType.PRIORITY:
      return h.stream !== 0 && h.length === 5 && h.flags === 0;
    case FrameType.RST_STREAM:
      return h.stream !== 0 && h.length === 4 && h.flags === 0;
    case FrameType.SETTINGS:
      return (
        h.stream === 0 && (h.flags & ~0x01) === 0 && h.length % 6 === 0 && (h.flags === 0 || h.length === 0)
      );
    case FrameType.PUSH_PROMISE:
      return h.stream !== 0 && (h.flags & ~0x0c) === 0 && h.length >= 4;
    case FrameType.PING:
      return h.stream === 0 && h.length === 8 && (h.flags & ~0x01) === 0;
    case FrameType.GOAWAY:
      return h.stream === 0 && h.length >= 8 && h.flags === 0;
    case FrameType.WINDOW_UPDATE:
      return h.length === 4 && h.flags === 0;
    case FrameType.CONTINUATION:
      return h.stream !== 0 && (h.flags & ~0x04) === 0;
    default:
      return false;
  }
}

/**
 * Looks for a frame boundary in `b[from..]`: a plausible header whose successor (if it fits in
 * the buffer) is plausible too. Returns the offset, or -1 when none; `needMore` when the best
 * candidate cannot be confirmed yet.
 */
export function findFrameBoundary(b: Uint8Array, from: number): { at: number; needMore: boolean } {
  for (let i = from; i + 9 <= b.length; i++) {
    const h = readFrameHeader(b, i);
    if (!plausibleFrame(h, b[i + 5]! & 0x80)) continue;
    const next = i + 9 + h.length;
    if (next === b.length) return { at: i, needMore: false };
    if (next + 9 > b.length) return { at: i, needMore: true };
    const h2 = readFrameHeader(b, next);
    if (plausibleFrame(h2, b[next + 5]! & 0x80)) return { at: i, needMore: false };
  }
  return { at: -1, needMore: false };
}
