/** The entry point's own handling of --help, --verbose and --json stops at a bare `--`. */
import { describe, expect, it, vi } from 'vitest';
import { main } from './main.js';

describe('retap main', () => {
  it('leaves options after -- to the command that runs (retap capture … -- busybox httpd -h DIR)', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      // no target and no --out: capture's own usage error, not retap's help printed for `-h`
      const code = await main(['capture', '--', 'busybox', 'httpd', '-h', '/srv', '--verbose']);
      expect(code).toBe(64);
      expect(out.mock.calls.join('')).not.toContain('Usage: retap capture');
      expect(err.mock.calls.join('')).toContain('--out DIR is required');
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });

  it('still answers --help before --', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(await main(['capture', '--help', '--', 'x'])).toBe(0);
      expect(out.mock.calls.join('')).toContain('Usage: retap capture');
    } finally {
      out.mockRestore();
    }
  });
});
