/**
 * A benchmark nginx in a temp dir: one worker, keep-alive, a 1 KiB static page, `sendfile off`
 * (with sendfile the kernel sends the file and capture records the body as a size-only gap),
 * optional TLS with a self-signed certificate, and a buffered access log that says which
 * requests nginx answered completely — the ground truth for counting lost exchanges.
 */
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selfSignedCert } from '../../test/helpers/certs.js';
import { freePort, type Proc, sleep, start, waitForPort } from './procs.js';
import { processTree } from './procstat.js';

export interface Nginx {
  proc: Proc;
  port: number;
  /** The page's full URL (scheme, port and path). */
  url: string;
  /** master and worker */
  pids: number[];
  /** Complete 200 answers logged from byte `from` of the access log on; returns the new end too. */
  answered(from: number): Promise<{ answered: number; end: number }>;
  logEnd(): number;
  stop(): Promise<void>;
}

export const PAGE = '/page.html';
export const PAGE_BYTES = 1024;

export async function startNginx(dir: string, tls: boolean): Promise<Nginx> {
  mkdirSync(join(dir, 'www'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const page = Buffer.alloc(PAGE_BYTES, 'retap benchmark page. ');
  writeFileSync(join(dir, 'www', PAGE.slice(1)), page);
  const port = await freePort();
  const cert = tls ? selfSignedCert(dir) : undefined;
  const log = join(dir, 'access.log');
  writeFileSync(log, '');
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/tmp;`);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; user root; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  ${temp.join(' ')}
  log_format bench '$status $bytes_sent $request_completion';
  access_log ${log} bench buffer=64k flush=1s;
  sendfile off; keepalive_requests 100000000; keepalive_timeout 75s; default_type text/html;
  server {
    listen 127.0.0.1:${port}${tls ? ' ssl' : ''};
    ${cert ? `ssl_certificate ${cert.cert}; ssl_certificate_key ${cert.key};` : ''}
    root ${dir}/www;
  }
}
`,
  );
  const proc = start('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir]);
  await waitForPort(port, proc);
  let pids = processTree(proc.pid);
  for (let i = 0; pids.length < 2 && i < 50; i++) {
    await sleep(20);
    pids = processTree(proc.pid);
  }
  const logEnd = () => statSync(log).size;
  return {
    proc,
    port,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}${PAGE}`,
    pids,
    logEnd,
    async answered(from) {
      // USR1 reopens the log, which flushes the worker's buffer; then wait until the size settles.
      process.kill(proc.pid, 'SIGUSR1');
      let end = logEnd();
      for (let i = 0; i < 40; i++) {
        await sleep(100);
        const now = logEnd();
        if (now === end && i >= 2) break;
        end = now;
      }
      const fd = openSync(log, 'r');
      const buf = Buffer.alloc(end - from);
      readSync(fd, buf, 0, buf.length, from);
      closeSync(fd);
      let answered = 0;
      for (const line of buf.toString('latin1').split('\n')) if (/^200 \d+ OK$/.test(line)) answered++;
      return { answered, end };
    },
    stop: () => proc.stop('SIGTERM'),
  };
}
