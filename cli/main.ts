/**
 * `retap` entry point: finds the command, loads it lazily (so `retap doctor` does not pay for the
 * replay runner), prints errors with their hint, and maps them to exit codes.
 */
import { readFileSync } from 'node:fs';
import { ExitCodes, formatError, isRetapError } from '../core/errors.js';
import { onLog } from '../core/log.js';
import type { Command } from './command.js';

interface Entry {
  summary: string;
  load: () => Promise<{ default: Command }>;
}

/** Every command of retap, each loaded only when it runs. */
const COMMANDS: Record<string, Entry> = {
  demo: { summary: 'Run the built-in demo end to end', load: () => import('./commands/demo.js') },
  doctor: {
    summary: 'Check this machine can capture and replay',
    load: () => import('./commands/doctor.js'),
  },
  capture: {
    summary: 'Record traffic of processes into a snapshot',
    load: () => import('./commands/capture.js'),
  },
  snapshot: {
    summary: 'Inspect, validate, diff, filter and convert snapshots',
    load: () => import('./commands/snapshot.js'),
  },
  replay: { summary: 'Replay a snapshot against a build', load: () => import('./commands/replay.js') },
  mock: { summary: "Serve a snapshot's dependencies as mocks", load: () => import('./commands/mock.js') },
  report: { summary: 'Render results as JUnit, Markdown, HTML or JSON', load: () => import('./commands/report.js') },
  ci: { summary: 'Replay, assert and report in one pipeline step', load: () => import('./commands/ci.js') },
  view: { summary: 'Browse traffic in a local web viewer (snapshot, results or live)', load: () => import('./commands/view.js') },
  gc: { summary: 'Remove what killed runs left behind', load: () => import('./commands/gc.js') },
  k8s: {
    summary: 'Install the node agent on a cluster; capture pods through it',
    load: () => import('./commands/k8s.js'),
  },
  agent: {
    summary: 'The Kubernetes node agent (what the DaemonSet runs)',
    load: () => import('./commands/agent.js'),
  },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const rows = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.summary}`);
  return [
    'retap: record real traffic with eBPF, replay it against a new build, gate on the answers.',
    '',
    'Usage: retap <command> [options]',
    '',
    'Commands:',
    ...rows,
    '',
    "Run 'retap <command> --help' for a command's options. Debug logs: NODE_DEBUG=retap.",
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? ExitCodes.USAGE : ExitCodes.OK;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return ExitCodes.OK;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`retap: unknown command '${name}'\n\n${usage()}\n`);
    return ExitCodes.USAGE;
  }
  // what follows a bare `--` is a command to run, with options of its own: never retap's
  const dashdash = rest.indexOf('--');
  const own = dashdash === -1 ? rest : rest.slice(0, dashdash);
  const verbose = own.includes('--verbose');
  const stopLogs = onLog((r) => {
    if (r.level === 'warn' || r.level === 'error' || (verbose && r.level === 'info')) {
      process.stderr.write(`retap ${r.scope}: ${r.level === 'info' ? '' : `${r.level}: `}${r.message}\n`);
    }
  });
  try {
    const command = (await entry.load()).default;
    const wantsHelp = command.subcommands
      ? rest[0] === '--help' || rest[0] === '-h'
      : own.includes('--help') || own.includes('-h');
    if (wantsHelp) {
      process.stdout.write(`${command.help.trimEnd()}\n`);
      return ExitCodes.OK;
    }
    return await command.run([...own.filter((a) => a !== '--verbose'), ...rest.slice(own.length)]);
  } catch (e) {
    const json = own.includes('--json');
    if (json && isRetapError(e)) process.stdout.write(`${JSON.stringify({ error: e.toJSON() })}\n`);
    process.stderr.write(`retap ${name}: ${formatError(e)}\n`);
    if (!isRetapError(e) && e instanceof Error && e.stack) {
      process.stderr.write(`${e.stack.split('\n').slice(1, 6).join('\n')}\n`);
    }
    return isRetapError(e) ? e.exitCode : ExitCodes.INFRASTRUCTURE;
  } finally {
    stopLogs();
  }
}
