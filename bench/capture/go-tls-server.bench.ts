/**
 * A Go HTTPS server under load (test/fixtures/go `gotls server -h1`, net/http over crypto/tls) with
 * and without capture: throughput, p99 latency and the server's CPU per request, and from that the
 * added cost per (*tls.Conn).Read/Write call. The load generator (`gotls load`: 16 keep-alive
 * HTTP/1.1 connections, closed loop) runs from a copy of the binary, another inode, so the probes
 * never touch it. Arms, interleaved A B C …:
 *   no capture     — the ceiling;
 *   not a target   — a session with the Go binary probed (an idle copy of the server is the
 *                    target) but the loaded server not targeted: what every other process running
 *                    that binary pays while a capture runs;
 *   target         — the loaded server is a target: every request and answer captured (and counted
 *                    against what the load generator completed: none may be lost).
 * Added cost per call = (server CPU per request − no capture's) / (TLS calls per request, counted
 * by the kernel side in the target arm).
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureSession } from '../../capture/session.js';
import { selfSignedCert } from '../../test/helpers/certs.js';
import { goPeers } from '../../test/helpers/go-peers.js';
import { tracerPids } from '../lib/foreign.js';
import { runToEnd, sleep, start, stopAll, stopAllOnSignal } from '../lib/procs.js';
import { cpuTicksSeconds } from '../lib/procstat.js';
import type { BenchOptions, Row } from '../lib/rows.js';
import { median, range, ratios } from '../lib/stats.js';

type Arm = 'no capture' | 'not a target' | 'target';
const ARMS: Arm[] = ['no capture', 'not a target', 'target'];

interface Sample {
  rps: number;
  p99us: number;
  cpuUsPerReq: number;
}

async function probesGone(): Promise<void> {
  for (let i = 0; i < 300 && tracerPids().includes(process.pid); i++) await sleep(50);
}

async function listening(p: ReturnType<typeof start>): Promise<number> {
  for (let i = 0; i < 500; i++) {
    const m = /listening (\d+)/.exec(p.output());
    if (m) return Number(m[1]);
    await sleep(20);
  }
  throw new Error(`server did not start: ${p.output()}`);
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  stopAllOnSignal(); // the servers it starts go with it, also when interrupted
  const dir = mkdtempSync(join(tmpdir(), 'retap-bench-gotls-'));
  const rounds = quick ? 3 : 5;
  const seconds = quick ? 3 : 6;
  try {
    const { cert, key } = selfSignedCert(dir);
    const { gotls } = goPeers();
    const loader = join(dir, 'gotls-load'); // another inode: never probed
    copyFileSync(gotls, loader);
    const server = start(gotls, ['server', '-cert', cert, '-key', key, '-h1']);
    const port = await listening(server);
    const idle = start(gotls, ['server', '-cert', cert, '-key', key, '-h1']);
    await listening(idle);
    const load = async (): Promise<{ requests: number; seconds: number; p99us: number; errors: number }> =>
      JSON.parse(
        await runToEnd(loader, [
          'load',
          '-url',
          `https://127.0.0.1:${port}`,
          '-c',
          '16',
          '-d',
          `${seconds}s`,
        ]),
      );
    await load(); // warm up (handshakes, GC sizing)

    const samples: Record<Arm, Sample[]> = { 'no capture': [], 'not a target': [], target: [] };
    const callsPerReq: number[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const arm of ARMS) {
        let session: CaptureSession | undefined;
        let captured = 0;
        if (arm !== 'no capture') {
          session = CaptureSession.start(
            { pids: [arm === 'target' ? server.pid : idle.pid], tls: true },
            (ex) => {
              if (ex.service.port === port && ex.response?.status === 200) captured++;
            },
          );
        }
        const cpu0 = cpuTicksSeconds(server.pid);
        const res = await load();
        const cpu = cpuTicksSeconds(server.pid) - cpu0;
        if (res.errors) throw new Error(`${arm}: ${res.errors} requests failed`);
        samples[arm].push({
          rps: res.requests / res.seconds,
          p99us: res.p99us,
          cpuUsPerReq: (cpu * 1e6) / res.requests,
        });
        if (session) {
          const stats = await session.stop();
          if (stats.goTls.length !== 1) throw new Error(`${arm}: the Go binary was not probed`);
          if (arm === 'target') {
            if (captured !== res.requests)
              throw new Error(`target arm captured ${captured} of ${res.requests} exchanges`);
            callsPerReq.push(stats.kernel.goTlsCalls / res.requests);
          }
          await probesGone();
        }
      }
      console.log(
        `round ${r + 1}/${rounds}: ${ARMS.map((a) => {
          const s = samples[a].at(-1)!;
          return `${a} ${s.rps.toFixed(0)} req/s p99 ${(s.p99us / 1000).toFixed(2)} ms ${s.cpuUsPerReq.toFixed(1)} µs CPU/req`;
        }).join(' | ')}`,
      );
    }
    await server.stop();
    await idle.stop();

    const pick = (arm: Arm, k: keyof Sample): number[] => samples[arm].map((s) => s[k]);
    const calls = median(callsPerReq);
    const rows: Row[] = [];
    for (const arm of ['not a target', 'target'] as const) {
      const rps = ratios(pick(arm, 'rps'), pick('no capture', 'rps'));
      const p99 = ratios(pick(arm, 'p99us'), pick('no capture', 'p99us'));
      const cpu = ratios(pick(arm, 'cpuUsPerReq'), pick('no capture', 'cpuUsPerReq'));
      const added = pick(arm, 'cpuUsPerReq').map(
        (v, i) => (v - pick('no capture', 'cpuUsPerReq')[i]!) / calls,
      );
      rows.push(
        {
          figure: `Go HTTPS server (net/http, h1, 16 conns closed loop): req/s — ${arm}`,
          value: Math.round(median(pick(arm, 'rps'))),
          peer: 'no capture',
          peerValue: Math.round(median(pick('no capture', 'rps'))),
          ratio: median(rps),
          spread: range(rps),
        },
        {
          figure: `Go HTTPS server: p99 latency, ms — ${arm}`,
          value: median(pick(arm, 'p99us')) / 1000,
          peer: 'no capture',
          peerValue: median(pick('no capture', 'p99us')) / 1000,
          ratio: median(p99),
          spread: range(p99),
        },
        {
          figure: `Go HTTPS server: CPU µs per request — ${arm}`,
          value: median(pick(arm, 'cpuUsPerReq')),
          peer: 'no capture',
          peerValue: median(pick('no capture', 'cpuUsPerReq')),
          ratio: median(cpu),
          spread: range(cpu),
        },
        {
          figure: `Go HTTPS server: added CPU per (*tls.Conn).Read/Write call (${calls.toFixed(2)} calls per request), µs — ${arm}`,
          value: median(added),
          spread: range(added),
        },
      );
    }
    return rows;
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}
