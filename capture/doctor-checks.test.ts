import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkCgroup2,
  checkKernel,
  checkPrivileges,
  checkTracefs,
  describeSelfTest,
  findCgroup2,
  parseCapEff,
  parseKernelRelease,
  parseLdconfig,
  parseMounts,
  ROOT_FIX,
  TRACED_SYSCALLS,
  tracefsCandidates,
} from './doctor-checks.js';

const HYBRID = `sysfs /sys sysfs rw,nosuid 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
nodev /sys/kernel/tracing tracefs rw,relatime 0 0
`;
const PURE_V2 = `cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
debugfs /sys/kernel/debug debugfs rw 0 0
`;

describe('parsers', () => {
  it('reads kernel releases', () => {
    expect(parseKernelRelease('6.18.44-fc-v595')).toEqual([6, 18, 44]);
    expect(parseKernelRelease('5.8')).toEqual([5, 8, 0]);
    expect(parseKernelRelease('weird')).toBeUndefined();
  });

  it('judges the kernel version against 5.8', () => {
    expect(checkKernel('5.8.0').status).toBe('ok');
    expect(checkKernel('6.1.0-13-amd64').status).toBe('ok');
    expect(checkKernel('5.4.0-150-generic')).toMatchObject({
      status: 'fail',
      fix: expect.stringMatching(/5\.8/),
    });
    expect(checkKernel('4.19.0').status).toBe('fail');
    expect(checkKernel('???').status).toBe('warn');
  });

  it('finds cgroup v2 on hybrid and pure layouts', () => {
    expect(findCgroup2(parseMounts(HYBRID))).toEqual({ path: '/sys/fs/cgroup/unified', layout: 'hybrid' });
    expect(findCgroup2(parseMounts(PURE_V2))).toEqual({ path: '/sys/fs/cgroup', layout: 'unified' });
    expect(checkCgroup2(parseMounts('cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n')).status).toBe('fail');
  });

  it('decodes escaped mount points', () => {
    expect(parseMounts('none /mnt/with\\040space tmpfs rw 0 0')[0]?.target).toBe('/mnt/with space');
  });

  it('lists tracefs candidates, mounted ones first', () => {
    expect(tracefsCandidates(parseMounts(HYBRID))).toEqual([
      '/sys/kernel/tracing',
      '/sys/kernel/debug/tracing',
    ]);
    expect(tracefsCandidates(parseMounts(PURE_V2))[0]).toBe('/sys/kernel/debug/tracing');
  });

  it('reads ldconfig -p, preferring x86-64', () => {
    const text = `3 libs found in cache \`/etc/ld.so.cache'
\tlibssl3.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl3.so
\tlibssl.so.3 (libc6) => /lib/i386-linux-gnu/libssl.so.3
\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3
`;
    expect(parseLdconfig(text, 'libssl.so.3')).toEqual([
      '/lib/x86_64-linux-gnu/libssl.so.3',
      '/lib/i386-linux-gnu/libssl.so.3',
    ]);
    expect(parseLdconfig(text, 'libcrypto.so.3')).toEqual([]);
  });
});

describe('privileges', () => {
  const status = (capEff: string): string => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`;

  it('accepts root with the capabilities', () => {
    expect(parseCapEff(status('000001fffeffffff'))).toBe(0x1fffeffffffn);
    expect(checkPrivileges(status('000001fffeffffff'), 0).status).toBe('ok');
  });

  it('accepts a non-root user holding CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN (warns without CAP_NET_ADMIN)', () => {
    const mask = (1n << 39n) | (1n << 38n) | (1n << 21n);
    expect(checkPrivileges(status(mask.toString(16)), 1000)).toMatchObject({ status: 'warn', fix: ROOT_FIX });
    expect(checkPrivileges(status((mask | (1n << 12n)).toString(16)), 1000).status).toBe('ok');
  });

  it('names the missing capabilities and the fix', () => {
    const r = checkPrivileges(status('0000000000000000'), 65534);
    expect(r.status).toBe('fail');
    expect(r.detail).toMatch(/uid 65534 without CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN/);
    expect(r.fix).toBe('run as root: sudo retap doctor');
    const rootInContainer = checkPrivileges(status(((1n << 21n) | (1n << 12n)).toString(16)), 0);
    expect(rootInContainer).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/root without CAP_BPF, CAP_PERFMON/),
    });
  });
});

describe('tracefs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'retap-doctor-test-'));
    const syscalls = join(dir, 'events', 'syscalls');
    await mkdir(syscalls, { recursive: true });
    for (const s of TRACED_SYSCALLS.filter((x) => x !== 'sendfile64')) {
      await mkdir(join(syscalls, `sys_enter_${s}`));
      await mkdir(join(syscalls, `sys_exit_${s}`));
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('names missing tracepoints, then passes once they exist', async () => {
    const mounts = parseMounts(`nodev ${dir} tracefs rw 0 0`);
    const missing = await checkTracefs(mounts);
    expect(missing.status).toBe('fail');
    expect(missing.detail).toMatch(/missing syscall tracepoints sys_enter_sendfile64, sys_exit_sendfile64$/);
    await mkdir(join(dir, 'events', 'syscalls', 'sys_enter_sendfile64'));
    await mkdir(join(dir, 'events', 'syscalls', 'sys_exit_sendfile64'));
    expect((await checkTracefs(mounts)).status).toBe('ok');
  });
});

describe('describeSelfTest', () => {
  it('understands the usual result shapes', () => {
    expect(describeSelfTest(undefined)).toEqual({ passed: true, detail: 'programs loaded and attached' });
    expect(describeSelfTest({ ok: true, summary: '28 programs attached' })).toEqual({
      passed: true,
      detail: '28 programs attached',
    });
    expect(describeSelfTest({ ok: false, detail: 'ring buffer: EPERM' })).toEqual({
      passed: false,
      detail: 'ring buffer: EPERM',
    });
    expect(describeSelfTest(false).passed).toBe(false);
  });
});
