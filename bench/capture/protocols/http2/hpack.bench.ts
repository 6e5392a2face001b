/**
 * Micro-benchmark: HPACK decoding (capture/protocols/http2/hpack `HpackDecoder`) of header blocks
 * recorded from a real HTTP/2 exchange: node:http2 (nghttp2's encoder, Huffman and the dynamic
 * table as a real client and server use them) on loopback through the recording relay, with
 * browser-like requests (cookies, user agent, varying paths and request ids) and API-like answers.
 * One call decodes every block of the connection, both directions, in order, with fresh decoders
 * (the dynamic table makes a block meaningless out of order).
 *
 * Peer: none in-process. nghttp2's HPACK decoder sits inside node:http2 and is reachable only
 * through a whole HTTP/2 session, where stream and session work would dominate the figure.
 *
 *   npx tsc -p tsconfig.bench.json && node dist/bench/capture/protocols/http2/hpack.bench.js [--quick]
 */
import http2 from 'node:http2';
import type net from 'node:net';
import type { StreamEvent } from '../../../../capture/protocols/collect.js';
import { FrameType, Flag, PREFACE } from '../../../../capture/protocols/http2/frames.js';
import { HpackDecoder } from '../../../../capture/protocols/http2/hpack/decoder.js';
import { startRecordingRelay } from '../../../../capture/protocols/record-relay.js';
import { type MicroCase, type MicroOptions, prng, randomText, runCases } from '../../../lib/micro.js';
import type { Row } from '../../../lib/rows.js';

const HEX = '0123456789abcdef';

export interface Blocks {
  /** Per direction, in connection order. */
  client: Uint8Array[];
  server: Uint8Array[];
}

/** Header block fragments (HEADERS + CONTINUATION joined) of one direction's bytes. */
export function headerBlocks(bytes: Buffer, skipPreface: boolean): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = skipPreface ? PREFACE.length : 0;
  let open: Buffer[] | undefined;
  while (at + 9 <= bytes.length) {
    const len = bytes.readUIntBE(at, 3);
    const type = bytes[at + 3]!;
    const flags = bytes[at + 4]!;
    const p = bytes.subarray(at + 9, at + 9 + len);
    if (type === FrameType.HEADERS) {
      let s = 0;
      let e = p.length;
      if (flags & Flag.PADDED) {
        e -= p[0]!;
        s = 1;
      }
      if (flags & Flag.PRIORITY) s += 5;
      open = [p.subarray(s, e)];
    } else if (type === FrameType.CONTINUATION && open) open.push(p);
    if ((type === FrameType.HEADERS || type === FrameType.CONTINUATION) && flags & Flag.END_HEADERS && open) {
      out.push(new Uint8Array(Buffer.concat(open)));
      open = undefined;
    }
    at += 9 + len;
  }
  return out;
}

