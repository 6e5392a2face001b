/**
 * How far a replay scales: N recorded requests (synthesised straight into a snapshot — no
 * recorder in the path) replayed by `retap replay` against a tiny node server on the namespace's
 * loopback that answers each exactly as recorded, then judged and rendered by `retap report`
 * (JSON and HTML). Each command runs under /usr/bin/time: wall time and peak RSS (the largest of
 * the command and the processes it waited for — the replay worker, the build).
 *
 * Peer: the same pipeline at a tenth of the requests, in the same run. Bounded memory shows as a
 * peak-RSS ratio near 1 at ten times the requests; memory that grows with the run shows as ~10.
 * A size that fails prints its error code instead of figures (results format 1 stopped near
 * 80,000 requests with RETAP_RESULTS_TOO_LARGE).
 *
 *   node dist/bench/runner/results-scale.bench.js [--n 1000000] [--keep] [--retap TREE]
 * (`--retap`: the retap tree to measure, e.g. a checkout of an older version, for before/after)
 * or in `npm run bench` (quick: 20,000 vs 2,000; full: 200,000 vs 20,000).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Exchange } from '../../core/exchange.js';
import { packageRoot } from '../../core/paths.js';
import { createSnapshotWriter } from '../../snapshots/writer.js';
import type { BenchOptions, Row } from '../lib/rows.js';

const LANES = 32;
const PORT = 18080;

/** A keep-alive GET with a small JSON answer, on one of LANES recorded connections. */
function exchange(i: number): Exchange {
  const conn = `c${i % LANES}`;
  const body = new TextEncoder().encode(`{"id":${i},"name":"item ${i}","tags":["a","b"]}`);
  return {
    id: `${conn}#${Math.floor(i / LANES)}`,
    protocol: 'http1',
    direction: 'inbound',
    tls: false,
    service: { addr: '127.0.0.1', port: PORT, name: 'items' },
    peer: { addr: '127.0.0.1', port: 40000 + (i % LANES) },
    connection: { id: conn, order: Math.floor(i / LANES) },
    request: {
      method: 'GET',
      target: `/items/${i}`,
      version: 'HTTP/1.1',
      headers: [['host', 'items.test']],
      body: { data: new Uint8Array(0), size: 0, truncated: false },
    },
    response: {
      status: 200,
      reason: 'OK',
      version: 'HTTP/1.1',
      headers: [
        ['content-type', 'application/json'],
        ['content-length', String(body.length)],
      ],
      body: { data: body, size: body.length, truncated: false },
    },
    timing: {
      startUs: 1_700_000_000_000_000 + i * 100,
      requestEndNs: 10_000,
      responseStartNs: 90_000,
      responseEndNs: 100_000,
    },
  };
}

const SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  const i = Number(req.url.split('/')[2]);
  const body = JSON.stringify({ id: i, name: 'item ' + i, tags: ['a', 'b'] });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}).listen(${PORT}, '127.0.0.1');
