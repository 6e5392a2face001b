/**
 * The arms of the overhead benchmark: how the load reaches the server and who records it.
 * Each arm's setup returns the URL wrk should load and, when something records, the pid of the
 * recording process plus a finish() that stops it and reports what it recorded.
 */
import { fork } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { recorderNodeFlags } from '../../../capture/node-flags.js';
import type { Nginx } from '../../lib/nginx.js';
import { PAGE, PAGE_BYTES } from '../../lib/nginx.js';
import { cpuSeconds, peakRssMiB } from '../../lib/procstat.js';
import { freePort, runToEnd, start, waitForPort } from '../../lib/procs.js';
import type { AgentResult } from './agent.js';

export type ArmName = 'none' | 'retap' | 'retap-alt' | 'mitmdump' | 'tcpdump';

/**
 * The retap arm's recording process runs under the node flags `retap capture` runs under
 * (capture/node-flags.ts); RETAP_BENCH_AGENT_NODE_FLAGS replaces them ('' for none).
 * RETAP_BENCH_ALT_NODE_FLAGS adds an arm `retap-alt`: the same recorder under these flags instead,
 * interleaved in the same rounds (what a flag changes, measured under the same load);
 * RETAP_BENCH_ALT_POLL_MS gives that arm another poll interval (CaptureOptions.pollMs).
 */
const flagsOf = (v: string | undefined): string[] =>
  v === undefined ? recorderNodeFlags({}) : v.split(' ').filter(Boolean);
export const ALT_FLAGS = process.env.RETAP_BENCH_ALT_NODE_FLAGS;

export interface Recorded {
  /** CPU seconds of the recording process between mark() and the end of finish(). */
  cpuSeconds: number;
  peakRssMiB: number;
  /** Exchanges (retap), flows (mitmdump) that hold the complete page; packets (tcpdump). */
  recorded: number;
  /** What the recorder itself says it dropped (ring buffer + user batches; kernel packet drops). */
  drops: number;
  note: string;
  agent?: AgentResult;
}

export interface ArmRun {
  url: string;
  recorderPid?: number;
  /** Called just before the load starts: the recorder's CPU is counted from here. */
  mark(): Promise<void>;
  finish(): Promise<Recorded | undefined>;
}

export const ARM_LABEL: Record<ArmName, string> = {
  none: 'no capture',
  retap: 'retap capture',
  'retap-alt': `retap capture, node ${ALT_FLAGS || 'without flags'}${process.env.RETAP_BENCH_ALT_POLL_MS ? `, poll ${process.env.RETAP_BENCH_ALT_POLL_MS} ms` : ''}`,
  mitmdump: 'mitmdump reverse proxy → flow file',
  tcpdump: 'tcpdump → pcap',
};

export async function setupArm(arm: ArmName, server: Nginx, dir: string, tls: boolean): Promise<ArmRun> {
  switch (arm) {
    case 'none':
      return { url: server.url, mark: async () => {}, finish: async () => undefined };
    case 'retap':
    case 'retap-alt':
      // Loading BPF programs fails now and then with EAGAIN while another process loads its own.
      for (let attempt = 1; ; attempt++) {
        try {
          return await retap(
            server,
            tls,
            flagsOf(process.env[arm === 'retap' ? 'RETAP_BENCH_AGENT_NODE_FLAGS' : 'RETAP_BENCH_ALT_NODE_FLAGS']),
            arm === 'retap-alt' ? process.env.RETAP_BENCH_ALT_POLL_MS : undefined,
          );
        } catch (e) {
          if (attempt >= 5 || !/errno 11\b/.test(String(e))) throw e;
          console.log(`retap capture did not start (attempt ${attempt}, EAGAIN); trying again`);
          await new Promise((r) => setTimeout(r, 2000 * attempt));
        }
      }
    case 'tcpdump':
      return tcpdump(server, dir);
    case 'mitmdump':
      return mitmdump(server, dir, tls);
  }
}