/** `count` requests on one h2c connection through the relay; returns each direction's blocks. */
export async function recordBlocks(count: number, seed = 9): Promise<Blocks> {
  const rnd = prng(seed);
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const n = Number(headers['x-n']);
    stream.respond({
      ':status': n % 10 === 9 ? 404 : 200,
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'private, max-age=0',
      etag: `"${randomText(rnd, 20, HEX)}"`,
      'x-request-id': String(headers['x-request-id']),
      vary: 'accept-encoding, authorization',
      'strict-transport-security': 'max-age=63072000; includeSubDomains',
      ...(n % 5 === 0 ? { 'set-cookie': [`session=${randomText(rnd, 40)}; Path=/; HttpOnly; Secure`] } : {}),
    });
    stream.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const relay = await startRecordingRelay({ port: (server.address() as net.AddressInfo).port });
  const client = http2.connect(`http://127.0.0.1:${relay.port}`);
  const session = randomText(rnd, 48);
  try {
    for (let i = 0; i < count; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, count - i) }, (_, k) => {
          const n = i + k;
          return new Promise<void>((resolve, reject) => {
            const req = client.request({
              ':method': n % 4 === 2 ? 'POST' : 'GET',
              ':path':
                n % 4 === 0
                  ? `/shop/catalog/${randomText(rnd, 8)}?ref=home&page=${n % 20}`
                  : `/api/v2/orders/${Math.floor(rnd() * 1e7)}/items?expand=product`,
              'user-agent':
                'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
              accept:
                n % 4 === 0
                  ? 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
                  : 'application/json',
              'accept-encoding': 'gzip, deflate, br, zstd',
              'accept-language': 'en-GB,en;q=0.9',
              cookie: `session=${session}; theme=dark; _ga=GA1.2.${Math.floor(rnd() * 1e9)}`,
              referer: `https://www.shop.example/shop/catalog/${randomText(rnd, 8)}`,
              'x-request-id': randomText(rnd, 36, HEX),
              'x-n': String(n),
              ...(n % 4 === 2 ? { 'content-type': 'application/json' } : {}),
            });
            req.on('error', reject);
            req.on('response', () => {});
            req.resume();
            req.on('end', () => resolve());
            req.end(n % 4 === 2 ? '{"qty":1}' : undefined);
          });
        }),
      );
    }
  } finally {
    await new Promise<void>((r) => client.close(() => r()));
    await relay.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
  const events: StreamEvent[] = relay.connections.flatMap((c) => c.events);
  const side = (s: 'client' | 'server') =>
    Buffer.concat(
      events.filter((e) => e.side === s && 'data' in e).map((e) => (e as { data: Uint8Array }).data),
    );
  return { client: headerBlocks(side('client'), true), server: headerBlocks(side('server'), false) };
}

function decodeAll(b: Blocks): number {
  let fields = 0;
  const dc = new HpackDecoder();
  for (const x of b.client) fields += dc.decode(x).headers.length;
  const ds = new HpackDecoder();
  for (const x of b.server) fields += ds.decode(x).headers.length;
  return fields;
}

export async function cases(): Promise<MicroCase[]> {
  const b = await recordBlocks(1000);
  const all = [...b.client, ...b.server];
  const bytes = all.reduce((s, x) => s + x.length, 0);
  let listBytes = 0;
  {
    const dc = new HpackDecoder();
    for (const x of b.client) listBytes += dc.decode(x).listBytes;
    const ds = new HpackDecoder();
    for (const x of b.server) listBytes += ds.decode(x).listBytes;
  }
  return [
    {
      path: 'HPACK header blocks (HpackDecoder)',
      input: `${b.client.length} request + ${b.server.length} answer header blocks recorded from node:http2 on one connection, ${bytes.toLocaleString('en-US')} B encoded (mean ${Math.round(bytes / all.length)} B) → ${listBytes.toLocaleString('en-US')} B of header list (RFC 7541 counting)`,
      op: 'header block',
      opsPerCall: all.length,
      bytesPerCall: bytes,
      ours: { name: 'retap HpackDecoder', fn: () => decodeAll(b) },
      peers: [],
      noPeer: 'none in-process (nghttp2 decodes only inside a node:http2 session)',
      check: () => {
        const dc = new HpackDecoder();
        const ds = new HpackDecoder();
        const req = b.client.map((x) => dc.decode(x));
        const res = b.server.map((x) => ds.decode(x));
        if (req.length !== 1000 || res.length !== 1000)
          throw new Error(
            `recorded ${req.length} request and ${res.length} answer blocks, expected 1000 each`,
          );
        const bad = [...req, ...res].findIndex((d) => d.unknown || d.cut);
        if (bad >= 0) throw new Error(`header block ${bad} did not decode whole`);
        const ns = new Set(req.map((d) => d.headers.find(([k]) => k === 'x-n')?.[1]));
        if (ns.size !== 1000)
          throw new Error(`request blocks carry ${ns.size} distinct x-n values, expected 1000`);
      },
    },
  ];
}

export async function run(opts: MicroOptions): Promise<Row[]> {
  return runCases(await cases(), opts);
}

if (process.argv[1]?.endsWith('hpack.bench.js')) {
  run({ quick: process.argv.includes('--quick') }).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
