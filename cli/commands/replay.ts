import { ExitCodes, RetapError, usageError } from '../../core/errors.js';
import { replay } from '../../runner/replay.js';
import {
  many,
  parse,
  parseClient,
  parseConnections,
  parseDuration,
  parseIntFlag,
  parseProtocol,
} from '../args.js';
import type { Command } from '../command.js';
import { Progress } from '../progress.js';

const help = `Usage: retap replay SNAPSHOT --cmd "START COMMAND" --port P [options]
       retap replay SNAPSHOT --k8s --image IMAGE --port P [options]

Replays a snapshot's inbound requests against a build, inside an ephemeral network namespace where
the build's dependencies are mocked from the recording, while eBPF capture records how the build
answers (server-side timings) and every call it makes. Writes RESULTS_DIR/results.json for
\`retap report\` and the assertions. Needs root (namespace, cgroup, eBPF).

Build under test:
  --cmd "COMMAND"        how to start the build (run by /bin/sh, in its own cgroup)
  --port P               port the build listens on (inside the namespace)
  --ready URL            readiness URL (default: the TCP port accepts connections)
  --ready-timeout D      how long to wait for readiness (default 30s)
  --env KEY=VALUE        environment for the build; repeatable
  --cwd DIR              working directory of the build (default: here)

On Kubernetes (--k8s; docs/kubernetes.md "Replay in a namespace per run"):
  --k8s                  replay in an ephemeral namespace retap-run-<id>: the build as a
                         Deployment from --image, retap's mocks and driver beside it in its pod,
                         the node agent (retap k8s install) recording it; the namespace is deleted
                         at the end (also on failure, SIGINT, SIGTERM; retap gc --k8s after kill -9)
  --image IMAGE          the build under test (its entrypoint, or --command/--arg)
  --command ARG          replaces the image's entrypoint; repeatable, one word each
  --arg ARG              replaces the image's arguments; repeatable, one word each
  --baseline-image IMG   also replay a baseline image (same port, env, readiness and arguments)
  --baseline-arg ARG     the baseline's arguments instead of --arg's (repeatable; e.g. the same
                         image without a feature flag)
  --shards N             N run pods at once, each replaying a share of the lanes (sessions and
                         recorded connections never split), merged into one run (default 1)
  --resources SPEC       the build's requests = limits, e.g. cpu=500m,memory=256Mi
  --kubeconfig FILE      cluster credentials (default $KUBECONFIG, ~/.kube/config, in-cluster)
  --context NAME         a context of that kubeconfig
  --retap-image IMAGE    retap's image for the run pod's mocks and driver (default: the agent's,
                         else retap.local/retap:<version>)
  --pull-policy P        imagePullPolicy of both images (default IfNotPresent)
  --agent-namespace NS   where the node agents run (default retap-system; a Helm release's namespace)
  --keep-namespace       leave the namespace for a look (retap gc --k8s removes it later)
  (--ready is then an HTTP path or URL for the build's readiness probe, --cmd/--cwd are unused)

Baseline and noise:
  --runs N               replays per build, 1–10 (default 1); 2+ shows which fields vary by themselves
  --baseline-cmd "CMD"   also replay a baseline build (same port, env and readiness unless
  --baseline-port P      given) for a three-way comparison

Driver:
  --concurrency N        lanes at once (default 1; requests of a lane keep their recorded order)
  --connections MODE     recorded (default): requests recorded on one connection go out on one
                         connection, in order, closed where the recording closed it; a lane joins
                         the connections and login sessions that share requests. pooled: shared
                         keep-alive connections (faster, but a server sees other connections than
                         it did when recorded)
  --rate R               at most R requests per second
  --speed X              keep the recorded pacing, X times faster (e.g. 1, 2, 10)
  --timeout D            per-request timeout (default 10s); retries are off
  --client NAME          h1 (default: retap's lean HTTP/1.1 client) or undici
  --protocol P           auto (default): each exchange over the protocol it was recorded with —
                         HTTP/2 (h2c with prior knowledge, or h2 over TLS when the recorded
                         connection was TLS) and gRPC (unary and streaming) over node:http2, one
                         session per recorded connection, its streams concurrent as recorded;
                         HTTP/1.x over the client above. h1 or h2: everything over one of them
  --no-reflection        do not ask a gRPC build for its schema over server reflection. By default,
                         when the snapshot holds gRPC, the build is asked (grpc.reflection.v1, else
                         v1alpha) once it is ready; the descriptors are kept in results.json and
                         \`retap report\` names fields with them ($.price) unless --proto is given
                         (it wins). A build without reflection is compared by field number (#2)
  --mock-miss MODE       fail (default: an unrecorded call fails and is reported), closest, passthrough
  --secrets FILE         values of redacted static client credentials (Basic, API keys, tokens the
                         client had before the recording): a YAML map REDACTED-<16 hex>: value;
                         RETAP_SECRET_<16 hex>=value in the environment adds to it. A replay that
                         would send a placeholder nothing replaces stops first (exit 3,
                         RETAP_SECRET_MISSING); \`retap snapshot secrets SNAPSHOT\` lists them

Output:
  --out DIR              results directory (default ./retap-results)
  --json                 print a summary as JSON
  -h, --help             this text

Exit codes: 0 replay done (judging the answers is \`retap report\`'s job), 3 infrastructure
(the build did not start or crashed, capture failed, a needed secret is missing), 64 bad usage.`;

