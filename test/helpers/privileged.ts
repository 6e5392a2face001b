/**
 * Gate for tests that need root, eBPF or network namespaces. Where the machine cannot run them
 * they skip with the reason, unless RETAP_REQUIRE_EBPF=1 (set by .ci/run), where a skip would hide
 * a broken machine or setup, so the test fails instead.
 */
import { existsSync } from 'node:fs';

export const requireEbpf = process.env.RETAP_REQUIRE_EBPF === '1';

/** Why privileged tests cannot run here, or undefined when they can. */
export function privilegedUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'kernel BTF missing (/sys/kernel/btf/vmlinux)';
  return undefined;
}

/**
 * Use as `describe.skipIf(skipPrivileged())(...)`: returns true (skip) only when the machine
 * cannot run privileged tests and RETAP_REQUIRE_EBPF is not set; throws when it is set.
 */
export function skipPrivileged(extra?: () => string | undefined): boolean {
  const reason = privilegedUnavailable() ?? extra?.();
  if (reason === undefined) return false;
  if (requireEbpf) {
    throw new Error(`RETAP_REQUIRE_EBPF=1 but privileged tests cannot run: ${reason}`);
  }
  console.warn(`skipping privileged tests: ${reason}`);
  return true;
}
