/**
 * Saturation (full runs only): retap on the HTTP server under rising load, default buffer sizes.
 * Reports the highest rate that lost nothing and what the drop counters say above it.
 */
import type { Nginx } from '../../lib/nginx.js';
import type { Row } from '../../lib/rows.js';
import type { WrkLoad } from '../../lib/wrk.js';
import { describe, measure, type Sample } from './measure.js';

const STEPS: WrkLoad[] = [
  { threads: 1, connections: 16, seconds: 6, delayMs: 1 },
  { threads: 1, connections: 48, seconds: 6, delayMs: 1 },
  { threads: 1, connections: 32, seconds: 6 },
  { threads: 2, connections: 128, seconds: 6 },
  { threads: 2, connections: 512, seconds: 6 },
];

export async function saturation(server: Nginx, dir: string): Promise<Row[]> {
  console.log('\n== http saturation: retap under rising load (default 64 MiB ring buffer)');
  const done: Array<{ load: WrkLoad; s: Sample }> = [];
  for (const load of STEPS) {
    const s = await measure('retap', server, load, dir, false);
    console.log(
      `wrk -t${load.threads} -c${load.connections}${load.delayMs ? ` +${load.delayMs}ms` : ''}: ${describe(s)}`,
    );
    done.push({ load, s });
  }
  const clean = done.filter((d) => (d.s.lost ?? 0) <= 0 && !d.s.drops);
  const best = clean.reduce<(typeof done)[number] | undefined>(
    (b, d) => (!b || d.s.rps > b.s.rps ? d : b),
    undefined,
  );
  const lossy = done.filter((d) => (d.s.lost ?? 0) > 0 || d.s.drops);
  const name = (l: WrkLoad) => `-t${l.threads} -c${l.connections}${l.delayMs ? ` +${l.delayMs}ms` : ''}`;
  const rows: Row[] = [
    {
      figure: `http saturation: highest req/s with 0 lost (of ${STEPS.length} steps)${best ? ` at wrk ${name(best.load)}` : ''}`,
      value: best ? Math.round(best.s.rps) : 'none',
    },
  ];
  for (const d of lossy) {
    rows.push({
      figure: `http saturation: wrk ${name(d.load)} at ${Math.round(d.s.rps)} req/s: lost exchanges (ring buffer drops ${d.s.retap?.ringbufDrops}, batches dropped in user space ${d.s.retap?.userDrops})`,
      value: d.s.lost ?? 0,
      peer: 'answered (nginx access log)',
      peerValue: d.s.answered,
    });
  }
  return rows;
}
