/**
 * Capture input shaped like the kernel's, for the micro-benchmarks: the addon's batch layout
 * (`[u32 len][u32 0][record padded to 8]…`, records as in bpf/retap.h and capture/events.ts) of a
 * keep-alive HTTP/1.1 server observed on `conns` connections, requests and answers interleaved
 * across connections the way the ring buffer orders them.
 */
import { EV_CLOSE, EV_DATA, EV_OPEN, LAYOUT } from '../../capture/events.js';
import { prng, randomText } from '../lib/micro.js';

/** One data record as capture sees it (what the reassembler is pushed). */
export interface DataRecord {
  /** Stream: connection index * 2 + direction. */
  stream: number;
  pos: number;
  size: number;
  payload: Uint8Array;
  ts: number;
}

export interface KernelBatch {
  batch: Uint8Array;
  records: number;
  data: DataRecord[];
  payloadBytes: number;
}

const CHUNK = 16384;

function request(rnd: () => number, i: number): Buffer {
  const path = i % 4 === 0 ? `/api/orders?page=${i % 50}&sort=-created` : `/api/orders/${100000 + i}`;
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: shop.internal:8080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n` +
      `Accept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-GB,en;q=0.9\r\n` +
      `Authorization: Bearer ${randomText(rnd, 40)}\r\nX-Request-Id: ${randomText(rnd, 32, '0123456789abcdef')}\r\nConnection: keep-alive\r\n\r\n`,
    'latin1',
  );
}

function answer(rnd: () => number, big: boolean): Buffer {
  const n = big ? 40_000 + Math.floor(rnd() * 8000) : 600 + Math.floor(rnd() * 1400);
  const item = () =>
    `{"id":${Math.floor(rnd() * 1e6)},"sku":"${randomText(rnd, 10)}","qty":${Math.floor(rnd() * 9)}}`;
  let body = '[';
  while (body.length < n) body += `${body.length > 1 ? ',' : ''}${item()}`;
  body += ']';
  return Buffer.from(
    `HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${body.length}\r\n` +
      `Date: Mon, 30 Nov 2026 06:30:00 GMT\r\nETag: W/"${randomText(rnd, 16, '0123456789abcdef')}"\r\nCache-Control: private, max-age=0\r\nConnection: keep-alive\r\n\r\n${body}`,
    'latin1',
  );
}

/**
 * `exchanges` request/answer pairs on `conns` connections; 1 answer in 12 is ~40 KB (three or four
 * 16 KiB records, as the kernel splits large writes). Opens first, closes last.
 */
export function kernelBatch(conns = 32, exchanges = 600, seed = 7): KernelBatch {
  const rnd = prng(seed);
  const parts: Buffer[] = [];
  const data: DataRecord[] = [];
  const pos = new Array<number>(conns * 2).fill(0);
  let ts = 1_000_000_000;
  let records = 0;
  let payloadBytes = 0;
  const frame = (rec: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(rec.length, 0);
    const padded = Buffer.alloc((rec.length + 7) & ~7);
    rec.copy(padded);
    parts.push(head, padded);
    records++;
  };
  for (let c = 0; c < conns; c++) {
    const r = Buffer.alloc(LAYOUT.openSize);
    r.writeUInt32LE(EV_OPEN, 0);
    r.writeUInt16LE(2, 4); // AF_INET
    r.writeUInt8(1, 6); // accepted
    r.writeUInt32LE(4242, 8);
    r.writeUInt32LE(4242 + (c % 4), 12);
    r.writeBigUInt64LE(BigInt(10 + c), 16);
    r.writeBigUInt64LE(BigInt(1_000_000_000 + c * 1000), 24);
    r.writeBigUInt64LE(BigInt((ts += 1000)), 32);
    r.writeBigUInt64LE(12345n, 40);
    r.writeUInt16LE(8080, 48);
    r.writeUInt16LE(40000 + c, 50);
    Buffer.from([10, 0, 0, 2]).copy(r, 56);
    Buffer.from([10, 0, 0, 3 + (c % 200)]).copy(r, 72);
    r.write('shop-api', 88, 'latin1');
    frame(r);
  }
  const dataRecord = (c: number, dir: number, payload: Buffer) => {
    for (let off = 0; off < payload.length; off += CHUNK) {
      const piece = payload.subarray(off, Math.min(payload.length, off + CHUNK));
      const r = Buffer.alloc(LAYOUT.dataHeader + piece.length);
      const stream = c * 2 + dir;
      r.writeUInt32LE(EV_DATA, 0);
      r.writeUInt16LE(0, 4);
      r.writeUInt8(dir, 6);
      r.writeUInt32LE(4242, 8);
      r.writeUInt32LE(4242 + (c % 4), 12);
      r.writeBigUInt64LE(BigInt(10 + c), 16);
      r.writeBigUInt64LE(BigInt(1_000_000_000 + c * 1000), 24);
      r.writeBigUInt64LE(BigInt((ts += 700)), 32);
      r.writeBigUInt64LE(BigInt(pos[stream]!), 40);
      r.writeUInt32LE(piece.length, 48);
      r.writeUInt32LE(piece.length, 52);
      piece.copy(r, LAYOUT.dataHeader);
      data.push({ stream, pos: pos[stream]!, size: piece.length, payload: piece, ts });
      pos[stream]! += piece.length;
      payloadBytes += piece.length;
      frame(r);
    }
  };
  for (let i = 0; i < exchanges; i++) {
    const c = Math.floor(rnd() * conns);
    dataRecord(c, 0, request(rnd, i));
    dataRecord(c, 1, answer(rnd, i % 12 === 11));
  }
  for (let c = 0; c < conns; c++) {
    const r = Buffer.alloc(LAYOUT.closeSize);
    r.writeUInt32LE(EV_CLOSE, 0);
    r.writeUInt32LE(4242, 8);
    r.writeBigUInt64LE(BigInt(10 + c), 16);
    r.writeBigUInt64LE(BigInt(1_000_000_000 + c * 1000), 24);
    r.writeBigUInt64LE(BigInt((ts += 1000)), 32);
    r.writeBigUInt64LE(BigInt(pos[c * 2]!), 40);
    r.writeBigUInt64LE(BigInt(pos[c * 2 + 1]!), 48);
    frame(r);
  }
  return { batch: Buffer.concat(parts), records, data, payloadBytes };
}
