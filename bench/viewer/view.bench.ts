/**
 * `retap view` on big snapshots (100k and 1M synthetic exchanges, ~1 KB a line, written once with
 * the snapshot writer and cached under /var/cache/retap/bench): time to first paint (process
 * start → first rows drawn in headless Chromium), time until every line is indexed, time to apply
 * filters in the page (submit → list, facets and timeline redrawn), and the server's RSS while
 * serving. Peers, measured in the same run on the same file:
 *   - full parse pass: read the file and JSON.parse every line (what any viewer that shows
 *     nothing before it has read everything pays at least) — for first paint and indexing;
 *   - streaming shared filter: the snapshot reader + compileFilter over every line (what
 *     `retap snapshot filter` does before writing) — for each filter;
 *   - decoded in memory: every exchange kept as a decoded object (100k only: 1M would need
 *     gigabytes) — for RSS.
 * Rounds alternate ours and the peer. Run as root (Chromium is started with --no-sandbox).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import type { BenchOptions, Row } from '../lib/rows.js';
import { median, range, ratios } from '../lib/stats.js';

/** dist/bench/viewer → repo root */
const ROOT = resolve(import.meta.dirname, '../../..');
const MAIN = join(ROOT, 'bin/retap.js');
const DIST = join(ROOT, 'dist');
const CACHE = process.env.RETAP_BENCH_CACHE ?? '/var/cache/retap/bench';
const CHROMIUM = '/usr/bin/chromium';

const QUERIES: Array<[string, string]> = [
  ['status:5xx', 'columns'],
  ['dir:outbound proto:grpc status:2xx', 'columns'],
  ['ord-123458', 'rare text (text index)'],
  ['sku-17', 'common text'],
  ['json:user.tier=gold', 'JSON field (parses candidates)'],
];

function snapshotFor(n: number): string {
  const dir = join(CACHE, `viewer-${n}`, 'v1');
  const manifest = join(dir, 'snapshot.yaml');
  if (existsSync(manifest) && readFileSync(manifest, 'utf8').includes(`lines: ${n}\n`)) return dir;
  console.log(`writing a ${n.toLocaleString('en-US')}-exchange synthetic snapshot to ${dir} (once; cached)`);
  execFileSync(process.execPath, ['--input-type=module', '-e', `const { writeSynthSnapshot } = await import(${JSON.stringify(join(DIST, 'viewer/testing/synth.js'))}); await writeSynthSnapshot(${JSON.stringify(dir)}, ${n});`], { stdio: 'inherit' });
  return dir;
}

function rssMB(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** A node child running `code` (ESM); resolves with what it printed last as JSON. */
function childJson<T>(code: string): Promise<T> {
  return new Promise((done, fail) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => (code === 0 ? done(JSON.parse(out.trim().split('\n').pop()!) as T) : fail(new Error(`peer exited ${code}`))));
  });
}

const peerParse = (file: string) =>
  childJson<{ ms: number; lines: number }>(`
    import { createReadStream } from 'node:fs'; import { createInterface } from 'node:readline';
    const t = performance.now(); let lines = 0;
    for await (const l of createInterface({ input: createReadStream(${JSON.stringify(file)}, { highWaterMark: 1 << 20 }), crlfDelay: Infinity })) { JSON.parse(l); lines++; }
    console.log(JSON.stringify({ ms: performance.now() - t, lines }));`);

const peerFilter = (snap: string, q: string) =>
  childJson<{ ms: number; count: number }>(`
    const { openSnapshot, compileFilter } = await import(${JSON.stringify(join(DIST, 'snapshots/index.js'))});
    const { parseQuery } = await import(${JSON.stringify(join(DIST, 'viewer/query.js'))});
    const t = performance.now();
    const s = await openSnapshot(${JSON.stringify(snap)}, { verify: false });
    const keep = compileFilter(parseQuery(${JSON.stringify(q)}, s.manifest.timeRange?.firstStartUs).spec);
    let count = 0; for await (const l of s.lines()) if (keep(l.value)) count++;
    console.log(JSON.stringify({ ms: performance.now() - t, count }));`);

const peerDecoded = (file: string) =>
  childJson<{ hwm: number }>(`
    import { createReadStream, readFileSync } from 'node:fs'; import { createInterface } from 'node:readline';
    const { fromStored } = await import(${JSON.stringify(join(DIST, 'snapshots/format.js'))});
    const kept = [];
    for await (const l of createInterface({ input: createReadStream(${JSON.stringify(file)}), crlfDelay: Infinity })) kept.push(fromStored(JSON.parse(l)));
    globalThis.gc?.();
    const s = readFileSync('/proc/self/status', 'utf8');
    console.log(JSON.stringify({ hwm: Number(/VmHWM:\\s+(\\d+)/.exec(s)[1]) / 1024, n: kept.length }));`);

interface Round {
  ttfpMs: number;
  indexedMs: number;
  filterMs: number[];
  redrawMs: number[];
  counts: number[];
  rss: number;
  hwm: number;
}

