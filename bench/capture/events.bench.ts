/**
 * Micro-benchmark: decoding the addon's record batches (capture/events.ts `decodeBatch`) into
 * event objects, on a batch shaped like the kernel's (bench/capture/records.ts). The peer is the
 * floor any decoder of this layout pays: walk the length prefixes, read each type and make the
 * payload view, without building event objects.
 *
 *   npx tsc -p tsconfig.bench.json && node dist/bench/capture/events.bench.js [--quick]
 */
import { type CaptureEvent, decodeBatch, EV_DATA, LAYOUT } from '../../capture/events.js';
import { type MicroCase, type MicroOptions, runCases } from '../lib/micro.js';
import type { Row } from '../lib/rows.js';
import { kernelBatch } from './records.js';

/** Keeps the last events like capture's connection table keeps the batch's (so none is elided). */
const ring: unknown[] = new Array(64);
let seen = 0;

function visit(ev: CaptureEvent): void {
  ring[seen++ & 63] = ev;
}

/** The floor: length walk, type read and payload view per record, nothing else. */
function walk(batch: Uint8Array): number {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let at = 0;
  let n = 0;
  while (at + 8 <= batch.byteLength) {
    const len = view.getUint32(at, true);
    const rec = at + 8;
    if (view.getUint32(rec, true) === EV_DATA) {
      const captured = view.getUint32(rec + 48, true);
      ring[seen++ & 63] = batch.subarray(rec + LAYOUT.dataHeader, rec + LAYOUT.dataHeader + captured);
    }
    n++;
    at = rec + ((len + 7) & ~7);
  }
  return n;
}

export function cases(): MicroCase[] {
  const k = kernelBatch();
  return [
    {
      path: 'batch decoding (decodeBatch)',
      input: `one addon batch, ${k.records} records (32 opens, ${k.data.length} data of a keep-alive HTTP/1.1 server, 32 closes), ${(k.batch.length / 1e6).toFixed(2)} MB`,
      op: 'record',
      opsPerCall: k.records,
      bytesPerCall: k.batch.length,
      ours: {
        name: 'retap decodeBatch',
        fn: () => {
          const before = seen;
          if (decodeBatch(k.batch, visit) !== 0) throw new Error('the batch did not decode whole');
          return seen - before;
        },
      },
      peers: [{ name: 'floor: length walk + payload view, no event objects', fn: () => walk(k.batch) }],
      check: () => {
        let n = 0;
        let bytes = 0;
        decodeBatch(k.batch, (e) => {
          n++;
          if (e.type === EV_DATA) bytes += e.len;
        });
        if (n !== k.records || bytes !== k.payloadBytes)
          throw new Error(
            `decoded ${n} records / ${bytes} payload bytes, built ${k.records} / ${k.payloadBytes}`,
          );
      },
    },
  ];
}

export async function run(opts: MicroOptions): Promise<Row[]> {
  return runCases(cases(), opts);
}

if (process.argv[1]?.endsWith('events.bench.js')) {
  run({ quick: process.argv.includes('--quick') }).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
