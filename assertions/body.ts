/**
 * What a body is for comparison: empty, JSON (parsed), text or binary. Content-Encoding is
 * taken from `decoded` when capture could decode it.
 */
import { createHash } from 'node:crypto';
import type { Body, HeaderList } from '../core/exchange.js';
import { headerValue } from '../core/exchange.js';

export type BodyView =
  | { kind: 'empty'; truncated: boolean }
  | { kind: 'json'; value: unknown; truncated: boolean }
  | { kind: 'text'; text: string; truncated: boolean }
  | { kind: 'binary'; bytes: Uint8Array; truncated: boolean };

const decoder = new TextDecoder('utf-8', { fatal: true });

function asText(bytes: Uint8Array): string | undefined {
  try {
    const text = decoder.decode(bytes);
    // control characters other than tab/newline/CR mean binary
    return /[\u0000-\u0008\u000e-\u001f]/.test(text) ? undefined : text;
  } catch {
    return undefined;
  }
}

export function viewBytes(bytes: Uint8Array | undefined, headers: HeaderList, truncated = false): BodyView {
  if (!bytes || bytes.length === 0) return { kind: 'empty', truncated };
  const type = (headerValue(headers, 'content-type') ?? '').toLowerCase();
  const text = asText(bytes);
  if (text === undefined) return { kind: 'binary', bytes, truncated };
  const looksJson = type.includes('json') || /^\s*[[{]/.test(text);
  if (looksJson && !truncated) {
    try {
      return { kind: 'json', value: JSON.parse(text), truncated };
    } catch {
      // declared JSON that does not parse is compared as text
    }
  }
  return { kind: 'text', text, truncated };
}

export function viewBody(body: Body | undefined, headers: HeaderList): BodyView {
  if (!body) return { kind: 'empty', truncated: false };
  return viewBytes(body.decoded ?? body.data, headers, body.truncated);
}

export function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** First differing line of two texts, 1-based, with both lines. */
export function firstTextDifference(
  a: string,
  b: string,
): { line: number; recorded: string; candidate: string } | undefined {
  if (a === b) return undefined;
  const la = a.split('\n');
  const lb = b.split('\n');
  const n = Math.max(la.length, lb.length);
  for (let i = 0; i < n; i++) {
    if (la[i] !== lb[i]) return { line: i + 1, recorded: la[i] ?? '', candidate: lb[i] ?? '' };
  }
  return undefined;
}
