/**
 * Replay driver throughput against wrk on the same nginx and the same concurrency (A B A B …),
 * and the cost of one run's ephemeral environment (namespace + hosts file + cgroup, created and
 * torn down). Targets (issue 7): driver >= 70% of wrk's requests/s; setup+teardown < 1 s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCgroup } from '../../capture/cgroup.js';
import { drive } from '../../runner/driver.js';
import { createNetns, deleteNetns, writeHosts } from '../../runner/netns.js';
import type { SpecItem } from '../../runner/spec.js';
import { PAGE, startNginx } from '../lib/nginx.js';
import { stopAll } from '../lib/procs.js';
import type { BenchOptions, Row } from '../lib/rows.js';
import { median, range, ratios } from '../lib/stats.js';
import { runWrk } from '../lib/wrk.js';

const CONCURRENCY = 32;

function items(n: number): { items: SpecItem[]; sessions: Array<{ key: string; items: number[] }> } {
  const list: SpecItem[] = [];
  for (let i = 0; i < n; i++)
    list.push({
      id: `r${i}`,
      session: `s${i % CONCURRENCY}`,
      method: 'GET',
      target: PAGE,
      headers: [['host', 'bench']],
      body: '',
      startUs: i,
    });
  const sessions = Array.from({ length: CONCURRENCY }, (_, s) => ({
    key: `s${s}`,
    items: list.map((_, i) => i).filter((i) => i % CONCURRENCY === s),
  }));
  return { items: list, sessions };
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'retap-bench-replay-'));
  const rounds = quick ? 3 : 5;
  const seconds = quick ? 3 : 5;
  const nginx = await startNginx(dir, false);
  try {
    const driverRps: number[] = [];
    const wrkRps: number[] = [];
    // size the driver's work to take about as long as wrk's run
    let n = 20_000;
    for (let r = 0; r < rounds; r++) {
      const w = await runWrk(nginx.url + PAGE, { threads: 1, connections: CONCURRENCY, seconds }, dir);
      wrkRps.push(w.rps);
      const plan = items(n);
      const t0 = performance.now();
      const out = await drive(new URL(nginx.url).origin, plan.items, plan.sessions, {
        concurrency: CONCURRENCY,
        timeoutMs: 10_000,
        idHeader: 'x-retap-id',
      });
      const secs = (performance.now() - t0) / 1000;
      const failed = out.filter((o) => o.status !== 200).length;
      if (failed) throw new Error(`replay driver: ${failed} of ${n} requests failed`);
      driverRps.push(n / secs);
      n = Math.max(5_000, Math.round((n / secs) * seconds));
    }
    const rr = ratios(driverRps, wrkRps);
    const setup: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const name = `retap-bench-${process.pid}-${r}`;
      const t0 = performance.now();
      await createNetns(name);
      await writeHosts(name, [{ host: 'inventory.internal', addr: '127.0.0.2' }]);
      const cg = createCgroup(`bench-${process.pid}-${r}`);
      cg.destroy();
      await deleteNetns(name);
      setup.push(performance.now() - t0);
    }
    const setupMs = median(setup);
    return [
      {
        figure: `replay driver, 1 KiB page, ${CONCURRENCY} sessions: req/s`,
        value: median(driverRps),
        peer: `wrk -t1 -c${CONCURRENCY}`,
        peerValue: median(wrkRps),
        ratio: median(rr),
        spread: range(rr),
        target: `>= 0.70 ${median(rr) >= 0.7 ? 'met' : 'MISS'}`,
      },
      {
        figure: 'run environment: netns + hosts + cgroup, setup and teardown: ms',
        value: setupMs,
        spread: range(setup),
        target: `< 1000 ms ${setupMs < 1000 ? 'met' : 'MISS'}`,
      },
    ];
  } finally {
    await nginx.stop();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}