interface Flags {
  k8s?: boolean;
  image?: string;
  command?: string[];
  arg?: string[];
  'baseline-image'?: string;
  'baseline-arg'?: string[];
  shards?: string;
  resources?: string;
  kubeconfig?: string;
  context?: string;
  'retap-image'?: string;
  'pull-policy'?: string;
  'agent-namespace'?: string;
  'keep-namespace'?: boolean;
  cmd?: string;
  port?: string;
  ready?: string;
  'ready-timeout'?: string;
  env?: string[];
  cwd?: string;
  runs?: string;
  'baseline-cmd'?: string;
  'baseline-port'?: string;
  concurrency?: string;
  rate?: string;
  speed?: string;
  timeout?: string;
  client?: string;
  connections?: string;
  protocol?: string;
  'no-reflection'?: boolean;
  'mock-miss'?: string;
  secrets?: string;
  out?: string;
  json?: boolean;
}

/** `cpu=500m,memory=256Mi` → requests and limits alike. */
export function parseResources(
  text: string | undefined,
): { requests: Record<string, string>; limits: Record<string, string> } | undefined {
  if (text === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const kv of text.split(',').filter(Boolean)) {
    const m = /^(cpu|memory|ephemeral-storage)=([0-9.]+[a-zA-Z]*)$/.exec(kv.trim());
    if (!m) throw usageError(`--resources ${text}: expected cpu=QTY,memory=QTY (e.g. cpu=500m,memory=256Mi)`);
    out[m[1]!] = m[2]!;
  }
  return { requests: out, limits: { ...out } };
}

/** retap's image for the run pod: the installed agent's, else this version's default tag. */
export async function defaultRetapImage(kubeconfig?: string, context?: string): Promise<string> {
  const { loadKubeConfig } = await import('../../capture/k8s/kube.js');
  const { AppsV1Api } = await import('@kubernetes/client-node');
  try {
    const kc = loadKubeConfig({ kubeconfig, context });
    const ds = await kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDaemonSet({ name: 'retap-agent', namespace: 'retap-system' });
    const image = ds.spec?.template.spec?.containers.find((c) => c.name === 'agent')?.image;
    if (image) return image;
  } catch {
    /* no agent: the default tag, and the run says the agent is missing */
  }
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { packageRoot } = await import('../../core/paths.js');
  const version = (
    JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }
  ).version;
  return `retap.local/retap:${version}`;
}

export function parseEnv(list: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of list) {
    const at = kv.indexOf('=');
    if (at <= 0) throw usageError(`--env ${kv}: expected KEY=VALUE`);
    env[kv.slice(0, at)] = kv.slice(at + 1);
  }
  return env;
}

