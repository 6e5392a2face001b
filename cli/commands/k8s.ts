/**
 * `retap k8s install|uninstall|status|capture`: the node agent on a cluster, and capture through it.
 */
import { AGENT_NAMESPACE } from '../../capture/k8s/remote.js';
import { ExitCodes, usageError } from '../../core/errors.js';
import { parse, parseDuration } from '../args.js';
import type { Command } from '../command.js';
import { Progress } from '../progress.js';
import { snapshotWriteConfig } from '../snapshot-config.js';

const common = `  --kubeconfig FILE  cluster credentials (default: $KUBECONFIG, ~/.kube/config, or the pod's service account)
  --context NAME     a context of that kubeconfig (default: its current one)`;

const HELP: Record<string, string> = {
  install: `Usage: retap k8s install [options]

Installs retap's node agent: namespace ${AGENT_NAMESPACE}, its ServiceAccount and RBAC (read pods,
nothing else), the DaemonSet, and the retap-capture roles for the people who capture. The objects
are deploy/k8s (the same files \`kubectl apply -k\` takes), applied with server-side apply
(field manager "retap"); running it again updates them. Waits until every node's agent is ready.

Options:
${common}
  --image IMAGE      agent image (default: retap.local/retap:<version>; push retap's image —
                     deploy/image/build — to your registry and name it here)
  --pull-policy P    Always, IfNotPresent (default) or Never
  --no-wait          return once applied
  --timeout D        how long to wait for the agents (default 3m)
  --dry-run          let the API server check everything, change nothing
  --json             print what was applied as JSON`,
  uninstall: `Usage: retap k8s uninstall [options]

Deletes everything install made (DaemonSet, RBAC, namespace ${AGENT_NAMESPACE}) and waits until the
namespace is gone; running captures end. Objects already gone are skipped.

Options:
${common}
  --no-wait          return once the deletions are accepted
  --timeout D        how long to wait (default 3m)
  --json             print what was deleted as JSON`,
  status: `Usage: retap k8s status [options]

The agent DaemonSet (image, desired/ready/updated) and each agent pod (node, ready, restarts, why
not ready). Exit 0 when every node's agent is ready, 1 when not, 3 when the cluster cannot be read.

Options:
${common}
  --json             as JSON`,
  capture: `Usage: retap k8s capture --namespace NS (--selector S | --annotated) --out DIR [options]

Records the HTTP traffic of pods — both directions, TLS plaintext included — through the node
agents (install them with \`retap k8s install\`), and writes a normal snapshot (secrets redacted,
tokens discovered). Every node's agent records the matching pods on its node; pods that start,
restart or move during the capture are followed. The exchanges come back through the API server
(port-forward to each agent) and are merged in time order. A broken stream is resumed; whatever
could not be recovered is counted per node in the manifest (counters, notes).

Options:
  --namespace NS     the pods' namespace (required unless --annotated: then all namespaces)
  --selector S       pods with these labels, e.g. app=orders or 'tier in (web,api),!canary'
  --annotated        pods annotated retap.dev/capture: "true" (with --selector: both)
  --container C      only this container of each pod (default: all of them)
  --duration D       stop after D (e.g. 30s, 2m); default: until Ctrl-C
  --out DIR          snapshot store directory to write (required)
  --name NAME        snapshot name (default: the selector's app label, or the directory's name)
  --no-tls           do not attach the OpenSSL probes
  --no-redact        keep secrets in the snapshot
  --no-discover      do not discover tokens / emit transform rules
  --gzip             compress exchanges.jsonl
  --config FILE      retap.yaml whose redaction: rules and snapshots.gzip apply
                     (default ./retap.yaml when present; flags win)
${common}
  --json             print the summary as JSON

Needs (RBAC): list pods (and services, to name peers) in the namespace; list pods and create
pods/portforward in ${AGENT_NAMESPACE}. deploy/k8s/capture-rbac.yaml has these as the roles
"retap-capture" to bind. Exit code: 0 ok, 3 the cluster or the agents failed, 64 bad usage.

Examples:
  retap k8s capture --namespace shop --selector app=orders --duration 2m --out snaps/orders
  retap k8s capture --annotated --duration 30s --out snaps/annotated`,
};

