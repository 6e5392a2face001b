/**
 * Decode throughput of recorded HTTP/1.1 and HTTP/2 streams (real node peers on loopback through
 * a recording relay), ours against a named peer parser in the same run. A and B are interleaved
 * (A B A B …) and the table reports the median ratio and its spread, as docs/design.md asks.
 *
 *   npx tsc -p tsconfig.bench.json && node dist/bench/capture/protocols/decode.bench.js
 * or as part of `npm run bench` (the run() export below).
 */
import { decodeEvents, type StreamEvent } from '../../../capture/protocols/collect.js';
import { http1, http2, type ProtocolDecoder } from '../../../capture/protocols/index.js';
import type { BenchOptions, Row as BenchRow } from '../../lib/rows.js';
import { median, range } from '../../lib/stats.js';
import { llhttp, parseWithLlhttp } from './peers.js';
import { type Recording, recordHttp1, recordHttp2 } from './record.js';

/** Decodes like capture does: exchanges go to a sink that does not keep them. */
function run1(proto: ProtocolDecoder, events: StreamEvent[]): number {
  let n = 0;
  const d = proto.create({ exchange: () => void n++ });
  for (const e of events) if ('data' in e) d.push(e.side, e.data, e.ts ?? 0);
  d.end(0);
  return n;
}

interface Row {
  name: string;
  mbps: number[];
  xps: number[];
}

function timeIt(fn: () => number, minMs: number): { ms: number; runs: number } {
  const t0 = performance.now();
  let runs = 0;
  let ms = 0;
  do {
    fn();
    runs++;
    ms = performance.now() - t0;
  } while (ms < minMs);
  return { ms, runs };
}

function compare(
  rec: Recording,
  a: [string, () => number],
  b: [string, () => number] | undefined,
  pairs = 7,
) {
  const rows: Row[] = [{ name: a[0], mbps: [], xps: [] }];
  if (b) rows.push({ name: b[0], mbps: [], xps: [] });
  // warm-up
  timeIt(a[1], 300);
  if (b) timeIt(b[1], 300);
  const ratios: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const ra = timeIt(a[1], 400);
    const pa = (rec.bytes * ra.runs) / (ra.ms / 1000) / 1e6;
    rows[0]!.mbps.push(pa);
    rows[0]!.xps.push((rec.exchanges * ra.runs) / (ra.ms / 1000));
    if (b) {
      const rb = timeIt(b[1], 400);
      const pb = (rec.bytes * rb.runs) / (rb.ms / 1000) / 1e6;
      rows[1]!.mbps.push(pb);
      rows[1]!.xps.push((rec.exchanges * rb.runs) / (rb.ms / 1000));
      ratios.push(pa / pb);
    }
  }
  return { rows, ratios };
}

function print(title: string, rec: Recording, res: ReturnType<typeof compare>, peerNote?: string) {
  console.log(
    `\n${title}: ${rec.exchanges} exchanges, ${(rec.bytes / 1e6).toFixed(2)} MB, ${rec.events.length} chunks`,
  );
  console.log('| decoder | MB/s (median) | MB/s min–max | exchanges/s (median) |');
  console.log('|---|---:|---:|---:|');
  for (const r of res.rows) {
    console.log(
      `| ${r.name} | ${median(r.mbps).toFixed(0)} | ${Math.min(...r.mbps).toFixed(0)}–${Math.max(...r.mbps).toFixed(0)} | ${median(r.xps).toFixed(0)} |`,
    );
  }
  if (res.ratios.length > 0) {
    console.log(
      `ratio ours/peer: median ${median(res.ratios).toFixed(2)} (min ${Math.min(...res.ratios).toFixed(2)}, max ${Math.max(...res.ratios).toFixed(2)}, ${res.ratios.length} interleaved pairs)`,
    );
  }
  if (peerNote) console.log(peerNote);
}

/** The recording must decode into exactly its exchanges, with no notes, or the figure means nothing. */
function checkClean(name: string, proto: ProtocolDecoder, rec: Recording): void {
  const got = decodeEvents(proto, rec.events).exchanges;
  if (got.length !== rec.exchanges || got.some((e) => e.notes))
    throw new Error(`${name} recording did not decode cleanly (${got.length} of ${rec.exchanges} exchanges)`);
}

/**
 * `npm run bench` contract (bench/lib/rows.ts). Prints its own tables as it goes and returns
 * the same measurements as rows.
 */
export async function run({ quick }: BenchOptions): Promise<BenchRow[]> {
  const pairs = quick ? 3 : 7;
  const h1 = await recordHttp1(3000, 1024);
  const P = llhttp();
  const r1 = compare(
    h1,
    ['retap http1', () => run1(http1, h1.events)],
    P ? ['node llhttp (internal HTTPParser)', () => parseWithLlhttp(P, h1.events)] : undefined,
    pairs,
  );
  print(
    'HTTP/1.1 keep-alive GET, 1 KiB bodies',
    h1,
    r1,
    P ? undefined : 'peer: llhttp binding not reachable',
  );

  const h2 = await recordHttp2(3000, 1024);
  const r2 = compare(h2, ['retap http2', () => run1(http2, h2.events)], undefined, pairs);
  print(
    'HTTP/2 (h2c) GET streams, 50 concurrent, 1 KiB bodies',
    h2,
    r2,
    'peer: none in-process. nghttp2 sits inside node:http2 and only parses from a live socket, where ' +
      'I/O and stream handling dominate, so no parser-only peer number exists for HTTP/2.',
  );

  // Checked after timing: decoding into a collecting sink first gives the decoders' callbacks a
  // second shape, and V8's feedback then costs HTTP/2 half its speed (capture has one sink).
  checkClean('HTTP/1.1', http1, h1);
  checkClean('HTTP/2', http2, h2);

  const ours1 = median(r1.rows[0]!.mbps);
  return [
    {
      figure: 'decode HTTP/1.1 keep-alive, 1 KiB bodies: MB/s',
      value: ours1,
      ...(r1.rows[1]
        ? {
            peer: r1.rows[1].name,
            peerValue: median(r1.rows[1].mbps),
            ratio: median(r1.ratios),
            spread: range(r1.ratios),
          }
        : {}),
      target: `>= 200 MB/s ${ours1 >= 200 ? 'met' : 'MISS'}`,
    },
    { figure: 'decode HTTP/1.1 keep-alive, 1 KiB bodies: exchanges/s', value: median(r1.rows[0]!.xps) },
    {
      figure: 'decode HTTP/2 h2c, 50 concurrent streams, 1 KiB bodies: MB/s',
      value: median(r2.rows[0]!.mbps),
      peer: 'none (nghttp2 parses only from a live socket)',
      spread: range(r2.rows[0]!.mbps),
    },
    { figure: 'decode HTTP/2 h2c: exchanges/s', value: median(r2.rows[0]!.xps) },
  ];
}

// Run directly (node dist/bench/capture/protocols/decode.bench.js) it prints its tables only.
if (process.argv[1]?.endsWith('decode.bench.js')) {
  run({ quick: process.argv.includes('--quick') }).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
