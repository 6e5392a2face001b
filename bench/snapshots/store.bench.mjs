#!/usr/bin/env node
/**
 * Snapshot store benchmark: write and read N small exchanges streaming, each task in its own
 * process so peak RSS is that task's alone. Peers measured in the same run:
 *   writer peer: JSON.stringify + fs write stream (no redaction, sort, schema or hashing)
 *   reader peer: readline + JSON.parse of the same exchanges.jsonl (the floor for our reader)
 *   redaction: the same writer on exchanges carrying credentials (100k session tokens per 1M,
 *   each redacted in its login answer and its 9 uses) against the writer on credential-free ones
 * Full-size runs give throughput and peak RSS; interleaved smaller pairs (A B A B …) give the
 * median ratio and its spread.
 *
 *   node bench/snapshots/store.bench.mjs [--n 1000000] [--pairs 5] [--pair-n 200000]
 * or as part of `npm run bench` (the run() export).
 *
 * Uses dist/ when built; otherwise compiles snapshots/ into a temp folder with tsc.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const repo = resolve(import.meta.dirname, '../..');

async function lib(root) {
  const snapshots = await import(join(root, 'snapshots/index.js'));
  const sample = await import(join(root, 'snapshots/sample.js'));
  return { ...snapshots, ...sample };
}

/**
 * The same small exchanges carrying credentials: sessions of 10 exchanges, the first a login
 * whose answer hands out a 32-hex session token, the other 9 presenting it in
 * `Authorization: Session …` — 1M exchanges make 100k distinct secrets, each learned from its
 * use and redacted in the login answer that came before (redaction by value).
 */
function authExchange(L, i) {
  const ex = L.sampleExchange(i);
  const token = `${(Math.floor(i / 10) * 2654435761).toString(16).padStart(12, '0')}a1b2c3d4e5f6a7b8c9d0`;
  if (i % 10 === 0) {
    const body = new TextEncoder().encode(`{"session":"${token}","user":"u${i}"}`);
    return {
      ...ex,
      response: { ...ex.response, headers: [['Content-Type', 'application/json'], ['Content-Length', String(body.length)]], body: { data: body, size: body.length, truncated: false } },
    };
  }
  return { ...ex, request: { ...ex.request, headers: [...ex.request.headers, ['Authorization', `Session ${token}`]] } };
}

