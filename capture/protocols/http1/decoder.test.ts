import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeEvents, type StreamEvent } from '../collect.js';
import { http1 } from './index.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const text = (u: Uint8Array | undefined) => Buffer.from(u ?? new Uint8Array()).toString('latin1');
const c = (s: string | Uint8Array, ts?: number): StreamEvent => ({
  side: 'client',
  data: typeof s === 'string' ? b(s) : s,
  ...(ts === undefined ? {} : { ts }),
});
const sv = (s: string | Uint8Array, ts?: number): StreamEvent => ({
  side: 'server',
  data: typeof s === 'string' ? b(s) : s,
  ...(ts === undefined ? {} : { ts }),
});

describe('http1 decoder', () => {
  it('decodes a keep-alive GET with Content-Length and keeps header order and duplicates', () => {
    const { exchanges } = decodeEvents(http1, [
      c('GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-A: 2\r\n\r\n', 10),
      sv('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\nhel', 20),
      sv('lo', 30),
    ]);
    expect(exchanges).toHaveLength(1);
    const ex = exchanges[0]!;
    expect(ex.request).toMatchObject({ method: 'GET', target: '/a?x=1', version: 'HTTP/1.1' });
    expect(ex.request.headers).toEqual([
      ['Host', 'h'],
      ['X-A', '1'],
      ['X-A', '2'],
    ]);
    expect(ex.response?.status).toBe(200);
    expect(ex.response?.reason).toBe('OK');
    expect(ex.response?.headers.filter(([n]) => n === 'Set-Cookie')).toHaveLength(2);
    expect(text(ex.response?.body.data)).toBe('hello');
    expect([ex.requestStartNs, ex.requestEndNs, ex.responseStartNs, ex.responseEndNs]).toEqual([
      10, 10, 20, 30,
    ]);
    expect(ex.notes).toBeUndefined();
  });

  it('decodes chunked bodies with extensions and trailers (RFC 9112 §7.1)', () => {
    const { exchanges } = decodeEvents(http1, [
      c('POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n'),
      c('4;ext=1;name="v"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Sum: 42\r\n\r\n'),
      sv('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'),
    ]);
    expect(exchanges).toHaveLength(1);
    const ex = exchanges[0]!;
    expect(text(ex.request.body.data)).toBe('Wikipedia in\r\n\r\nchunks.');
    expect(ex.request.body.size).toBe(23);
    expect(ex.request.trailers).toEqual([['X-Sum', '42']]);
    expect(text(ex.response?.body.data)).toBe('abc');
    expect(ex.response?.trailers).toBeUndefined();
  });

  it('HEAD, 204 and 304 responses have no body even with Content-Length', () => {
    const { exchanges } = decodeEvents(http1, [
      c('HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\nGET /z HTTP/1.1\r\nIf-None-Match: "a"\r\n\r\n'),
      sv('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'),
      sv('HTTP/1.1 204 No Content\r\n\r\n'),
      sv('HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n'),
    ]);
    expect(exchanges.map((e) => [e.request.target, e.response?.status, e.response?.body.size])).toEqual([
      ['/x', 200, 0],
      ['/y', 204, 0],
      ['/z', 304, 0],
    ]);
  });

  it('keeps 100-continue as an interim response', () => {
    const { exchanges } = decodeEvents(http1, [
      c('PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n', 1),
      sv('HTTP/1.1 100 Continue\r\n\r\n', 2),
      c('abc', 3),
      sv('HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n', 4),
    ]);
    expect(exchanges).toHaveLength(1);
    const ex = exchanges[0]!;
    expect(ex.response?.status).toBe(201);
    expect(ex.response?.interim).toEqual([{ status: 100, headers: [] }]);
    expect(text(ex.request.body.data)).toBe('abc');
    expect([ex.requestStartNs, ex.requestEndNs, ex.responseStartNs, ex.responseEndNs]).toEqual([1, 3, 2, 4]);
  });

  it('pairs pipelined requests in order', () => {
    const { exchanges } = decodeEvents(http1, [
      c('GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nPOST /3 HTTP/1.1\r\nContent-Length: 2\r\n\r\nok'),
      sv('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2'),
      sv('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3'),
    ]);
    expect(exchanges.map((e) => [e.request.target, text(e.response?.body.data)])).toEqual([
      ['/1', '1'],
      ['/2', '2'],
      ['/3', '3'],
    ]);
  });

  it('reads a close-delimited response until the connection ends', () => {
    const { exchanges } = decodeEvents(http1, [
      c('GET / HTTP/1.0\r\n\r\n'),
      sv('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of '),
      sv('this'),
    ]);
    expect(text(exchanges[0]?.response?.body.data)).toBe('all of this');
    expect(exchanges[0]?.response?.body.truncated).toBe(false);
  });

  it('joins obs-fold lines with a space and notes it', () => {
    const { exchanges } = decodeEvents(http1, [
      c('GET / HTTP/1.1\r\nX-Long: a\r\n  b\r\n\tc\r\n\r\n'),
      sv('HTTP/1.1 204 No Content\r\n\r\n'),
    ]);
    expect(exchanges[0]?.request.headers).toEqual([['X-Long', 'a b c']]);
    expect(exchanges[0]?.notes).toContain('obs-fold');
  });

  it('emits an unanswered request with no-response', () => {
    const { exchanges } = decodeEvents(http1, [c('GET /late HTTP/1.1\r\n\r\n')]);
    expect(exchanges[0]?.notes).toEqual(['no-response']);
  });

  it('switches to raw after 101 and after CONNECT 200, counting the bytes', () => {
    const { exchanges, raw } = decodeEvents(http1, [
      c('GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'),
      c('\x81\x05hello-not-http'),
      sv('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi'),
      c('GET /not-parsed HTTP/1.1\r\n\r\n'),
    ]);
    expect(exchanges).toHaveLength(1);
    expect(exchanges[0]?.response?.status).toBe(101);
    expect(exchanges[0]?.extras).toEqual({ upgrade: 'websocket' });
    const counted = (side: string) => raw.filter((r) => r.side === side).reduce((a, r) => a + r.bytes, 0);
    expect(counted('client')).toBe(16 + 28);
    expect(counted('server')).toBe(4);

    const tunnel = decodeEvents(http1, [
      c('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01'),
      sv('HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03'),
    ]);
    expect(tunnel.exchanges[0]?.request.target).toBe('example.com:443');
    expect(tunnel.exchanges[0]?.extras).toEqual({ upgrade: 'tunnel' });
  });

  it('resumes HTTP when an upgrade is refused', () => {
    const { exchanges } = decodeEvents(http1, [
      c(
        'GET /a HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\nGET /b HTTP/1.1\r\n\r\n',
      ),
      sv('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb'),
    ]);
    expect(exchanges.map((e) => e.request.target)).toEqual(['/a', '/b']);
  });

  it('keeps framing across a gap inside a Content-Length body', () => {
    const { exchanges } = decodeEvents(http1, [
      c('POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nab'),
      { side: 'client', gap: 5 },
      c('cde'),
      c('GET /next HTTP/1.1\r\n\r\n'),
      sv('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
    ]);
    expect(exchanges).toHaveLength(2);
    expect(exchanges[0]?.request.body).toMatchObject({ size: 10, truncated: true });
    expect(text(exchanges[0]?.request.body.data)).toBe('abcde');
    expect(exchanges[0]?.notes).toEqual(expect.arrayContaining(['gap', 'truncated']));
    expect(exchanges[1]?.request.target).toBe('/next');
    expect(exchanges[1]?.notes).toBeUndefined();
  });

  it('resyncs on the next request line after a gap that cuts a head', () => {
    const { exchanges } = decodeEvents(http1, [
      c('GET /one HTTP/1.1\r\nHo'),
      { side: 'client', gap: 100 },
      c('xx: y\r\n\r\nGET /two HTTP/1.1\r\n\r\n'),
      sv('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2'),
    ]);
    expect(exchanges).toHaveLength(2);
    expect(exchanges[0]?.notes).toEqual(expect.arrayContaining(['gap', 'truncated']));
    expect(text(exchanges[0]?.response?.body.data)).toBe('1');
    expect(exchanges[1]?.request.target).toBe('/two');
    expect(text(exchanges[1]?.response?.body.data)).toBe('2');
  });

  it('decodes gzip bodies into body.decoded and keeps the raw bytes', () => {
    const gz = gzipSync(Buffer.from('{"ok":true}'));
    const { exchanges } = decodeEvents(http1, [
      c('GET / HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n'),
      sv(
        Buffer.concat([
          b(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n\r\n`),
          gz,
        ]),
      ),
    ]);
    const body = exchanges[0]!.response!.body;
    expect(Buffer.from(body.data).equals(gz)).toBe(true);
    expect(text(body.decoded)).toBe('{"ok":true}');
  });

  it('marks a body cut by the end of the connection as truncated', () => {
    const { exchanges } = decodeEvents(http1, [
      c('GET / HTTP/1.1\r\n\r\n'),
      sv('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'),
    ]);
    expect(exchanges[0]?.response?.body).toMatchObject({ size: 3, truncated: true });
    expect(exchanges[0]?.notes).toContain('truncated');
  });
});
