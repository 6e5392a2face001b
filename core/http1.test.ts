/**
 * The HTTP/1 grammar both capture's decoder and the replay driver's client read heads with. The
 * decoder's own tests (capture/protocols/http1) cover it in streams; these pin the pieces the
 * driver calls on their own.
 */
import { describe, expect, it } from 'vitest';
import {
  finalCoding,
  hasToken,
  isToken,
  parseContentLength,
  parseHead,
  parseHeaderLines,
  parseRequestLine,
  parseStatusLine,
  parseTrailers,
  trimOws,
} from './http1.js';

describe('HTTP/1 grammar (RFC 9112)', () => {
  it('tokens: tchar only, never empty', () => {
    expect(isToken("GET!#$%&'*+-.^_`|~09az")).toBe(true);
    expect(isToken('')).toBe(false);
    expect(isToken('GE T')).toBe(false);
    expect(isToken('a:b')).toBe(false);
  });

  it('start lines', () => {
    expect(parseRequestLine('GET /a?b=c HTTP/1.1')).toEqual(['GET', '/a?b=c', 'HTTP/1.1']);
    expect(parseRequestLine('GET /a b HTTP/1.1')).toBeUndefined();
    expect(parseRequestLine('GET /a HTTP/2')).toBeUndefined();
    expect(parseStatusLine('HTTP/1.1 204 No Content')).toEqual(['HTTP/1.1', 204, 'No Content']);
    expect(parseStatusLine('HTTP/1.0 200')).toEqual(['HTTP/1.0', 200, '']);
    expect(parseStatusLine('HTTP/1.1 20 OK')).toBeUndefined();
    expect(parseStatusLine('HTTP/1.1 2000 OK')).toBeUndefined();
  });

  it('optional whitespace, token lists, codings', () => {
    expect(trimOws(' \tx y\t ')).toBe('x y');
    expect(hasToken('Keep-Alive, Upgrade', 'upgrade')).toBe(true);
    expect(hasToken('keep-alive-ish', 'keep-alive')).toBe(false);
    expect(finalCoding('gzip, chunked')).toBe('chunked');
    expect(finalCoding('chunked, gzip')).toBe('other');
    expect(finalCoding(' ')).toBe('');
  });

  it('Content-Length: repeated equal values pass, anything else is invalid (-2)', () => {
    expect(parseContentLength('42', -1)).toBe(42);
    expect(parseContentLength('5, 5', -1)).toBe(5);
    expect(parseContentLength('5, 6', -1)).toBe(-2);
    expect(parseContentLength('5', 6)).toBe(-2);
    expect(parseContentLength('5', 5)).toBe(5);
    expect(parseContentLength('+5', -1)).toBe(-2);
    expect(parseContentLength('1234567890123456', -1)).toBe(-2);
  });

  it('field lines: obs-fold joined, whitespace before the colon refused', () => {
    const out: Array<[string, string]> = [];
    const head = { obsFold: false };
    expect(parseHeaderLines('X-A:  one \r\n  two\r\nB:\r\n', 0, head, out)).toBe(true);
    expect(out).toEqual([
      ['X-A', 'one two'],
      ['B', ''],
    ]);
    expect(head.obsFold).toBe(true);
    expect(parseHeaderLines('X-A : one\r\n', 0, { obsFold: false }, [])).toBe(false);
  });

  it('a whole head with its framing facts', () => {
    const h = parseHead(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\nConnection: close\r\n',
      'response',
    );
    expect(h).toMatchObject({ status: 200, chunked: true, contentLength: 3, connectionClose: true });
    expect(parseHead('GET / HTTP/1.1\r\nbad line\r\n', 'request')).toBeUndefined();
    expect(parseTrailers('a: 1\r\nnot a field\r\nb: 2\r\n')).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
  });
});
