/**
 * End-to-end check of the capture path on this machine, for `retap doctor`: load and attach the
 * BPF programs, run a child process that serves and fetches one HTTP request on loopback, and
 * expect exactly that exchange back, decoded.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { CaptureSession } from './session.js';

export interface SelfTestResult {
  ok: boolean;
  detail: string;
}

const CHILD = `
const http = require('node:http');
const port = Number(process.argv[1]);
const srv = http.createServer((req, res) => res.end('retap-selftest'));
srv.listen(port, '127.0.0.1', () => {
  http.get({ host: '127.0.0.1', port, path: '/retap-selftest' }, (res) => {
    res.resume();
    res.on('end', () => srv.close(() => process.exit(0)));
  }).on('error', () => process.exit(1));
});
setTimeout(() => process.exit(2), 10000).unref();
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function selfTest(): Promise<SelfTestResult> {
  const port = await freePort();
  let inbound = 0;
  let outbound = 0;
  const started = Date.now();
  const session = CaptureSession.start({ all: true, ports: [port], tls: true }, (ex) => {
    if (ex.request.target !== '/retap-selftest') return;
    if (ex.direction === 'inbound') inbound++;
    else outbound++;
  });
  try {
    const code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['-e', CHILD, String(port)], { stdio: 'ignore' });
      child.once('exit', (c) => resolve(c ?? 1));
      child.once('error', () => resolve(1));
    });
    const stats = await session.stop();
    if (code !== 0) return { ok: false, detail: `the loopback test process failed (exit ${code})` };
    const probes = stats.tlsProbes ? `, ${stats.tlsProbes} TLS probes` : ', no TLS library found';
    if (inbound === 1 && outbound === 1) {
      return {
        ok: true,
        detail: `programs attached; a loopback request was captured on both ends in ${Date.now() - started} ms${probes}`,
      };
    }
    return {
      ok: false,
      detail: `programs attached, but the loopback request was captured ${inbound}× inbound and ${outbound}× outbound (expected 1 and 1; kernel events ${stats.kernel.events}, drops ${stats.kernel.ringbufDrops})`,
    };
  } finally {
    await session.stop();
  }
}
