/**
 * What `retap doctor` checks: can this machine load retap's eBPF programs, see the syscalls and
 * TLS calls it hooks, and build the namespaces and cgroups replay needs? Each check returns
 * ok / warn / fail with a detail and, for failures, what to do. Parsers are exported for tests.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { definedFunctions } from './elf.js';

const run = promisify(execFile);
const EXEC_TIMEOUT_MS = 10_000;
const SELFTEST_TIMEOUT_MS = 60_000;

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

export const MIN_KERNEL: readonly [number, number] = [5, 8];
/** Syscalls whose enter/exit tracepoints the capture programs attach to. */
export const TRACED_SYSCALLS = [
  'read',
  'write',
  'readv',
  'writev',
  'recvfrom',
  'sendto',
  'recvmsg',
  'sendmsg',
  'accept',
  'accept4',
  'connect',
  'close',
  'sendfile64',
] as const;
export const TLS_SYMBOLS = ['SSL_read', 'SSL_write'] as const;

/** Capability bit numbers (linux/capability.h). */
export const CAPS = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_PERFMON: 38, CAP_BPF: 39 } as const;
export const ROOT_FIX = 'run as root: sudo retap doctor';

const ok = (name: string, detail: string): CheckResult => ({ name, status: 'ok', detail });
const warn = (name: string, detail: string, fix?: string): CheckResult =>
  fix ? { name, status: 'warn', detail, fix } : { name, status: 'warn', detail };
const fail = (name: string, detail: string, fix: string): CheckResult => ({
  name,
  status: 'fail',
  detail,
  fix,
});
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const isRoot = (): boolean => process.geteuid?.() === 0;

// ── parsers ────────────────────────────────────────────────────────────────────────────────────

