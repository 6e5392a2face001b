import { describe, expect, it } from 'vitest';
import { HpackDecoder } from './decoder.js';
import { huffmanDecode, huffmanEncode } from './huffman.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** RFC 7541 Appendix C test vectors. */
describe('HPACK (RFC 7541 Appendix C)', () => {
  it('C.2 header field representations', () => {
    const d1 = new HpackDecoder();
    expect(
      d1.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')).headers,
    ).toEqual([['custom-key', 'custom-header']]);
    expect(d1.tableSize).toBe(55);
    const d2 = new HpackDecoder();
    expect(d2.decode(hex('040c 2f73 616d 706c 652f 7061 7468')).headers).toEqual([[':path', '/sample/path']]);
    expect(d2.tableSize).toBe(0);
    const d3 = new HpackDecoder();
    expect(d3.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74')).headers).toEqual([
      ['password', 'secret'],
    ]);
    expect(d3.tableSize).toBe(0);
    expect(new HpackDecoder().decode(hex('82')).headers).toEqual([[':method', 'GET']]);
  });

  const requests = (blocks: string[]) => {
    const d = new HpackDecoder();
    const out = blocks.map((b) => d.decode(hex(b)).headers);
    return { d, out };
  };
  const req1 = [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ];
  const req2 = [...req1, ['cache-control', 'no-cache']];
  const req3 = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ];

  it('C.3 requests without Huffman coding', () => {
    const { d, out } = requests([
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ]);
    expect(out).toEqual([req1, req2, req3]);
    expect(d.tableSize).toBe(164);
    expect(d.tableEntries).toEqual([
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ]);
  });

  it('C.4 requests with Huffman coding', () => {
    const { d, out } = requests([
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ]);
    expect(out).toEqual([req1, req2, req3]);
    expect(d.tableSize).toBe(164);
  });

  const resp1 = [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
    ['location', 'https://www.example.com'],
  ];
  const resp2 = [[':status', '307'], ...resp1.slice(1)];
  const resp3 = [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
    ['location', 'https://www.example.com'],
    ['content-encoding', 'gzip'],
    ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
  ];
  const responses = (blocks: string[]) => {
    const d = new HpackDecoder(256);
    const out = blocks.map((b) => d.decode(hex(b)).headers);
    return { d, out };
  };

  it('C.5 responses without Huffman coding (table size 256, evictions)', () => {
    const { d, out } = responses([
      `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
       2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
       6c65 2e63 6f6d`,
      '4803 3330 37c1 c0bf',
      `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
       54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
       5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
    ]);
    expect(out).toEqual([resp1, resp2, resp3]);
    expect(d.tableSize).toBe(215);
    expect(d.tableEntries.map((e) => e[0])).toEqual(['set-cookie', 'content-encoding', 'date']);
  });

  it('C.6 responses with Huffman coding (table size 256, evictions)', () => {
    const { d, out } = responses([
      `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
       2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      '4883 640e ffc1 c0bf',
      `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
       77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
       9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
    ]);
    expect(out).toEqual([resp1, resp2, resp3]);
    expect(d.tableSize).toBe(215);
  });

  it('applies dynamic table size updates and rejects malformed blocks', () => {
    const d = new HpackDecoder();
    d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    expect(d.tableSize).toBe(55);
    // size update to 0 empties the table, then back to 4096
    expect(d.decode(hex('20 3fe1 1f 82')).headers).toEqual([[':method', 'GET']]);
    expect(d.tableSize).toBe(0);
    expect(() => d.decode(hex('be'))).toThrow();
    expect(() => d.decode(hex('80'))).toThrow();
    expect(() => d.decode(hex('4088 25a8'))).toThrow();
  });

  it('mid-stream: skips references to entries it never saw, tracks new ones exactly', () => {
    const d = new HpackDecoder(4096, true);
    const r = d.decode(hex('82 c5 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65 be'));
    expect(r.unknown).toBe(true);
    expect(r.headers).toEqual([
      [':method', 'GET'],
      ['custom-key', 'custom-value'],
      ['custom-key', 'custom-value'],
    ]);
  });

  it('Huffman round-trips every byte value', () => {
    let all = '';
    for (let i = 0; i < 256; i++) all += String.fromCharCode(i);
    const enc = huffmanEncode(all);
    expect(huffmanDecode(enc, 0, enc.length)).toBe(all);
  });
});
