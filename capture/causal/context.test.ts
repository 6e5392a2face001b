/**
 * Execution context from the order of records (unit: the kernel path is in
 * test/e2e/causal-links.test.ts): who a write works for, per runtime, and the linker that waits
 * for a call's request.
 */
import { describe, expect, it } from 'vitest';
import type { Exchange } from '../../core/exchange.js';
import {
  DIR_IN,
  DIR_OUT,
  LOOP_REQ_DONE,
  LOOP_REQ_START,
  LOOP_REQ_START1,
  LOOP_TURN,
  ROLE_CLIENT,
  ROLE_SERVER,
} from '../events.js';
import type { DecodedExchange } from '../protocols/types.js';
import { ContextTracker } from './context.js';
import { Linker } from './linker.js';

const P = 100;
const server = (id: string) => ({ id, role: ROLE_SERVER, protocol: 'http1' });
const client = (id: string) => ({ id, role: ROLE_CLIENT, protocol: 'http1' });

describe('execution context', () => {
  it('thread-per-request: each thread writes for the request it read', () => {
    const t = new ContextTracker();
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.data(P, 2, DIR_IN, 11, server('B'));
    t.data(P, 2, DIR_OUT, 12, client('X'));
    t.data(P, 1, DIR_OUT, 13, client('Y'));
    expect(t.writeContext('X', 12)).toMatchObject({ stream: 'B', atNs: 11, method: 'thread' });
    expect(t.writeContext('Y', 13)).toMatchObject({ stream: 'A', atNs: 10, method: 'thread' });
  });

  it('a thread that answered its request works for nobody until it reads the next', () => {
    const t = new ContextTracker();
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.data(P, 1, DIR_OUT, 11, server('A'));
    t.data(P, 1, DIR_OUT, 12, client('X'));
    expect(t.writeContext('X', 12)).toBeUndefined();
  });

  it('a thread serving two requests at once is an event loop: its writes are not linked by thread', () => {
    const t = new ContextTracker();
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.data(P, 1, DIR_IN, 11, server('B')); // A unanswered
    t.data(P, 1, DIR_OUT, 12, client('X'));
    expect(t.writeContext('X', 12)).toBeUndefined();
    expect(t.multiplexedThreads).toBe(1);
  });

  it('Go without goroutine probes: a thread says nothing', () => {
    const t = new ContextTracker();
    t.setRuntime(P, 'go-unprobed');
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.data(P, 1, DIR_OUT, 11, client('X'));
    expect(t.writeContext('X', 11)).toBeUndefined();
  });

  it('node: the answer read on a call resumes the request that made it; a new connection belongs to its opener', () => {
    const t = new ContextTracker();
    t.setRuntime(P, 'node');
    const turn = () => t.loop(P, 1, LOOP_TURN, 0n); // libuv starts a callback
    turn();
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.data(P, 1, DIR_OUT, 11, client('X')); // A's first call
    turn();
    t.data(P, 1, DIR_IN, 12, server('B'));
    t.open(P, 1, ROLE_CLIENT, 'Y'); // B opens a connection
    turn();
    t.data(P, 1, DIR_IN, 13, client('X')); // A's answer: A resumes
    t.data(P, 1, DIR_OUT, 14, client('X')); // A's second call
    turn();
    t.data(P, 1, DIR_OUT, 15, client('Y')); // B's call, written from the connect callback
    expect(t.writeContext('X', 11)).toMatchObject({ stream: 'A', method: 'async-context' });
    expect(t.writeContext('X', 14)).toMatchObject({ stream: 'A', method: 'async-context' });
    expect(t.writeContext('Y', 15)).toMatchObject({ stream: 'B', method: 'async-context' });
  });

  it("node over TLS: the first request, written before the stream is bound to its socket, is the opener's", () => {
    const t = new ContextTracker();
    t.setRuntime(P, 'node');
    const turn = () => t.loop(P, 1, LOOP_TURN, 0n);
    turn();
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.open(P, 1, ROLE_CLIENT, 'S'); // A connects
    turn();
    t.data(P, 1, DIR_IN, 11, server('B'));
    turn();
    t.ciphertext(P, 1, DIR_OUT, client('S')); // ClientHello, from the connect callback
    turn();
    t.ciphertext(P, 1, DIR_IN, client('S')); // the handshake's last read: A resumes
    t.data(P, 1, DIR_OUT, 14, { id: 'T', role: 0, protocol: '' }); // SSL_write, stream not bound yet
    expect(t.writeContext('T', 14)).toMatchObject({ stream: 'A', atNs: 10, method: 'async-context' });
    // bound: the socket's records say nothing more about whose callback runs
    t.tlsBound('S');
    turn();
    t.ciphertext(P, 1, DIR_IN, client('S'));
    t.data(P, 1, DIR_OUT, 15, client('X'));
    expect(t.writeContext('X', 15)).toBeUndefined();
  });

  it('node: an answer read on a multiplexed connection (HTTP/2) resumes nobody', () => {
    const t = new ContextTracker();
    t.setRuntime(P, 'node');
    const h2 = (id: string) => ({ id, role: ROLE_CLIENT, protocol: 'http2' });
    t.loop(P, 1, LOOP_TURN, 0n);
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.data(P, 1, DIR_OUT, 11, h2('H')); // A's call
    t.loop(P, 1, LOOP_TURN, 0n);
    t.data(P, 1, DIR_IN, 12, server('B'));
    t.data(P, 1, DIR_OUT, 13, h2('H')); // B's call on the same connection
    t.loop(P, 1, LOOP_TURN, 0n);
    t.data(P, 1, DIR_IN, 14, h2('H')); // A's answer (or B's: the connection does not say)
    t.data(P, 1, DIR_OUT, 15, client('X'));
    expect(t.writeContext('X', 15)).toBeUndefined();
  });

  it('node without event-loop records: no write is linked by async context', () => {
    const t = new ContextTracker();
    t.setRuntime(P, 'node');
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.data(P, 1, DIR_OUT, 11, client('X'));
    expect(t.writeContext('X', 11)).toBeUndefined();
    // the probes go live: what was read before them says nothing about the callback running now
    t.loop(P, 1, LOOP_REQ_START, 0x10n);
    t.data(P, 1, DIR_OUT, 12, client('X'));
    expect(t.writeContext('X', 12)).toBeUndefined();
  });

  it('node: a callback not started by a read (timer, setImmediate, thread pool) works for nobody', () => {
    const t = new ContextTracker();
    t.setRuntime(P, 'node');
    t.loop(P, 1, LOOP_TURN, 0n);
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.loop(P, 1, LOOP_TURN, 0n); // a timer fires
    t.data(P, 1, DIR_OUT, 11, client('X'));
    expect(t.writeContext('X', 11)).toBeUndefined();
  });

  it('node: a lookup carries the request that started it to its completion, among others', () => {
    const t = new ContextTracker();
    t.setRuntime(P, 'node');
    t.loop(P, 1, LOOP_TURN, 0n);
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.loop(P, 1, LOOP_REQ_START, 0xa0n); // A's getaddrinfo
    t.loop(P, 1, LOOP_TURN, 0n);
    t.data(P, 1, DIR_IN, 11, server('B'));
    t.loop(P, 1, LOOP_REQ_START, 0xb0n); // B's
    t.loop(P, 1, LOOP_TURN, 0n); // the thread pool's completions run
    t.loop(P, 1, LOOP_REQ_DONE, 0xb0n);
    t.open(P, 1, ROLE_CLIENT, 'Y'); // B connects from its lookup's callback
    t.loop(P, 1, LOOP_REQ_DONE, 0xa0n);
    t.loop(P, 1, LOOP_REQ_START1, 0xc0n); // A's connect (to ::1: refused)
    t.loop(P, 1, LOOP_TURN, 0n);
    t.loop(P, 1, LOOP_REQ_DONE, 0xc0n); // the refusal's callback tries the next address
    t.open(P, 1, ROLE_CLIENT, 'X');
    t.loop(P, 1, LOOP_TURN, 0n);
    t.data(P, 1, DIR_OUT, 12, client('X'));
    t.data(P, 1, DIR_OUT, 13, client('Y'));
    expect(t.writeContext('X', 12)).toMatchObject({ stream: 'A', atNs: 10, method: 'async-context' });
    expect(t.writeContext('Y', 13)).toMatchObject({ stream: 'B', atNs: 11, method: 'async-context' });
    // a completion of a request started by nobody (or before the probes) resumes nobody
    t.data(P, 1, DIR_IN, 14, server('C'));
    t.loop(P, 1, LOOP_REQ_DONE, 0xd0n);
    t.open(P, 1, ROLE_CLIENT, 'Z');
    t.data(P, 1, DIR_OUT, 15, client('Z'));
    expect(t.writeContext('Z', 15)).toBeUndefined();
  });

  it('Go with runtime probes: spawned goroutines inherit the request', () => {
    const t = new ContextTracker();
    t.setRuntime(P, 'go');
    t.goRun(P, 1, 7n);
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.goSpawn(P, 7n, 8n);
    t.goRun(P, 2, 8n);
    t.data(P, 2, DIR_OUT, 11, client('X'));
    expect(t.writeContext('X', 11)).toMatchObject({ stream: 'A', method: 'goroutine' });
  });
});