/** `6.18.44-fc-v595` → [6, 18, 44]; undefined when it does not start with a version. */
export function parseKernelRelease(text: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** The CapEff mask from /proc/<pid>/status text. */
export function parseCapEff(status: string): bigint | undefined {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

export function hasCap(mask: bigint, bit: number): boolean {
  return (mask & (1n << BigInt(bit))) !== 0n;
}

export interface Mount {
  source: string;
  target: string;
  type: string;
  options: string;
}

/** /proc/mounts lines; octal escapes in paths (`\040` for a space) decoded. */
export function parseMounts(text: string): Mount[] {
  const decode = (s: string): string =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const [source, target, type, options] = line.split(' ');
    if (source && target && type) out.push({ source, target: decode(target), type, options: options ?? '' });
  }
  return out;
}

/** Where cgroup v2 is mounted: `/sys/fs/cgroup` on pure v2 machines, `…/unified` on hybrid ones. */
export function findCgroup2(mounts: Mount[]): { path: string; layout: 'unified' | 'hybrid' } | undefined {
  const v2 = mounts.filter((m) => m.type === 'cgroup2');
  if (v2.length === 0) return undefined;
  const hasV1 = mounts.some((m) => m.type === 'cgroup');
  const preferred = v2.find((m) => m.target === '/sys/fs/cgroup') ?? v2[0]!;
  return { path: preferred.target, layout: hasV1 ? 'hybrid' : 'unified' };
}

/** tracefs mount points to try, best first: mounted tracefs, then debugfs/tracing, then the defaults. */
export function tracefsCandidates(mounts: Mount[]): string[] {
  const out = mounts.filter((m) => m.type === 'tracefs').map((m) => m.target);
  for (const m of mounts.filter((x) => x.type === 'debugfs')) out.push(join(m.target, 'tracing'));
  out.push('/sys/kernel/tracing', '/sys/kernel/debug/tracing');
  return [...new Set(out)];
}

/** Paths `ldconfig -p` lists for a soname (e.g. libssl.so.3), 64-bit x86 first. */
export function parseLdconfig(text: string, soname: string): string[] {
  const hits: { path: string; x64: boolean }[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$/.exec(line);
    if (m && m[1] === soname) hits.push({ path: m[3]!, x64: /x86-64/.test(m[2]!) });
  }
  return hits.sort((a, b) => Number(b.x64) - Number(a.x64)).map((h) => h.path);
}

// ── checks ────────────────────────────────────────────────────────────────────────────────────

export function checkKernel(text = release()): CheckResult {
  const v = parseKernelRelease(text);
  if (!v)
    return warn(
      'kernel',
      `cannot read the version from '${text}'`,
      `retap needs Linux ${MIN_KERNEL.join('.')} or newer`,
    );
  const [major, minor] = v;
  const recent = major > MIN_KERNEL[0] || (major === MIN_KERNEL[0] && minor >= MIN_KERNEL[1]);
  return recent
    ? ok('kernel', `Linux ${text}`)
    : fail(
        'kernel',
        `Linux ${text} is older than ${MIN_KERNEL.join('.')} (no BPF ring buffer, no CAP_BPF)`,
        `run retap on Linux ${MIN_KERNEL.join('.')} or newer`,
      );
}

export async function checkBtf(path = '/sys/kernel/btf/vmlinux'): Promise<CheckResult> {
  try {
    const s = await stat(path);
    return ok('btf', `${path} (${(s.size / 1024 / 1024).toFixed(1)} MiB)`);
  } catch {
    return fail(
      'btf',
      `${path} is missing: the kernel has no BTF type info`,
      'use a kernel built with CONFIG_DEBUG_INFO_BTF=y',
    );
  }
}

export function checkPrivileges(statusText: string, euid: number | undefined): CheckResult {
  const mask = parseCapEff(statusText);
  const needed = ['CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_ADMIN'] as const;
  const missing = mask === undefined ? [...needed] : needed.filter((c) => !hasCap(mask, CAPS[c]));
  const who = euid === 0 ? 'root' : `uid ${euid ?? '?'}`;
  const fix =
    euid === 0
      ? 'run outside a restricted container, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN'
      : ROOT_FIX;
  if (missing.length > 0) {
    return fail(
      'privileges',
      `${who} without ${missing.join(', ')} (CapEff ${mask?.toString(16) ?? 'unknown'})`,
      fix,
    );
  }
  const netAdmin = mask !== undefined && hasCap(mask, CAPS.CAP_NET_ADMIN);
  return netAdmin
    ? ok('privileges', `${who} with CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_NET_ADMIN`)
    : warn('privileges', `${who} can capture, but without CAP_NET_ADMIN replay cannot build namespaces`, fix);
}

export async function checkTracefs(mounts: Mount[]): Promise<CheckResult> {
  let lastError = 'not mounted';
  for (const dir of tracefsCandidates(mounts)) {
    const syscalls = join(dir, 'events', 'syscalls');
    let names: Set<string>;
    try {
      names = new Set(await readdir(syscalls));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') {
        return fail('tracefs', `cannot read ${syscalls}: permission denied`, ROOT_FIX);
      }
      lastError = `${syscalls}: ${code ?? message(e)}`;
      continue;
    }
    const missing = TRACED_SYSCALLS.flatMap((s) => [`sys_enter_${s}`, `sys_exit_${s}`]).filter(
      (t) => !names.has(t),
    );
    if (missing.length > 0) {
      return fail(
        'tracefs',
        `${dir}: missing syscall tracepoints ${missing.join(', ')}`,
        'use a kernel built with CONFIG_FTRACE_SYSCALLS=y',
      );
    }
    return ok('tracefs', `${dir}: ${TRACED_SYSCALLS.length * 2} syscall tracepoints present`);
  }
  return fail(
    'tracefs',
    `no tracefs with syscall tracepoints found (${lastError})`,
    'mount it: sudo mount -t tracefs nodev /sys/kernel/tracing',
  );
}

export async function checkUprobes(dir = '/sys/bus/event_source/devices/uprobe'): Promise<CheckResult> {
  try {
    const type = (await readFile(join(dir, 'type'), 'utf8')).trim();
    return ok('uprobes', `${dir} (perf type ${type})`);
  } catch {
    return fail(
      'uprobes',
      `${dir} is missing: no uprobe support, TLS plaintext cannot be captured`,
      'use a kernel built with CONFIG_UPROBE_EVENTS=y',
    );
  }
}

export function checkCgroup2(mounts: Mount[]): CheckResult {
  const found = findCgroup2(mounts);
  if (!found) {
    return fail(
      'cgroup2',
      'cgroup v2 is not mounted (no cgroup2 entry in /proc/mounts)',
      'mount it: sudo mount -t cgroup2 none /sys/fs/cgroup/unified',
    );
  }
  return ok('cgroup2', `${found.path} (${found.layout === 'hybrid' ? 'hybrid v1/v2' : 'pure v2'})`);
}

async function tryRun(cmd: string, args: string[]): Promise<{ ok: boolean; text: string; missing: boolean }> {
  try {
    await run(cmd, args, { timeout: EXEC_TIMEOUT_MS });
    return { ok: true, text: '', missing: false };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    return {
      ok: false,
      text: (err.stderr ?? '').trim().split('\n')[0] || err.message,
      missing: err.code === 'ENOENT',
    };
  }
}

