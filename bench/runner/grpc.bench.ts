/**
 * gRPC replay throughput (issue 20): the replay driver's HTTP/2 client (runner/h2.ts) sending
 * unary calls to a grpc-js server, against h2load (nghttp2) posting the same gRPC request to the
 * same server at the same concurrency (16 connections, one stream in flight on each), interleaved
 * (h2load, driver, h2load, …). The driver keeps every answer and its trailers, as in a real
 * replay. Then streaming: answer messages per second received by the driver replaying
 * server-streaming calls (1,000 messages each) and bidirectional ping-pong calls (each message
 * waits for the previous answer, as recorded).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { grpcFrame } from '../../core/protobuf.js';
import { drive } from '../../runner/driver.js';
import type { H2Plan } from '../../runner/h2.js';
import type { SpecItem } from '../../runner/spec.js';
import type { BenchOptions, Row } from '../lib/rows.js';
import { median, range, ratios } from '../lib/stats.js';

const CONNECTIONS = 16;
const PATH = '/retap.test.Catalog/';
const peer = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'grpc', 'node-peer.mjs');

/** Protobuf: field 1 string, field 2 varint (GetRequest / ListRequest / Chat alike). */
function message(f1: string | number, f2: number): Uint8Array {
  const out: number[] = [];
  const varint = (v: number): void => {
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
  };
  if (typeof f1 === 'string') {
    out.push(0x0a);
    varint(f1.length);
    for (const c of Buffer.from(f1)) out.push(c);
  } else if (f1) {
    out.push(0x08);
    varint(f1);
  }
  if (f2) {
    out.push(f1 === 'chat' ? 0x12 : 0x10);
    varint(f2);
  }
  return grpcFrame(Uint8Array.from(out));
}

const HEADERS: Array<[string, string]> = [
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
];

function unaryItems(n: number): { items: SpecItem[]; lanes: Array<{ key: string; items: number[] }> } {
  const body = Buffer.from(message('sku-1', 2)).toString('base64');
  const plan: H2Plan = { messages: [{ after: 0 }], halfClose: { after: 0 } };
  const items: SpecItem[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % CONNECTIONS;
    items.push({
      id: `u${i}`,
      session: `c${c}`,
      method: 'POST',
      target: `${PATH}Get`,
      headers: HEADERS,
      body,
      startUs: i,
      // one call at a time on each connection, as a unary client does
      endUs: i + 0.5,
      connection: `c${c}`,
      closeAfter: i + CONNECTIONS >= n,
      h2: plan,
    });
  }
  const lanes = Array.from({ length: CONNECTIONS }, (_, c) => ({
    key: `c${c}`,
    items: items.map((_, i) => i).filter((i) => i % CONNECTIONS === c),
  }));
  return { items, lanes };
}

function listening(port0: ReturnType<typeof spawn>): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    port0.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    port0.once('exit', () => reject(new Error(`grpc-js server exited: ${out}`)));
  });
}

