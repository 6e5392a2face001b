import { describe, expect, it } from 'vitest';
import { traceIdOf } from './trace.js';

describe('trace ids an application propagates', () => {
  it('reads W3C traceparent', () => {
    expect(traceIdOf([['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']])).toBe(
      '4bf92f3577b34da6a3ce929d0e0e4736',
    );
    expect(traceIdOf([['TraceParent', ' 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-00 ']])).toBe(
      '4bf92f3577b34da6a3ce929d0e0e4736',
    );
  });

  it('refuses invalid traceparents (version ff, all-zero id, wrong lengths)', () => {
    for (const v of [
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01',
      'garbage',
    ])
      expect(traceIdOf([['traceparent', v]]), v).toBeUndefined();
  });

  it('reads B3 (single header and X-B3-TraceId; 64-bit ids padded to 128)', () => {
    expect(traceIdOf([['b3', '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1']])).toBe(
      '80f198ee56343ba864fe8b2a57d3eff7',
    );
    expect(traceIdOf([['X-B3-TraceId', '463ac35c9f6413ad']])).toBe('0000000000000000463ac35c9f6413ad');
    expect(traceIdOf([['b3', '1']])).toBeUndefined();
  });

  it('prefers traceparent over B3, and says nothing without either', () => {
    expect(
      traceIdOf([
        ['b3', '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1'],
        ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
      ]),
    ).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(traceIdOf([['x-request-id', 'abc']])).toBeUndefined();
  });
});
