/** `retap k8s` and `retap agent`: help, and bad input refused before anything reaches a cluster. */
import { describe, expect, it, vi } from 'vitest';
import { main } from '../main.js';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(argv);
    return { code, out: out.mock.calls.join(''), err: err.mock.calls.join('') };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('retap k8s', () => {
  it('answers --help for each subcommand', async () => {
    for (const sub of ['install', 'uninstall', 'status', 'capture']) {
      const r = await run(['k8s', sub, '--help']);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`Usage: retap k8s ${sub}`);
    }
    expect((await run(['k8s'])).code).toBe(64);
  });

  it.each([
    [['k8s', 'nope'], "unknown subcommand 'nope'"],
    [['k8s', 'capture', '--namespace', 'shop', '--selector', 'app=x'], '--out DIR is required'],
    [['k8s', 'capture', '--namespace', 'shop', '--out', '/tmp/x'], 'give --selector S or --annotated'],
    [['k8s', 'capture', '--selector', 'app=x', '--out', '/tmp/x'], '--namespace NS is required'],
    [['k8s', 'capture', '--namespace', 's', '--selector', 'app in (a', '--out', '/tmp/x'], "--selector 'app in (a'"],
    [['k8s', 'capture', '--namespace', 's', '--selector', 'a=b', '--out', '/tmp/x', '--duration', 'soon'], "'soon' is not a duration"],
    [['k8s', 'install', '--pull-policy', 'Sometimes'], 'expected Always, IfNotPresent or Never'],
    [['k8s', 'status', '--bogus'], "Unknown option '--bogus'"],
    [['agent', '--once'], 'which node is this?'],
    [['agent', '--once', '--node', 'n'], 'give --selector or --annotated'],
    [['agent', '--node', 'n', '--ring-buffer', '3'], 'power of two'],
  ])('refuses %j with exit 64', async (argv, message) => {
    const r = await run(argv as string[]);
    expect(r.code, r.err).toBe(64);
    expect(r.err).toContain(message);
  });

  it('says where no kubeconfig was found', async () => {
    const r = await run(['k8s', 'status', '--kubeconfig', '/nonexistent/kubeconfig']);
    expect(r.code).toBe(3);
    expect(r.err).toContain('RETAP_K8S_UNREACHABLE');
    expect(r.err).toContain('/nonexistent/kubeconfig');
  });
});
