/**
 * Micro-benchmark: putting each direction's records back in order (capture/reassembly.ts
 * `Reassembler`), on the data records of a kernel-shaped batch (bench/capture/records.ts) with
 * 1 record in 100 arriving after its successor (two writers on one socket) and one end-of-batch
 * flush per 256 records, as capture does. The peer is the floor: the same sink called once per
 * record in arrival order, with no position bookkeeping (what a recorder that trusted the ring's
 * order would pay).
 *
 *   npx tsc -p tsconfig.bench.json && node dist/bench/capture/reassembly.bench.js [--quick]
 */
import { Reassembler, type StreamOutput } from '../../capture/reassembly.js';
import { type MicroCase, type MicroOptions, prng, runCases } from '../lib/micro.js';
import type { Row } from '../lib/rows.js';
import { type DataRecord, kernelBatch } from './records.js';

const FLUSH_EVERY = 256;

/** Counts what comes out (bytes, gaps) and keeps the last view, like a decoder holding it. */
class Sink implements StreamOutput {
  bytes = 0;
  gaps = 0;
  last: Uint8Array | undefined;
  data(b: Uint8Array): void {
    this.bytes += b.length;
    this.last = b;
  }
  gap(n: number): void {
    this.gaps += n;
  }
}

/**
 * The records in ring order with 1 in 100 swapped with the previous record of its own stream, within
 * one flush window (a flush between them would make a real gap).
 */
function arrivalOrder(data: DataRecord[]): DataRecord[] {
  const out = data.slice();
  const rnd = prng(11);
  const lastOf = new Map<number, number>();
  for (let i = 0; i < out.length; i++) {
    const r = out[i]!;
    const prev = lastOf.get(r.stream);
    if (
      prev !== undefined &&
      rnd() < 0.01 &&
      Math.floor(prev / FLUSH_EVERY) === Math.floor(i / FLUSH_EVERY)
    ) {
      out[i] = out[prev]!;
      out[prev] = r;
    }
    lastOf.set(r.stream, i);
  }
  return out;
}

function reassemble(records: DataRecord[], streams: number): Sink {
  const sink = new Sink();
  const rs: Reassembler[] = [];
  for (let s = 0; s < streams; s++) rs.push(new Reassembler(sink));
  const touched = new Set<Reassembler>();
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const re = rs[r.stream]!;
    re.push(r.pos, r.size, r.payload, r.ts);
    touched.add(re);
    if ((i + 1) % FLUSH_EVERY === 0) {
      for (const t of touched) t.flush();
      touched.clear();
    }
  }
  for (const t of touched) t.flush();
  return sink;
}

function inArrivalOrder(records: DataRecord[]): Sink {
  const sink = new Sink();
  for (const r of records) sink.data(r.payload);
  return sink;
}

export function cases(): MicroCase[] {
  const k = kernelBatch();
  const streams = 64;
  const records = arrivalOrder(k.data);
  const swapped = records.filter((r, i) => r !== k.data[i]).length;
  return [
    {
      path: 'reassembly (Reassembler)',
      input: `${records.length} data records on ${streams} streams, ${swapped} out of place, a flush per ${FLUSH_EVERY} records, ${(k.payloadBytes / 1e6).toFixed(2)} MB of payload`,
      op: 'record',
      opsPerCall: records.length,
      bytesPerCall: k.payloadBytes,
      ours: { name: 'retap Reassembler', fn: () => reassemble(records, streams) },
      peers: [
        { name: 'floor: sink per record in arrival order, no ordering', fn: () => inArrivalOrder(records) },
      ],
      check: () => {
        const s = reassemble(records, streams);
        if (s.bytes !== k.payloadBytes || s.gaps !== 0)
          throw new Error(
            `reassembled ${s.bytes} bytes with ${s.gaps} lost, expected ${k.payloadBytes} and 0`,
          );
        if (swapped === 0) throw new Error('the input has no record out of place');
      },
    },
  ];
}

export async function run(opts: MicroOptions): Promise<Row[]> {
  return runCases(cases(), opts);
}

if (process.argv[1]?.endsWith('reassembly.bench.js')) {
  run({ quick: process.argv.includes('--quick') }).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