async function run(argv: string[]): Promise<number> {
  const { values: f, positionals } = parse<Flags>(
    'replay',
    argv,
    {
      k8s: { type: 'boolean' },
      image: { type: 'string' },
      command: { type: 'string', multiple: true },
      arg: { type: 'string', multiple: true },
      'baseline-image': { type: 'string' },
      'baseline-arg': { type: 'string', multiple: true },
      shards: { type: 'string' },
      resources: { type: 'string' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      'retap-image': { type: 'string' },
      'pull-policy': { type: 'string' },
      'agent-namespace': { type: 'string' },
      'keep-namespace': { type: 'boolean' },
      cmd: { type: 'string' },
      port: { type: 'string' },
      ready: { type: 'string' },
      'ready-timeout': { type: 'string' },
      env: { type: 'string', multiple: true },
      cwd: { type: 'string' },
      runs: { type: 'string' },
      'baseline-cmd': { type: 'string' },
      'baseline-port': { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      speed: { type: 'string' },
      timeout: { type: 'string' },
      client: { type: 'string' },
      connections: { type: 'string' },
      protocol: { type: 'string' },
      'no-reflection': { type: 'boolean' },
      'mock-miss': { type: 'string' },
      secrets: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
    true,
  );
  const snapshot = positionals[0];
  if (!snapshot)
    throw usageError(
      'retap replay: which snapshot?',
      'Example: retap replay snaps/orders --cmd "node server.js" --port 8080',
    );
  if (positionals.length > 1)
    throw usageError(`retap replay: one snapshot at a time (got ${positionals.join(', ')})`);
  if (f.k8s) {
    if (!f.image) throw usageError('retap replay --k8s: --image IMAGE is required (the build under test)');
    if (f.cmd)
      throw usageError('retap replay --k8s: --cmd is for local replays; use --image (and --command/--arg)');
    if (f['baseline-arg'] && !f['baseline-image'])
      throw usageError(
        'retap replay --k8s: --baseline-arg needs --baseline-image (which may be the same image)',
      );
  } else {
    for (const k of [
      'image',
      'command',
      'arg',
      'baseline-image',
      'baseline-arg',
      'shards',
      'resources',
      'kubeconfig',
      'context',
      'retap-image',
      'pull-policy',
      'agent-namespace',
      'keep-namespace',
    ] as const)
      if (f[k] !== undefined) throw usageError(`retap replay: --${k} needs --k8s`);
    if (!f.cmd) throw usageError('retap replay: --cmd "START COMMAND" is required');
  }
  if (!f.port) throw usageError('retap replay: --port P is required (the port the build listens on)');
  const port = parseIntFlag(f.port, '--port', 1, 65535);
  const env = parseEnv(many(f.env));
  const miss = f['mock-miss'] ?? 'fail';
  if (miss !== 'fail' && miss !== 'closest' && miss !== 'passthrough') {
    throw usageError(`--mock-miss ${miss}: expected fail, closest or passthrough`);
  }
  const speedText = f.speed?.replace(/x$/i, '');
  const speed = speedText === undefined ? undefined : Number(speedText);
  if (speed !== undefined && !(speed > 0))
    throw usageError(`--speed ${f.speed}: expected a positive factor such as 1 or 2x`);
  const client = parseClient(f.client);
  const connections = parseConnections(f.connections);
  const protocol = parseProtocol(f.protocol);
  const rate = f.rate === undefined ? undefined : Number(f.rate);
  if (rate !== undefined && !(rate > 0))
    throw usageError(`--rate ${f.rate}: expected requests per second > 0`);
  const progress = f.json ? undefined : new Progress('replay');
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const common = {
      snapshot,
      runsPerBuild: f.runs ? parseIntFlag(f.runs, '--runs', 1, 10) : 1,
      readyTimeoutMs: f['ready-timeout']
        ? parseDuration(f['ready-timeout'], '--ready-timeout')
        : f.k8s
          ? 120_000
          : 30_000,
      out: f.out ?? 'retap-results',
      driver: {
        concurrency: f.concurrency ? parseIntFlag(f.concurrency, '--concurrency', 1, 1024) : 1,
        rate,
        speed,
        timeoutMs: f.timeout ? parseDuration(f.timeout, '--timeout') : 10_000,
        client,
        connections,
        protocol,
        ...(f['no-reflection'] ? { reflection: false } : {}),
      },
      miss,
      secretsFile: f.secrets,
      onProgress: (label: string, done: number, total: number, errors: number) =>
        progress?.update(`${label} ${done}/${total}${errors ? ` · ${errors} errors` : ''}`),
      signal: controller.signal,
    } as const;
    let outcome: Awaited<ReturnType<typeof replay>>;
    const timings: Record<string, number> = {};
    if (f.k8s) {
      const { replayOnK8s } = await import('../../runner/k8s/run.js');
      const build = {
        image: f.image!,
        port,
        ready: f.ready,
        env,
        command: f.command,
        args: f.arg,
        resources: parseResources(f.resources),
        imagePullPolicy: f['pull-policy'],
      };
      outcome = await replayOnK8s({
        ...common,
        candidate: build,
        baseline: f['baseline-image']
          ? {
              ...build,
              image: f['baseline-image'],
              ...(f['baseline-arg'] ? { args: f['baseline-arg'] } : {}),
            }
          : undefined,
        shards: f.shards ? parseIntFlag(f.shards, '--shards', 1, 64) : 1,
        k8s: {
          kubeconfig: f.kubeconfig,
          context: f.context,
          retapImage: f['retap-image'] ?? (await defaultRetapImage(f.kubeconfig, f.context)),
          retapPullPolicy: f['pull-policy'],
          keepNamespace: f['keep-namespace'],
          agentNamespace: f['agent-namespace'],
        },
        onNamespace: (ns) => process.stderr.write(`retap replay: namespace ${ns}\n`),
        timings,
      });
    } else {
      outcome = await replay({
        ...common,
        candidate: { command: f.cmd!, port, ready: f.ready, env },
        baseline: f['baseline-cmd']
          ? {
              command: f['baseline-cmd'],
              port: f['baseline-port'] ? parseIntFlag(f['baseline-port'], '--baseline-port', 1, 65535) : port,
              ready: f.ready,
              env,
            }
          : undefined,
        cwd: f.cwd ?? process.cwd(),
      });
    }
    progress?.done();
    const { results, path } = outcome;
    if (f.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            path,
            items: results.recorded.length,
            runs: results.runs.map((r) => ({
              label: r.label,
              answered: r.items.filter((i) => i.client.status !== undefined).length,
              captured: r.items.filter((i) => i.live).length,
              mocks: { calls: r.mocks.calls, matched: r.mocks.matched, misses: r.mocks.misses.length },
              warnings: r.warnings.length,
              connections: r.connections,
              error: r.error,
            })),
            ...(outcome.error ? { error: outcome.error } : {}),
            ...(f.k8s ? { namespace: outcome.results.environment.namespace, timings } : {}),
          },
          null,
          2,
        )}\n`,
      );
    } else {
      for (const r of results.runs) {
        const answered = r.items.filter((i) => i.client.status !== undefined).length;
        const captured = r.items.filter((i) => i.live).length;
        process.stdout.write(
          `retap replay: ${r.label}: ${answered}/${r.items.length} answered, ${captured} captured at the build's socket, mocks ${r.mocks.matched}/${r.mocks.calls} matched${r.mocks.misses.length ? ` (${r.mocks.misses.length} misses)` : ''}, ${r.warnings.length} warnings (${(r.durationMs / 1000).toFixed(1)} s)\n`,
        );
        const reopened = r.connections?.reopened ?? 0;
        if (reopened)
          process.stdout.write(
            `retap replay: ${r.label}: ${reopened} request(s) went out on a new connection because the build closed one the recording kept open (warnings: connection-reopened)\n`,
          );
      }
      process.stdout.write(`retap replay: results → ${path} (next: retap report ${path})\n`);
    }
    if (outcome.error) {
      throw new RetapError(outcome.error.code as never, outcome.error.message, {
        hint: `Partial results were written to ${path}.`,
      });
    }
    if (controller.signal.aborted) return 130;
    return ExitCodes.OK;
  } finally {
    progress?.done();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

const command: Command = { name: 'replay', summary: 'Replay a snapshot against a build', help, run };
export default command;
