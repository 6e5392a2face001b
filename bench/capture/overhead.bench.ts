/**
 * What capture costs the service it watches: nginx (1 KiB page, keep-alive, one worker) under
 * wrk on loopback, with the peers interleaved in the same run (A B C D, A B C D …):
 *   no capture (the ceiling) · retap capture · mitmdump recording reverse proxy · tcpdump → pcap
 * over HTTP and HTTPS, at maximum throughput (wrk -t1 -c32) and at a low fixed offered rate
 * (wrk -t1 -c4 with a 10 ms Lua delay; the only load mitmdump sustains, so it runs only there).
 * Lost exchanges are counted exactly against nginx's access log. See docs/performance.md.
 *
 *   npx tsc -p tsconfig.bench.json && node dist/bench/capture/overhead.bench.js [--quick]
 *
 * RETAP_BENCH_OVERHEAD_SERIES=<regexp>: run only the series whose title matches (e.g.
 * `http max` while working on the recorder); the others' rows are left out.
 * RETAP_BENCH_OVERHEAD_ROUNDS=<n>: rounds per series (default 5, quick 3).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Nginx, startNginx } from '../lib/nginx.js';
import { stopAll, stopAllOnSignal } from '../lib/procs.js';
import type { BenchOptions, Row } from '../lib/rows.js';
import { runWrk, type WrkLoad } from '../lib/wrk.js';
import { ALT_FLAGS, type ArmName } from './overhead/arms.js';
import { describe, measure, type Sample } from './overhead/measure.js';
import { addedP99, armTable, company, compare, lost, type Rounds } from './overhead/report.js';
import { saturation } from './overhead/saturation.js';

const loadText = (l: WrkLoad) =>
  `wrk -t${l.threads} -c${l.connections} -d${l.seconds}s${l.delayMs ? ` +${l.delayMs} ms delay/request` : ''}`;

async function series(
  title: string,
  server: Nginx,
  arms: ArmName[],
  load: WrkLoad,
  rounds: number,
  dir: string,
  tls: boolean,
): Promise<Rounds> {
  console.log(`\n== ${title} (${loadText(load)}), ${rounds} rounds of ${arms.join(' ')}`);
  const out: Rounds = [];
  for (let r = 0; r < rounds; r++) {
    const round: Sample[] = [];
    for (const arm of arms) {
      const s = await measure(arm, server, load, dir, tls);
      console.log(`r${r + 1} ${describe(s)}`);
      round.push(s);
    }
    out.push(round);
  }
  console.log(armTable(title, out));
  return out;
}

/** Issue 23: the recorder's peak RSS at max load, an absolute bound (tcpdump's ring is 4 MiB). */
const RSS_MAX_MIB = 96;
const rssTarget = (row: Row): Row => ({
  ...row,
  target: `<= ${RSS_MAX_MIB} MiB ${typeof row.value === 'number' && row.value <= RSS_MAX_MIB ? 'met' : 'MISS'}`,
});

const only = process.env.RETAP_BENCH_OVERHEAD_SERIES ? new RegExp(process.env.RETAP_BENCH_OVERHEAD_SERIES) : undefined;
const wanted = (title: string): boolean => !only || only.test(title);

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  stopAllOnSignal();
  const rounds = Number(process.env.RETAP_BENCH_OVERHEAD_ROUNDS) || (quick ? 3 : 5);
  const max: WrkLoad = { threads: 1, connections: 32, seconds: quick ? 2 : 8 };
  const rate: WrkLoad = { threads: 1, connections: 4, seconds: quick ? 2 : 8, delayMs: 10 };
  const dir = mkdtempSync(join(tmpdir(), 'retap-bench-overhead-'));
  const rows: Row[] = [];
  const everything: Rounds[] = [];
  try {
    for (const tls of [false, true]) {
      const proto = tls ? 'https' : 'http';
      const tMax = `${proto} max load c32`;
      const tRate = `${proto} fixed rate c4+10ms`;
      if (!wanted(tMax) && !wanted(tRate)) continue;
      const sdir = join(dir, proto);
      mkdirSync(sdir);
      const server = await startNginx(sdir, tls);
      try {
        await runWrk(server.url, { threads: 1, connections: 32, seconds: 1 }, sdir); // warm-up
        const us = (s: Sample) => s.serverUs + (s.recorderUs ?? 0);
        const done: Rounds[] = [];
        if (wanted(tMax)) {
          const arms: ArmName[] = ALT_FLAGS !== undefined ? ['none', 'retap', 'retap-alt', 'tcpdump'] : ['none', 'retap', 'tcpdump'];
          const m = await series(tMax, server, arms, max, rounds, sdir, tls);
          done.push(m);
          rows.push(
            compare(tMax, m, 'retap', 'none', 'req/s', (s) => s.rps, { min: 0.95 }),
            compare(tMax, m, 'retap', 'none', 'p99 ms', (s) => s.p99Ms, { max: 1.1 }),
            compare(tMax, m, 'retap', 'none', 'server+recorder CPU µs/req', us),
            compare(tMax, m, 'retap', 'tcpdump', 'recorder CPU µs/req', (s) => s.recorderUs, { max: 2 }),
            rssTarget(compare(tMax, m, 'retap', 'tcpdump', 'recorder peak RSS MiB', (s) => s.peakRssMiB)),
            ...(ALT_FLAGS !== undefined
              ? [
                  compare(tMax, m, 'retap-alt', 'tcpdump', 'recorder CPU µs/req', (s) => s.recorderUs, { max: 2 }),
                  rssTarget(compare(tMax, m, 'retap-alt', 'tcpdump', 'recorder peak RSS MiB', (s) => s.peakRssMiB)),
                  compare(tMax, m, 'retap-alt', 'retap', 'recorder CPU µs/req', (s) => s.recorderUs),
                ]
              : []),
            compare(tMax, m, 'tcpdump', 'none', 'req/s', (s) => s.rps),
            compare(tMax, m, 'tcpdump', 'none', 'p99 ms', (s) => s.p99Ms),
          );
        }
        if (wanted(tRate)) {
          const f = await series(
            tRate,
            server,
            ALT_FLAGS !== undefined
              ? ['none', 'retap', 'retap-alt', 'mitmdump', 'tcpdump']
              : ['none', 'retap', 'mitmdump', 'tcpdump'],
            rate,
            rounds,
            sdir,
            tls,
          );
          done.push(f);
          rows.push(
            compare(tRate, f, 'retap', 'none', 'p99 ms', (s) => s.p99Ms, { max: 1.1 }),
            addedP99(tRate, f, 0.1),
            compare(tRate, f, 'retap', 'none', 'server+recorder CPU µs/req', us),
            compare(tRate, f, 'retap', 'mitmdump', 'server+recorder CPU µs/req', us),
            compare(tRate, f, 'mitmdump', 'none', 'p99 ms', (s) => s.p99Ms),
            ...(ALT_FLAGS !== undefined
              ? [compare(tRate, f, 'retap-alt', 'retap', 'recorder CPU µs/req', (s) => s.recorderUs)]
              : []),
          );
        }
        everything.push(...done);
        rows.push(lost(proto, done));
        if (!quick && !tls && !only) rows.push(...(await saturation(server, sdir)));
      } finally {
        await server.stop();
      }
    }
    rows.push(company(everything));
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  run({ quick: process.argv.includes('--quick') }).then(
    (rows) => console.log(JSON.stringify(rows, null, 1)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
