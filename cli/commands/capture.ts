import { hostname } from 'node:os';
import { basename } from 'node:path';
import { cgroupId, resolveCgroup } from '../../capture/cgroup.js';
import { recordUntil } from '../../capture/record.js';
import type { CaptureStats } from '../../capture/session.js';
import { ExitCodes, usageError } from '../../core/errors.js';
import { logger } from '../../core/log.js';
import { createSnapshotWriter, type RedactionConfig } from '../../snapshots/index.js';
import { many, parse, parseDuration, parseIntFlag } from '../args.js';
import type { Command } from '../command.js';
import { Progress } from '../progress.js';
import { snapshotWriteConfig } from '../snapshot-config.js';

const log = logger('capture');

const help = `Usage: retap capture --out DIR [targets] [options] [-- CMD ARGS…]

Record the HTTP, gRPC, PostgreSQL, MySQL and Redis traffic of processes with eBPF (TLS plaintext
included) into a snapshot.
Both directions are kept: requests the process answered (inbound) and calls it made (outbound).

Targets (at least one, or a command after --):
  --pid N            capture process N (and children it forks later); repeatable
  --cgroup PATH      capture a cgroup v2 group (absolute, or relative to the v2 root); repeatable
  --all              capture every process on the machine (narrow it with --port)
  -- CMD ARGS…       start CMD in a fresh cgroup and capture exactly it and its children;
                     capture stops when it exits

Options:
  --out DIR          snapshot store directory to write (required)
  --name NAME        snapshot name (default: the command's or the directory's name)
  --service NAME     service name recorded on every exchange
  --port P           only connections with local or remote port P; repeatable
  --duration D       stop after D (e.g. 30s, 5m); default: until Ctrl-C or the command exits
  --cap BYTES        per-call copy cap (default 1048576); past it only sizes are kept
  --ring-buffer MB   kernel ring buffer size in MiB, a power of two (default 16)
  --no-tls           do not attach the TLS probes (OpenSSL, Go crypto/tls) nor node's
                     event-loop probes (node's calls are then linked by time window)
  --no-redact        keep secrets (Authorization, cookies, passwords…) in the snapshot
  --config FILE      retap.yaml whose redaction: rules and snapshots.gzip apply
                     (default ./retap.yaml when present; flags win)
  --no-discover      do not discover tokens / emit transform rules (tokens.yaml, transforms.yaml)
  --gzip             compress exchanges.jsonl
  --json             print the summary as JSON
  -h, --help         this text

Stops on SIGINT/SIGTERM, --duration or command exit, flushes everything, then writes the
snapshot atomically. Drops and truncations are counted in the manifest; any drop prints a
warning, and so does a program whose TLS plaintext cannot be captured (with the reason).
Bad traffic costs only itself: what cannot be a valid exchange is kept quarantined
(counted, listed by retap snapshot show, never replayed), a connection whose decoding fails
is marked and capture goes on.
TLS plaintext: OpenSSL (libssl, node) and Go crypto/tls (Go 1.17+ on amd64, stripped binaries
included). A command retap starts is paused at exec of a program retap has not looked at yet
for the few milliseconds that takes, so a Go program's first TLS call is not missed.
Exit code: 0 ok, 3 capture could not run, 64 bad usage.

Examples:
  retap capture --out snaps/api -- node server.js
  retap capture --out snaps/nginx --pid $(pgrep -o nginx) --duration 60s
  retap capture --out snaps/edge --all --port 8443 --duration 5m`;

interface Flags {
  out?: string;
  name?: string;
  service?: string;
  pid?: string[];
  cgroup?: string[];
  port?: string[];
  all?: boolean;
  duration?: string;
  cap?: string;
  'ring-buffer'?: string;
  'no-tls'?: boolean;
  'no-redact'?: boolean;
  'no-discover'?: boolean;
  gzip?: boolean;
  config?: string;
  json?: boolean;
}

