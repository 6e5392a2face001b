/**
 * Network namespaces for replay runs: loopback only, and a hosts file that makes the recorded
 * dependency names resolve to loopback addresses inside the namespace.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCodes, RetapError } from '../core/errors.js';

const run = promisify(execFile);

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

export function hostsFilePath(name: string): string {
  return join('/etc/netns', name, 'hosts');
}

export async function createNetns(name: string): Promise<void> {
  try {
    await run('ip', ['netns', 'add', name]);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    await deleteNetns(name).catch(() => undefined);
    throw new RetapError(
      ErrorCodes.ENV_SETUP,
      `cannot create network namespace ${name}: ${(e as Error).message.trim()}`,
      {
        hint: 'Run as root with iproute2 installed; `retap doctor` checks this.',
        cause: e,
      },
    );
  }
}

/** Gives the namespace's loopback device one more address (a dependency dialled by IP). */
export async function addLoopbackAddr(name: string, addr: string): Promise<void> {
  const prefix = addr.includes(':') ? '128' : '32';
  await run('ip', ['-n', name, 'addr', 'add', `${addr}/${prefix}`, 'dev', 'lo']);
}

/** Writes the namespace's hosts file: localhost plus each name → its loopback address. */
export async function writeHosts(
  name: string,
  entries: Array<{ host: string; addr: string }>,
): Promise<string> {
  const dir = join('/etc/netns', name);
  await mkdir(dir, { recursive: true });
  const lines = ['127.0.0.1 localhost', '::1 localhost ip6-localhost'];
  for (const e of entries) if (e.host !== 'localhost') lines.push(`${e.addr} ${e.host}`);
  const path = hostsFilePath(name);
  await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o644 });
  return path;
}

/** Removes the namespace and its /etc/netns folder. Idempotent. */
export async function deleteNetns(name: string): Promise<void> {
  if (existsSync(netnsPath(name))) {
    await run('ip', ['netns', 'delete', name]).catch((e: unknown) => {
      if (existsSync(netnsPath(name))) throw e;
    });
  }
  await rm(join('/etc/netns', name), { recursive: true, force: true });
}

/**
 * argv prefix that runs a command inside the namespace with the hosts file bind-mounted over
 * /etc/hosts in a private mount namespace (unlike `ip netns exec`, /sys stays as it is, so the
 * command can still join a cgroup).
 */
export function insideNetns(name: string, hostsFile: string): string[] {
  const script = 'mount --bind "$RETAP_HOSTS" /etc/hosts && exec "$@"';
  return [
    'env',
    `RETAP_HOSTS=${hostsFile}`,
    'nsenter',
    `--net=${netnsPath(name)}`,
    '--',
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    '/bin/sh',
    '-c',
    script,
    'retap-netns',
  ];
}
