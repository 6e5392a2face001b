import { describe, expect, it } from 'vitest';
import type { Exchange } from '../core/exchange.js';
import { ConnectionTable } from './connections.js';
import {
  type DataEvent,
  EV_CLOSE,
  EV_DATA,
  EV_OPEN,
  EV_TLS_BIND,
  F_TLS,
  type OpenEvent,
  ROLE_CLIENT,
  ROLE_SERVER,
} from './events.js';
import './protocols/index.js';
import { registerDecoder } from './protocols/registry.js';
import type { DecoderSink } from './protocols/types.js';

// A decoder for these tests only: `boom` connections. `explode` in the bytes throws out of push;
// `fault` makes it report a caught failure; `emit` hands back an exchange.
registerDecoder({
  name: 'boom-test',
  detect: (first) => (Buffer.from(first).subarray(0, 4).toString() === 'boom' ? 'match' : first.length < 4 ? 'more' : 'no'),
  create(sink: DecoderSink) {
    return {
      push(side, data, ts) {
        const text = Buffer.from(data).toString('latin1');
        if (text.includes('explode')) throw new Error('decoder bug on purpose');
        if (text.includes('fault')) sink.fault?.(side, 'RangeError: caught inside');
        if (text.includes('emit'))
          sink.exchange({
            protocol: 'boom-test',
            request: { method: 'BOOM', target: '/', version: '', headers: [], body: { data: new Uint8Array(0), size: 0, truncated: false } },
            requestStartNs: ts,
            requestEndNs: ts - 50, // out of order on purpose: offsets are clamped at 0
          });
      },
      gap() {},
      end() {},
    };
  },
});

const clock = { wallUs: (ns: number) => 1_700_000_000_000_000 + Math.round(ns / 1000) };

function table() {
  const out: Exchange[] = [];
  return { t: new ConnectionTable(clock, (e) => out.push(e)), out };
}

function open(fd: number, role: number, gen = 1n): OpenEvent {
  return {
    type: EV_OPEN,
    family: 2,
    role,
    tgid: 10,
    tid: 10,
    fd,
    gen,
    ts: 1,
    cgroup: 0n,
    lport: 8080,
    rport: 50000 + fd,
    laddr: '127.0.0.1',
    raddr: '127.0.0.2',
    comm: 'srv',
  };
}

function data(
  key: bigint,
  dir: number,
  pos: number,
  text: string | Buffer,
  opts: Partial<DataEvent> = {},
): DataEvent {
  const payload = typeof text === 'string' ? Buffer.from(text) : text;
  return {
    type: EV_DATA,
    flags: 0,
    dir,
    tgid: 10,
    tid: 10,
    key,
    gen: 1n,
    ts: 100 + pos,
    pos,
    len: payload.length,
    size: payload.length,
    payload,
    ...opts,
  };
}

const REQ = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
const RES = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