async function retap(server: Nginx, tls: boolean, flags: string[], pollMs?: string): Promise<ArmRun> {
  const child = fork(join(import.meta.dirname, 'agent.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: flags,
    env: pollMs ? { ...process.env, RETAP_BENCH_AGENT_POLL_MS: pollMs } : process.env,
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const reply = <T>(type: string) =>
    new Promise<T>((resolve, reject) => {
      const onMsg = (m: { type: string; message?: string }) => {
        if (m.type === type) resolve(m as T);
        else if (m.type === 'error') reject(new Error(`capture agent: ${m.message}`));
        else return;
        child.off('message', onMsg);
      };
      child.on('message', onMsg);
      child.once('exit', (code) => reject(new Error(`capture agent exited with ${code}`)));
    });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    const ready = reply('ready');
    child.send({ cmd: 'start', pids: server.pids, tls, page: PAGE, pageBytes: PAGE_BYTES });
    await ready;
  } catch (e) {
    kill();
    throw e;
  }
  return {
    url: server.url,
    recorderPid: child.pid!,
    async mark() {
      const marked = reply('marked');
      child.send({ cmd: 'mark' });
      await marked;
    },
    async finish() {
      try {
        const done = reply<AgentResult>('done');
        child.send({ cmd: 'stop' });
        const r = await done;
        await Promise.race([exited, new Promise((res) => setTimeout(res, 5000))]);
        return {
          cpuSeconds: r.cpuSeconds,
          peakRssMiB: r.peakRssMiB,
          recorded: r.complete,
          drops: r.ringbufDrops + r.userDrops,
          note: `${r.events} events in ${r.batches} batches; CPU s by thread: ${Object.entries(r.threads)
            .filter(([, v]) => v >= 0.01)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(
              ', ',
            )}; memory MiB (peak of 50 ms samples): ${Object.entries(r.memory)
            .map(([k, v]) => `${k} ${v.toFixed(0)}`)
            .join(' ')}; ringbuf drops ${r.ringbufDrops}, user drops ${r.userDrops}, gap bytes ${r.gapBytes}, other exchanges ${r.other}${r.otherSamples.length ? ` e.g. ${r.otherSamples[0]}` : ''}`,
          agent: r,
        };
      } finally {
        kill();
      }
    },
  };
}

async function tcpdump(server: Nginx, dir: string): Promise<ArmRun> {
  const file = join(dir, 'capture.pcap');
  // -s 0: whole packets; -B 4 MiB kernel buffer (the default is 2 MiB); buffered file writes.
  const p = start('tcpdump', [
    '-i',
    'lo',
    '-n',
    '-s',
    '0',
    '-B',
    '4096',
    '-w',
    file,
    `tcp port ${server.port}`,
  ]);
  const deadline = Date.now() + 10_000;
  while (!/listening on/.test(p.output())) {
    if (Date.now() > deadline || p.child.exitCode !== null)
      throw new Error(`tcpdump did not start:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  let cpu0 = 0;
  return {
    url: server.url,
    recorderPid: p.pid,
    mark: async () => void (cpu0 = cpuSeconds(p.pid)),
    async finish() {
      const cpu = cpuSeconds(p.pid) - cpu0;
      const rss = peakRssMiB(p.pid);
      await p.stop('SIGINT');
      const out = p.output();
      const captured = Number(/(\d+) packets? captured/.exec(out)?.[1] ?? Number.NaN);
      const dropped = Number(/(\d+) packets? dropped by kernel/.exec(out)?.[1] ?? Number.NaN);
      let size = 0;
      try {
        size = statSync(file).size;
      } catch {}
      rmSync(file, { force: true });
      return {
        cpuSeconds: cpu,
        peakRssMiB: rss,
        recorded: captured,
        drops: dropped,
        note: `${captured} packets, ${dropped} dropped by kernel, pcap ${(size / 1e6).toFixed(0)} MB`,
      };
    },
  };
}

const COUNT_FLOWS = `
import sys
from mitmproxy import io
ok = other = 0
with open(sys.argv[1], 'rb') as f:
    for fl in io.FlowReader(f).stream():
        r = getattr(fl, 'response', None)
        if r is not None and r.status_code == 200 and len(r.raw_content or b'') == int(sys.argv[2]):
            ok += 1
        else:
            other += 1
print(ok, other)
`;

async function mitmdump(server: Nginx, dir: string, tls: boolean): Promise<ArmRun> {
  const port = await freePort();
  const file = join(dir, 'flows.mitm');
  const scheme = tls ? 'https' : 'http';
  const p = start('mitmdump', [
    '--mode',
    `reverse:${scheme}://127.0.0.1:${server.port}`,
    '--listen-host',
    '127.0.0.1',
    '--listen-port',
    String(port),
    '--set',
    `confdir=${join(dir, 'mitmproxy')}`,
    '--ssl-insecure',
    '-q',
    '-w',
    file,
  ]);
  await waitForPort(port, p, 30_000);
  let cpu0 = 0;
  return {
    url: `${scheme}://127.0.0.1:${port}${PAGE}`,
    recorderPid: p.pid,
    mark: async () => void (cpu0 = cpuSeconds(p.pid)),
    async finish() {
      const cpu = cpuSeconds(p.pid) - cpu0;
      const rss = peakRssMiB(p.pid);
      await p.stop('SIGINT', 10_000);
      // Debian's mitmproxy lives in the system python (not a pyenv shim's).
      const out = await runToEnd('/usr/bin/python3', ['-c', COUNT_FLOWS, file, String(PAGE_BYTES)]);
      rmSync(file, { force: true });
      const [ok, other] = out.trim().split(' ').map(Number) as [number, number];
      return {
        cpuSeconds: cpu,
        peakRssMiB: rss,
        recorded: ok,
        drops: 0,
        note: `${ok} complete flows, ${other} other`,
      };
    },
  };
}
