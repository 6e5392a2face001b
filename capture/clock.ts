/**
 * Kernel timestamps are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns); exchanges carry wall-clock
 * microseconds. process.hrtime uses the same monotonic clock, so one paired reading converts both.
 */
export interface Clock {
  /** Wall-clock microseconds since the Unix epoch for a monotonic nanosecond timestamp. */
  wallUs(monoNs: number): number;
}

export function systemClock(): Clock {
  const mono = Number(process.hrtime.bigint());
  const wallUs = Date.now() * 1000;
  return { wallUs: (ns) => Math.round(wallUs + (ns - mono) / 1000) };
}
