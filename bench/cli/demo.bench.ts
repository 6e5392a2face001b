/**
 * End-to-end time of `retap demo`: the whole capture → snapshot → replay (unchanged ×2 and the
 * regressed variant) → verdict → reports loop, run as a user runs it (a child `retap demo --json`
 * in a temp folder). Reports the median wall time and the median of each stage over the rounds.
 * There is no peer: no other tool does this loop, so the figure stands alone.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BenchOptions, Row } from '../lib/rows.js';
import { median } from '../lib/stats.js';

/** dist/bench/cli → bin/retap.js (the launcher users run) */
const MAIN = resolve(import.meta.dirname, '../../../bin/retap.js');

interface DemoJson {
  ok: boolean;
  stages: Array<{ name: string; status: string; durationMs: number }>;
}

function demoOnce(out: string): Promise<{ seconds: number; report: DemoJson }> {
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [MAIN, 'demo', '--json', '--out', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b));
    child.stderr.on('data', (b: Buffer) => (stderr += b));
    // the demo bounds itself; this only guards the benchmark against a hang
    const timer = setTimeout(() => child.kill('SIGTERM'), 180_000);
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const seconds = (performance.now() - t0) / 1000;
      if (code !== 0)
        return fail(
          new Error(`retap demo exited ${code ?? signal}: ${stderr.trim().split('\n').slice(-5).join('\n')}`),
        );
      try {
        done({ seconds, report: JSON.parse(stdout) as DemoJson });
      } catch (e) {
        fail(new Error(`retap demo --json printed no JSON: ${(e as Error).message}`));
      }
    });
  });
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  const rounds = quick ? 1 : 3;
  const dir = mkdtempSync(join(tmpdir(), 'retap-bench-demo-'));
  try {
    const totals: number[] = [];
    const stages = new Map<string, number[]>();
    for (let r = 0; r < rounds; r++) {
      const { seconds, report } = await demoOnce(join(dir, `r${r}`));
      if (!report.ok) throw new Error('retap demo reported ok: false');
      totals.push(seconds);
      for (const s of report.stages) {
        if (s.status !== 'done') throw new Error(`retap demo stage ${s.name} ended ${s.status}`);
        stages.set(s.name, [...(stages.get(s.name) ?? []), s.durationMs / 1000]);
      }
      console.log(`retap demo round ${r + 1}/${rounds}: ${seconds.toFixed(1)} s`);
    }
    const rows: Row[] = [
      {
        figure: `retap demo end to end (${rounds} run${rounds > 1 ? 's' : ''}): s`,
        value: median(totals),
        spread: [Math.min(...totals), Math.max(...totals)],
      },
    ];
    for (const [name, secs] of stages)
      rows.push({ figure: `retap demo stage ${name}: s`, value: median(secs) });
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