async function run(argv: string[]): Promise<number> {
  const { values: f, rest } = parse<Flags>('capture', argv, {
    out: { type: 'string', short: 'o' },
    name: { type: 'string' },
    service: { type: 'string' },
    pid: { type: 'string', multiple: true },
    cgroup: { type: 'string', multiple: true },
    port: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    duration: { type: 'string' },
    cap: { type: 'string' },
    'ring-buffer': { type: 'string' },
    'no-tls': { type: 'boolean' },
    'no-redact': { type: 'boolean' },
    'no-discover': { type: 'boolean' },
    gzip: { type: 'boolean' },
    config: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (!f.out)
    throw usageError(
      'retap capture: --out DIR is required',
      'Example: retap capture --out snaps/api -- node server.js',
    );
  const pids = many(f.pid).map((p) => parseIntFlag(p, '--pid', 1));
  const ports = many(f.port).map((p) => parseIntFlag(p, '--port', 1, 65535));
  const cgroups = many(f.cgroup).map(resolveCgroup);
  if (!rest.length && !pids.length && !cgroups.length && !f.all) {
    throw usageError(
      'retap capture: nothing to capture',
      'Give --pid, --cgroup, --all, or a command after --.',
    );
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 0);
    } catch {
      throw usageError(`retap capture: --pid ${pid}: no such process`);
    }
  }
  const ringMiB = f['ring-buffer'] ? parseIntFlag(f['ring-buffer'], '--ring-buffer', 1, 4096) : 16;
  if ((ringMiB & (ringMiB - 1)) !== 0) throw usageError('--ring-buffer must be a power of two (MiB)');
  const durationMs = f.duration ? parseDuration(f.duration, '--duration') : undefined;
  const name = f.name ?? (rest[0] ? basename(rest[0]) : basename(f.out));
  const written = await snapshotWriteConfig(f.config, { gzip: f.gzip, noRedact: f['no-redact'] });

  const result = await captureToSnapshot({
    out: f.out,
    name,
    service: f.service,
    pids,
    cgroupIds: cgroups.map(cgroupId),
    ports,
    all: f.all === true,
    command: rest,
    durationMs,
    perCallCapBytes: f.cap ? parseIntFlag(f.cap, '--cap', 0, 1 << 30) : undefined,
    ringBufferBytes: ringMiB << 20,
    tls: !f['no-tls'],
    redact: written.redaction !== false,
    ...(written.redaction ? { redaction: written.redaction } : {}),
    discover: !f['no-discover'],
    gzip: written.gzip,
    filters: { pids, cgroups, ports, all: f.all === true, command: rest },
    progress: !f.json,
  });
  if (f.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    const s = result.stats;
    process.stdout.write(
      `retap capture: ${result.exchanges} exchanges (${result.inbound} inbound, ${result.outbound} outbound) from ${s.connections} connections (${s.tlsConnections} TLS) → ${result.path}\n`,
    );
    if (s.unknownConnections)
      process.stdout.write(
        `  ${s.unknownConnections} connections spoke a protocol retap does not decode (${s.unknownBytes} bytes seen, counted only)\n`,
      );
    for (const g of s.goTls)
      process.stdout.write(
        `  Go TLS: ${g.path} (${g.goVersion}; functions from ${g.symbolsFrom}, offsets from ${g.offsetsFrom})\n`,
      );
    if (s.undecodedBytes)
      process.stdout.write(
        `  ${s.undecodedBytes} bytes on decoded connections could not be decoded (resync, tunnels, cut messages; counted only)\n`,
      );
    if (s.cutMessages)
      process.stdout.write(
        `  ${s.cutMessages} messages on ${s.cutConnections} connections were cut at a limit (a head, chunk line or frame that never ended, or a 1xx storm)\n`,
      );
    if (result.quarantined)
      process.stdout.write(
        `  ${result.quarantined} exchanges quarantined: kept raw with the reason, never replayed (retap snapshot show lists them)\n`,
      );
    if (s.failedConnections) {
      process.stderr.write(
        `retap capture: warning: decoding failed on ${s.failedConnections} connections (capture went on; their later bytes are counted only):\n`,
      );
      for (const f of s.failures.slice(0, 5)) process.stderr.write(`  ${f.connection}: ${f.reason}\n`);
    }
    if (s.lost.ringbufRecords || s.lost.userBatches || s.lost.gapBytes) {
      process.stderr.write(
        `retap capture: warning: lost ${s.lost.ringbufRecords} kernel records, ${s.lost.userBatches} batches, ${s.lost.gapBytes} bytes inside streams; affected exchanges are marked truncated\n`,
      );
    }
  }
  // also with --json: stdout is for scripts, stderr for people
  for (const f of result.stats.tlsFailures) {
    process.stderr.write(
      `retap capture: warning: TLS plaintext of ${f.path}${f.goVersion ? ` (${f.goVersion})` : ''} is not captured: ${f.reason}\n`,
    );
  }
  if (result.commandExit !== undefined && result.commandExit !== 0) {
    process.stderr.write(`retap capture: the command exited with ${result.commandExit}\n`);
  }
  return ExitCodes.OK;
}

