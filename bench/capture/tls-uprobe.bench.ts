/**
 * What TLS capture costs a TLS read/write, in a target and in a process that is not one. Two peers
 * side by side, in the same rounds:
 *   OpenSSL — a Python `ssl` client and server in one process (libssl: SSL_write_ex/SSL_read_ex,
 *             each an entry uprobe and a uretprobe);
 *   Go      — a crypto/tls client and server in one goroutine (test/fixtures/go: (*Conn).Write,
 *             an entry probe; (*Conn).Read, an entry probe and one on the return instruction taken).
 * Each ping-pongs a 64-byte HTTP request and answer over loopback TCP (the data is always already
 * there, so no call blocks): 4 TLS calls (2 writes, 2 reads) and 4 socket syscalls per round trip.
 * Arms, interleaved A B C …:
 *   no probes      — no capture session;
 *   capture without TLS probes — the same targets as the next arm, TLS off: what the syscall
 *                    tracepoints cost a process that is not a target (they run for every process
 *                    and return at the target check); the peer of the next arm's TLS figure;
 *   not a target   — a session with processes as targets (an idle process of the Go binary and
 *                    an idle python with the same libssl): probes are attached per target process,
 *                    so the peer should pay nothing;
 *   not a target, probes for every process — the same plus an (empty) cgroup target: the kernel
 *                    cannot filter probes by cgroup, so the probes cover every process mapping the
 *                    code, and the peer pays the traps and the target lookup (what every process
 *                    paid before probes went per process);
 *   target         — the peer is a target: traps plus copying the plaintext into the ring buffer
 *                    (and the socket syscalls' own records).
 * The python peer maps a private copy of libssl (LD_LIBRARY_PATH), so the system libssl's probes
 * of other captures running on the machine do not tax its arms.
 * The figure is µs per round trip; the added cost per TLS call is (arm − no probes) / 4.
 */

import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createCgroup } from '../../capture/cgroup.js';
import { CaptureSession } from '../../capture/session.js';
import { selfSignedCert } from '../../test/helpers/certs.js';
import { goPeers } from '../../test/helpers/go-peers.js';
import { tracerPids } from '../lib/foreign.js';
import { sleep, start, stopAll, stopAllOnSignal } from '../lib/procs.js';
import type { BenchOptions, Row } from '../lib/rows.js';
import { median, range, ratios } from '../lib/stats.js';

const TLS_CALLS_PER_ROUND_TRIP = 4;

const PINGPONG = `
import socket, ssl, sys, time
cert, key = sys.argv[1], sys.argv[2]
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); cctx.check_hostname = False; cctx.verify_mode = ssl.CERT_NONE
lsock = socket.socket(); lsock.bind(("127.0.0.1", 0)); lsock.listen(1)
raw_c = socket.create_connection(lsock.getsockname()); raw_s, _ = lsock.accept()
for s in (raw_c, raw_s): s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c = cctx.wrap_socket(raw_c, do_handshake_on_connect=False)
s = sctx.wrap_socket(raw_s, server_side=True, do_handshake_on_connect=False)
c.setblocking(False); s.setblocking(False)
done = [False, False]
for _ in range(100000):
    for i, x in enumerate((c, s)):
        if done[i]: continue
        try: x.do_handshake(); done[i] = True
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError): pass
    if all(done): break
c.setblocking(True); s.setblocking(True)
req = b"GET /ping HTTP/1.1\\r\\nhost: bench\\r\\nx-pad: " + b"x" * 20 + b"\\r\\n\\r\\n"
res = b"HTTP/1.1 200 OK\\r\\ncontent-length: 4\\r\\nx-pad: " + b"y" * 13 + b"\\r\\n\\r\\npong"
def recv_exact(sock, want):
    got = 0
    while got < want: got += len(sock.recv(want - got))
print("ready", flush=True)
for line in sys.stdin:
    n = int(line)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        c.sendall(req)
        recv_exact(s, len(req))
        s.sendall(res)
        recv_exact(c, len(res))
    print((time.perf_counter_ns() - t0) / n / 1000, flush=True)
`;

