import { rmSync } from 'node:fs';
import { destroyCgroupDir } from '../../capture/cgroup.js';
import { ExitCodes, usageError } from '../../core/errors.js';
import { deleteNetns } from '../../runner/netns.js';
import { findOrphanNamespaces, type OrphanNamespace, sweepOrphan } from '../../runner/orphans.js';
import { isAlive, listRuns, unregister } from '../../runner/registry.js';
import { parse } from '../args.js';
import type { Command } from '../command.js';

const help = `Usage: retap gc [--all] [--dry-run] [--json]
       retap gc --k8s [--kubeconfig F] [--context C] [--dry-run] [--wait] [--json]

Removes what replay runs left behind when they were killed: network namespaces, /etc/netns
entries, cgroups (and any process still in them) and temp directories. Runs whose retap process
is still alive are left alone unless --all.

Also sweeps run namespaces (retap-*) that no run record lists — their record was in another
RETAP_RUNS_DIR, or is gone — and whose owner is gone: the owner's pid is part of the name, and a
process with that pid started after the namespace was made does not count. Processes still
inside such a namespace are killed, its cgroup and temp directory removed. A namespace whose
owner is alive is never touched, --all or not.

  --all        also clean up runs whose retap process is alive
  --dry-run    list what would be removed
  --json       print the list as JSON

With --k8s: deletes the Kubernetes run namespaces (retap-run-*, from retap replay --k8s) whose
owner is gone — a process of this host that no longer runs (e.g. after kill -9), or an owner
elsewhere whose heartbeat annotation is older than three periods (30 s). Live runs are never
touched; namespaces already terminating are listed. --wait waits until they are gone.`;

interface Flags {
  all?: boolean;
  'dry-run'?: boolean;
  json?: boolean;
  k8s?: boolean;
  kubeconfig?: string;
  context?: string;
  wait?: boolean;
}

async function runK8s(values: Flags): Promise<number> {
  if (values.all)
    throw usageError(
      'retap gc --k8s: --all is not offered',
      'A live run’s namespace is never deleted by gc; delete it with kubectl if you must.',
    );
  const { loadKubeConfig } = await import('../../capture/k8s/kube.js');
  const { gcRunNamespaces } = await import('../../runner/k8s/gc.js');
  const kc = loadKubeConfig({ kubeconfig: values.kubeconfig, context: values.context });
  const entries = await gcRunNamespaces(kc, { dryRun: values['dry-run'], wait: values.wait });
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ namespaces: entries, dryRun: values['dry-run'] === true }, null, 2)}\n`,
    );
  } else if (entries.length === 0) process.stdout.write('retap gc --k8s: no run namespaces\n');
  else for (const e of entries) process.stdout.write(`${e.action} ${e.namespace}: ${e.reason}\n`);
  return ExitCodes.OK;
}

async function run(argv: string[]): Promise<number> {
  const { values } = parse<Flags>('gc', argv, {
    all: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
    k8s: { type: 'boolean' },
    kubeconfig: { type: 'string' },
    context: { type: 'string' },
    wait: { type: 'boolean' },
  });
  if (values.k8s) return runK8s(values);
  if (values.kubeconfig || values.context || values.wait)
    throw usageError('retap gc: --kubeconfig, --context and --wait need --k8s');
  const removed: Array<{ id: string; netns?: string; cgroup?: string; dirs: string[] }> = [];
  const runs = listRuns();
  // read before the records go: a namespace a record lists is that record's to remove
  const orphans: OrphanNamespace[] = findOrphanNamespaces(
    new Set(runs.flatMap((r) => (r.netns ? [r.netns] : []))),
  );
  for (const rec of runs) {
    if (!values.all && isAlive(rec.pid)) continue;
    removed.push({
      id: rec.id,
      ...(rec.netns ? { netns: rec.netns } : {}),
      ...(rec.cgroup ? { cgroup: rec.cgroup } : {}),
      dirs: rec.dirs,
    });
    if (values['dry-run']) continue;
    if (rec.cgroup) destroyCgroupDir(rec.cgroup);
    if (rec.netns) await deleteNetns(rec.netns);
    for (const d of rec.dirs) rmSync(d, { recursive: true, force: true });
    await unregister(rec.id);
  }
  if (!values['dry-run']) for (const o of orphans) await sweepOrphan(o);
  if (values.json)
    process.stdout.write(
      `${JSON.stringify({ removed, orphans, dryRun: values['dry-run'] === true }, null, 2)}\n`,
    );
  else if (removed.length === 0 && orphans.length === 0)
    process.stdout.write('retap gc: nothing to clean up\n');
  else {
    const verb = values['dry-run'] ? 'would remove' : 'removed';
    for (const r of removed) {
      process.stdout.write(
        `${verb} run ${r.id}: ${[r.netns, r.cgroup, ...r.dirs].filter(Boolean).join(', ')}\n`,
      );
    }
    for (const o of orphans) {
      const n = o.processes.length;
      const killed = n
        ? `; ${n} process${n === 1 ? '' : 'es'} inside ${values['dry-run'] ? 'to kill' : 'killed'}`
        : '';
      process.stdout.write(
        `${verb} orphaned namespace ${o.netns} (no run record; owner pid ${o.owner} gone${killed}): ${[o.cgroup, ...o.dirs].filter(Boolean).join(', ') || 'no cgroup or temp directory left'}\n`,
      );
    }
  }
  return ExitCodes.OK;
}

const command: Command = { name: 'gc', summary: 'Remove what killed runs left behind', help, run };
export default command;