export interface CaptureRun {
  out: string;
  name: string;
  service?: string | undefined;
  pids: number[];
  cgroupIds: bigint[];
  ports: number[];
  all: boolean;
  command: string[];
  durationMs?: number | undefined;
  perCallCapBytes?: number | undefined;
  ringBufferBytes?: number | undefined;
  tls: boolean;
  redact: boolean;
  /** The user's redaction rules (retap.yaml); the built-in ones when absent. */
  redaction?: RedactionConfig;
  gzip: boolean;
  /** Discover tokens and emit transform rules into the snapshot (default true). */
  discover?: boolean;
  filters: Record<string, unknown>;
  progress: boolean;
  /** Resolves when capture should stop (besides signals, duration and command exit). */
  until?: Promise<unknown>;
  /** Called once capture is attached (and the command, if any, started). */
  onReady?: (info: { commandPid?: number }) => void | Promise<void>;
}

export interface CaptureResult {
  path: string;
  exchanges: number;
  inbound: number;
  outbound: number;
  /** Exchanges kept quarantined in the snapshot (manifest counts.quarantined). */
  quarantined: number;
  stats: CaptureStats;
  commandExit?: number;
}

/** Capture until a stop condition, then write the snapshot. */
export async function captureToSnapshot(run: CaptureRun): Promise<CaptureResult> {
  const writer = await createSnapshotWriter({
    dir: run.out,
    name: run.name,
    source: {
      host: hostname(),
      ...(run.service ? { service: run.service } : {}),
      ...(run.command.length ? { command: run.command } : {}),
      filters: jsonSafe(run.filters),
    },
    gzip: run.gzip,
    discoverTokens: run.discover !== false,
    ...(run.redact ? (run.redaction ? { redaction: run.redaction } : {}) : { redaction: false as const }),
  });
  const progress = run.progress ? new Progress('capture') : undefined;
  try {
    const r = await recordUntil(
      {
        pids: run.pids,
        cgroupIds: run.cgroupIds,
        ports: run.ports,
        all: run.all,
        tls: run.tls,
        command: run.command,
        ...(run.service ? { service: run.service } : {}),
        ...(run.perCallCapBytes !== undefined ? { perCallCapBytes: run.perCallCapBytes } : {}),
        ...(run.ringBufferBytes !== undefined ? { ringBufferBytes: run.ringBufferBytes } : {}),
      },
      writer,
      run.until,
      {
        signals: true,
        durationMs: run.durationMs,
        onReady: async ({ commandPid }) => {
          log.info(`recording${commandPid === undefined ? '' : ` (command pid ${commandPid})`}`);
          await run.onReady?.(commandPid === undefined ? {} : { commandPid });
        },
        ...(progress
          ? {
              onProgress: ({ inbound, outbound, stats: s }) =>
                progress.update(
                  `${inbound + outbound} exchanges · ${s.connections} connections · ${s.kernel.events} events · drops ${s.kernel.ringbufDrops}`,
                ),
            }
          : {}),
      },
    );
    progress?.done();
    const manifest = await writer.finish({ counters: r.counters, notes: r.notes });
    return {
      path: writer.path,
      exchanges: r.inbound + r.outbound,
      inbound: r.inbound,
      outbound: r.outbound,
      quarantined: manifest.counts.quarantined ?? 0,
      stats: r.stats,
      ...(r.commandExit !== undefined ? { commandExit: r.commandExit } : {}),
    };
  } catch (e) {
    progress?.done();
    await writer.abort().catch(() => undefined);
    throw e;
  }
}

function jsonSafe(v: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))) as Record<
    string,
    unknown
  >;
}

const command: Command = {
  name: 'capture',
  summary: 'Record traffic of processes into a snapshot',
  help,
  run,
};
export default command;
