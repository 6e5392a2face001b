#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [-- --only <name>]`: runs every benchmark under bench/ and prints
 * one table at the end (figure, value, peer, peer value, ratio, spread, target).
 *
 * Contract (docs/performance.md): a benchmark is a file named `*.bench.ts` (compiled with
 * tsconfig.bench.json into dist/bench/) or `*.bench.js`/`*.bench.mjs`, exporting
 *   export async function run({ quick }) → Row[]   (Row: bench/lib/rows.ts)
 * Its name is its path under bench/ without the suffix (`capture/overhead`). Each benchmark runs
 * in its own child process, so one cannot skew or crash the next; a file that exports no `run`
 * is run as a plain script and its own output stands (no rows).
 */
import { execFileSync, fork } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..');
const benchDir = join(root, 'bench');
const SUFFIX = /\.bench\.(ts|js|mjs)$/;

function find(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...find(p));
    else if (SUFFIX.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** The file node runs for a benchmark source (compiled output for TypeScript). */
function runnable(src) {
  if (!src.endsWith('.ts')) return src;
  return join(root, 'dist', relative(root, src)).replace(/\.ts$/, '.js');
}

const fmt = (x) => {
  if (typeof x === 'string') return x;
  if (typeof x !== 'number' || Number.isNaN(x)) return '';
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return x.toLocaleString('en-US');
  const a = Math.abs(x);
  const digits = a === 0 || a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
};

function table(rows) {
  const head = ['figure', 'value', 'peer', 'peer value', 'ratio', 'spread', 'target'];
  const body = rows.map((r) => [
    r.figure,
    fmt(r.value),
    r.peer ?? '',
    fmt(r.peerValue),
    r.ratio === undefined ? '' : fmt(r.ratio),
    r.spread ? `${fmt(r.spread[0])}–${fmt(r.spread[1])}` : '',
    r.target ?? '',
  ]);
  const lines = [`| ${head.join(' | ')} |`, `|---|${'---:|'.repeat(5)}---|`];
  for (const b of body) lines.push(`| ${b.map((c) => String(c).replaceAll('|', '\\|')).join(' | ')} |`);
  return lines.join('\n');
}

/**
 * One benchmark run per machine at a time: two load tests on 2 cores measure each other. The
 * lock is a file holding the owner's pid; a lock whose owner is gone is taken over.
 */
const LOCK = '/tmp/retap-bench.lock';
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};

async function lock() {
  for (let waited = 0; ; waited++) {
    try {
      writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
      process.on('exit', () => {
        if (readFileSync(LOCK, 'utf8') === String(process.pid)) rmSync(LOCK, { force: true });
      });
      return;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    const owner = Number(readFileSync(LOCK, 'utf8'));
    if (!owner || !alive(owner)) {
      rmSync(LOCK, { force: true });
      continue;
    }
    if (waited % 30 === 0) console.log(`waiting for the benchmark run of pid ${owner} to finish (${LOCK})`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** Child mode: import one benchmark, call run(), send its rows to the parent. */
async function child(file, quick) {
  const mod = await import(pathToFileURL(file).href);
  if (typeof mod.run !== 'function') {
    process.send?.({ rows: null });
    return;
  }
  const rows = await mod.run({ quick });
  await new Promise((r) => process.send?.({ rows }, r));
  process.disconnect?.();
}

let current;

async function runOne(name, file, quick, timeoutMs) {
  return new Promise((resolvePromise) => {
    const p = fork(import.meta.filename, ['--child', file, ...(quick ? ['--quick'] : [])], {
      stdio: 'inherit',
      env: { ...process.env, RETAP_BENCH_QUICK: quick ? '1' : '' },
    });
    current = p;
    let rows;
    const timer = setTimeout(() => {
      console.error(`\n${name}: no result after ${timeoutMs / 1000} s, stopping it (pid ${p.pid})`);
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 10_000).unref();
    }, timeoutMs);
    p.on('message', (m) => (rows = m.rows));
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ name, rows, failed: code !== 0 ? `exit ${code ?? signal}` : undefined });
    });
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      list: { type: 'boolean', default: false },
      'no-compile': { type: 'boolean', default: false },
      child: { type: 'string' },
    },
  });
  if (values.child) return child(values.child, values.quick);

  let found = find(benchDir).map((src) => ({ src, name: relative(benchDir, src).replace(SUFFIX, '') }));
  if (values.only) found = found.filter((b) => values.only.some((o) => b.name.includes(o)));
  if (values.list || found.length === 0) {
    console.log(found.length ? found.map((b) => b.name).join('\n') : 'no benchmark matches');
    if (!found.length) process.exitCode = 1;
    return;
  }
  await lock();
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      // the benchmark stops what it started on SIGTERM; give it a moment
      if (current && current.exitCode === null) {
        current.kill('SIGTERM');
        current.once('exit', () => process.exit(130));
        setTimeout(() => process.exit(130), 10_000).unref();
      } else process.exit(130);
    });
  }
  if (found.some((b) => b.src.endsWith('.ts')) && !values['no-compile']) {
    console.log('compiling benchmarks: tsc -p tsconfig.bench.json');
    try {
      execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.bench.json'], {
        cwd: root,
        stdio: 'inherit',
      });
    } catch {
      console.error(
        'tsc reported errors (output was still written); benchmarks whose files exist run anyway',
      );
    }
  }
  const timeoutMs = (values.quick ? 6 : 40) * 60_000;
  const results = [];
  const t0 = Date.now();
  for (const b of found) {
    const file = runnable(b.src);
    console.log(`\n### ${b.name}${values.quick ? ' (quick)' : ''}`);
    if (!existsSync(file)) {
      results.push({ name: b.name, failed: `${relative(root, file)} was not built` });
      continue;
    }
    const t = Date.now();
    const r = await runOne(b.name, file, values.quick, timeoutMs);
    r.seconds = (Date.now() - t) / 1000;
    results.push(r);
  }

  console.log(
    `\n## Results (${values.quick ? 'quick' : 'full'} run, ${((Date.now() - t0) / 60_000).toFixed(1)} min)\n`,
  );
  const rows = results.flatMap((r) =>
    (r.rows ?? []).map((row) => ({ ...row, figure: `${r.name}: ${row.figure}` })),
  );
  if (rows.length) console.log(table(rows));
  console.log(
    `\nTime per benchmark: ${results.map((r) => `${r.name} ${Math.round(r.seconds ?? 0)} s`).join(', ')}`,
  );
  for (const r of results) {
    if (r.failed) console.log(`\n${r.name}: FAILED (${r.failed})`);
    else if (r.rows === null) console.log(`\n${r.name}: exports no run(); it printed its own results above`);
  }
  const misses = rows.filter((r) => /\bMISS\b/.test(r.target ?? ''));
  if (misses.length)
    console.log(`\n${misses.length} target(s) missed: ${misses.map((r) => r.figure).join('; ')}`);
  if (results.some((r) => r.failed)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