const overview = `Usage: retap k8s <install|uninstall|status|capture> [options]

  install    Install (or update) retap's node agent DaemonSet and its RBAC
  uninstall  Remove everything install made
  status     The agents: where they run, whether they are ready
  capture    Record pods' traffic through the agents into a snapshot

Run 'retap k8s <subcommand> --help' for its options. docs/kubernetes.md explains the agent,
its privileges and the RBAC.`;

interface Flags {
  kubeconfig?: string;
  context?: string;
  image?: string;
  'pull-policy'?: string;
  'no-wait'?: boolean;
  timeout?: string;
  'dry-run'?: boolean;
  json?: boolean;
  namespace?: string;
  selector?: string;
  annotated?: boolean;
  container?: string;
  duration?: string;
  out?: string;
  name?: string;
  'no-tls'?: boolean;
  'no-redact'?: boolean;
  'no-discover'?: boolean;
  gzip?: boolean;
  config?: string;
}

const OPTIONS = {
  install: ['image', 'pull-policy', 'no-wait', 'timeout', 'dry-run', 'json'],
  uninstall: ['no-wait', 'timeout', 'json'],
  status: ['json'],
  capture: [
    'namespace',
    'selector',
    'annotated',
    'container',
    'duration',
    'out',
    'name',
    'no-tls',
    'no-redact',
    'no-discover',
    'gzip',
    'config',
    'json',
  ],
} as const;

const BOOLEAN = new Set([
  'no-wait',
  'dry-run',
  'json',
  'annotated',
  'no-tls',
  'no-redact',
  'no-discover',
  'gzip',
]);

async function kube(f: Flags) {
  const { loadKubeConfig } = await import('../../capture/k8s/kube.js');
  return loadKubeConfig({ kubeconfig: f.kubeconfig, context: f.context });
}

const say = (text: string): void => void process.stderr.write(`${text}\n`);

