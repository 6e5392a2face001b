import { describe, expect, it } from 'vitest';
import { decoders, detect, registerDecoder } from './index.js';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('protocol registry', () => {
  it('registers the built-ins and detects by first bytes', () => {
    expect(decoders().map((d) => d.name)).toEqual(expect.arrayContaining(['http1', 'http2']));
    const pick = (r: ReturnType<typeof detect>) => (typeof r === 'object' ? r.decoder.name : r);
    expect(pick(detect(b('GET / HTTP/1.1\r\n'), 'client'))).toBe('http1');
    expect(pick(detect(b('HTTP/1.1 200 OK\r\n'), 'server'))).toBe('http1');
    expect(pick(detect(b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 'client'))).toBe('http2');
    expect(pick(detect(b('PRI * HT'), 'client'))).toBe('more');
    expect(pick(detect(b('GE'), 'client'))).toBe('more');
    expect(pick(detect(Buffer.from('000000040000000000', 'hex'), 'server'))).toBe('http2');
    expect(pick(detect(b('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'), 'client'))).toBe('unknown');
    expect(pick(detect(b('*1\r\n$4\r\nPING\r\n'), 'client'))).toBe('redis');
    expect(pick(detect(Buffer.from('0000000804d2162f', 'hex'), 'client'))).toBe('postgres');
    expect(pick(detect(Buffer.from('0000000f00030000757365720075000000', 'hex').subarray(0, 15), 'client'))).toBe('postgres');
    expect(pick(detect(b('Q\x00\x00\x00\x0dselect 1\x00'), 'client'))).toBe('postgres');
    expect(pick(detect(Buffer.concat([Buffer.from('5b0000000a', 'hex'), b('10.11.19-MariaDB\x00')]), 'server'))).toBe('mysql');
    expect(pick(detect(b('POST /x HTTP/1.1\r\n'), 'client'))).toBe('http1');
  });

  it('lets later protocols plug in', () => {
    registerDecoder({
      name: 'redis',
      detect: (first) => (first[0] === 0x2a ? 'match' : 'no'),
      create: () => ({ push() {}, gap() {}, end() {} }),
    });
    const r = detect(b('*1\r\n$4\r\nPING\r\n'), 'client');
    expect(typeof r === 'object' && r.decoder.name).toBe('redis');
    expect(() => registerDecoder({} as never)).toThrow(/ProtocolDecoder/);
  });
});
