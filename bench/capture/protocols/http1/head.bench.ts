/**
 * Micro-benchmark: capture's HTTP/1 head scan (capture/protocols/http1/scan.ts `findHeadEnd`, then
 * core/http1.ts `parseHead` on the latin1 text, then skipping the Content-Length body: the decoder's
 * Head state) over one keep-alive stream of real-looking request heads (browser navigations with
 * cookies, API calls with bearer tokens, JSON posts with their bodies, curl-sized GETs).
 *
 * Peers on the same bytes, in the same rounds:
 *   - node's own llhttp (the internal HTTPParser binding `http` uses), building the header list
 *     and copying bodies, as bench/capture/protocols/decode.bench.ts uses it;
 *   - the floor: Buffer.indexOf of CRLFCRLF from head to head (no parsing at all).
 *
 *   npx tsc -p tsconfig.bench.json && node dist/bench/capture/protocols/http1/head.bench.js [--quick]
 */
import { parseHead } from '../../../../core/http1.js';
import { findHeadEnd } from '../../../../capture/protocols/http1/scan.js';
import {
  type Arm,
  type MicroCase,
  type MicroOptions,
  prng,
  randomText,
  runCases,
} from '../../../lib/micro.js';
import type { Row } from '../../../lib/rows.js';
import { llhttp, parseWithLlhttp } from '../peers.js';

const HEX = '0123456789abcdef';

/** `count` requests of four shapes, as one client stream (heads and bodies). */
export function requestStream(count: number, seed = 3): { bytes: Buffer; heads: number; headBytes: number } {
  const rnd = prng(seed);
  const parts: string[] = [];
  let headBytes = 0;
  for (let i = 0; i < count; i++) {
    let head: string;
    let body = '';
    switch (i % 4) {
      case 0:
        head =
          `GET /shop/catalog/${randomText(rnd, 8)}?ref=home&utm_source=newsletter&page=${i % 20} HTTP/1.1\r\n` +
          'Host: www.shop.example\r\nConnection: keep-alive\r\nsec-ch-ua: "Chromium";v="126", "Not.A/Brand";v="24"\r\n' +
          'sec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: "Linux"\r\nUpgrade-Insecure-Requests: 1\r\n' +
          'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n' +
          'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n' +
          'Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Dest: document\r\n' +
          `Referer: https://www.shop.example/shop/catalog/${randomText(rnd, 8)}\r\n` +
          'Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-GB,en;q=0.9,de;q=0.8\r\n' +
          `Cookie: session=${randomText(rnd, 48)}; cart=${randomText(rnd, 12)}; _ga=GA1.2.${Math.floor(rnd() * 1e9)}.${Math.floor(rnd() * 1e9)}; theme=dark\r\n`;
        break;
      case 1:
        head =
          `GET /api/v2/orders/${Math.floor(rnd() * 1e7)}/items?expand=product,price HTTP/1.1\r\n` +
          'Host: orders.internal:8080\r\nAccept: application/json\r\nUser-Agent: orders-client/4.2.1 (go1.22)\r\n' +
          `Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.${randomText(rnd, 96)}.${randomText(rnd, 43)}\r\n` +
          `traceparent: 00-${randomText(rnd, 32, HEX)}-${randomText(rnd, 16, HEX)}-01\r\n` +
          `X-Request-Id: ${randomText(rnd, 36, HEX)}\r\nAccept-Encoding: gzip\r\n`;
        break;
      case 2:
        body = JSON.stringify({
          customerId: Math.floor(rnd() * 1e6),
          items: Array.from({ length: 1 + (i % 5) }, () => ({
            sku: randomText(rnd, 10),
            qty: 1 + Math.floor(rnd() * 4),
          })),
          note: randomText(rnd, 40, 'abcdefghij klmnopqrstuvwxyz'),
        });
        head =
          'POST /api/v2/orders HTTP/1.1\r\nHost: orders.internal:8080\r\nContent-Type: application/json\r\n' +
          `Content-Length: ${body.length}\r\nAccept: application/json\r\nUser-Agent: python-requests/2.32.3\r\n` +
          `Authorization: Bearer ${randomText(rnd, 64)}\r\nIdempotency-Key: ${randomText(rnd, 36, HEX)}\r\n`;
        break;
      default:
        head = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n`;
    }
    head += '\r\n';
    headBytes += head.length;
    parts.push(head, body);
  }
  return { bytes: Buffer.from(parts.join(''), 'latin1'), heads: count, headBytes };
}

/** The decoder's Head state over a whole stream; returns the fields seen. */
function scanHeads(buf: Buffer): number {
  let pos = 0;
  let fields = 0;
  while (pos < buf.length) {
    const r = findHeadEnd(buf, pos);
    if (r.resume !== undefined) throw new Error(`no head end after byte ${pos}`);
    const head = parseHead(buf.toString('latin1', pos, r.textEnd), 'request');
    if (!head) throw new Error(`unparsable head at byte ${pos}`);
    fields += head.headers.length;
    pos = r.after + Math.max(head.contentLength, 0);
  }
  return fields;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

function indexOfFloor(buf: Buffer): number {
  let n = 0;
  for (let at = buf.indexOf(CRLFCRLF, 0); at !== -1; at = buf.indexOf(CRLFCRLF, at + 4)) n++;
  return n;
}

export function cases(): MicroCase[] {
  const s = requestStream(1000);
  const P = llhttp();
  const peers: Arm[] = [];
  if (P)
    peers.push({
      name: 'node llhttp (internal HTTPParser), same stream',
      fn: () => parseWithLlhttp(P, [{ side: 'client', data: s.bytes }]),
    });
  peers.push({ name: 'floor: Buffer.indexOf CRLFCRLF, head to head', fn: () => indexOfFloor(s.bytes) });
  return [
    {
      path: 'capture HTTP/1 head scan (findHeadEnd + parseHead)',
      input: `${s.heads} request heads of 4 shapes on one keep-alive stream (mean head ${Math.round(s.headBytes / s.heads)} B), ${(s.bytes.length / 1e6).toFixed(2)} MB with the POST bodies${P ? '' : '; llhttp binding not reachable on this node'}`,
      op: 'head',
      opsPerCall: s.heads,
      bytesPerCall: s.bytes.length,
      ours: { name: 'retap capture head scan', fn: () => scanHeads(s.bytes) },
      peers,
      check: () => {
        let heads = 0;
        let pos = 0;
        while (pos < s.bytes.length) {
          const r = findHeadEnd(s.bytes, pos);
          if (r.resume !== undefined) throw new Error('stream ends inside a head');
          const h = parseHead(s.bytes.toString('latin1', pos, r.textEnd), 'request')!;
          heads++;
          pos = r.after + Math.max(0, h.contentLength);
        }
        if (heads !== s.heads) throw new Error(`scanned ${heads} heads of ${s.heads}`);
        if (P) {
          const m = parseWithLlhttp(P, [{ side: 'client', data: s.bytes }]);
          if (m !== s.heads) throw new Error(`llhttp completed ${m} messages of ${s.heads}`);
        }
      },
    },
  ];
}

export async function run(opts: MicroOptions): Promise<Row[]> {
  return runCases(cases(), opts);
}

if (process.argv[1]?.endsWith('head.bench.js')) {
  run({ quick: process.argv.includes('--quick') }).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