async function installCmd(f: Flags): Promise<number> {
  const { install } = await import('../../capture/k8s/install.js');
  const policy = f['pull-policy'];
  if (policy !== undefined && !['Always', 'IfNotPresent', 'Never'].includes(policy)) {
    throw usageError(`--pull-policy ${policy}: expected Always, IfNotPresent or Never`);
  }
  const r = await install({
    kc: await kube(f),
    ...(f.image ? { image: f.image } : {}),
    ...(policy ? { imagePullPolicy: policy as 'Always' } : {}),
    wait: !f['no-wait'],
    ...(f.timeout ? { timeoutMs: parseDuration(f.timeout, '--timeout') } : {}),
    dryRun: f['dry-run'] === true,
    ...(f.json ? {} : { onStep: (t: string) => say(`retap k8s install: ${t}`) }),
  });
  if (f.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else if (r.ready) {
    process.stdout.write(
      `retap k8s install: ${r.ready.ready}/${r.ready.desired} agents ready (${r.ready.image})\n`,
    );
  } else
    process.stdout.write(
      `retap k8s install: ${r.applied.length} objects applied${f['dry-run'] ? ' (dry run)' : ''}\n`,
    );
  return ExitCodes.OK;
}

async function uninstallCmd(f: Flags): Promise<number> {
  const { uninstall } = await import('../../capture/k8s/install.js');
  const deleted = await uninstall({
    kc: await kube(f),
    wait: !f['no-wait'],
    ...(f.timeout ? { timeoutMs: parseDuration(f.timeout, '--timeout') } : {}),
    ...(f.json ? {} : { onStep: (t: string) => say(`retap k8s uninstall: ${t}`) }),
  });
  if (f.json) process.stdout.write(`${JSON.stringify({ deleted }, null, 2)}\n`);
  else
    process.stdout.write(
      `retap k8s uninstall: ${deleted.length ? `${deleted.length} objects deleted` : 'nothing was installed'}\n`,
    );
  return ExitCodes.OK;
}

async function statusCmd(f: Flags): Promise<number> {
  const { agentPods, daemonSetState } = await import('../../capture/k8s/install.js');
  const kc = await kube(f);
  const ds = await daemonSetState(kc);
  const pods = ds ? await agentPods(kc) : [];
  const ok = ds?.rolledOut === true;
  if (f.json) {
    process.stdout.write(
      `${JSON.stringify({ installed: ds !== undefined, ready: ok, daemonSet: ds ?? null, agents: pods }, null, 2)}\n`,
    );
  } else if (!ds) {
    process.stdout.write(
      `retap k8s status: not installed (no DaemonSet ${AGENT_NAMESPACE}/retap-agent); run retap k8s install\n`,
    );
  } else {
    process.stdout.write(
      `DaemonSet ${AGENT_NAMESPACE}/retap-agent: ${ds.ready}/${ds.desired} ready, ${ds.updated} up to date, image ${ds.image}\n`,
    );
    for (const p of pods) {
      process.stdout.write(
        `  ${p.name} on ${p.node}: ${p.ready ? 'ready' : `not ready (${p.phase}${p.reason ? `, ${p.reason}` : ''})`}, ${p.restarts} restarts\n`,
      );
    }
  }
  return ok ? ExitCodes.OK : 1;
}

async function captureCmd(f: Flags): Promise<number> {
  if (!f.out)
    throw usageError(
      'retap k8s capture: --out DIR is required',
      'Example: retap k8s capture --namespace shop --selector app=orders --out snaps/orders',
    );
  if (!f.selector && !f.annotated)
    throw usageError(
      'retap k8s capture: give --selector S or --annotated',
      'A capture of every pod is not offered.',
    );
  if (!f.namespace && !f.annotated)
    throw usageError('retap k8s capture: --namespace NS is required with --selector');
  const { parseSelector } = await import('../../capture/k8s/selector.js');
  const selector = f.selector ? parseSelector(f.selector) : undefined;
  const durationMs = f.duration ? parseDuration(f.duration, '--duration') : undefined;
  const { basename } = await import('node:path');
  const app = selector?.requirements.find((r) => r.op === 'eq' && /(^|\/)(app|name)$/.test(r.key))?.values[0];
  const name = f.name ?? app ?? basename(f.out);

  const kc = await kube(f);
  const [{ captureFromCluster }, { createSnapshotWriter }, { clusterName }] = await Promise.all([
    import('../../capture/k8s/remote.js'),
    import('../../snapshots/index.js'),
    import('../../capture/k8s/kube.js'),
  ]);
  const filters = {
    kubernetes: {
      cluster: clusterName(kc),
      ...(f.namespace ? { namespace: f.namespace } : {}),
      ...(f.selector ? { selector: f.selector } : {}),
      ...(f.annotated ? { annotated: true } : {}),
      ...(f.container ? { container: f.container } : {}),
    },
  };
  const written = await snapshotWriteConfig(f.config, { gzip: f.gzip, noRedact: f['no-redact'] });
  const writer = await createSnapshotWriter({
    dir: f.out,
    name,
    source: { host: `k8s:${kc.getCurrentContext() || 'in-cluster'}`, service: name, filters },
    gzip: written.gzip,
    discoverTokens: !f['no-discover'],
    ...(written.redaction !== undefined ? { redaction: written.redaction } : {}),
  });
  const progress = f.json ? undefined : new Progress('k8s capture');
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r = await captureFromCluster(
      {
        kc,
        ...(f.namespace ? { namespace: f.namespace } : {}),
        ...(f.selector ? { selector: f.selector } : {}),
        ...(f.container ? { container: f.container } : {}),
        ...(f.annotated ? { annotated: true } : {}),
        ...(durationMs !== undefined ? { durationMs } : {}),
        stop: stop.signal,
        tls: !f['no-tls'],
        onNotice: (t) => {
          progress?.done();
          say(`retap k8s capture: ${t}`);
        },
        onReady: (nodes) => {
          say(
            `retap k8s capture: recording on ${nodes.length} node${nodes.length === 1 ? '' : 's'} (${nodes.join(', ')})${durationMs ? ` for ${f.duration}` : '; Ctrl-C to stop'}`,
          );
        },
        ...(progress
          ? {
              onProgress: (p) => {
                const pods = new Set(p.targets.map((t) => `${t.namespace}/${t.pod}`)).size;
                const drops = p.nodes.reduce((a, n) => a + n.drops, 0);
                progress.update(
                  `${p.exchanges} exchanges (${p.inbound} in, ${p.outbound} out) · ${pods} pods on ${p.nodes.length} nodes · drops ${drops}`,
                );
              },
            }
          : {}),
      },
      writer,
    );
    progress?.done();
    await writer.finish({ counters: r.counters, notes: r.notes });
    const summary = {
      path: writer.path,
      exchanges: r.inbound + r.outbound,
      inbound: r.inbound,
      outbound: r.outbound,
      pods: r.targets,
      nodes: r.nodes,
      uncovered: r.uncovered,
      notes: r.notes,
      startedAt: new Date(r.startedAt).toISOString(),
      readyMs: r.readyMs,
      ...(r.firstExchangeMs !== undefined ? { firstExchangeMs: r.firstExchangeMs } : {}),
    };
    if (f.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else {
      process.stdout.write(
        `retap k8s capture: ${summary.exchanges} exchanges (${r.inbound} inbound, ${r.outbound} outbound) from ${r.targets.length} pods on ${r.nodes.length} nodes → ${writer.path}\n`,
      );
      for (const n of r.nodes) {
        const c = n.counters;
        const lost = (c.ringbufDrops ?? 0) + (c.userBatchDrops ?? 0);
        process.stdout.write(
          `  ${n.node}: ${n.exchanges} exchanges, ${lost} kernel records dropped, ${c.gapBytes ?? 0} bytes missing in streams, ${n.lostExchanges} lost in transit, ${n.resumes} resumes${n.error ? `; ${n.error}` : ''}\n`,
        );
      }
      for (const note of r.notes) process.stderr.write(`retap k8s capture: warning: ${note}\n`);
    }
    return ExitCodes.OK;
  } catch (e) {
    progress?.done();
    await writer.abort().catch(() => undefined);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const RUN: Record<string, (f: Flags) => Promise<number>> = {
  install: installCmd,
  uninstall: uninstallCmd,
  status: statusCmd,
  capture: captureCmd,
};

const command: Command = {
  name: 'k8s',
  summary: 'Install the node agent on a cluster; capture pods through it',
  help: overview,
  subcommands: true,
  async run(argv) {
    const [name, ...rest] = argv;
    if (name === undefined) {
      process.stdout.write(`${overview}\n`);
      return ExitCodes.USAGE;
    }
    const run = RUN[name];
    if (!run)
      throw usageError(
        `retap k8s: unknown subcommand '${name}'`,
        'Subcommands: install, uninstall, status, capture.',
      );
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${HELP[name]!.trimEnd()}\n`);
      return ExitCodes.OK;
    }
    const options: Record<string, { type: 'string' | 'boolean' }> = {
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
    };
    for (const o of OPTIONS[name as keyof typeof OPTIONS])
      options[o] = { type: BOOLEAN.has(o) ? 'boolean' : 'string' };
    const { values } = parse<Flags>(`k8s ${name}`, rest, options);
    return run(values);
  },
};
export default command;
