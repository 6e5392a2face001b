/**
 * The known cost of TLS capture: every SSL_read/SSL_write in a process that uses the probed
 * library traps into a uprobe (entry and return), whether or not that process is a target.
 *
 * A Python `ssl` client and server in one process ping-pong a 64-byte HTTP request and answer over
 * loopback TCP (one thread: the data is always already there, so no call blocks). Each round trip makes
 * 4 SSL calls (2 SSL_write_ex, 2 SSL_read_ex) and 4 socket syscalls. Arms, interleaved A B C …:
 *   no probes      — no capture session;
 *   not a target   — a session with TLS probes on libssl but no target: the trap, the tgid
 *                    lookup and the return, paid by every process on the host using libssl;
 *   target         — the Python process is a target: traps plus copying the plaintext into the
 *                    ring buffer (and the socket syscalls' own records).
 * The figure is µs per round trip; the added cost per SSL call is (arm − no probes) / 4.
 */
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureSession } from '../../capture/session.js';
import { selfSignedCert } from '../../test/helpers/certs.js';
import { tracerPids } from '../lib/foreign.js';
import { sleep, start, stopAll } from '../lib/procs.js';
import type { BenchOptions, Row } from '../lib/rows.js';
import { median, range, ratios } from '../lib/stats.js';

const SSL_CALLS_PER_ROUND_TRIP = 4;

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

type Arm = 'no probes' | 'not a target' | 'target';

/**
 * The addon detaches its links on a thread of its own after stop (it takes the kernel seconds);
 * until then every SSL call still traps, so the next "no probes" arm waits for them to go.
 */
async function probesGone(): Promise<void> {
  for (let i = 0; i < 300 && tracerPids().includes(process.pid); i++) await sleep(50);
}
const ARMS: Arm[] = ['no probes', 'not a target', 'target'];

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'retap-bench-tls-'));
  const rounds = quick ? 3 : 7;
  const n = quick ? 10_000 : 50_000;
  try {
    const { cert, key } = selfSignedCert(dir);
    writeFileSync(join(dir, 'pingpong.py'), PINGPONG);
    const py = start('python3', [join(dir, 'pingpong.py'), cert, key], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = createInterface({ input: py.child.stdout! })[Symbol.asyncIterator]();
    const next = async (): Promise<string> => {
      const r = await lines.next();
      if (r.done) throw new Error(`python ping-pong exited: ${py.output().slice(-1000)}`);
      return r.value;
    };
    if ((await next()) !== 'ready') throw new Error('python ping-pong did not start');
    const measure = async (): Promise<number> => {
      py.child.stdin!.write(`${n}\n`);
      return Number(await next());
    };
    await measure(); // warm up

    const us: Record<Arm, number[]> = { 'no probes': [], 'not a target': [], target: [] };
    let probes = 0;
    let captured = 0;
    for (let r = 0; r < rounds; r++) {
      for (const arm of ARMS) {
        let session: CaptureSession | undefined;
        if (arm !== 'no probes') {
          session = CaptureSession.start({ pids: arm === 'target' ? [py.pid] : [], tls: true }, (ex) => {
            if (ex.request.target === '/ping' && ex.response?.status === 200) captured++;
          });
          probes = session.stats().tlsProbes;
        }
        try {
          us[arm].push(await measure());
        } finally {
          if (session) {
            await session.stop();
            await probesGone();
          }
        }
      }
      console.log(
        `round ${r + 1}/${rounds}: ${ARMS.map((a) => `${a} ${us[a].at(-1)!.toFixed(2)} µs`).join(', ')}`,
      );
    }
    if (probes === 0) throw new Error('no TLS probes were attached: is libssl.so.3 installed?');
    // both ends live in the target: each round trip is one inbound and one outbound exchange
    if (captured !== 2 * rounds * n)
      throw new Error(
        `the target arm captured ${captured} of ${2 * rounds * n} exchanges: TLS capture is not working`,
      );
    await py.stop();

    const rows: Row[] = [];
    for (const arm of ['not a target', 'target'] as const) {
      const rr = ratios(us[arm], us['no probes']);
      const added = us[arm].map((v, i) => (v - us['no probes'][i]!) / SSL_CALLS_PER_ROUND_TRIP);
      rows.push(
        {
          figure: `python ssl ping-pong, 64 B HTTP each way, 4 SSL calls per round trip: µs per round trip — probes on libssl, ${arm}`,
          value: median(us[arm]),
          peer: 'no probes',
          peerValue: median(us['no probes']),
          ratio: median(rr),
          spread: range(rr),
        },
        {
          figure: `added cost per SSL call (uprobe + uretprobe${arm === 'target' ? ', copy and record' : ', tgid lookup'}): µs — ${arm}`,
          value: median(added),
          spread: range(added),
        },
      );
    }
    console.log(`${probes} TLS probes attached; the target arm captured all ${captured} exchanges`);
    return rows;
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}
