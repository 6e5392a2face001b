import { rmSync } from 'node:fs';
import { destroyCgroupDir } from '../../capture/cgroup.js';
import { ExitCodes } from '../../core/errors.js';
import { deleteNetns } from '../../runner/netns.js';
import { isAlive, listRuns, unregister } from '../../runner/registry.js';
import { parse } from '../args.js';
import type { Command } from '../command.js';

const help = `Usage: retap gc [--all] [--dry-run] [--json]

Removes what replay runs left behind when they were killed: network namespaces, /etc/netns
entries, cgroups (and any process still in them) and temp directories. Runs whose retap process
is still alive are left alone unless --all.

  --all        also clean up runs whose retap process is alive
  --dry-run    list what would be removed
  --json       print the list as JSON`;

async function run(argv: string[]): Promise<number> {
  const { values } = parse<{ all?: boolean; 'dry-run'?: boolean; json?: boolean }>('gc', argv, {
    all: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const removed: Array<{ id: string; netns?: string; cgroup?: string; dirs: string[] }> = [];
  for (const rec of listRuns()) {
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
  if (values.json)
    process.stdout.write(`${JSON.stringify({ removed, dryRun: values['dry-run'] === true }, null, 2)}\n`);
  else if (removed.length === 0) process.stdout.write('retap gc: nothing to clean up\n');
  else {
    for (const r of removed) {
      process.stdout.write(
        `${values['dry-run'] ? 'would remove' : 'removed'} run ${r.id}: ${[r.netns, r.cgroup, ...r.dirs].filter(Boolean).join(', ')}\n`,
      );
    }
  }
  return ExitCodes.OK;
}

const command: Command = { name: 'gc', summary: 'Remove what killed runs left behind', help, run };
export default command;