const decoded = (startNs: number, endNs = startNs): DecodedExchange =>
  ({
    protocol: 'http1',
    request: {},
    requestStartNs: startNs,
    requestEndNs: endNs,
  }) as unknown as DecodedExchange;
const exchange = (
  id: string,
  direction: 'inbound' | 'outbound',
  headers: Array<[string, string]> = [],
): Exchange => ({ id, direction, request: { headers } }) as unknown as Exchange;

describe('linker', () => {
  it('a call completed before its request waits for it, then goes out linked', () => {
    const t = new ContextTracker();
    const out: Exchange[] = [];
    const l = new Linker(t, (e) => out.push(e));
    t.data(P, 1, DIR_IN, 10, server('A'));
    t.data(P, 1, DIR_OUT, 20, client('X'));
    l.admit('X', decoded(20), exchange('call', 'outbound'));
    expect(out).toHaveLength(0);
    l.admit('A', decoded(10, 15), exchange('req', 'inbound'));
    expect(out.map((e) => e.id)).toEqual(['req', 'call']);
    expect(out[1]!.cause).toEqual({ exchange: 'req', method: 'thread' });
  });

  it('a trace id shared with exactly one request links the call whatever the context', () => {
    const t = new ContextTracker();
    t.setRuntime(P, 'go-unprobed');
    const out: Exchange[] = [];
    const l = new Linker(t, (e) => out.push(e));
    const tp: [string, string] = ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'];
    l.admit('A', decoded(10), exchange('req', 'inbound', [tp]));
    l.admit('X', decoded(20), exchange('call', 'outbound', [tp]));
    expect(out[1]!.cause).toEqual({ exchange: 'req', method: 'traceparent' });
  });

  it('a call with no context goes out at once without a link; one whose request never shows, when capture stops', () => {
    const t = new ContextTracker();
    const out: Exchange[] = [];
    const l = new Linker(t, (e) => out.push(e));
    l.admit('X', decoded(20), exchange('orphan', 'outbound'));
    expect(out.map((e) => e.id)).toEqual(['orphan']);
    t.data(P, 1, DIR_IN, 30, server('A'));
    t.data(P, 1, DIR_OUT, 31, client('Y'));
    l.admit('Y', decoded(31), exchange('waits', 'outbound'));
    expect(out).toHaveLength(1);
    l.flush();
    expect(out.map((e) => e.id)).toEqual(['orphan', 'waits']);
    expect(out[1]!.cause).toBeUndefined();
    expect(l.stats.unlinked).toBe(2);
  });
});
