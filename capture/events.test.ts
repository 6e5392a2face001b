import { describe, expect, it } from 'vitest';
import {
  type CaptureEvent,
  decodeBatch,
  EV_CLOSE,
  EV_DATA,
  EV_LOOP,
  EV_OPEN,
  formatAddr,
  LAYOUT,
  LOOP_REQ_DONE,
} from './events.js';

/** Builds a batch the way the addon does: [u32 len][u32 0][record padded to 8]… */
function batch(records: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(r.length, 0);
    const pad = Buffer.alloc((8 - (r.length % 8)) % 8);
    parts.push(head, r, pad);
  }
  return Buffer.concat(parts);
}

function dataRecord(payload: string, pos: number, size = Buffer.byteLength(payload)): Buffer {
  const p = Buffer.from(payload);
  const r = Buffer.alloc(LAYOUT.dataHeader + p.length);
  r.writeUInt32LE(EV_DATA, 0);
  r.writeUInt16LE(1, 4); // TLS flag
  r.writeUInt8(1, 6); // out
  r.writeUInt32LE(42, 8);
  r.writeUInt32LE(43, 12);
  r.writeBigUInt64LE(7n, 16);
  r.writeBigUInt64LE(99n, 24);
  r.writeBigUInt64LE(23_456_789_012_345n, 32); // kernel ns after 6.5 h: both 32-bit halves in use
  r.writeBigUInt64LE(BigInt(pos), 40);
  r.writeUInt32LE(p.length, 48);
  r.writeUInt32LE(size, 52);
  p.copy(r, LAYOUT.dataHeader);
  return r;
}

function openRecord(): Buffer {
  const r = Buffer.alloc(LAYOUT.openSize);
  r.writeUInt32LE(EV_OPEN, 0);
  r.writeUInt16LE(2, 4);
  r.writeUInt8(1, 6);
  r.writeUInt32LE(42, 8);
  r.writeBigUInt64LE(5n, 16);
  r.writeBigUInt64LE(1000n, 24);
  r.writeUInt16LE(8080, 48);
  r.writeUInt16LE(51000, 50);
  Buffer.from([127, 0, 0, 1]).copy(r, 56);
  Buffer.from([10, 1, 2, 3]).copy(r, 72);
  Buffer.from('nginx\0').copy(r, 88);
  return r;
}

describe('decodeBatch', () => {
  it('decodes data, open and close records with their fields', () => {
    const close = Buffer.alloc(LAYOUT.closeSize);
    close.writeUInt32LE(EV_CLOSE, 0);
    close.writeUInt32LE(42, 8);
    close.writeBigUInt64LE(5n, 16);
    close.writeBigUInt64LE(77n, 40);
    const seen: CaptureEvent[] = [];
    const rest = decodeBatch(batch([openRecord(), dataRecord('hello', 10, 9), close]), (e) => seen.push(e));
    expect(rest).toBe(0);
    expect(seen.map((e) => e.type)).toEqual([EV_OPEN, EV_DATA, EV_CLOSE]);
    expect(seen[0]).toMatchObject({
      role: 1,
      tgid: 42,
      fd: 5,
      gen: 1000n,
      lport: 8080,
      rport: 51000,
      laddr: '127.0.0.1',
      raddr: '10.1.2.3',
      comm: 'nginx',
    });
    const d = seen[1] as Extract<CaptureEvent, { type: 1 }>;
    expect(d).toMatchObject({
      flags: 1,
      dir: 1,
      tgid: 42,
      tid: 43,
      key: 7n,
      gen: 99n,
      ts: 23_456_789_012_345,
      pos: 10,
      len: 5,
      size: 9,
    });
    expect(Buffer.from(d.payload).toString()).toBe('hello');
    expect(seen[2]).toMatchObject({ fd: 5, bytesIn: 77 });
  });

  it('reads stream positions past 4 GiB whole', () => {
    const seen: CaptureEvent[] = [];
    decodeBatch(batch([dataRecord('x', 2 ** 33 + 10)]), (e) => seen.push(e));
    expect(seen[0]).toMatchObject({ pos: 2 ** 33 + 10 });
  });

  it("decodes node's event-loop records", () => {
    const r = Buffer.alloc(LAYOUT.loopSize);
    r.writeUInt32LE(EV_LOOP, 0);
    r.writeUInt32LE(LOOP_REQ_DONE, 4);
    r.writeUInt32LE(42, 8);
    r.writeUInt32LE(43, 12);
    r.writeBigUInt64LE(0x7f00deadbeefn, 16);
    r.writeBigUInt64LE(123456789n, 24);
    const seen: CaptureEvent[] = [];
    expect(decodeBatch(batch([r, r.subarray(0, 24)]), (e) => seen.push(e))).toBe(32);
    expect(seen).toEqual([
      { type: EV_LOOP, kind: LOOP_REQ_DONE, tgid: 42, tid: 43, req: 0x7f00deadbeefn, ts: 123456789 },
    ]);
  });

  it('stops at a malformed record and reports the bytes it could not read', () => {
    const good = dataRecord('ok', 0);
    const bad = Buffer.alloc(16);
    bad.writeUInt32LE(99, 0);
    const buf = batch([good, bad]);
    const seen: CaptureEvent[] = [];
    expect(decodeBatch(buf, (e) => seen.push(e))).toBe(24);
    expect(seen).toHaveLength(1);
    // a length running past the end
    const cut = batch([good]).subarray(0, 30);
    expect(decodeBatch(cut, () => {})).toBe(30);
  });
});

describe('formatAddr', () => {
  it('prints IPv4, IPv4-mapped IPv6 and IPv6', () => {
    expect(formatAddr(2, Uint8Array.from([192, 168, 0, 1, ...Array(12).fill(0)]))).toBe('192.168.0.1');
    const mapped = Uint8Array.from([...Array(10).fill(0), 0xff, 0xff, 127, 0, 0, 1]);
    expect(formatAddr(10, mapped)).toBe('127.0.0.1');
    const loop = Uint8Array.from([...Array(15).fill(0), 1]);
    expect(formatAddr(10, loop)).toBe('::1');
  });
});
