/**
 * A Go service with an HTTPS dependency, the whole loop: captured with eBPF (its inbound plain
 * HTTP, its outbound HTTPS through the Go crypto/tls probes), replayed with the dependency mocked
 * from the recording (the mock's ephemeral CA reaches Go through SSL_CERT_FILE), and gated: the
 * same build passes, a build with a regression fails.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { captureToSnapshot } from '../../cli/commands/capture.js';
import { selfSignedCert } from '../helpers/certs.js';
import { goPeers, skipWithoutGoPeers } from '../helpers/go-peers.js';
import { skipPrivileged } from '../helpers/privileged.js';
import { freePort, type Proc, run, start, stopAll } from '../helpers/procs.js';

const retap = join(import.meta.dirname, '..', '..', 'bin', 'retap.js');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-replay-go-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(stopAll);

async function listening(p: Proc): Promise<number> {
  const deadline = Date.now() + 15_000;
  while (!/listening (\d+)/.test(p.output())) {
    if (p.child.exitCode !== null || Date.now() > deadline) throw new Error(`did not start: ${p.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Number(/listening (\d+)/.exec(p.output())![1]);
}

describe.skipIf(skipPrivileged() || skipWithoutGoPeers())('a Go service with an HTTPS dependency', () => {
  it('is captured, replayed against mocks of its dependency, and gated', async () => {
    const { gotls } = goPeers();
    const { cert, key } = selfSignedCert(dir);
    const payments = start(gotls, ['server', '-cert', cert, '-key', key, '-h1']);
    const paymentsPort = await listening(payments);
    const port = await freePort();
    const upstream = `https://localhost:${paymentsPort}`;
    const svc = start(gotls, ['service', '-port', String(port), '-upstream', upstream], {
      env: { ...process.env, SSL_CERT_FILE: cert },
    });
    await listening(svc);

    // record: the service is the target; curl drives it (not captured)
    let stop: () => void = () => {};
    const until = new Promise<void>((r) => (stop = r));
    const captured = await captureToSnapshot({
      out: join(dir, 'snaps'),
      name: 'orders-go',
      pids: [svc.pid],
      cgroupIds: [],
      ports: [],
      all: false,
      command: [],
      tls: true,
      redact: true,
      gzip: false,
      filters: {},
      progress: false,
      until,
      onReady: async () => {
        for (let i = 1; i <= 5; i++) {
          const r = await run('curl', ['-sf', `http://127.0.0.1:${port}/order/${i}`]);
          expect(r.stdout.toString()).toBe(`order ${i} paid: echo ${i} order-${i}`);
        }
        stop();
      },
    });
    await svc.stop();
    await payments.stop();
    expect({ inbound: captured.inbound, outbound: captured.outbound }).toEqual({ inbound: 5, outbound: 5 });
    expect(captured.stats.goTls).toHaveLength(1);
    const lines = readFileSync(join(captured.path, 'exchanges.jsonl'), 'utf8').trim().split('\n');
    const outbound = lines
      .map((l) => JSON.parse(l) as { direction: string; tls: boolean; peer: { port: number; host?: string } })
      .filter((e) => e.direction === 'outbound');
    for (const e of outbound)
      expect(e).toMatchObject({ tls: true, peer: { port: paymentsPort, host: 'localhost' } });

    // replay the same build, then one with a regression; the report is the gate
    const replay = async (extra: string[], out: string) => {
      const cmd = [gotls, 'service', '-port', String(port), '-upstream', upstream, ...extra].join(' ');
      const r = await run('node', [
        retap,
        'replay',
        captured.path,
        '--cmd',
        cmd,
        '--port',
        String(port),
        '--out',
        out,
      ]);
      expect(r.code, r.stderr).toBe(0);
      return run('node', [retap, 'report', out, '--format', 'json']);
    };
    const same = await replay([], join(dir, 'same'));
    expect(same.code, same.stdout.toString() + same.stderr).toBe(0);
    const passed = JSON.parse(same.stdout.toString()) as { status: string; summary: Record<string, number> };
    expect(passed.status).toBe('pass');
    expect(passed.summary).toMatchObject({ items: 5, passed: 5, failed: 0, errors: 0 });
    const bug = await replay(['-bug'], join(dir, 'bug'));
    expect(bug.code, bug.stderr).toBe(1);
    const failed = JSON.parse(bug.stdout.toString()) as { status: string; summary: Record<string, number> };
    expect(failed.status).toBe('fail-assertions');
    expect(failed.summary).toMatchObject({ items: 5, passed: 4, failed: 1 });
    expect(bug.stdout.toString()).toMatch(/\/order\/3/);
  }, 240_000);
});