`;

interface Timed {
  code: number;
  seconds: number;
  peakMiB: number;
  stderr: string;
  stdout: string;
}

function timed(args: string[], cwd: string, tree: string): Timed {
  const r = spawnSync(
    '/usr/bin/time',
    ['-f', 'RETAP_TIME %e %M', process.execPath, join(tree, 'bin', 'retap.js'), ...args],
    {
      cwd,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      timeout: 3_600_000,
    },
  );
  const m = /RETAP_TIME ([\d.]+) (\d+)/.exec(r.stderr);
  return {
    code: r.status ?? -1,
    seconds: m ? Number(m[1]) : Number.NaN,
    peakMiB: m ? Number(m[2]) / 1024 : Number.NaN,
    stderr: r.stderr,
    stdout: r.stdout,
  };
}

export interface ScaleResult {
  n: number;
  write: number;
  replay: Timed;
  report?: Timed;
  error?: string;
}

/**
 * Snapshot of n requests, replayed and reported by the retap of `tree` (default: this one); the
 * work folder is removed unless `keep`.
 */
export async function scale(n: number, keep = false, tree = packageRoot()): Promise<ScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), `retap-bench-scale-${n}-`));
  try {
    writeFileSync(join(dir, 'server.cjs'), SERVER);
    const t0 = performance.now();
    const w = await createSnapshotWriter({
      dir: join(dir, 'snap', 'items', 'v1'),
      name: 'items',
      source: { host: 'bench', filters: {} },
      redaction: false,
    });
    for (let i = 0; i < n; i++) await w.append(exchange(i));
    await w.finish();
    const write = (performance.now() - t0) / 1000;
    const replay = timed(
      [
        'replay',
        join(dir, 'snap', 'items', 'v1'),
        '--cmd',
        `node ${join(dir, 'server.cjs')}`,
        '--port',
        String(PORT),
        '--concurrency',
        String(LANES),
        '--out',
        join(dir, 'out'),
        '--json',
      ],
      dir,
      tree,
    );
    const out: ScaleResult = { n, write, replay };
    if (replay.code !== 0) {
      out.error = /RETAP_[A-Z_]+/.exec(replay.stdout + replay.stderr)?.[0] ?? `exit ${replay.code}`;
      return out;
    }
    out.report = timed(
      ['report', join(dir, 'out'), '--format', 'json,html', '-o', join(dir, 'reports/')],
      dir,
      tree,
    );
    if (out.report.code !== 0)
      out.error =
        /RETAP_[A-Z_]+/.exec(out.report.stdout + out.report.stderr)?.[0] ?? `report exit ${out.report.code}`;
    return out;
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`kept ${dir}\n`);
  }
}

function rows(big: ScaleResult, small: ScaleResult): Row[] {
  const peer = `${small.n.toLocaleString('en-US')} requests`;
  const label = big.n.toLocaleString('en-US');
  if (big.error || small.error)
    return [
      {
        figure: `replay+report ${label} requests: error`,
        value: big.error ?? 'ok',
        peer,
        peerValue: small.error ?? 'ok',
      },
    ];
  const r = (a: number, b: number): number => a / b;
  return [
    {
      figure: `replay ${label} requests: s`,
      value: big.replay.seconds,
      peer,
      peerValue: small.replay.seconds,
      ratio: r(big.replay.seconds, small.replay.seconds),
    },
    {
      figure: `replay ${label} requests: peak RSS MiB`,
      value: big.replay.peakMiB,
      peer,
      peerValue: small.replay.peakMiB,
      ratio: r(big.replay.peakMiB, small.replay.peakMiB),
    },
    {
      figure: `judge+report ${label} requests: s`,
      value: big.report!.seconds,
      peer,
      peerValue: small.report!.seconds,
      ratio: r(big.report!.seconds, small.report!.seconds),
    },
    {
      figure: `judge+report ${label} requests: peak RSS MiB`,
      value: big.report!.peakMiB,
      peer,
      peerValue: small.report!.peakMiB,
      ratio: r(big.report!.peakMiB, small.report!.peakMiB),
    },
  ];
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  const n = quick ? 20_000 : 200_000;
  const small = await scale(n / 10);
  const big = await scale(n);
  return rows(big, small);
}

if (process.argv[1]?.endsWith('results-scale.bench.js')) {
  const { values } = parseArgs({
    options: { n: { type: 'string' }, keep: { type: 'boolean' }, retap: { type: 'string' } },
  });
  const n = Number(values.n ?? 1_000_000);
  const res = await scale(n, values.keep === true, values.retap ?? packageRoot());
  const show = (t: Timed | undefined): string =>
    t ? `${t.seconds.toFixed(1)} s, peak RSS ${t.peakMiB.toFixed(0)} MiB, exit ${t.code}` : '-';
  console.log(
    `${n} requests: snapshot written in ${res.write.toFixed(1)} s; replay ${show(res.replay)}; report ${show(res.report)}${res.error ? `; error ${res.error}` : ''}`,
  );
  if (res.error) console.log(res.replay.stderr.slice(-3000), res.report?.stderr.slice(-2000) ?? '');
}