/** One measured task in this (child) process; prints {seconds, rssMB, count}. */
async function child(task, n, dir, root) {
  const L = await lib(root);
  const t0 = process.hrtime.bigint();
  let count = 0;
  if (task === 'write-ours') {
    const w = await L.createSnapshotWriter({ dir, name: 'bench', source: { host: 'bench', filters: {} } });
    for (let i = 0; i < n; i++) await w.append(L.sampleExchange(i));
    await w.finish();
    count = n;
  } else if (task === 'write-auth') {
    const w = await L.createSnapshotWriter({ dir, name: 'bench', source: { host: 'bench', filters: {} } });
    for (let i = 0; i < n; i++) await w.append(authExchange(L, i));
    await w.finish();
    count = n;
  } else if (task === 'write-peer') {
    const out = createWriteStream(join(dir, 'peer.jsonl'));
    const replacer = (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v);
    for (let i = 0; i < n; i++) {
      if (!out.write(`${JSON.stringify(L.sampleExchange(i), replacer)}\n`)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    count = n;
  } else if (task === 'read-ours') {
    const snap = await L.openSnapshot(dir);
    for await (const _ of snap.exchanges()) count++;
  } else if (task === 'read-peer') {
    const rl = createInterface({
      input: createReadStream(join(dir, 'v1', 'exchanges.jsonl')),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of rl) {
      JSON.parse(line);
      count++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(JSON.stringify({ seconds, rssMB: process.resourceUsage().maxRSS / 1024, count }));
}

function runTask(task, n, dir, root) {
  const r = spawnSync(
    process.execPath,
    [import.meta.filename, '--child', task, '--n', String(n), '--dir', dir, '--root', root],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  if (r.status !== 0) throw new Error(`${task} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function buildRoot() {
  if (existsSync(join(repo, 'dist/snapshots/index.js')))
    return { root: join(repo, 'dist'), cleanup: () => {} };
  const tmp = mkdtempSync(join(tmpdir(), 'retap-bench-'));
  writeFileSync(
    join(tmp, 'tsconfig.json'),
    JSON.stringify({
      extends: join(repo, 'tsconfig.json'),
      compilerOptions: { outDir: join(tmp, 'dist'), rootDir: repo, noEmit: false, sourceMap: false },
      files: [join(repo, 'snapshots/index.ts'), join(repo, 'snapshots/sample.ts')],
      include: [],
    }),
  );
  try {
    execFileSync(join(repo, 'node_modules/.bin/tsc'), ['-p', join(tmp, 'tsconfig.json')], { stdio: 'pipe' });
  } catch {}
  writeFileSync(join(tmp, 'package.json'), readFileSync(join(repo, 'package.json')));
  symlinkSync(join(repo, 'snapshots'), join(tmp, 'snapshots'));
  symlinkSync(join(repo, 'node_modules'), join(tmp, 'node_modules'));
  return { root: join(tmp, 'dist'), cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Full-size runs (throughput, peak RSS) and interleaved smaller pairs (ratio and spread). */
async function measure({ n, pairs, pairN }) {
  const { root, cleanup } = buildRoot();
  const work = mkdtempSync(join(tmpdir(), 'retap-bench-data-'));
  try {
    const full = join(work, 'full');
    mkdirSync(full);
    const wo = runTask('write-ours', n, full, root);
    const wp = runTask('write-peer', n, full, root);
    const authDir = join(work, 'auth');
    mkdirSync(authDir);
    const wa = runTask('write-auth', n, authDir, root);
    rmSync(authDir, { recursive: true, force: true });
    const ro = runTask('read-ours', n, full, root);
    const rp = runTask('read-peer', n, full, root);
    const fileMB = statSync(join(full, 'v1', 'exchanges.jsonl')).size / 1e6;
    const small = join(work, 'small');
    mkdirSync(small);
    runTask('write-ours', pairN, small, root);
    const wr = [];
    const rr = [];
    const ar = [];
    for (let i = 0; i < pairs; i++) {
      const scratch = join(work, `pair-${i}`);
      mkdirSync(scratch);
      const a = runTask('write-ours', pairN, scratch, root);
      const b = runTask('write-peer', pairN, scratch, root);
      wr.push(b.seconds / a.seconds);
      rmSync(scratch, { recursive: true, force: true });
      mkdirSync(scratch);
      const c2 = runTask('write-auth', pairN, scratch, root);
      ar.push(a.seconds / c2.seconds);
      rmSync(scratch, { recursive: true, force: true });
      const c = runTask('read-ours', pairN, small, root);
      const d = runTask('read-peer', pairN, small, root);
      rr.push(d.seconds / c.seconds);
    }
    return { wo, wp, wa, ro, rp, fileMB, wr, rr, ar };
  } finally {
    rmSync(work, { recursive: true, force: true });
    cleanup();
  }
}

/** `npm run bench` contract (bench/lib/rows.ts). */
export async function run({ quick }) {
  const n = quick ? 100_000 : 1_000_000;
  const m = await measure({ n, pairs: quick ? 3 : 5, pairN: quick ? 25_000 : 200_000 });
  const per = (r) => r.count / r.seconds;
  const spread = (xs) => [Math.min(...xs), Math.max(...xs)];
  const rss = Math.max(m.wo.rssMB, m.ro.rssMB, m.wa.rssMB);
  return [
    {
      figure: `snapshot write, ${n.toLocaleString('en-US')} small exchanges (redact, sort, hash): exchanges/s`,
      value: per(m.wo),
      peer: 'JSON.stringify + write stream',
      peerValue: per(m.wp),
      ratio: median(m.wr),
      spread: spread(m.wr),
    },
    {
      figure: `snapshot write, ${n.toLocaleString('en-US')} small exchanges with credentials (${(n / 10).toLocaleString('en-US')} session tokens redacted by value): exchanges/s`,
      value: per(m.wa),
      peer: 'the same writer, no credentials',
      peerValue: per(m.wo),
      ratio: median(m.ar),
      spread: spread(m.ar),
    },
    {
      figure: `snapshot read, ${n.toLocaleString('en-US')} small exchanges (hash, schema, decode): exchanges/s`,
      value: per(m.ro),
      peer: 'readline + JSON.parse',
      peerValue: per(m.rp),
      ratio: median(m.rr),
      spread: spread(m.rr),
      target: `>= 100k/s ${per(m.ro) >= 100_000 ? 'met' : 'MISS'}`,
    },
    {
      figure: `snapshot write/read peak RSS, ${m.fileMB.toFixed(0)} MB of exchanges: MiB`,
      value: rss,
      target: `< 300 MB ${rss < 300 ? 'met' : 'MISS'}`,
    },
  ];
}

async function main() {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      n: { type: 'string', default: '1000000' },
      dir: { type: 'string' },
      root: { type: 'string' },
      pairs: { type: 'string', default: '5' },
      'pair-n': { type: 'string', default: '200000' },
    },
  });
  const n = Number(values.n);
  if (values.child) return child(values.child, n, values.dir, values.root);
  const pn = Number(values['pair-n']);
  const { wo, wp, wa, ro, rp, fileMB, wr, rr, ar } = await measure({ n, pairs: Number(values.pairs), pairN: pn });
  const rows = [
    ['write retap (redact+sort+hash)', wo],
    ['write peer: JSON.stringify+stream', wp],
    ['write retap, with credentials', wa],
    ['read retap (hash+schema+decode)', ro],
    ['read peer: readline+JSON.parse', rp],
  ];
  const pad = (s, w) => String(s).padEnd(w);
  console.log(
    `snapshot store, ${n.toLocaleString('en-US')} small exchanges (exchanges.jsonl ${fileMB.toFixed(0)} MB), node ${process.version}`,
  );
  console.log(`${pad('task', 36)}${pad('exchanges/s', 14)}${pad('seconds', 10)}peak RSS MB`);
  for (const [name, r] of rows) {
    console.log(
      `${pad(name, 36)}${pad(Math.round(r.count / r.seconds).toLocaleString('en-US'), 14)}${pad(r.seconds.toFixed(2), 10)}${r.rssMB.toFixed(0)}`,
    );
  }
  const fmt = (xs) =>
    `median ${median(xs).toFixed(2)} (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)})`;
  console.log(
    `\nthroughput ratio retap/peer over ${values.pairs} interleaved pairs of ${pn.toLocaleString('en-US')}:`,
  );
  console.log(`  write: ${fmt(wr)}`);
  console.log(`  write with credentials / without: ${fmt(ar)}`);
  console.log(`  read:  ${fmt(rr)}`);
}

// Run directly it prints its own table; imported by bench/run.js only run() is used.
if (process.argv[1] === import.meta.filename) await main();
