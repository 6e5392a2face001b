/**
 * Gates for tests that need root, eBPF, network namespaces or an outside tool (xmllint, Chromium…).
 * Where the machine cannot run them they skip with the reason, unless RETAP_REQUIRE_EBPF=1 (set by
 * .ci/run), where a skip would hide a broken machine or setup, so the test fails instead.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const requireEbpf = process.env.RETAP_REQUIRE_EBPF === '1';

/** Why privileged tests cannot run here, or undefined when they can. */
export function privilegedUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'kernel BTF missing (/sys/kernel/btf/vmlinux)';
  return undefined;
}

/** Skip (true) with a warning, or throw under RETAP_REQUIRE_EBPF=1; false when nothing is missing. */
function skipOrFail(what: string, reason: string | undefined): boolean {
  if (reason === undefined) return false;
  if (requireEbpf) throw new Error(`RETAP_REQUIRE_EBPF=1 but ${what} cannot run: ${reason}`);
  console.warn(`skipping ${what}: ${reason}`);
  return true;
}

/**
 * Use as `describe.skipIf(skipPrivileged())(...)`: returns true (skip) only when the machine
 * cannot run privileged tests and RETAP_REQUIRE_EBPF is not set; throws when it is set.
 */
export function skipPrivileged(extra?: () => string | undefined): boolean {
  return skipOrFail('privileged tests', privilegedUnavailable() ?? extra?.());
}

/**
 * For suites that need an outside program: `describe.skipIf(skipWithoutTool('xmllint', …))`.
 * `probe` is a file that must exist, or a command line whose exit status must be 0.
 */
export function skipWithoutTool(name: string, probe: string | string[], install: string): boolean {
  const present =
    typeof probe === 'string' ? existsSync(probe) : spawnSync(probe[0]!, probe.slice(1)).status === 0;
  return skipOrFail(`tests that need ${name}`, present ? undefined : `${name} is missing (${install})`);
}