/** Really creates and deletes a network namespace (`ip netns`, else `unshare --net`). */
export async function checkNetns(pid = process.pid): Promise<CheckResult> {
  const name = `retap-doctor-${pid}`;
  const fix = isRoot()
    ? 'allow network namespaces (CAP_SYS_ADMIN + CAP_NET_ADMIN; outside restricted containers)'
    : ROOT_FIX;
  const add = await tryRun('ip', ['netns', 'add', name]);
  if (add.ok) {
    const del = await tryRun('ip', ['netns', 'delete', name]);
    return del.ok
      ? ok('netns', `created and deleted network namespace ${name}`)
      : warn('netns', `created ${name} but could not delete it: ${del.text}`, `sudo ip netns delete ${name}`);
  }
  if (!add.missing) return fail('netns', `ip netns add ${name} failed: ${add.text}`, fix);
  const unshare = await tryRun('unshare', ['--net', 'true']);
  if (unshare.ok) return ok('netns', 'created a network namespace with unshare --net (ip is not installed)');
  return fail(
    'netns',
    `cannot create a network namespace: ${unshare.missing ? 'neither ip nor unshare is installed' : unshare.text}`,
    unshare.missing ? 'install iproute2' : fix,
  );
}

const LIBSSL_PATHS = [
  '/lib/x86_64-linux-gnu/libssl.so.3',
  '/usr/lib/x86_64-linux-gnu/libssl.so.3',
  '/lib/aarch64-linux-gnu/libssl.so.3',
  '/usr/lib/aarch64-linux-gnu/libssl.so.3',
  '/usr/lib64/libssl.so.3',
  '/lib64/libssl.so.3',
  '/usr/lib/libssl.so.3',
  '/usr/local/lib/libssl.so.3',
];

export async function findLibssl(): Promise<string | undefined> {
  const candidates: string[] = [];
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    try {
      const { stdout } = await run(ldconfig, ['-p'], {
        timeout: EXEC_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
      });
      candidates.push(...parseLdconfig(stdout, 'libssl.so.3'));
      break;
    } catch {
      // try the next spelling, then the usual paths
    }
  }
  candidates.push(...LIBSSL_PATHS);
  for (const path of candidates) {
    try {
      await access(path, constants.R_OK);
      return path;
    } catch {
      // next
    }
  }
  return undefined;
}

export async function checkLibssl(): Promise<CheckResult> {
  const path = await findLibssl();
  const consequence = 'TLS plaintext of programs linked to the system OpenSSL cannot be captured';
  if (!path)
    return warn(
      'libssl',
      `libssl.so.3 not found; ${consequence}`,
      'install OpenSSL 3 (apt-get install libssl3)',
    );
  try {
    const found = definedFunctions(path, TLS_SYMBOLS);
    const missing = TLS_SYMBOLS.filter((s) => !found.has(s));
    return missing.length === 0
      ? ok('libssl', `${path} exports ${TLS_SYMBOLS.join(', ')}`)
      : warn('libssl', `${path} does not export ${missing.join(', ')}; ${consequence}`);
  } catch (e) {
    return warn('libssl', `${path}: ${message(e)}`);
  }
}

export async function checkNodeTls(execPath = process.execPath): Promise<CheckResult> {
  try {
    const found = definedFunctions(execPath, TLS_SYMBOLS);
    const missing = TLS_SYMBOLS.filter((s) => !found.has(s));
    if (missing.length === 0)
      return ok('node-tls', `${execPath} exports ${TLS_SYMBOLS.join(', ')} (static OpenSSL)`);
    return warn(
      'node-tls',
      `${execPath} does not export ${missing.join(', ')}: TLS plaintext of Node services cannot be captured`,
      'use an official Node.js build (OpenSSL linked in with exported symbols), or one linked to libssl.so.3',
    );
  } catch (e) {
    return warn('node-tls', `cannot read the symbols of ${execPath}: ${message(e)}`);
  }
}

export async function checkAddon(): Promise<CheckResult> {
  try {
    const { loadAddon } = await import('./addon.js');
    const addon = loadAddon();
    return ok('addon', `native addon version ${addon.version} loaded`);
  } catch (e) {
    const hint = (e as { hint?: unknown }).hint;
    const first = message(e).split('\n')[0] ?? '';
    const tried = (e as { details?: { tried?: unknown } }).details?.tried;
    const detail = Array.isArray(tried)
      ? `${first.replace(/; tried:$/, '')} (tried ${tried.join('; ')})`
      : message(e);
    return fail('addon', detail, typeof hint === 'string' ? hint : 'run ci/setup to build the native addon');
  }
}