describe('ConnectionTable', () => {
  it('pairs a request and answer on an accepted socket into an inbound exchange', () => {
    const { t, out } = table();
    t.open(open(5, ROLE_SERVER));
    t.data(data(5n, 0, 0, REQ));
    t.data(data(5n, 1, 0, RES));
    t.flushBatch();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      direction: 'inbound',
      tls: false,
      service: { port: 8080, pid: 10 },
      peer: { addr: '127.0.0.2', port: 50005, host: 'x' },
    });
    expect(out[0]!.response?.status).toBe(200);
  });

  it('infers the role from who sends the request when the socket predates capture', () => {
    const { t, out } = table();
    t.data(data(7n, 1, 0, REQ)); // we wrote a request: we are the client
    t.data(data(7n, 0, 0, RES));
    t.endAll(1000);
    expect(out[0]).toMatchObject({ direction: 'outbound', notes: ['socket-unknown'] });
  });

  it('a new generation of the same fd is a new connection', () => {
    const { t, out } = table();
    t.open(open(5, ROLE_SERVER, 1n));
    t.data(data(5n, 0, 0, REQ, { gen: 1n }));
    t.data(data(5n, 1, 0, RES, { gen: 1n }));
    t.close({ type: EV_CLOSE, tgid: 10, fd: 5, gen: 1n, ts: 5, bytesIn: 0, bytesOut: 0 });
    t.open(open(5, ROLE_SERVER, 2n));
    t.data(data(5n, 0, 0, REQ, { gen: 2n }));
    t.data(data(5n, 1, 0, RES, { gen: 2n }));
    t.endAll(1000);
    expect(out).toHaveLength(2);
    expect(out[0]!.connection.id).not.toBe(out[1]!.connection.id);
  });

  it('TLS: plaintext keyed by SSL object gets the socket identity at bind; ciphertext is never decoded', () => {
    const { t, out } = table();
    t.open(open(9, ROLE_CLIENT));
    t.data(data(9n, 1, 0, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])));
    const ssl = 0xdeadbeefn;
    t.data(data(ssl, 1, 0, REQ, { flags: F_TLS }));
    t.data(data(ssl, 0, 0, RES, { flags: F_TLS }));
    t.flushBatch();
    expect(out).toHaveLength(0); // held until we know its socket
    t.bind({ type: EV_TLS_BIND, tgid: 10, ssl, sslGen: 1n, fd: 9, gen: 1n, ts: 3 });
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ direction: 'outbound', tls: true, peer: { port: 50009 } });
    expect(t.stats.ciphertextBytes).toBe(10);
    expect(t.stats.unknownConnections).toBe(0);
  });

  it('TLS with a port filter: a stream never tied to a kept socket is dropped and counted', () => {
    const out: Exchange[] = [];
    const t = new ConnectionTable(clock, (e) => out.push(e), {}, undefined, true);
    const kept = 0x1000n;
    const other = 0x2000n; // its socket was filtered out by port, so no bind ever comes
    for (const ssl of [kept, other]) {
      t.data(data(ssl, 1, 0, REQ, { flags: F_TLS }));
      t.data(data(ssl, 0, 0, RES, { flags: F_TLS }));
    }
    t.open(open(9, ROLE_CLIENT));
    t.bind({ type: EV_TLS_BIND, tgid: 10, ssl: kept, sslGen: 1n, fd: 9, gen: 1n, ts: 3 });
    t.endAll(1000);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ tls: true, peer: { port: 50009 } });
    expect(t.stats.tlsUnboundDropped).toBe(1);
  });

  it('TLS without a port filter: an unbound stream is still kept, marked socket-unknown', () => {
    const { t, out } = table();
    t.data(data(0x3000n, 1, 0, REQ, { flags: F_TLS }));
    t.data(data(0x3000n, 0, 0, RES, { flags: F_TLS }));
    t.endAll(1000);
    expect(out).toHaveLength(1);
    expect(out[0]!.notes).toContain('socket-unknown');
    expect(t.stats.tlsUnboundDropped).toBe(0);
  });

  it('counts bytes of protocols it does not know, and reports gaps', () => {
    const { t } = table();
    t.open(open(3, ROLE_SERVER));
    t.data(data(3n, 0, 0, Buffer.from('\x00\x01\x02\x03 some binary protocol bytes')));
    t.data(data(3n, 0, 100, 'x'));
    t.endAll(1000);
    expect(t.stats.unknownConnections).toBe(1);
    expect(t.stats.gapBytes).toBe(100 - 31);
  });

  it('an exception in one connection fails that connection only: counted, reason kept, capture goes on', () => {
    const { t, out } = table();
    t.open(open(3, ROLE_SERVER));
    t.open(open(4, ROLE_SERVER));
    t.data(data(3n, 0, 0, 'boom emit'));
    t.data(data(3n, 0, 9, 'boom explode now'));
    t.data(data(3n, 0, 25, 'more bytes after the failure'));
    t.data(data(4n, 0, 0, REQ));
    t.data(data(4n, 1, 0, RES));
    t.endAll(1000);
    expect(t.stats.failedConnections).toBe(1);
    expect(t.stats.failures).toEqual([{ connection: expect.stringMatching(/^10-3-/), reason: 'Error: decoder bug on purpose' }]);
    expect(t.stats.undecodedBytes).toBe('more bytes after the failure'.length);
    // the exchange decoded before the failure is kept, and the other connection is whole
    expect(out.map((e) => e.request.method).sort()).toEqual(['BOOM', 'GET']);
    expect(out.find((e) => e.request.method === 'BOOM')!.timing.requestEndNs).toBe(0);
    expect(out.find((e) => e.request.method === 'GET')!.response?.status).toBe(200);
  });

  it('a fault the decoder caught marks the connection the same way', () => {
    const { t } = table();
    t.open(open(3, ROLE_SERVER));
    t.data(data(3n, 0, 0, 'boom fault'));
    t.data(data(3n, 0, 10, 'later'));
    t.endAll(1000);
    expect(t.stats.failedConnections).toBe(1);
    expect(t.stats.failures[0]!.reason).toBe('RangeError: caught inside');
    expect(t.stats.undecodedBytes).toBe(5);
  });

  it('an exception in reassembly fails that connection only', () => {
    const { t, out } = table();
    t.open(open(3, ROLE_SERVER));
    t.open(open(4, ROLE_SERVER));
    // our own part, broken on purpose for this test
    const sockets = (t as unknown as { sockets: Map<unknown, { id: string; dirs: Array<{ push: () => void }> }> })
      .sockets;
    const stream = [...sockets.values()].find((s) => s.id.startsWith('10-3-'))!;
    stream.dirs[0]!.push = () => {
      throw new TypeError('reassembly bug on purpose');
    };
    t.data(data(3n, 0, 0, REQ));
    t.data(data(3n, 0, REQ.length, 'x'.repeat(10)));
    t.data(data(4n, 0, 0, REQ));
    t.data(data(4n, 1, 0, RES));
    t.flushBatch();
    t.endAll(1000);
    expect(t.stats.failedConnections).toBe(1);
    expect(t.stats.failures[0]!.reason).toBe('TypeError: reassembly bug on purpose');
    expect(t.stats.undecodedBytes).toBe(10);
    expect(out).toHaveLength(1);
    expect(out[0]!.service.port).toBe(8080);
  });

  it('an answer whose request was lost in a gap is quarantined, never an empty method', () => {
    const { t, out } = table();
    t.open(open(3, ROLE_SERVER));
    t.data(data(3n, 0, 0, REQ));
    t.data(data(3n, 1, 0, RES));
    // the second request is lost in a gap; its answer arrives whole
    t.data(data(3n, 0, REQ.length + 40, 'x'.repeat(0)));
    t.data(data(3n, 1, RES.length, RES));
    t.close({ type: EV_CLOSE, tgid: 10, fd: 3, gen: 1n, ts: 5, bytesIn: REQ.length + 40, bytesOut: 2 * RES.length });
    expect(out).toHaveLength(2);
    expect(out[0]!.quarantine).toBeUndefined();
    expect(out[1]).toMatchObject({
      protocol: 'unknown',
      quarantine: { protocol: 'http1', reason: expect.stringMatching(/request/) },
      request: { method: '-' },
      response: { status: 200 },
    });
    expect(t.stats.quarantined).toBe(1);
  });

  it('counts bytes a decoder skips as undecoded (seen bytes, never declared lengths)', () => {
    const { t } = table();
    t.open(open(3, ROLE_CLIENT));
    // an HTTP/2 frame that declares 16 MiB, followed by far fewer bytes
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const header = Buffer.from([0xff, 0xff, 0xff, 1, 4, 0, 0, 0, 1]);
    const rest = Buffer.alloc(1000, 7);
    t.data(data(3n, 1, 0, Buffer.concat([preface, header, rest])));
    t.endAll(1000);
    expect(t.stats.undecodedBytes).toBe(header.length + rest.length);
    expect(t.stats.cutMessages).toBe(1);
    expect(t.stats.cutConnections).toBe(1);
  });
});
