/**
 * Protocol registry: decoders register themselves; capture asks `detect` with the first bytes a
 * side sent and creates the chosen decoder for the connection. Order matters: the first decoder
 * that says `match` wins, so precise signatures register before heuristic ones.
 */
import { ErrorCodes, RetapError } from '../../core/errors.js';
import type { ProtocolDecoder, Side } from './types.js';

const registered: ProtocolDecoder[] = [];

/** Adds a decoder (or replaces one with the same name, keeping its place). */
export function registerDecoder(d: ProtocolDecoder): void {
  if (!d || typeof d.name !== 'string' || typeof d.detect !== 'function' || typeof d.create !== 'function') {
    throw new RetapError(
      ErrorCodes.INTERNAL,
      'registerDecoder was given something that is not a ProtocolDecoder',
      {
        hint: 'Pass an object with name, detect(first, side) and create(sink, options).',
      },
    );
  }
  const at = registered.findIndex((r) => r.name === d.name);
  if (at >= 0) registered[at] = d;
  else registered.push(d);
}

export function decoders(): readonly ProtocolDecoder[] {
  return registered;
}

export function decoderByName(name: string): ProtocolDecoder | undefined {
  return registered.find((d) => d.name === name);
}

/**
 * Chooses a decoder from the first bytes one side sent: the first `match` wins; if none matches
 * but one needs more bytes, `more`; otherwise `unknown`. A decoder that throws counts as `no`.
 */
export function detect(first: Uint8Array, side: Side): { decoder: ProtocolDecoder } | 'more' | 'unknown' {
  let more = false;
  for (const d of registered) {
    let r: 'match' | 'no' | 'more';
    try {
      r = d.detect(first, side);
    } catch {
      r = 'no';
    }
    if (r === 'match') return { decoder: d };
    if (r === 'more') more = true;
  }
  return more ? 'more' : 'unknown';
}
