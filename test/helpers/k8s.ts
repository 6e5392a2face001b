/**
 * The test cluster (ci/k8s) for tests and benchmarks: whether it is up, kubectl as its admin,
 * image builds loaded into its containerd, and waits.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
/** The checkout (this file runs from test/helpers, or from dist/test/helpers in benchmarks). */
export const root = [join(import.meta.dirname, '..', '..'), join(import.meta.dirname, '..', '..', '..')].find(
  (d) => existsSync(join(d, 'ci', 'k8s', 'up')),
)!;
export const ENV_FILE = '/var/lib/retap-k8s/env';
export const KUBECONFIG = '/var/lib/retap-k8s/admin.kubeconfig';
const expected = process.env.RETAP_K8S === '1';

/** The facts ci/k8s/up wrote, or why the cluster cannot be used. */
export function clusterEnv(): Record<string, string> | string {
  if (!existsSync(ENV_FILE)) return `the test cluster is not up (no ${ENV_FILE}; run ci/k8s/up)`;
  const env: Record<string, string> = {};
  for (const line of readFileSync(ENV_FILE, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

/** True (skip) when the cluster is not up; with RETAP_K8S=1 that is a failure instead. */
export function skipCluster(): boolean {
  const env = clusterEnv();
  if (typeof env !== 'string') return false;
  if (expected) throw new Error(`RETAP_K8S=1 but ${env}`);
  console.warn(`skipping the Kubernetes tests: ${env}`);
  return true;
}

export async function kubectl(args: string[], input?: string, timeoutMs = 120_000): Promise<string> {
  const child = exec(join(root, 'ci', 'k8s', 'kubectl'), args, { maxBuffer: 64 << 20, timeout: timeoutMs });
  if (input !== undefined) child.child.stdin?.end(input);
  try {
    return (await child).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.join(' ')}: ${err.stderr || err.message}`);
  }
}

/** Builds an image with one of deploy/image's builders and loads it into the cluster. */
export async function buildAndLoad(builder: 'build' | 'build-demo', tag: string, tar: string): Promise<void> {
  await exec(join(root, 'deploy', 'image', builder), ['--out', tar, '--tag', tag], {
    cwd: root,
    timeout: 300_000,
  });
  await exec(join(root, 'ci', 'k8s', 'load'), [tar], { timeout: 120_000 });
}

/** Creates a namespace and waits for its default ServiceAccount (pods need it). */
export async function createNamespace(ns: string): Promise<void> {
  await kubectl(['create', 'namespace', ns]);
  await until(`namespace ${ns}'s default ServiceAccount`, async () =>
    (await kubectl(['-n', ns, 'get', 'serviceaccount', 'default']).catch(() => '')) ? true : undefined,
  );
}

export async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs retap's CLI of this tree against the test cluster. */
export function retapArgs(args: string[]): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  return {
    file: process.execPath,
    args: [join(root, 'bin', 'retap.js'), ...args],
    env: { ...process.env, KUBECONFIG },
  };
}

/** Host pids of processes whose cgroup path contains `needle` and whose command line has `arg`. */
export function hostPids(needle: string, arg: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (!readFileSync(`/proc/${d}/cgroup`, 'utf8').includes(needle)) continue;
      if (
        readFileSync(`/proc/${d}/cmdline`, 'utf8')
          .split('\0')
          .some((a) => a.endsWith(arg))
      )
        out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Host pids of the node agents of the DaemonSet in `namespace` (retap-system by default): node
 * running `retap.js agent` in one of its pods. Tests and benchmarks that run an agent of their own
 * (own-agent.ts) do so in other namespaces, on the same node, at the same time: only the pods'
 * uids tell the agents apart.
 */
export async function agentPids(namespace = 'retap-system'): Promise<number[]> {
  const pods = JSON.parse(
    await kubectl(['-n', namespace, 'get', 'pods', '-l', 'app.kubernetes.io/name=retap-agent', '-o', 'json']),
  ) as { items: Array<{ metadata: { uid: string } }> };
  return pods.items.flatMap((p) =>
    hostPids(`pod${p.metadata.uid}`, 'retap.js').filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('agent');
      } catch {
        return false;
      }
    }),
  );
}

/** A process as itself: its pid with its start time, so a reused pid is not taken for it. */
export function procIdentity(pid: number): string | undefined {
  try {
    // the fields after the command's closing parenthesis; starttime is the 22nd field of all
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return `${pid}@${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
  } catch {
    return undefined;
  }
}

/** What a process is doing, for a failure message: its state, command line and cgroup. */
export function procSummary(pid: number): string {
  try {
    const state = /^State:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim();
    return `pid ${pid} (${state}): ${cmd} [${cgroup}]`;
  } catch {
    return `pid ${pid}: gone`;
  }
}
