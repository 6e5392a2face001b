/**
 * `retap doctor`: can this machine capture and replay? One line per check, a fix for each failure,
 * exit 0 when capture can work and 3 when it cannot.
 */
import { type CheckResult, runDoctorChecks } from '../../capture/doctor-checks.js';
import { ExitCodes } from '../../core/errors.js';
import { parse } from '../args.js';
import type { Command } from '../command.js';

const LABEL: Record<CheckResult['status'], string> = { ok: 'ok', warn: 'warn', fail: 'FAIL' };

/** Aligned table: status, check, detail, and `→ fix` for what is not ok. */
export function formatChecks(checks: CheckResult[]): string[] {
  const nameWidth = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.map((c) => {
    const fix = c.fix && c.status !== 'ok' ? `  → ${c.fix}` : '';
    return `${LABEL[c.status].padEnd(4)}  ${c.name.padEnd(nameWidth)}  ${c.detail}${fix}`;
  });
  const failed = checks.filter((c) => c.status === 'fail');
  const warned = checks.filter((c) => c.status === 'warn');
  lines.push('');
  lines.push(
    failed.length === 0
      ? `retap can capture on this machine${warned.length ? ` (${warned.length} warning${warned.length > 1 ? 's' : ''})` : ''}.`
      : `retap cannot capture here: ${failed.length} check${failed.length > 1 ? 's' : ''} failed (${failed.map((c) => c.name).join(', ')}).`,
  );
  return lines;
}

const help = `Usage: retap doctor [--json]

Checks that this machine can capture and replay: kernel version (>= 5.8), BTF, privileges
(root, or CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN), tracefs with the syscall tracepoints retap
uses, uprobes, cgroup v2, network namespaces (really creates one), libssl.so.3 and node's
SSL_read/SSL_write symbols, the native addon, and an eBPF load/attach self-test.

Options:
  --json      print { ok, checks: [{ name, status, detail, fix? }] }
  -h, --help  show this help

Exit codes: 0 capture can work (warnings allowed); 3 it cannot (see the FAIL lines).`;

const command: Command = {
  name: 'doctor',
  summary: 'Check this machine can capture and replay',
  help,
  async run(argv) {
    const { values } = parse<{ json?: boolean }>('doctor', argv, { json: { type: 'boolean' } });
    const checks = await runDoctorChecks();
    const ok = checks.every((c) => c.status !== 'fail');
    if (values.json) process.stdout.write(`${JSON.stringify({ ok, checks }, null, 2)}\n`);
    else process.stdout.write(`${formatChecks(checks).join('\n')}\n`);
    return ok ? ExitCodes.OK : ExitCodes.INFRASTRUCTURE;
  },
};

export default command;