interface SelfTestModule {
  selfTest: (options?: Record<string, unknown>) => unknown;
}

/** Loads capture/selftest.js if that stage is built; undefined when the module does not exist. */
async function loadSelfTest(): Promise<SelfTestModule | undefined> {
  const spec = './selftest.js';
  try {
    return (await import(spec)) as SelfTestModule;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && /selftest/.test(err.message)) return undefined;
    throw e;
  }
}

/** Summarises whatever selfTest() returned: `{ ok, detail | summary | message }`, a string, or nothing. */
export function describeSelfTest(result: unknown): { passed: boolean; detail: string } {
  if (result === undefined || result === null || result === true)
    return { passed: true, detail: 'programs loaded and attached' };
  if (result === false) return { passed: false, detail: 'self-test reported failure' };
  if (typeof result === 'string') return { passed: true, detail: result };
  if (typeof result === 'object') {
    const r = result as Record<string, unknown>;
    const text = [r.detail, r.summary, r.message].find((x) => typeof x === 'string') as string | undefined;
    const passed = r.ok !== false && r.passed !== false;
    return { passed, detail: text ?? JSON.stringify(result).slice(0, 300) };
  }
  return { passed: true, detail: String(result) };
}

export async function checkSelfTest(canRun: { addon: boolean; privileged: boolean }): Promise<CheckResult> {
  let mod: SelfTestModule | undefined;
  try {
    mod = await loadSelfTest();
  } catch (e) {
    return fail('selftest', `cannot load capture/selftest: ${message(e)}`, 'rebuild: npm run build');
  }
  if (!mod || typeof mod.selfTest !== 'function') {
    return warn('selftest', 'eBPF load/attach self-test not built yet in this version');
  }
  if (!canRun.privileged) return fail('selftest', 'not run: needs the privileges above', ROOT_FIX);
  if (!canRun.addon)
    return fail(
      'selftest',
      'not run: the native addon does not load',
      'run ci/setup to build the native addon',
    );
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      Promise.resolve(mod.selfTest()),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no result within ${SELFTEST_TIMEOUT_MS / 1000} s`)),
          SELFTEST_TIMEOUT_MS,
        );
      }),
    ]);
    const { passed, detail } = describeSelfTest(result);
    return passed
      ? ok('selftest', detail)
      : fail('selftest', detail, 'see the detail; NODE_DEBUG=retap retap doctor shows more');
  } catch (e) {
    const hint = (e as { hint?: unknown }).hint;
    return fail(
      'selftest',
      `eBPF programs did not load/attach: ${message(e)}`,
      typeof hint === 'string' ? hint : 'see the detail; NODE_DEBUG=retap retap doctor shows more',
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Every check, in the order shown. Never throws: a check that crashes reports itself failed. */
export async function runDoctorChecks(): Promise<CheckResult[]> {
  const guard = async (name: string, f: () => Promise<CheckResult> | CheckResult): Promise<CheckResult> => {
    try {
      return await f();
    } catch (e) {
      return fail(name, `check crashed: ${message(e)}`, 'report this as a retap bug');
    }
  };
  const mounts = parseMounts(await readFile('/proc/mounts', 'utf8').catch(() => ''));
  const statusText = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const results: CheckResult[] = [];
  results.push(await guard('kernel', () => checkKernel()));
  results.push(await guard('btf', () => checkBtf()));
  results.push(await guard('privileges', () => checkPrivileges(statusText, process.geteuid?.())));
  results.push(await guard('tracefs', () => checkTracefs(mounts)));
  results.push(await guard('uprobes', () => checkUprobes()));
  results.push(await guard('cgroup2', () => checkCgroup2(mounts)));
  results.push(await guard('netns', () => checkNetns()));
  results.push(await guard('libssl', () => checkLibssl()));
  results.push(await guard('node-tls', () => checkNodeTls()));
  const addon = await guard('addon', () => checkAddon());
  results.push(addon);
  const privileged = results.find((r) => r.name === 'privileges')?.status !== 'fail';
  results.push(await guard('selftest', () => checkSelfTest({ addon: addon.status === 'ok', privileged })));
  return results;
}
