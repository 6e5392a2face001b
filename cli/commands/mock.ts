/**
 * `retap mock SNAPSHOT`: serve a snapshot's recorded dependencies on loopback, standalone, so
 * other teams can test against them. Same mocks as the replay runner uses (runner/mocks).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ErrorCodes, ExitCodes, RetapError, usageError } from '../../core/errors.js';
import type { Exchange } from '../../core/exchange.js';
import {
  type BoundEndpoint,
  type MissMode,
  type MockCall,
  type MockStats,
  planMocks,
  startMocks,
  volatileFromTokens,
} from '../../runner/mocks/index.js';
import { createEphemeralCa, type EphemeralCa } from '../../runner/tls/ca.js';
import { openSnapshot } from '../../snapshots/index.js';
import { parse, parseDuration } from '../args.js';
import type { Command } from '../command.js';

const help = `Usage: retap mock SNAPSHOT [options]

Serve the dependencies recorded in a snapshot (its outbound calls) as mock servers on loopback:
one endpoint per recorded host and port, answering each call with the matching recording
(method, path, sorted query, canonical JSON body; see docs/mocks.md). Speaks HTTP/1.1, HTTP/2
(h2c and h2 over TLS) and gRPC. TLS endpoints use certificates from an ephemeral CA.

Options:
  --ports MODE       recorded: each endpoint on its recorded port, or a free one when that port is
                     taken or privileged (default); auto: free ports for all
  --bind ADDR        address to listen on (default 127.0.0.1)
  --mock-miss MODE   unmatched calls: fail (default; HTTP 599 / gRPC UNAVAILABLE with a JSON
                     reason), closest (serve the nearest recording, still reported),
                     passthrough (forward to the real host, still reported); --miss is an alias
  --tls-dir DIR      keep the CA here (ca.pem; reused when present) so clients can trust it;
                     default: a temp dir removed at exit
  --no-transforms    serve recorded answers as is (ignore the snapshot's transforms.yaml)
  --duration D       stop after D (e.g. 30s); default: until Ctrl-C
  --log              one line per call on stderr (outcome, endpoint, request, status)
  --json             print the endpoints as one JSON line, keep serving, print stats as JSON
  -h, --help         this text

Runs until Ctrl-C (SIGINT) or SIGTERM, then prints the match stats: calls, matched, misses with
their reason. Exit code: 0 every call matched, 1 some call missed, 3 cannot serve, 64 bad usage.

Examples:
  retap mock snaps/orders
  retap mock snaps/orders --ports auto --tls-dir ./mock-ca --miss closest
  NODE_EXTRA_CA_CERTS=./mock-ca/ca.pem npm test   # while retap mock runs`;

interface Flags {
  ports?: string;
  bind?: string;
  'mock-miss'?: string;
  miss?: string;
  'tls-dir'?: string;
  'no-transforms'?: boolean;
  duration?: string;
  log?: boolean;
  json?: boolean;
}

const MISS_MODES: MissMode[] = ['fail', 'closest', 'passthrough'];

function urlOf(ep: BoundEndpoint): string {
  const host = isIP(ep.boundAddr) === 6 ? `[${ep.boundAddr}]` : ep.boundAddr;
  // a database endpoint: its protocol's URL scheme (postgres://, mysql://, redis://)
  const db = ep.protocols.find((p) => p === 'postgres' || p === 'mysql' || p === 'redis');
  if (db) return `${db}://${host}:${ep.port}`;
  return `${ep.tls ? 'https' : 'http'}://${host}:${ep.port}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => `  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`)
    .join('\n');
}

function statsText(s: MockStats): string {
  const pct = s.calls === 0 ? '' : ` (${((100 * s.matched) / s.calls).toFixed(1)}%)`;
  const lines = [
    `mock stats: ${s.calls} call${s.calls === 1 ? '' : 's'}, ${s.matched} matched${pct}, ${s.misses.length} missed`,
  ];
  for (const m of s.misses.slice(0, 50)) lines.push(`  miss: ${m.method} ${m.host}${m.target} — ${m.reason}`);
  if (s.misses.length > 50) lines.push(`  … and ${s.misses.length - 50} more`);
  return lines.join('\n');
}

async function run(argv: string[]): Promise<number> {
  const { values: f, positionals } = parse<Flags>(
    'mock',
    argv,
    {
      ports: { type: 'string' },
      bind: { type: 'string' },
      'mock-miss': { type: 'string' },
      miss: { type: 'string' },
      'tls-dir': { type: 'string' },
      'no-transforms': { type: 'boolean' },
      duration: { type: 'string' },
      log: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    true,
  );
  if (positionals.length !== 1)
    throw usageError('retap mock: give exactly one SNAPSHOT (a snapshot directory or name)');
  const ports = f.ports ?? 'recorded';
  if (ports !== 'recorded' && ports !== 'auto')
    throw usageError(`--ports: '${ports}' must be recorded or auto`);
  const miss = (f['mock-miss'] ?? f.miss ?? 'fail') as MissMode;
  if (!MISS_MODES.includes(miss))
    throw usageError(`--mock-miss: '${miss}' must be one of ${MISS_MODES.join(', ')}`);
  const bind = f.bind ?? '127.0.0.1';
  if (isIP(bind) === 0) throw usageError(`--bind: '${bind}' is not an IP address`);
  const durationMs = f.duration === undefined ? undefined : parseDuration(f.duration, '--duration');

  const snap = await openSnapshot(positionals[0]!);
  const outbound: Exchange[] = [];
  for await (const ex of snap.exchanges()) if (ex.direction === 'outbound') outbound.push(ex);
  const plan = planMocks(outbound);
  if (plan.endpoints.length === 0) {
    throw new RetapError(
      ErrorCodes.SNAPSHOT_INVALID,
      `${snap.path}: no recorded outbound HTTP or gRPC call with an answer, so there is nothing to mock`,
      {
        hint: 'Capture the service while it calls its dependencies (retap capture records both directions).',
      },
    );
  }
  const transforms = f['no-transforms'] ? undefined : await snap.transforms();
  const volatile = volatileFromTokens(await snap.tokens());

  let ca: EphemeralCa | undefined;
  let tempCaDir: string | undefined;
  if (plan.endpoints.some((e) => e.tls) || f['tls-dir']) {
    const dir = f['tls-dir']
      ? resolve(f['tls-dir'])
      : (tempCaDir = await mkdtemp(join(tmpdir(), 'retap-mock-ca-')));
    ca = await createEphemeralCa(dir);
  }
  const log = (c: MockCall) =>
    process.stderr.write(
      `retap mock: ${c.outcome.padEnd(11)} ${c.endpoint} ${c.method} ${c.target} → ${c.status}${c.recorded ? ` (${c.recorded})` : ''}${c.warnings.length ? ` [${c.warnings.join('; ')}]` : ''}\n`,
    );

  const mocks = await startMocks(plan, outbound, {
    ...(ca ? { ca } : {}),
    miss,
    bindAddr: () => bind,
    bindPort: (ep) => (ports === 'auto' ? 0 : ep.port),
    portFallback: true,
    ...(f.log ? { onCall: log } : {}),
    ...(transforms ? { transforms } : {}),
    volatile,
  });
  try {
    if (f.json) {
      const endpoints = mocks.endpoints.map((e) => ({
        host: e.host,
        recordedPort: e.recordedPort,
        url: urlOf(e),
        addr: e.boundAddr,
        port: e.port,
        tls: e.tls,
        protocols: e.protocols,
        exchanges: e.exchanges,
        ...(e.note ? { note: e.note } : {}),
      }));
      process.stdout.write(
        `${JSON.stringify({ snapshot: snap.path, miss, endpoints, ...(ca ? { caCertPath: ca.caCertPath } : {}), skipped: plan.skipped.length })}\n`,
      );
    } else {
      const m = snap.manifest;
      const lines = [
        `retap mock: serving ${mocks.endpoints.length} endpoint${mocks.endpoints.length === 1 ? '' : 's'} from ${m.name} v${m.version} (${outbound.length - plan.skipped.length} recorded calls; misses: ${miss})`,
        table([
          ['HOST', 'URL', 'PROTOCOLS', 'CALLS', ''],
          ...mocks.endpoints.map((e) => [
            `${e.host}:${e.recordedPort}`,
            urlOf(e),
            e.protocols.join(','),
            String(e.exchanges),
            e.note ?? '',
          ]),
        ]),
      ];
      if (plan.skipped.length)
        lines.push(
          `  (${plan.skipped.length} outbound exchange(s) not served: ${plan.skipped[0]!.reason}${plan.skipped.length > 1 ? ', …' : ''})`,
        );
      if (ca) lines.push(`TLS: trust ${ca.caCertPath} (NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, curl --cacert)`);
      lines.push('Serving; Ctrl-C to stop.');
      process.stdout.write(`${lines.join('\n')}\n`);
    }

    await new Promise<void>((done) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        clearTimeout(timer);
        done();
      };
      const timer = durationMs === undefined ? undefined : setTimeout(stop, durationMs);
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  } finally {
    await mocks.stop();
    if (tempCaDir) await rm(tempCaDir, { recursive: true, force: true });
  }
  const s = mocks.stats();
  if (f.json)
    process.stdout.write(
      `${JSON.stringify({ stats: { calls: s.calls, matched: s.matched, misses: s.misses } })}\n`,
    );
  else process.stdout.write(`${statsText(s)}\n`);
  return s.misses.length === 0 ? ExitCodes.OK : ExitCodes.ASSERTIONS_FAILED;
}

const command: Command = { name: 'mock', summary: "Serve a snapshot's dependencies as mocks", help, run };
export default command;
