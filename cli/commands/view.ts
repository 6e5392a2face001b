/** `retap view`: the local traffic viewer (viewer/); this file only parses flags and waits. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupId, resolveCgroup } from '../../capture/cgroup.js';
import { ErrorCodes, ExitCodes, RetapError, usageError } from '../../core/errors.js';
import { openSource, type SourceSpec, startViewer } from '../../viewer/index.js';
import { many, parse, parseIntFlag } from '../args.js';
import type { Command } from '../command.js';

const help = `Usage: retap view SNAPSHOT | RESULTS | --live [capture targets] [-- CMD ARGS…]
                  [--port P] [--host ADDR] [--open] [--json]

A local web viewer for traffic: a virtualised list of exchanges (a million scroll smoothly),
one editable query that filters them (chips and the timeline brush write it; the page URL holds
it), the request/response pair (headers, bodies, pretty JSON, decoded gRPC messages, JWTs,
images; for replay results the recorded and replayed answers side by side with the differences),
a service map built from the traffic, and "save selection as snapshot".

Sources:
  SNAPSHOT           a snapshot version (directory, store, STORE@N or a name), as everywhere
  RESULTS            a replay's results.json (or the directory holding it)
  --live             a local capture (needs root, like retap capture); new exchanges appear as
                     they are captured, capture health (drops, gaps) always shown. Targets:
    --pid N            capture process N (and children it forks); repeatable
    --cgroup PATH      capture a cgroup v2 group; repeatable
    --all              every process (narrow it with --capture-port)
    --capture-port P   only connections with local or remote port P; repeatable
    --service NAME     service name recorded on every exchange
    --no-tls           do not attach the OpenSSL probes
    --no-redact        show secrets as captured (default: redacted, as snapshots are)
    -- CMD ARGS…       start CMD in a fresh cgroup and capture exactly it and its children
  --k8s              the cluster's capture agents: not built yet (it needs the Kubernetes node
                     agent's exchange stream); the viewer's source interface is ready for it

Options:
  --port P           port to listen on (default 0: any free port)
  --host ADDR        address to bind (default 127.0.0.1; anything else exposes your traffic to
                     whoever can reach it and knows the token)
  --open             open the page in the desktop's browser (xdg-open or $BROWSER)
  --name NAME        snapshot name for saved selections (live; default the command's name)
  --json             print {"url": …} as one JSON line instead of the sentence
  -h, --help         this text

The page's address carries a random token: only someone with the URL can read the traffic.
Nothing is loaded from the network (strict Content-Security-Policy; every asset is served by
retap). Saved selections are new snapshot versions, written as \`retap snapshot filter\` writes
them (parent, tokens and transforms carried). Stops on Ctrl-C. Query language: docs/viewer.md.

Examples:
  retap view .retap/snapshots/orders --open
  retap view retap-reports/results.json
  sudo retap view --live --pid $(pgrep -o node)
  sudo retap view --live -- node server.js`;

interface Flags {
  live?: boolean;
  k8s?: boolean;
  pid?: string[];
  cgroup?: string[];
  all?: boolean;
  'capture-port'?: string[];
  service?: string;
  'no-tls'?: boolean;
  'no-redact'?: boolean;
  port?: string;
  host?: string;
  open?: boolean;
  name?: string;
  json?: boolean;
}

function isResults(path: string): boolean {
  if (!existsSync(path)) return false;
  if (statSync(path).isFile()) return path.endsWith('.json');
  return existsSync(join(path, 'results.json')) && !existsSync(join(path, 'snapshot.yaml'));
}

function openBrowser(url: string): boolean {
  const browser = process.env.BROWSER;
  const cmd = browser ? browser : spawnSync('sh', ['-c', 'command -v xdg-open']).status === 0 ? 'xdg-open' : undefined;
  if (!cmd) return false;
  const child = spawn(cmd, [url], { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
  return true;
}

async function run(argv: string[]): Promise<number> {
  const { values: f, positionals, rest } = parse<Flags>(
    'view',
    argv,
    {
      live: { type: 'boolean' },
      k8s: { type: 'boolean' },
      pid: { type: 'string', multiple: true },
      cgroup: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      'capture-port': { type: 'string', multiple: true },
      service: { type: 'string' },
      'no-tls': { type: 'boolean' },
      'no-redact': { type: 'boolean' },
      port: { type: 'string' },
      host: { type: 'string' },
      open: { type: 'boolean' },
      name: { type: 'string' },
      json: { type: 'boolean' },
    },
    true,
  );
  if (f.k8s) {
    throw new RetapError(ErrorCodes.NOT_BUILT, 'retap view --k8s is not built yet: it needs the Kubernetes capture agents to stream exchanges', {
      hint: 'Capture in the cluster to a snapshot and view that, or view a node locally with --live.',
    });
  }
  const port = f.port ? parseIntFlag(f.port, '--port', 0, 65535) : 0;
  const host = f.host ?? '127.0.0.1';
  let spec: SourceSpec;
  if (f.live) {
    if (positionals.length) throw usageError('retap view --live takes no SNAPSHOT', 'Give either a snapshot/results path or --live.');
    const pids = many(f.pid).map((p) => parseIntFlag(p, '--pid', 1));
    const ports = many(f['capture-port']).map((p) => parseIntFlag(p, '--capture-port', 1, 65535));
    const cgroups = many(f.cgroup).map(resolveCgroup);
    if (!rest.length && !pids.length && !cgroups.length && !f.all) {
      throw usageError('retap view --live: nothing to capture', 'Give --pid, --cgroup, --all, or a command after --.');
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 0);
      } catch {
        throw usageError(`retap view: --pid ${pid}: no such process`);
      }
    }
    spec = {
      live: {
        capture: {
          pids,
          cgroupIds: cgroups.map(cgroupId),
          ports,
          all: f.all === true,
          tls: !f['no-tls'],
          ...(f.service ? { service: f.service } : {}),
        },
        ...(rest.length ? { command: rest } : {}),
        redact: !f['no-redact'],
        ...(f.name ? { name: f.name } : {}),
        filters: { pids, cgroups, ports, all: f.all === true, command: rest },
      },
    };
  } else {
    if (positionals.length !== 1) throw usageError('retap view: give one SNAPSHOT or RESULTS, or --live', "Run 'retap view --help' for the usage.");
    const target = positionals[0]!;
    spec = isResults(target) ? { results: target } : { snapshot: target };
  }

  const viewer = await startViewer({ source: await openSource(spec), host, port });
  if (f.json) process.stdout.write(`${JSON.stringify({ url: viewer.url })}\n`);
  else process.stdout.write(`retap view: ${viewer.url}  (Ctrl-C to stop)\n`);
  if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
    process.stderr.write(`retap view: warning: listening on ${host}, not loopback: anyone who can reach it and has the URL sees this traffic\n`);
  }
  if (f.open && !openBrowser(viewer.url)) process.stderr.write('retap view: no browser to open (set $BROWSER); open the URL above\n');
  const stop = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const failed = viewer.loaded.then(
    () => new Promise<never>(() => undefined),
    (e: unknown) => e,
  );
  const outcome = await Promise.race([stop.then(() => undefined), failed]);
  await viewer.close();
  if (outcome !== undefined) throw outcome;
  return ExitCodes.OK;
}

const command: Command = {
  name: 'view',
  summary: 'Browse traffic in a local web viewer (snapshot, results or live)',
  help,
  run,
};
export default command;
