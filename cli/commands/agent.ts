import { readFileSync } from 'node:fs';
import { Agent } from '../../capture/k8s/agent.js';
import { loadKubeConfig } from '../../capture/k8s/kube.js';
import { AGENT_API_PORT, AGENT_HEALTH_PORT, type CaptureRequest } from '../../capture/k8s/wire.js';
import { ExitCodes, usageError } from '../../core/errors.js';
import { parse, parseDuration, parseIntFlag } from '../args.js';
import type { Command } from '../command.js';

const help = `Usage: retap agent [options]

The node agent, as retap's DaemonSet runs it (deploy/k8s): watches the pods of its node and, when
\`retap k8s capture\` asks, records the traffic of the pods it selects with eBPF (TLS plaintext
included, inside the containers' own files) and streams the exchanges back. Needs the privileges
of the DaemonSet: hostPID, CAP_SYS_ADMIN and CAP_SYS_PTRACE,
the host's /sys/kernel/tracing and /sys/fs/cgroup (read-only). docs/kubernetes.md explains each.

Options:
  --node NAME          this node (default: $NODE_NAME, which the DaemonSet sets from spec.nodeName)
  --host-cgroup DIR    where the host's /sys/fs/cgroup is mounted (default /host/sys/fs/cgroup)
  --kubeconfig FILE    credentials (default: the pod's service account)
  --api-port P         the capture API, on 127.0.0.1 only (default ${AGENT_API_PORT})
  --health-port P      /healthz and /readyz on all addresses (default ${AGENT_HEALTH_PORT})
  --ring-buffer MB     kernel ring buffer per capture, MiB, a power of two (default 16)
  --idle D             stop a capture no client has read for D (default 60s)

A self-check on one node (no listener; prints what one capture saw, exit 1 if nothing):
  --once               run one capture here, then print a summary
  --namespace NS       pods of this namespace (default: all)
  --selector S         pods with these labels (Kubernetes selector syntax)
  --annotated          pods annotated retap.dev/capture: "true"
  --container C        only this container of each pod
  --duration D         how long (default 10s)
  --json               the summary as JSON
  -h, --help           this text

Stops cleanly on SIGTERM (ends running captures; their clients get the last exchanges).`;

interface Flags {
  node?: string;
  'host-cgroup'?: string;
  kubeconfig?: string;
  'api-port'?: string;
  'health-port'?: string;
  'ring-buffer'?: string;
  idle?: string;
  once?: boolean;
  namespace?: string;
  selector?: string;
  annotated?: boolean;
  container?: string;
  duration?: string;
  json?: boolean;
}

function version(): string {
  return (
    JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
}

async function run(argv: string[]): Promise<number> {
  const { values: f } = parse<Flags>('agent', argv, {
    node: { type: 'string' },
    'host-cgroup': { type: 'string' },
    kubeconfig: { type: 'string' },
    'api-port': { type: 'string' },
    'health-port': { type: 'string' },
    'ring-buffer': { type: 'string' },
    idle: { type: 'string' },
    once: { type: 'boolean' },
    namespace: { type: 'string' },
    selector: { type: 'string' },
    annotated: { type: 'boolean' },
    container: { type: 'string' },
    duration: { type: 'string' },
    json: { type: 'boolean' },
  });
  const node = f.node ?? process.env.NODE_NAME;
  if (!node)
    throw usageError(
      'retap agent: which node is this?',
      'Pass --node NAME or set NODE_NAME (the DaemonSet sets it from spec.nodeName).',
    );
  if (f.once && !f.selector && !f.annotated) throw usageError('retap agent --once: give --selector or --annotated');
  const ringMiB = f['ring-buffer'] ? parseIntFlag(f['ring-buffer'], '--ring-buffer', 1, 4096) : undefined;
  if (ringMiB !== undefined && (ringMiB & (ringMiB - 1)) !== 0)
    throw usageError('--ring-buffer must be a power of two (MiB)');
  const agent = new Agent({
    kc: loadKubeConfig({ kubeconfig: f.kubeconfig }),
    node,
    version: version(),
    hostCgroup: f['host-cgroup'] ?? '/host/sys/fs/cgroup',
    ...(f['api-port'] ? { apiPort: parseIntFlag(f['api-port'], '--api-port', 0, 65535) } : {}),
    ...(f['health-port'] ? { healthPort: parseIntFlag(f['health-port'], '--health-port', 0, 65535) } : {}),
    ...(ringMiB ? { ringBufferBytes: ringMiB << 20 } : {}),
    ...(f.idle ? { idleMs: parseDuration(f.idle, '--idle') } : {}),
  });
  if (f.once) return once(agent, f);

  const { apiPort, healthPort } = await agent.start();
  process.stderr.write(
    `retap agent: node ${node}, cgroup v2 root ${agent.cgroupRoot.dir} (${agent.cgroupRoot.layout}), API on 127.0.0.1:${apiPort}, health on :${healthPort}\n`,
  );
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  process.stderr.write('retap agent: stopping\n');
  await agent.stop();
  return ExitCodes.OK;
}

async function once(agent: Agent, f: Flags): Promise<number> {
  const durationMs = f.duration ? parseDuration(f.duration, '--duration') : 10_000;
  await agent.pods.start();
  const request: CaptureRequest = {
    ...(f.namespace ? { namespace: f.namespace } : {}),
    ...(f.selector ? { selector: f.selector } : {}),
    ...(f.annotated ? { annotated: true } : {}),
    ...(f.container ? { container: f.container } : {}),
    maxDurationMs: Math.max(durationMs, 1000),
  };
  let summary: Record<string, unknown>;
  try {
    const capture = await agent.startCapture(request);
    await capture.done;
    const { lines } = capture.log.read(0, Number.MAX_SAFE_INTEGER);
    const events = lines.map(
      (l) =>
        JSON.parse(l) as {
          t: string;
          ex?: { direction: string; tls: boolean };
          counters?: Record<string, number>;
          pods?: unknown;
          error?: string;
        },
    );
    const exchanges = events.flatMap((e) => (e.t === 'exchange' && e.ex ? [e.ex] : []));
    const end = events.find((e) => e.t === 'end');
    summary = {
      node: agent.pods.node,
      cgroup: agent.cgroupRoot,
      exchanges: exchanges.length,
      inbound: exchanges.filter((e) => e.direction === 'inbound').length,
      outbound: exchanges.filter((e) => e.direction === 'outbound').length,
      tls: exchanges.filter((e) => e.tls).length,
      targets: capture.status().targets,
      tlsLibraries: capture.finalStats?.tlsLibraries ?? [],
      tlsFailures: capture.finalStats?.tlsFailures ?? [],
      counters: end?.counters ?? {},
      ...(end?.error ? { error: end.error } : {}),
    };
  } catch (e) {
    summary = { node: agent.pods.node, exchanges: 0, error: e instanceof Error ? e.message : String(e) };
  } finally {
    await agent.pods.stop();
  }
  if (f.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stdout.write(
      `retap agent --once: ${summary.exchanges} exchanges (${summary.inbound ?? 0} inbound, ${summary.outbound ?? 0} outbound, ${summary.tls ?? 0} TLS) on node ${summary.node}${summary.error ? `; error: ${summary.error}` : ''}\n`,
    );
  }
  return summary.error || summary.exchanges === 0 ? 1 : ExitCodes.OK;
}

const command: Command = {
  name: 'agent',
  summary: 'The Kubernetes node agent (run by the DaemonSet)',
  help,
  run,
};
export default command;
