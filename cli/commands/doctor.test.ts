import { describe, expect, it } from 'vitest';
import { formatChecks } from './doctor.js';

describe('formatChecks', () => {
  it('aligns the columns and shows fixes for what is not ok', () => {
    const lines = formatChecks([
      { name: 'kernel', status: 'ok', detail: 'Linux 6.1' },
      {
        name: 'privileges',
        status: 'fail',
        detail: 'uid 1000 without CAP_BPF',
        fix: 'run as root: sudo retap doctor',
      },
      { name: 'selftest', status: 'warn', detail: 'not built yet' },
    ]);
    expect(lines).toEqual([
      'ok    kernel      Linux 6.1',
      'FAIL  privileges  uid 1000 without CAP_BPF  → run as root: sudo retap doctor',
      'warn  selftest    not built yet',
      '',
      'retap cannot capture here: 1 check failed (privileges).',
    ]);
  });

  it('says capture works when nothing failed', () => {
    expect(formatChecks([{ name: 'btf', status: 'ok', detail: 'x' }]).at(-1)).toBe(
      'retap can capture on this machine.',
    );
  });
});
