/**
 * Runs a decoder over a scripted list of events and collects what it emits. Used by tests,
 * benchmarks and tools that decode recorded bytes (no capture involved).
 */
import type { DecodedExchange, DecoderOptions, ProtocolDecoder, Side, StreamDecoder } from './types.js';

export type StreamEvent =
  | { side: Side; data: Uint8Array; ts?: number }
  | { side: Side; gap: number; ts?: number };

export interface Collected {
  exchanges: DecodedExchange[];
  raw: Array<{ side: Side; bytes: number; reason: string }>;
  decoder: StreamDecoder;
}

export function decodeEvents(
  protocol: ProtocolDecoder,
  events: Iterable<StreamEvent>,
  options?: DecoderOptions,
  endTs?: number,
): Collected {
  const exchanges: DecodedExchange[] = [];
  const raw: Collected['raw'] = [];
  const decoder = protocol.create(
    { exchange: (ex) => exchanges.push(ex), raw: (side, bytes, reason) => raw.push({ side, bytes, reason }) },
    options,
  );
  let ts = 0;
  for (const ev of events) {
    ts = ev.ts ?? ts + 1;
    if ('gap' in ev) decoder.gap(ev.side, ev.gap, ts);
    else decoder.push(ev.side, ev.data, ts);
  }
  decoder.end(endTs ?? ts + 1);
  return { exchanges, raw, decoder };
}