async function oursOnce(snap: string): Promise<Round> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  let child: ChildProcess | undefined;
  try {
    const t0 = performance.now();
    child = spawn(process.execPath, [MAIN, 'view', snap, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    while (!/^\{"url".*\}$/m.test(out)) {
      if (child.exitCode !== null) throw new Error(`retap view exited: ${out}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const url = JSON.parse(/^\{"url".*\}$/m.exec(out)![0]).url as string;
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(url);
    await page.waitForSelector('#rows .row[data-n="0"]', { timeout: 600_000 });
    const ttfpMs = performance.now() - t0;
    for (;;) {
      const info = (await (await fetch(`${url}api/info`)).json()) as { health: { done: boolean } };
      if (info.health.done) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const indexedMs = performance.now() - t0;
    // let the page catch up with the last state push before timing filters
    await new Promise((r) => setTimeout(r, 1500));
    const filterMs: number[] = [];
    const redrawMs: number[] = [];
    const counts: number[] = [];
    for (const [q] of QUERIES) {
      const rows = await page.getAttribute('body', 'data-rows');
      const ready = await page.getAttribute('body', 'data-ready');
      const t = performance.now();
      await page.fill('#q', q);
      await page.press('#q', 'Enter');
      // the list shows the selection's first rows and its count…
      // biome-ignore lint/suspicious/noExplicitAny: the page's document
      await page.waitForFunction((b) => (globalThis as any).document.body.dataset.rows !== b, rows, { timeout: 900_000, polling: 10 });
      filterMs.push(performance.now() - t);
      // …then chips (facet counts), timeline and map catch up
      // biome-ignore lint/suspicious/noExplicitAny: the page's document
      await page.waitForFunction((b) => (globalThis as any).document.body.dataset.ready !== b, ready, { timeout: 900_000, polling: 10 });
      redrawMs.push(performance.now() - t);
      counts.push(Number(await page.getAttribute('#status', 'data-count')));
    }
    const mem = rssMB(child.pid!);
    return { ttfpMs, indexedMs, filterMs, redrawMs, counts, ...mem };
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    await browser.close();
  }
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  if (!existsSync(CHROMIUM)) throw new Error('Chromium is missing (apt-get install chromium; see ci/apt-packages.txt)');
  const sizes = quick ? [100_000] : [100_000, 1_000_000];
  const rows: Row[] = [];
  for (const n of sizes) {
    const snap = snapshotFor(n);
    const file = join(snap, 'exchanges.jsonl');
    const label = n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`;
    const rounds = quick ? 1 : n >= 1e6 ? 2 : 3;
    const ours: Round[] = [];
    const parse: number[] = [];
    for (let r = 0; r < rounds; r++) {
      ours.push(await oursOnce(snap));
      const p = await peerParse(file);
      if (p.lines !== n) throw new Error(`peer read ${p.lines} lines, expected ${n}`);
      parse.push(p.ms);
    }
    const ttfp = ours.map((o) => o.ttfpMs);
    const indexed = ours.map((o) => o.indexedMs);
    rows.push({ figure: `view ${label}: time to first paint, ms`, value: median(ttfp), peer: 'full parse pass', peerValue: median(parse), ratio: median(ratios(ttfp, parse)), spread: range(ratios(ttfp, parse)) });
    rows.push({ figure: `view ${label}: every line indexed, ms`, value: median(indexed), peer: 'full parse pass', peerValue: median(parse), ratio: median(ratios(indexed, parse)), spread: range(ratios(indexed, parse)) });
    for (const [i, [q, kind]] of QUERIES.entries()) {
      const ms = ours.map((o) => o.filterMs[i]!);
      const peer = await peerFilter(snap, q);
      if (peer.count !== ours[0]!.counts[i]) throw new Error(`'${q}': the viewer selected ${ours[0]!.counts[i]}, the shared filter ${peer.count}`);
      rows.push({ figure: `view ${label}: apply '${q}' (${kind}; ${peer.count.toLocaleString('en-US')} match) → rows shown, ms`, value: median(ms), peer: 'streaming shared filter', peerValue: peer.ms, ratio: median(ms) / peer.ms, spread: range(ms) });
      const all = ours.map((o) => o.redrawMs[i]!);
      rows.push({ figure: `view ${label}: apply '${q}' → chips and timeline redrawn too, ms`, value: median(all), spread: range(all) });
    }
    const hwm = ours.map((o) => o.hwm);
    if (n <= 100_000) {
      const dec = await peerDecoded(file);
      rows.push({ figure: `view ${label}: server peak RSS, MB`, value: median(hwm), peer: 'decoded in memory', peerValue: dec.hwm, ratio: median(hwm) / dec.hwm, spread: range(hwm) });
    } else {
      rows.push({ figure: `view ${label}: server peak RSS, MB`, value: median(hwm), peer: 'decoded in memory: not run (GBs)', spread: range(hwm) });
    }
    rows.push({ figure: `view ${label}: server RSS after the filters, MB`, value: median(ours.map((o) => o.rss)) });
  }
  return rows;
}
