/** One measured run of one arm: set up, load with wrk, read CPU, drain, count what was recorded. */
import type { Nginx } from '../../lib/nginx.js';
import { otherTracers } from '../../lib/foreign.js';
import { cpuSecondsOf } from '../../lib/procstat.js';
import { sleep } from '../../lib/procs.js';
import { runWrk, type WrkLoad } from '../../lib/wrk.js';
import { type ArmName, setupArm } from './arms.js';

export interface Sample {
  arm: ArmName;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Completed responses counted by wrk. */
  requests: number;
  /** Complete 200 answers in nginx's access log: what a recorder should hold. */
  answered: number;
  socketErrors: number;
  /** Server (all nginx pids) CPU µs per request wrk completed. */
  serverUs: number;
  /** Recording process CPU µs per request (retap agent, mitmdump, tcpdump). */
  recorderUs?: number;
  peakRssMiB?: number;
  recorded?: number;
  /** answered − recorded (negative: the recorder holds more, e.g. a page nginx logged as incomplete). */
  lost?: number;
  drops?: number;
  /** retap only: where the loss came from. */
  retap?: { ringbufDrops: number; userDrops: number; gapBytes: number };
  /** pids of other BPF tracers (someone else's capture) seen before or after the load. */
  foreign: number[];
  note: string;
}

/** Wait after wrk exits so in-flight answers reach the recorder before it stops. */
const DRAIN_MS = 300;

export async function measure(
  arm: ArmName,
  server: Nginx,
  load: WrkLoad,
  dir: string,
  tls: boolean,
): Promise<Sample> {
  const a = await setupArm(arm, server, dir, tls);
  let recorded: Awaited<ReturnType<typeof a.finish>>;
  let sample: Omit<Sample, 'note'>;
  try {
    const ours = a.recorderPid ? [a.recorderPid] : [];
    const foreign = new Set(otherTracers(ours));
    const from = server.logEnd();
    const server0 = cpuSecondsOf(server.pids);
    await a.mark();
    const w = await runWrk(a.url, load, dir);
    await sleep(DRAIN_MS);
    const serverCpu = cpuSecondsOf(server.pids) - server0;
    for (const p of otherTracers(ours)) foreign.add(p);
    const { answered } = await server.answered(from);
    recorded = await a.finish();
    const perReq = (s: number) => (s / Math.max(1, w.requests)) * 1e6;
    sample = {
      arm,
      rps: w.rps,
      p50Ms: w.p50Ms,
      p99Ms: w.p99Ms,
      requests: w.requests,
      answered,
      socketErrors: w.socketErrors + w.non2xx,
      serverUs: perReq(serverCpu),
      foreign: [...foreign],
      ...(recorded
        ? {
            recorderUs: perReq(recorded.cpuSeconds),
            peakRssMiB: recorded.peakRssMiB,
            recorded: recorded.recorded,
            drops: recorded.drops,
            ...(arm !== 'tcpdump' ? { lost: answered - recorded.recorded } : {}),
            ...(recorded.agent
              ? {
                  retap: {
                    ringbufDrops: recorded.agent.ringbufDrops,
                    userDrops: recorded.agent.userDrops,
                    gapBytes: recorded.agent.gapBytes,
                  },
                }
              : {}),
          }
        : {}),
    };
  } catch (e) {
    await a.finish().catch(() => undefined);
    throw e;
  }
  return { ...sample, note: recorded?.note ?? '' };
}

export function describe(s: Sample): string {
  const f = (x: number, d = 0) =>
    x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  let line = `${s.arm.padEnd(8)} ${f(s.rps).padStart(7)} req/s  p50 ${f(s.p50Ms, 2)} ms  p99 ${f(s.p99Ms, 2)} ms  server ${f(s.serverUs, 1)} µs/req`;
  if (s.recorderUs !== undefined)
    line += `  recorder ${f(s.recorderUs, 1)} µs/req, peak RSS ${f(s.peakRssMiB ?? 0)} MiB`;
  line += `  wrk ${f(s.requests)} / nginx ${f(s.answered)}`;
  if (s.lost !== undefined) line += ` / recorded ${f(s.recorded ?? 0)} → lost ${s.lost}`;
  if (s.socketErrors) line += `  (wrk errors ${s.socketErrors})`;
  if (s.foreign.length) line += `  [other BPF tracers running: pids ${s.foreign.join(' ')}]`;
  if (s.note) line += `\n           ${s.note}`;
  return line;
}
