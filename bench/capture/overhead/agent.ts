/**
 * The capturing process of the retap arm: a CaptureSession on the server's pids in its own
 * process, so its CPU time and peak RSS are measured alone. Driven over IPC by overhead.bench:
 *   ← {cmd:'start', pids, tls}   → {type:'ready'}
 *   ← {cmd:'mark'}               → {type:'marked'}   (CPU is counted from here)
 *   ← {cmd:'stop'}               → {type:'done', ...AgentResult}
 * Exchanges are counted and dropped (writing a snapshot is not part of this figure).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { CaptureSession } from '../../../capture/session.js';
import type { Exchange } from '../../../core/exchange.js';
import { peakRssMiB, threadCpu } from '../../lib/procstat.js';

export interface AgentResult {
  /** Exchanges for the page with status 200 and the whole body. */
  complete: number;
  /** Everything else: unanswered, truncated, other targets. */
  other: number;
  otherSamples: string[];
  ringbufDrops: number;
  userDrops: number;
  gapBytes: number;
  events: number;
  batches: number;
  bytes: number;
  /** CPU seconds since 'mark', all threads (getrusage: includes the poll thread joined at stop). */
  cpuSeconds: number;
  peakRssMiB: number;
  /** CPU seconds per thread between 'mark' and the start of stop (JS main thread vs poller…). */
  threads: Record<string, number>;
  /** Highest process.memoryUsage() figures (MiB) sampled every 50 ms from 'mark' on: where the RSS is. */
  memory: {
    rss: number;
    heapTotal: number;
    heapUsed: number;
    external: number;
    arrayBuffers: number;
    hwmAtMark: number;
    hwmBeforeStop: number;
  };
}

interface Start {
  cmd: 'start';
  pids: number[];
  tls: boolean;
  page: string;
  pageBytes: number;
}

let session: CaptureSession | undefined;
let complete = 0;
let other = 0;
const otherSamples: string[] = [];

function counter(page: string, pageBytes: number) {
  return (ex: Exchange) => {
    const body = ex.response?.body;
    if (
      ex.request.target === page &&
      ex.response?.status === 200 &&
      body &&
      !body.truncated &&
      body.size === pageBytes &&
      body.data.length === pageBytes
    ) {
      complete++;
      return;
    }
    other++;
    if (otherSamples.length < 5) {
      otherSamples.push(
        `${ex.request.method} ${ex.request.target} → ${ex.response ? `${ex.response.status} body ${body?.data.length}/${body?.size}${body?.truncated ? ' truncated' : ''}` : 'no response'}${ex.notes ? ` (${ex.notes.join('; ')})` : ''}`,
      );
    }
  };
}

let mark = process.cpuUsage();
const memory = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
let sampler: NodeJS.Timeout | undefined;
/** VmHWM when the load is over, before stop: a peak after it belongs to stopping. */
let hwmBeforeStop = 0;
let hwmAtMark = 0;
function sampleMemory(): void {
  const m = process.memoryUsage();
  for (const k of Object.keys(memory) as Array<keyof typeof memory>) memory[k] = Math.max(memory[k], m[k] / 2 ** 20);
}
let markThreads = new Map<string, number>();

/** Per-thread CPU since mark: `main` (JS), the rest by tid (the addon's poller, libuv, V8). */
function threadsSinceMark(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, s] of threadCpu('self')) {
    const sp = key.indexOf(' ');
    const tid = Number(key.slice(0, sp));
    out[tid === process.pid ? 'main' : `${key.slice(sp + 1)}/${tid}`] = s - (markThreads.get(key) ?? 0);
  }
  return out;
}

/**
 * RETAP_BENCH_CPU_PROF=<dir>: profile from 'mark' to the end of stop. Not `node --cpu-prof`: its
 * SIGPROF interrupts the BPF verifier, and loading then fails with EAGAIN.
 */
const profDir = process.env.RETAP_BENCH_CPU_PROF;
let inspector: Session | undefined;

process.on('message', (msg: Start | { cmd: 'mark' | 'stop' }) => {
  void (async () => {
    if (msg.cmd === 'start') {
      const pollMs = Number(process.env.RETAP_BENCH_AGENT_POLL_MS) || undefined;
      session = CaptureSession.start(
        { pids: msg.pids, tls: msg.tls, ...(pollMs ? { pollMs } : {}) },
        counter(msg.page, msg.pageBytes),
      );
      process.send?.({ type: 'ready' });
    } else if (msg.cmd === 'mark') {
      if (profDir) {
        inspector = new Session();
        inspector.connect();
        await inspector.post('Profiler.enable');
        await inspector.post('Profiler.start');
      }
      mark = process.cpuUsage();
      markThreads = threadCpu('self');
      sampleMemory();
      hwmAtMark = peakRssMiB('self');
      sampler = setInterval(sampleMemory, 50);
      process.send?.({ type: 'marked' });
    } else if (msg.cmd === 'stop' && session) {
      const threads = threadsSinceMark();
      clearInterval(sampler);
      sampleMemory();
      hwmBeforeStop = peakRssMiB('self');
      const s = await session.stop();
      const cpu = process.cpuUsage(mark);
      if (inspector && profDir) {
        const { profile } = await inspector.post('Profiler.stop');
        writeFileSync(join(profDir, `agent-${process.pid}.cpuprofile`), JSON.stringify(profile));
      }
      const result: AgentResult = {
        complete,
        other,
        otherSamples,
        ringbufDrops: s.kernel.ringbufDrops,
        userDrops: s.kernel.userDrops,
        gapBytes: s.gapBytes,
        events: s.kernel.events,
        batches: s.kernel.batches,
        bytes: s.kernel.bytes,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        peakRssMiB: peakRssMiB('self'),
        threads,
        memory: { ...memory, hwmAtMark, hwmBeforeStop },
      };
      process.send?.({ type: 'done', ...result }, () => process.disconnect());
    }
  })().catch((e: unknown) => {
    process.send?.({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    process.exitCode = 1;
    process.disconnect();
  });
});
