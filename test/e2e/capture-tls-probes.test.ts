/**
 * Where the TLS probes go (the real kernel path). With processes as targets, the kernel writes the
 * uprobe breakpoints (int3) into the targets' memory only, so a process that is not a target runs
 * SSL_write without a trap; with a cgroup target it writes them into every process mapping the
 * library. The breakpoint is read back from /proc/<pid>/mem: a fact, not a timing.
 *
 * Every process here maps a private copy of libssl (LD_LIBRARY_PATH): another capture running on
 * this machine probes the system libssl, whose breakpoints would otherwise show in our processes.
 */
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCgroup } from '../../capture/cgroup.js';
import { withElf } from '../../capture/elf.js';
import { planOpenssl } from '../../capture/openssl.js';
import { CaptureSession } from '../../capture/session.js';
import type { Exchange } from '../../core/exchange.js';
import { selfSignedCert } from '../helpers/certs.js';
import { skipPrivileged } from '../helpers/privileged.js';
import { type Proc, start, stopAll } from '../helpers/procs.js';

const SYSTEM_LIBSSL = '/usr/lib/x86_64-linux-gnu/libssl.so.3';

// A python process with libssl mapped. On "fork N" it forks; the child makes N HTTPS requests
// to the port given and exits; the parent prints the child's pid and exit status.
const PEER = `
import os, socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
print("ready", flush=True)
for line in sys.stdin:
    cmd, n, port = line.split()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port)))) as s:
                for i in range(int(n)):
                    s.sendall(b"GET /child/%d HTTP/1.1\\r\\nhost: t\\r\\n\\r\\n" % i)
                    got = b""
                    while not got.endswith(b"ok"): got += s.recv(4096)
        except Exception as e:
            print(e, file=sys.stderr, flush=True); code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(pid, status, flush=True)
`;

// A TLS server answering every request on a connection with a fixed response.
const SERVER = `
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(8)
print("listening", ls.getsockname()[1], flush=True)
def serve(c):
    with ctx.wrap_socket(c, server_side=True) as s:
        buf = b""
        while True:
            d = s.recv(4096)
            if not d: return
            buf += d
            while b"\\r\\n\\r\\n" in buf:
                _, buf = buf.split(b"\\r\\n\\r\\n", 1)
                s.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok")
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

let dir: string;
let libdir: string;
let cert: string;
let key: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-tlsprobes-'));
  libdir = join(dir, 'lib');
  mkdirSync(libdir);
  copyFileSync(SYSTEM_LIBSSL, join(libdir, 'libssl.so.3'));
  writeFileSync(join(dir, 'peer.py'), PEER);
  writeFileSync(join(dir, 'server.py'), SERVER);
  ({ cert, key } = selfSignedCert(dir));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(stopAll);

const env = (): NodeJS.ProcessEnv => ({ ...process.env, LD_LIBRARY_PATH: libdir });

async function peer(): Promise<Proc & { line(): Promise<string> }> {
  const p = start('python3', [join(dir, 'peer.py')], { stdio: ['pipe', 'pipe', 'pipe'], env: env() });
  const lines = createInterface({ input: p.child.stdout! })[Symbol.asyncIterator]();
  const line = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error(`peer exited: ${p.output()}`);
    return r.value;
  };
  expect(await line()).toBe('ready');
  return { ...p, line };
}

/**
 * The first byte of every probed instruction (the planned entry sites: capture/openssl.ts) as
 * process `pid` sees it in its copy of our libssl, and as the file has it.
 */
function probedBytes(pid: number): { live: number[]; file: number[] } {
  const lib = join(libdir, 'libssl.so.3');
  const offsets = withElf(lib, (elf) =>
    planOpenssl(elf)
      ?.sites.filter((s) => s.kind === 'enter')
      .map((s) => s.offset),
  );
  if (!offsets?.length) throw new Error('no probe sites planned for libssl');
  const image = readFileSync(lib);
  const file = offsets.map((o) => image[o]!);
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  const live = offsets.map((fileOffset) => {
    for (const line of maps) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(\S.*)$/.exec(line);
      if (!m || m[4] !== lib) continue;
      const [startAddr, endAddr, off] = [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
      if (fileOffset < off || fileOffset >= off + (endAddr - startAddr)) continue;
      const fd = openSync(`/proc/${pid}/mem`, 'r');
      try {
        const b = Buffer.alloc(1);
        readSync(fd, b, 0, 1, startAddr + (fileOffset - off));
        return b[0]!;
      } finally {
        closeSync(fd);
      }
    }
    throw new Error(`process ${pid} does not map ${lib} at file offset ${fileOffset}`);
  });
  return { live, file };
}

const INT3 = 0xcc;

describe.skipIf(skipPrivileged())('TLS probes per target process (real kernel path)', () => {
  it('processes as targets: breakpoints in the target only; a cgroup target puts them in every process', async () => {
    const target = await peer();
    const bystander = await peer();
    expect(probedBytes(target.pid).file).not.toContain(INT3);
    const all = (n: number): number[] => probedBytes(target.pid).file.map(() => n);

    const session = CaptureSession.start({ pids: [target.pid] }, () => {});
    try {
      expect(session.stats().tlsProbesFor).toBe('process');
      expect(session.stats().tlsLibraries).toContain(join(libdir, 'libssl.so.3'));
      expect(probedBytes(target.pid).live).toEqual(all(INT3));
      const b = probedBytes(bystander.pid);
      expect(b.live).toEqual(b.file);

      // a cgroup target: the kernel cannot filter probes by cgroup, so every process gets them
      const cg = createCgroup(`test-tlsprobes-${process.pid}-${Date.now().toString(36)}`);
      try {
        session.addCgroup(cg.id);
        expect(session.stats().tlsProbesFor).toBe('all');
        expect(probedBytes(bystander.pid).live).toEqual(all(INT3));
        expect(probedBytes(target.pid).live).toEqual(all(INT3));
      } finally {
        cg.destroy();
      }
    } finally {
      await session.stop();
    }
  });

  it('a child a target forks after the start is probed before its first SSL call: every request captured', async () => {
    const srv = start('python3', [join(dir, 'server.py'), cert, key], { env: env() });
    const deadline = Date.now() + 10_000;
    while (!/listening (\d+)/.test(srv.output()) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const port = Number(/listening (\d+)/.exec(srv.output())?.[1]);
    expect(port, srv.output()).toBeGreaterThan(0);
    const parent = await peer();
    const exchanges: Exchange[] = [];
    // the test started the parent, as retap starts commands: new processes are held until probed
    const session = CaptureSession.start({ pids: [parent.pid], holdExec: true }, (e) => exchanges.push(e));
    let child = 0;
    try {
      parent.child.stdin!.write(`fork 3 ${port}\n`);
      const [pid, status] = (await parent.line()).split(' ').map(Number);
      expect(status, parent.output()).toBe(0);
      child = pid!;
    } finally {
      await session.stop();
    }
    const fromChild = exchanges.filter((e) => e.service.pid === child);
    expect(fromChild.map((e) => e.request.target)).toEqual(['/child/0', '/child/1', '/child/2']);
    for (const e of fromChild) {
      expect(e.tls).toBe(true);
      expect(e.direction).toBe('outbound');
      expect(Buffer.from(e.response?.body?.data ?? []).toString()).toBe('ok');
    }
  });
});
