/**
 * Reads a JSON Lines file once, front to back, handing each line with its byte offset to the
 * store; optionally hashes the bytes on the way (a snapshot's sha256 check costs no extra pass).
 */
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Store } from '../store.js';

export interface ScanResult {
  lines: number;
  bytes: number;
  sha256?: string;
}

export async function indexLines(
  path: string,
  store: Store,
  opts: { hash?: boolean; stopped?: () => boolean; onLine?: (lineNo: number) => void } = {},
): Promise<ScanResult> {
  const fh = await open(path, 'r');
  const hash: Hash | undefined = opts.hash ? createHash('sha256') : undefined;
  const CHUNK = 1 << 20;
  let buf = Buffer.allocUnsafe(CHUNK);
  let carry = 0; // bytes at buf[0..carry) belong to a line that started in an earlier chunk
  let fileOff = 0; // file offset of buf[0]
  let lineNo = 0;
  let bytes = 0;
  try {
    for (;;) {
      if (opts.stopped?.()) break;
      if (carry === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, carry);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, carry, buf.length - carry, fileOff + carry);
      if (bytesRead === 0) break;
      hash?.update(buf.subarray(carry, carry + bytesRead));
      bytes += bytesRead;
      const end = carry + bytesRead;
      let start = 0;
      let nl = buf.indexOf(10, carry);
      let slice = performance.now();
      while (nl !== -1 && nl < end) {
        lineNo++;
        if (nl > start) addLine(store, buf, start, nl, fileOff + start, lineNo);
        start = nl + 1;
        nl = buf.indexOf(10, start);
        // Give the server a turn every few milliseconds: the page must load while a big file indexes.
        if ((lineNo & 63) === 0 && performance.now() - slice > 8) {
          store.changed();
          await new Promise((r) => setImmediate(r));
          if (opts.stopped?.()) break;
          slice = performance.now();
        }
      }
      buf.copy(buf, 0, start, end);
      fileOff += start;
      carry = end - start;
      store.changed();
    }
    if (carry > 0 && !opts.stopped?.()) {
      lineNo++;
      addLine(store, buf, 0, carry, fileOff, lineNo);
      store.changed();
    }
  } finally {
    await fh.close();
  }
  return { lines: lineNo, bytes, ...(hash ? { sha256: hash.digest('hex') } : {}) };
}

function addLine(store: Store, buf: Buffer, s: number, e: number, off: number, lineNo: number): void {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8', s, e));
  } catch (err) {
    store.addBroken(`line ${lineNo}`, `not JSON: ${(err as Error).message}`);
    return;
  }
  try {
    store.add(v, off, e - s);
  } catch (err) {
    store.addBroken(`line ${lineNo}`, `not an exchange: ${(err as Error).message}`);
  }
}
