/**
 * Replay driver throughput against wrk on the same nginx and the same concurrency, interleaved
 * (wrk, h1, h1 pooled, undici, wrk, …), and the cost of one run's ephemeral environment (namespace + hosts
 * file + cgroup, created and torn down). The driver keeps every answer, as in a real replay; its
 * time runs from the first request sent to the last answer kept. Turning the kept answers into
 * results (headers split into lists, bodies base64, as the worker does before writing) happens
 * after the load and is reported on its own row. Targets (issue 7): driver >= 70% of wrk's
 * requests/s; setup+teardown < 1 s.
 *
 * The load is 32 recorded keep-alive connections, one per lane. The default (`recorded`
 * connections) gives each its own driver connection; `pooled` shares a pool of 32 — the same
 * sockets here, so the two should match (issue 14: recorded connections must not cost throughput).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCgroup } from '../../capture/cgroup.js';
import { drive, toWorkerItem } from '../../runner/driver.js';
import { createNetns, deleteNetns, writeHosts } from '../../runner/netns.js';
import type { SpecItem } from '../../runner/spec.js';
import { PAGE, PAGE_BYTES, startNginx } from '../lib/nginx.js';
import { stopAll } from '../lib/procs.js';
import type { BenchOptions, Row } from '../lib/rows.js';
import { median, range, ratios } from '../lib/stats.js';
import { runWrk } from '../lib/wrk.js';

const CONCURRENCY = 32;
const BODY_B64 = Math.ceil(PAGE_BYTES / 3) * 4;

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
      connection: `s${i % CONCURRENCY}`,
      closeAfter: i + CONCURRENCY >= n,
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
    const wrkRps: number[] = [];
    type Kind = 'h1' | 'pooled' | 'undici';
    const rps: Record<Kind, number[]> = { h1: [], pooled: [], undici: [] };
    const encodeUs: Record<Kind, number[]> = { h1: [], pooled: [], undici: [] };
    const endToEnd: Record<Kind, number[]> = { h1: [], pooled: [], undici: [] };
    // the driver's own CPU per request (user + sys of this process during the load): on a shared
    // machine far steadier than requests/s, which also measure nginx and whoever else runs
    const cpuUs: Record<Kind, number[]> = { h1: [], pooled: [], undici: [] };
    // size each client's work to take about as long as wrk's run
    const n: Record<Kind, number> = { h1: 20_000, pooled: 20_000, undici: 20_000 };
    const once = async (client: Kind): Promise<void> => {
      const plan = items(n[client]);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const out = await drive(new URL(nginx.url).origin, plan.items, plan.sessions, {
        concurrency: CONCURRENCY,
        timeoutMs: 10_000,
        client: client === 'undici' ? 'undici' : 'h1',
        connections: client === 'pooled' ? 'pooled' : 'recorded',
      });
      const t1 = performance.now();
      const cpu = process.cpuUsage(cpu0);
      cpuUs[client].push((cpu.user + cpu.system) / plan.items.length);
      const secs = (t1 - t0) / 1000;
      const results = out.map(toWorkerItem);
      const t2 = performance.now();
      encodeUs[client].push(((t2 - t1) * 1000) / out.length);
      endToEnd[client].push(out.length / ((t2 - t0) / 1000));
      let failed = 0;
      for (const o of results)
        if (
          o.status !== 200 ||
          o.responseBody?.length !== BODY_B64 ||
          !o.responseHeaders?.some(([h]) => h === 'content-length')
        )
          failed++;
      if (failed)
        throw new Error(`replay driver (${client}): ${failed} of ${plan.items.length} requests failed`);
      rps[client].push(plan.items.length / secs);
      n[client] = Math.max(5_000, Math.round((plan.items.length / secs) * seconds));
    };
    for (let r = 0; r < rounds; r++) {
      const w = await runWrk(nginx.url + PAGE, { threads: 1, connections: CONCURRENCY, seconds }, dir);
      wrkRps.push(w.rps);
      await once('h1');
      await once('pooled');
      await once('undici');
    }
    const rr = ratios(rps.h1, wrkRps);
    const rp = ratios(rps.pooled, wrkRps);
    const ru = ratios(rps.undici, wrkRps);
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
        figure: `replay driver (h1, default), 1 KiB page, ${CONCURRENCY} sessions: req/s`,
        value: median(rps.h1),
        peer: `wrk -t1 -c${CONCURRENCY}`,
        peerValue: median(wrkRps),
        ratio: median(rr),
        spread: range(rr),
        target: `>= 0.70 ${median(rr) >= 0.7 ? 'met' : 'MISS'}`,
      },
      {
        figure: `replay driver (h1) with --connections pooled, same load: req/s`,
        value: median(rps.pooled),
        peer: `wrk -t1 -c${CONCURRENCY}`,
        peerValue: median(wrkRps),
        ratio: median(rp),
        spread: range(rp),
        target: '(reference: the pool of before recorded connections)',
      },
      {
        figure: 'replay driver CPU per request (h1), recorded connections: µs',
        value: median(cpuUs.h1),
        peer: '--connections pooled',
        peerValue: median(cpuUs.pooled),
        ratio: median(ratios(cpuUs.h1, cpuUs.pooled)),
        spread: range(ratios(cpuUs.h1, cpuUs.pooled)),
        target: '(recorded ≈ pooled)',
      },
      {
        figure: `replay driver with --client undici, same load: req/s`,
        value: median(rps.undici),
        peer: `wrk -t1 -c${CONCURRENCY}`,
        peerValue: median(wrkRps),
        ratio: median(ru),
        spread: range(ru),
        target: '(reference)',
      },
      {
        figure: 'replay end to end (load, then answers to result items: headers split, bodies base64): req/s',
        value: median(endToEnd.h1),
        peer: 'same with undici',
        peerValue: median(endToEnd.undici),
        ratio: median(ratios(endToEnd.h1, endToEnd.undici)),
        spread: range(ratios(endToEnd.h1, endToEnd.undici)),
        target: `(results ${median(encodeUs.h1).toFixed(1)} vs ${median(encodeUs.undici).toFixed(1)} µs/answer)`,
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