function h2load(port: number, n: number, dataFile: string): number {
  const out = execFileSync(
    'h2load',
    [
      '-n',
      String(n),
      '-c',
      String(CONNECTIONS),
      '-m',
      '1',
      '-d',
      dataFile,
      '-H',
      'content-type: application/grpc',
      '-H',
      'te: trailers',
      `http://127.0.0.1:${port}${PATH}Get`,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  const m = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  const ok = /(\d+) succeeded/.exec(out);
  if (!m || !ok || Number(ok[1]) !== n) throw new Error(`h2load: unexpected output\n${out}`);
  return Number(m[1]);
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'retap-bench-grpc-'));
  const server = spawn(process.execPath, [peer, 'server', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await listening(server);
    const origin = `http://127.0.0.1:${port}`;
    const dataFile = join(dir, 'get.bin');
    writeFileSync(dataFile, message('sku-1', 2));
    const rounds = quick ? 3 : 5;
    const n = quick ? 4000 : 10_000;
    const peerRps: number[] = [];
    const ours: number[] = [];
    const { items, lanes } = unaryItems(n);
    // warm both (JIT, the server's first connections)
    h2load(port, 1000, dataFile);
    await drive(origin, items.slice(0, 1000), [{ key: 'w', items: items.slice(0, 1000).map((_, i) => i) }], {
      concurrency: 1,
      timeoutMs: 10_000,
    });
    for (let r = 0; r < rounds; r++) {
      peerRps.push(h2load(port, n, dataFile));
      const t0 = performance.now();
      const driven = await drive(origin, items, lanes, { concurrency: CONNECTIONS, timeoutMs: 10_000 });
      const s = (performance.now() - t0) / 1000;
      const failed = driven.filter((d) => d.error || d.answer?.trailers?.find(([k]) => k === 'grpc-status')?.[1] !== '0');
      if (failed.length) throw new Error(`${failed.length} unary calls failed: ${failed[0]!.error ?? 'status'}`);
      ours.push(n / s);
    }
    const rs = ratios(ours, peerRps);

    // streaming: 1,000-message server streams, 8 at once on 8 connections
    const streams = quick ? 8 : 16;
    const perStream = 1000;
    const listItems: SpecItem[] = Array.from({ length: streams }, (_, i) => ({
      id: `l${i}`,
      session: `l${i}`,
      method: 'POST',
      target: `${PATH}List`,
      headers: HEADERS,
      body: Buffer.from(message(perStream, 0)).toString('base64'),
      startUs: i,
      endUs: i + 0.5,
      connection: `l${i}`,
      closeAfter: true,
      h2: { messages: [{ after: 0 }], halfClose: { after: 0 } },
    }));
    const streamRates: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      const driven = await drive(
        origin,
        listItems,
        listItems.map((_, i) => ({ key: `l${i}`, items: [i] })),
        { concurrency: 8, timeoutMs: 30_000 },
      );
      const s = (performance.now() - t0) / 1000;
      let msgs = 0;
      for (const d of driven) {
        if (d.error) throw new Error(`List failed: ${d.error}`);
        // count frames
        const b = Buffer.from(d.answer!.body);
        for (let at = 0; at + 5 <= b.length; at += 5 + b.readUInt32BE(at + 1)) msgs++;
      }
      streamRates.push(msgs / s);
    }

    // bidirectional ping-pong: 200 turns a call, 8 calls at once
    const turns = 200;
    const chatBody = Buffer.concat(Array.from({ length: turns }, (_, k) => message(k + 1, 0)));
    const chatPlan: H2Plan = {
      messages: Array.from({ length: turns }, (_, k) => ({ after: k })),
      halfClose: { after: turns },
    };
    const chatItems: SpecItem[] = Array.from({ length: 8 }, (_, i) => ({
      id: `c${i}`,
      session: `c${i}`,
      method: 'POST',
      target: `${PATH}Chat`,
      headers: HEADERS,
      body: chatBody.toString('base64'),
      startUs: i,
      endUs: i + 0.5,
      connection: `c${i}`,
      closeAfter: true,
      h2: chatPlan,
    }));
    const chatRates: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      const driven = await drive(
        origin,
        chatItems,
        chatItems.map((_, i) => ({ key: `c${i}`, items: [i] })),
        { concurrency: 8, timeoutMs: 30_000 },
      );
      const s = (performance.now() - t0) / 1000;
      for (const d of driven) if (d.error) throw new Error(`Chat failed: ${d.error}`);
      chatRates.push((2 * turns * chatItems.length) / s);
    }

    return [
      {
        figure: `gRPC unary replay (grpc-js server, ${CONNECTIONS} connections): calls/s`,
        value: Math.round(median(ours)),
        peer: 'h2load, same server and concurrency',
        peerValue: Math.round(median(peerRps)),
        ratio: median(rs),
        spread: range(rs),
      },
      {
        figure: 'gRPC server-streaming replay: answer messages/s',
        value: Math.round(median(streamRates)),
        spread: range(streamRates).map(Math.round) as [number, number],
      },
      {
        figure: 'gRPC bidirectional ping-pong replay (turn by turn): messages/s both ways',
        value: Math.round(median(chatRates)),
        spread: range(chatRates).map(Math.round) as [number, number],
      },
    ];
  } finally {
    server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}
