/**
 * Finds where target processes keep OpenSSL (a mapped libssl, or an executable such as `node`
 * that exports the SSL symbols itself) and attaches the TLS uprobes once per file.
 *
 * A process in another mount namespace (a container) names its files in its own tree: they are
 * reached through `/proc/<pid>/root/<path>`, which the kernel resolves in that process's root
 * (never through realpath, which would read the magic link as "/" and land in our own tree).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { logger } from '../core/log.js';
import { exportedSymbols } from './elf.js';

const log = logger('capture');
const SSL_SYMBOLS = ['SSL_read', 'SSL_write'] as const;

export interface TlsAttacher {
  attachTls(path: string): number;
}

export class TlsProbes {
  /** dev:inode → path, for files already attached (or found not to have OpenSSL). */
  private seen = new Map<string, string | null>();
  private scanned = new Map<number, number>(); // tgid → maps file size at last scan
  probes = 0;
  readonly attached: string[] = [];
  readonly failures: string[] = [];

  constructor(private readonly native: TlsAttacher) {}

  /** Candidates present on most machines, attached before any target starts. */
  attachDefaults(): void {
    for (const p of defaultLibssl()) this.consider(p);
    for (const p of [process.execPath, '/usr/bin/node', '/usr/local/bin/node']) this.consider(p);
  }

  /** Look at one process's executable and mapped files. Cheap when nothing changed. */
  scanProcess(tgid: number): void {
    let maps: string;
    try {
      maps = readFileSync(`/proc/${tgid}/maps`, 'utf8');
    } catch {
      return; // gone
    }
    if (this.scanned.get(tgid) === maps.length) return;
    this.scanned.set(tgid, maps.length);
    const root = foreignRoot(tgid);
    if (root === 'gone') return;
    if (root === null) {
      // its paths would name files of another tree: probing ours instead would be wrong and silent
      this.failures.push(
        `pid ${tgid}: cannot tell which mount namespace it lives in (needs CAP_SYS_PTRACE); its TLS library is not probed`,
      );
      log.warn(this.failures[this.failures.length - 1]!);
      return;
    }
    try {
      if (root === undefined) this.consider(realpathSync(`/proc/${tgid}/exe`));
      else this.consider(root + readlinkSync(`/proc/${tgid}/exe`).replace(/ \(deleted\)$/, ''), true);
    } catch {
      /* exited or kernel thread */
    }
    for (const line of maps.split('\n')) {
      const path = line.slice(line.indexOf('/'));
      if (line.indexOf('/') === -1 || !/libssl\.so|\/node$|\/nodejs$/.test(path)) continue;
      if (root === undefined) this.consider(path.trim());
      else this.consider(root + path.trim(), true);
    }
  }

  forget(tgid: number): void {
    this.scanned.delete(tgid);
  }

  /** `inContainer`: a path through /proc/<pid>/root, already canonical inside that root. */
  private consider(path: string, inContainer = false): void {
    let id: string;
    let real: string;
    try {
      real = inContainer ? path : realpathSync(path);
      const st = statSync(real);
      id = `${st.dev}:${st.ino}`;
    } catch {
      return;
    }
    if (this.seen.has(id)) return;
    const syms = exportedSymbols(real, SSL_SYMBOLS);
    if (syms.size === 0) {
      this.seen.set(id, null);
      return;
    }
    this.seen.set(id, real);
    try {
      const n = this.native.attachTls(real);
      this.probes += n;
      this.attached.push(real);
      log.info(`TLS probes attached to ${real} (${n})`);
    } catch (e) {
      this.failures.push(`${real}: ${(e as Error).message.split('\n')[0]}`);
      log.warn(`cannot attach TLS probes to ${real}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
}

let ownMountNs: bigint | undefined;

/**
 * `/proc/<pid>/root` when the process lives in another mount namespace than ours, undefined when
 * in ours (or namespaces cannot be told apart here at all), null when its namespace is hidden
 * from us (no ptrace access), 'gone' when it exited.
 */
function foreignRoot(tgid: number): string | undefined | null | 'gone' {
  try {
    ownMountNs ??= statSync('/proc/self/ns/mnt', { bigint: true }).ino;
  } catch {
    return undefined;
  }
  try {
    if (statSync(`/proc/${tgid}/ns/mnt`, { bigint: true }).ino === ownMountNs) return undefined;
    return `/proc/${tgid}/root`;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : null;
  }
}

function defaultLibssl(): string[] {
  const out: string[] = [];
  try {
    const text = execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    for (const m of text.matchAll(/libssl\.so\.\d+ \(([^)]*)\) => (\S+)/g)) {
      if (m[1]?.includes('x86-64') || m[1]?.includes('AArch64') || !m[1]?.includes('32')) out.push(m[2]!);
    }
  } catch {
    /* no ldconfig: fall back to common paths */
  }
  for (const p of [
    '/usr/lib/x86_64-linux-gnu/libssl.so.3',
    '/usr/lib/aarch64-linux-gnu/libssl.so.3',
    '/usr/lib64/libssl.so.3',
  ]) {
    if (existsSync(p)) out.push(p);
  }
  return out;
}
