/**
 * `retap snapshot <subcommand>`: inspect, validate, diff, filter, merge and convert snapshots.
 * Each subcommand lives in cli/commands/snapshot/ and is loaded on demand.
 */
import { usageError } from '../../core/errors.js';
import type { Command } from '../command.js';
import type { Sub } from './snapshot/sub.js';

const SUBS: Record<string, () => Promise<Sub>> = {
  ls: async () => (await import('./snapshot/inspect.js')).ls,
  show: async () => (await import('./snapshot/inspect.js')).show,
  validate: async () => (await import('./snapshot/inspect.js')).validate,
  diff: async () => (await import('./snapshot/derive.js')).diff,
  filter: async () => (await import('./snapshot/derive.js')).filter,
  merge: async () => (await import('./snapshot/derive.js')).merge,
  minimise: async () => (await import('./snapshot/minimise.js')).minimise,
  import: async () => (await import('./snapshot/har.js')).importCmd,
  export: async () => (await import('./snapshot/har.js')).exportCmd,
  tokens: async () => (await import('./snapshot/tokens.js')).tokens,
  transforms: async () => (await import('./snapshot/transforms.js')).transforms,
  accept: async () => (await import('./snapshot/accept.js')).accept,
  secrets: async () => (await import('./snapshot/secrets.js')).secrets,
};

const SUMMARIES: Record<string, string> = {
  ls: 'List versions of a store (or the stores under a folder) with lineage',
  show: 'Summary of one version: source, routes, services, counts, time range',
  validate: 'Check schemas, hashes, order and counts of a version',
  diff: 'Added, removed and changed routes and exchanges between two versions',
  filter: 'Keep exchanges by time, direction, method, host, route, status, header or text',
  merge: 'Combine versions into a new one (duplicates dropped)',
  minimise: 'Keep every distinct behaviour (route, status, response schema, calls), drop repeats',
  import: 'Make a snapshot from a HAR 1.2 file',
  export: 'Write a version as a HAR 1.2 file',
  tokens: 'Tokens that flow between exchanges, and volatile values',
  transforms: 'Transform rules; --check dry-runs them over the recording',
  accept: "Record a replay's live answers as a new version (intended changes)",
  secrets: 'Redacted client credentials a replay needs values for; placeholder of a known value',
};

const overview = `Usage: retap snapshot <subcommand> [options]

Subcommands:
${Object.entries(SUMMARIES)
  .map(([k, v]) => `  ${k.padEnd(9)} ${v}`)
  .join('\n')}

A SNAPSHOT argument is a version directory (holding snapshot.yaml), a store directory (its
latest version), STORE@N for version N, or a bare name under $RETAP_SNAPSHOT_DIR
(default .retap/snapshots). Run 'retap snapshot <subcommand> --help' for its options.
Format: docs/snapshot-format.md.`;

const command: Command = {
  name: 'snapshot',
  summary: 'Inspect, validate, diff, filter and convert snapshots',
  help: overview,
  subcommands: true,
  async run(argv) {
    const [name, ...rest] = argv;
    if (name === undefined) {
      process.stdout.write(`${overview}\n`);
      return 64;
    }
    const load = SUBS[name];
    if (!load)
      throw usageError(
        `retap snapshot: unknown subcommand '${name}'`,
        `Subcommands: ${Object.keys(SUBS).join(', ')}.`,
      );
    const sub = await load();
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${sub.help.trimEnd()}\n`);
      return 0;
    }
    return sub.run(rest);
  },
};

export default command;
