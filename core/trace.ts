/**
 * Trace context an application propagates: the trace id of a request from its W3C `traceparent`
 * header or its B3 headers (`b3` single header, `X-B3-TraceId`). An outbound call carrying the
 * trace id of exactly one inbound request was made for that request.
 */
import type { HeaderList } from './exchange.js';

const HEX = /^[0-9a-f]+$/;
const ZERO = /^0+$/;

/** `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; version ff and all-zero ids are invalid. */
function fromTraceparent(v: string): string | undefined {
  const parts = v.trim().toLowerCase().split('-');
  if (parts.length < 4) return undefined;
  const [version, trace, parent] = parts as [string, string, string];
  if (version.length !== 2 || !HEX.test(version) || version === 'ff') return undefined;
  if (trace.length !== 32 || !HEX.test(trace) || ZERO.test(trace)) return undefined;
  if (parent.length !== 16 || !HEX.test(parent)) return undefined;
  return trace;
}

/** B3 trace ids are 16 or 32 hex digits; a 64-bit one is the low half of a 128-bit id. */
function fromB3Id(v: string): string | undefined {
  const t = v.trim().toLowerCase();
  if ((t.length !== 16 && t.length !== 32) || !HEX.test(t) || ZERO.test(t)) return undefined;
  return t.padStart(32, '0');
}

/** The request's trace id (32 lower-case hex digits), or undefined when it carries none. */
export function traceIdOf(headers: HeaderList): string | undefined {
  let b3: string | undefined;
  for (const [name, value] of headers) {
    // by length first: this runs for every captured request, and most headers are none of these
    const l = name.length;
    if (l !== 11 && l !== 2 && l !== 12) continue;
    const n = name.toLowerCase();
    if (n === 'traceparent') {
      const t = fromTraceparent(value);
      if (t) return t;
    } else if (n === 'b3') {
      // `{TraceId}-{SpanId}[-{Sampled}[-{ParentSpanId}]]`; a lone `0`/`1`/`d` carries no id
      b3 ??= fromB3Id(value.split('-')[0] ?? '');
    } else if (n === 'x-b3-traceid') {
      b3 ??= fromB3Id(value);
    }
  }
  return b3;
}
