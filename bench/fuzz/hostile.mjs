#!/usr/bin/env node
/**
 * `npm run fuzz [-- --minutes 3 --seeds 101,102 --streams 16 --rate 262144]`: the long form of
 * test/e2e/hostile.test.ts. For each seed, `retap capture -- node traffic.mjs` runs for the given
 * minutes: hostile connections that never end a body, head, chunk line or frame stream the whole
 * time (plus opaque bytes and gRPC DATA promising 4 GiB), while rounds of short hostile
 * connections (test/fixtures/hostile/inputs.mjs) and well-formed HTTP/1.1 and HTTP/2 exchanges run
 * beside them. The recorder's resident memory is sampled every 500 ms, and every 10 s the recorder
 * (bench/fuzz/recorder.mjs) reports its live heap and external memory after a full GC; the peer
 * is the same run with well-formed traffic only. Then the run is judged like the e2e test: exit 0, the snapshot
 * validates, good exchanges are there byte-exact, counters equal the ledger.
 *
 * Needs root (eBPF) and a build (`npm run -s build`). Loopback only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..', '..');
const retap = join(root, 'bin', 'retap.js');
const recorder = join(root, 'bench', 'fuzz', 'recorder.mjs');
const traffic = join(root, 'test', 'fixtures', 'hostile', 'traffic.mjs');

const { values: o } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    seeds: { type: 'string', default: '101,102' },
    streams: { type: 'string', default: '16' },
    rate: { type: 'string', default: String(256 * 1024) },
    hostile: { type: 'string', default: '120' },
    good: { type: 'string', default: '24' },
    'no-peer': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) {
  console.error('fuzz: dist/ is missing; run `npm run -s build` first');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('fuzz: capture needs root (eBPF)');
  process.exit(2);
}

const seconds = Math.max(5, Math.round(Number(o.minutes) * 60));
const work = mkdtempSync(join(tmpdir(), 'retap-fuzz-'));
const MB = (n) => (n / 1e6).toFixed(1);

function status(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** One capture run; resolves with its summary, ledger and memory figures. */
function runOnce(name, args) {
  const out = join(work, name);
  const ledger = join(work, `${name}.json`);
  const argv = ['--expose-gc', recorder, 'capture', '--out', out, '--json', '--no-redact', '--', process.execPath, traffic, ...args, '--ledger', ledger];
  return new Promise((res) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let peak = 0;
    let hwm = 0;
    const samples = [];
    const timer = setInterval(() => {
      const s = status(child.pid);
      if (!s) return;
      peak = Math.max(peak, s.rss);
      hwm = Math.max(hwm, s.hwm);
      samples.push({ at: Date.now() - t0, rss: s.rss });
    }, 500);
    const limit = setTimeout(() => child.kill('SIGINT'), (seconds + 120) * 1000);
    child.on('exit', (code) => {
      clearInterval(timer);
      clearTimeout(limit);
      let summary;
      let book;
      try {
        summary = JSON.parse(stdout);
        book = JSON.parse(readFileSync(ledger, 'utf8'));
      } catch {
        // judged below
      }
      // Peak RSS per third of the streaming phase (level when memory is bounded, rising when it is
      // not), and after it: when the traffic ends, every connection's last messages are emitted
      // and written at once.
      const streaming = samples.filter((x) => x.at <= seconds * 1000).map((x) => x.rss);
      const third = Math.max(1, Math.ceil(streaming.length / 3));
      const thirds = [0, 1, 2].map((i) => Math.max(0, ...streaming.slice(i * third, (i + 1) * third)));
      const after = Math.max(0, ...samples.filter((x) => x.at > seconds * 1000).map((x) => x.rss));
      // live memory after a full GC, from the recorder's own reports
      const mem = [...stderr.matchAll(/^RETAP_MEM (.*)$/gm)].map((m) => JSON.parse(m[1]));
      const live = mem.length ? Math.max(...mem.map((m) => m.heapUsed + m.external)) : 0;
      const heap = mem.length ? Math.max(...mem.map((m) => m.heapUsed)) : 0;
      res({ name, code, stderr, summary, ledger: book, peak, hwm, thirds, after, live, heap, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

async function exchangesOf(path) {
  const { openSnapshot } = await import(join(root, 'dist', 'snapshots', 'index.js'));
  const snap = await openSnapshot(path);
  const all = [];
  for await (const ex of snap.exchanges()) all.push(ex);
  return { manifest: snap.manifest, all };
}

/** The e2e test's checks, as a list of failures (empty: all good). */
async function judge(r) {
  const fail = [];
  const errors = r.stderr.split('\n').filter((l) => l && !l.startsWith('RETAP_MEM'));
  if (r.code !== 0) return [`capture exited ${r.code}: ${errors.slice(-3).join(' | ')}`];
  if (!r.summary || !r.ledger) return ['no summary or ledger'];
  if (r.ledger.errors.length) fail.push(`traffic errors: ${r.ledger.errors.slice(0, 3).join('; ')}`);
  const v = spawnSync(process.execPath, [retap, 'snapshot', 'validate', r.summary.path], { encoding: 'utf8' });
  if (v.status !== 0) fail.push(`snapshot invalid: ${v.stderr.trim()}`);
  const { manifest, all } = await exchangesOf(r.summary.path);
  const c = manifest.counters;
  const l = r.ledger;
  const sum = (list, pred) => list.filter(pred).reduce((n, h) => n + h.c2s + h.s2c, 0);
  const unknown = sum(l.hostile, (h) => h.expect === 'unknown') + sum(l.streams, (s) => s.kind === 'opaque-forever');
  const cipher = sum(l.hostile, (h) => h.expect === 'ciphertext');
  const decoded = sum(l.hostile, (h) => h.expect === 'decoded') + sum(l.streams, (s) => s.kind !== 'opaque-forever');
  const lost = c.ringbufDrops + c.userBatchDrops + c.truncations + c.gapBytes;
  if (lost === 0) {
    if (c.unknownBytes !== 2 * unknown) fail.push(`unknownBytes ${c.unknownBytes} != ${2 * unknown} sent`);
    if (c.ciphertextBytes !== 2 * cipher) fail.push(`ciphertextBytes ${c.ciphertextBytes} != ${2 * cipher} sent`);
    const total = 2 * (unknown + cipher + decoded + l.goodConnectionBytes);
    if (c.kernelBytes !== total) fail.push(`kernelBytes ${c.kernelBytes} != ${total} sent`);
  }
  if (c.undecodedBytes > 2 * decoded) fail.push(`undecodedBytes ${c.undecodedBytes} > ${2 * decoded} seen on decoded connections`);
  if (c.failedConnections) fail.push(`${c.failedConnections} connections failed to decode`);
  const goodId = (e) => e.request.headers.find(([n]) => n.toLowerCase() === 'x-good-id')?.[1];
  for (const g of l.good) {
    for (const dir of ['inbound', 'outbound']) {
      const mine = all.filter((e) => e.direction === dir && goodId(e) === String(g.id));
      const exact = mine.some(
        (e) =>
          !e.quarantine &&
          Buffer.from(e.response?.body.data ?? []).equals(Buffer.from(g.body, 'base64')) &&
          Buffer.from(e.request.body.data).equals(Buffer.from(g.request.body, 'base64')),
      );
      if (!exact && lost === 0) fail.push(`good #${g.id} ${dir}: not kept byte-exact (${mine.length} candidates)`);
    }
  }
  r.stats = { exchanges: all.length, quarantined: manifest.counts.quarantined ?? 0, counters: c, sent: unknown + cipher + decoded + l.goodConnectionBytes };
  return fail;
}

const rows = [];
let failed = 0;
console.log(`fuzz: ${o.seeds} for ${seconds} s each, ${o.streams} endless streams at ${MB(Number(o.rate))} MB/s each, work dir ${work}`);
const seeds = o.seeds.split(',').map(Number);
for (const seed of seeds) {
  const common = ['--seed', String(seed), '--good', o.good, '--stream-seconds', String(seconds), '--pause-ms', '1000'];
  const runs = [await runOnce(`hostile-${seed}`, [...common, '--hostile', o.hostile, '--streams', o.streams, '--rate', o.rate])];
  if (!o['no-peer'] && seed === seeds[0]) runs.push(await runOnce(`good-only-${seed}`, [...common, '--hostile', '0', '--streams', '0']));
  for (const r of runs) {
    const problems = await judge(r);
    failed += problems.length ? 1 : 0;
    const c = r.stats?.counters ?? {};
    rows.push({
      run: r.name,
      seconds: r.seconds.toFixed(0),
      'MB sent': r.stats ? MB(r.stats.sent) : '',
      connections: c.connections ?? '',
      exchanges: r.stats?.exchanges ?? '',
      quarantined: r.stats?.quarantined ?? '',
      'cut msgs': c.cutMessages ?? '',
      'undecoded MB': c.undecodedBytes === undefined ? '' : MB(c.undecodedBytes),
      drops: c.ringbufDrops === undefined ? '' : `${c.ringbufDrops}/${c.gapBytes}`,
      'peak RSS MB': MB(Math.max(r.peak, r.hwm)),
      'peak RSS by third of streaming / after MB': `${r.thirds.map(MB).join(' / ')} / ${MB(r.after)}`,
      'live after GC MB (heap)': `${MB(r.live)} (${MB(r.heap)})`,
      verdict: problems.length ? `FAIL: ${problems.slice(0, 3).join('; ')}` : 'ok',
    });
    console.log(`${r.name}: ${rows[rows.length - 1].verdict}`);
  }
}

const head = Object.keys(rows[0]);
console.log(`\n| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${head.map((k) => row[k]).join(' | ')} |`);
const peer = rows.find((r) => r.run.startsWith('good-only'));
const worst = rows.filter((r) => r.run.startsWith('hostile')).map((r) => Number(r['peak RSS MB']));
if (peer && worst.length) {
  console.log(`\npeak RSS under attack: ${Math.max(...worst)} MB; with well-formed traffic only (peer): ${peer['peak RSS MB']} MB; ratio ${(Math.max(...worst) / Number(peer['peak RSS MB'])).toFixed(2)}`);
}
if (!o.keep) rmSync(work, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