type Arm =
  | 'no probes'
  | 'capture without TLS probes'
  | 'not a target'
  | 'not a target, probes for every process'
  | 'target';
type Peer = 'OpenSSL (python ssl)' | 'Go crypto/tls';
const PEERS: Peer[] = ['OpenSSL (python ssl)', 'Go crypto/tls'];

/**
 * The addon detaches its links on a thread of its own after stop (it takes the kernel seconds);
 * until then every TLS call still traps, so the next "no probes" arm waits for them to go.
 */
async function probesGone(): Promise<void> {
  for (let i = 0; i < 300 && tracerPids().includes(process.pid); i++) await sleep(50);
}
const ARMS: Arm[] = [
  'no probes',
  'capture without TLS probes',
  'not a target',
  'not a target, probes for every process',
  'target',
];

/** A ping-pong process: prints "ready", then µs per round trip for each count written to stdin. */
async function pingPong(cmd: string, args: string[], env?: NodeJS.ProcessEnv) {
  const p = start(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  const lines = createInterface({ input: p.child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error(`${cmd} ping-pong exited: ${p.output().slice(-1000)}`);
    return r.value;
  };
  if ((await next()) !== 'ready') throw new Error(`${cmd} ping-pong did not start`);
  return {
    pid: p.pid,
    stop: () => p.stop(),
    measure: async (n: number): Promise<number> => {
      p.child.stdin!.write(`${n}\n`);
      return Number(await next());
    },
  };
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  stopAllOnSignal(); // the servers it starts go with it, also when interrupted
  const dir = mkdtempSync(join(tmpdir(), 'retap-bench-tls-'));
  const rounds = quick ? 3 : 7;
  const n = quick ? 10_000 : 50_000;
  let cg: ReturnType<typeof createCgroup> | undefined;
  try {
    const { cert, key } = selfSignedCert(dir);
    writeFileSync(join(dir, 'pingpong.py'), PINGPONG);
    mkdirSync(join(dir, 'lib'));
    copyFileSync('/usr/lib/x86_64-linux-gnu/libssl.so.3', join(dir, 'lib', 'libssl.so.3'));
    const env = { ...process.env, LD_LIBRARY_PATH: join(dir, 'lib') };
    const { gotls } = goPeers();
    const peers: Record<Peer, Awaited<ReturnType<typeof pingPong>>> = {
      'OpenSSL (python ssl)': await pingPong('python3', [join(dir, 'pingpong.py'), cert, key], env),
      'Go crypto/tls': await pingPong(gotls, ['pingpong']),
    };
    // idle processes of the Go binary and of python with the private libssl: the targets of the
    // "not a target" arms, so the peers' code is probed (for them, or for every process)
    const idleGo = start(gotls, ['server', '-cert', cert, '-key', key]);
    const idlePy = start('python3', ['-c', 'import ssl, sys; sys.stdin.read()'], {
      stdio: ['pipe', 'ignore', 'ignore'],
      env,
    });
    await sleep(300); // python has mapped libssl
    cg = createCgroup(`retap-bench-tls-${process.pid}`);
    for (const peer of PEERS) await peers[peer].measure(n); // warm up

    const us = Object.fromEntries(
      PEERS.map((p) => [p, Object.fromEntries(ARMS.map((a) => [a, []]))]),
    ) as unknown as Record<Peer, Record<Arm, number[]>>;
    const captured: Record<number, number> = {};
    let probes = 0;
    for (let r = 0; r < rounds; r++) {
      for (const arm of ARMS) {
        let session: CaptureSession | undefined;
        if (arm !== 'no probes') {
          const pids = arm === 'target' ? PEERS.map((p) => peers[p].pid) : [idleGo.pid, idlePy.pid];
          const everyProcess = arm === 'not a target, probes for every process';
          const cgroupIds = everyProcess && cg ? [cg.id] : [];
          const tls = arm !== 'capture without TLS probes';
          session = CaptureSession.start({ pids, tls, cgroupIds }, (ex) => {
            if (ex.request.target === '/ping' && ex.response?.status === 200 && ex.service.pid)
              captured[ex.service.pid] = (captured[ex.service.pid] ?? 0) + 1;
          });
          probes = session.stats().tlsProbes;
        }
        let failures: unknown[] = [];
        try {
          for (const peer of PEERS) us[peer][arm].push(await peers[peer].measure(n));
        } finally {
          if (session) {
            failures = (await session.stop()).tlsFailures;
            await probesGone();
          }
        }
        if (failures.length) throw new Error(`TLS probes failed: ${JSON.stringify(failures)}`);
      }
      console.log(
        `round ${r + 1}/${rounds}: ${PEERS.map((p) => `${p}: ${ARMS.map((a) => `${a} ${us[p][a].at(-1)!.toFixed(2)}`).join(', ')} µs`).join(' | ')}`,
      );
    }
    if (probes === 0) throw new Error('no TLS probes were attached: is libssl.so.3 installed?');
    // both ends live in the target: each round trip is one inbound and one outbound exchange
    for (const peer of PEERS) {
      const got = captured[peers[peer].pid] ?? 0;
      if (got !== 2 * rounds * n)
        throw new Error(
          `the target arm captured ${got} of ${2 * rounds * n} ${peer} exchanges: TLS capture is not working`,
        );
    }
    for (const peer of PEERS) await peers[peer].stop();
    await idleGo.stop();
    await idlePy.stop();

    const rows: Row[] = [];
    for (const peer of PEERS) {
      const traps = peer === 'Go crypto/tls' ? 'entry probe (+ return probe for Read)' : 'uprobe + uretprobe';
      const what: Record<Exclude<Arm, 'no probes'>, string> = {
        'capture without TLS probes': 'syscall tracepoints, target lookup',
        'not a target': 'no TLS probe in this process; syscall tracepoints',
        'not a target, probes for every process': `${traps}, target lookup; syscall tracepoints`,
        target: `${traps}, copy and record; syscall records`,
      };
      const none = us[peer]['no probes'];
      const noTls = us[peer]['capture without TLS probes'];
      for (const arm of ARMS) {
        if (arm === 'no probes') continue;
        const rr = ratios(us[peer][arm], none);
        const added = us[peer][arm].map((v, i) => (v - none[i]!) / TLS_CALLS_PER_ROUND_TRIP);
        rows.push(
          {
            figure: `${peer} ping-pong, 64 B HTTP each way, 4 TLS calls per round trip: µs per round trip — ${arm}`,
            value: median(us[peer][arm]),
            peer: 'no probes',
            peerValue: median(none),
            ratio: median(rr),
            spread: range(rr),
          },
          {
            figure: `${peer}: added cost per TLS call (${what[arm]}): µs — ${arm}`,
            value: median(added),
            spread: range(added),
          },
        );
      }
      // the TLS probes' own share for a process that is not a target: against capture without them
      for (const arm of ['not a target', 'not a target, probes for every process'] as const) {
        const rr = ratios(us[peer][arm], noTls);
        const added = us[peer][arm].map((v, i) => (v - noTls[i]!) / TLS_CALLS_PER_ROUND_TRIP);
        rows.push(
          {
            figure: `${peer}: µs per round trip, TLS probes on vs off — ${arm}`,
            value: median(us[peer][arm]),
            peer: 'capture without TLS probes',
            peerValue: median(noTls),
            ratio: median(rr),
            spread: range(rr),
          },
          {
            figure: `${peer}: the TLS probes' own cost per TLS call: µs — ${arm}`,
            value: median(added),
            spread: range(added),
          },
        );
      }
    }
    console.log(`${probes} TLS probes attached; the target arm captured every exchange of both peers`);
    return rows;
  } finally {
    await stopAll();
    cg?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
