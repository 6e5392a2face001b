/**
 * Recognises HTTP/2: the client preface (h2c prior knowledge, or h2 over TLS where capture sees
 * plaintext), a server's opening SETTINGS frame, or, when capture joined mid-stream, two
 * consecutive plausible frames.
 */
import type { Side } from '../types.js';
import { FrameType, PREFACE, plausibleFrame, readFrameHeader } from './frames.js';

export function detectHttp2(first: Uint8Array, side: Side): 'match' | 'no' | 'more' {
  if (side === 'client') {
    const n = Math.min(first.length, PREFACE.length);
    let prefix = true;
    for (let i = 0; i < n; i++) {
      if (first[i] !== PREFACE[i]) {
        prefix = false;
        break;
      }
    }
    if (prefix) return first.length >= PREFACE.length ? 'match' : 'more';
  }
  if (first.length < 9) return looksLikeFrameStart(first) ? 'more' : 'no';
  const h = readFrameHeader(first, 0);
  if (!plausibleFrame(h, first[5]! & 0x80)) return 'no';
  // A server opens with SETTINGS: enough on its own.
  if (side === 'server' && h.type === FrameType.SETTINGS && h.stream === 0) return 'match';
  const next = 9 + h.length;
  if (first.length < next + 9) return next > 64 * 1024 ? 'no' : 'more';
  const h2 = readFrameHeader(first, next);
  return plausibleFrame(h2, first[next + 5]! & 0x80) ? 'match' : 'no';
}

/** Fewer than 9 bytes: could they begin a frame header? (length high byte small, type known) */
function looksLikeFrameStart(b: Uint8Array): boolean {
  if (b.length === 0) return true;
  if (b[0]! > 0x10) return false;
  if (b.length > 3 && b[3]! > 9) return false;
  return true;
}
