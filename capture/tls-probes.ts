/**
 * Finds where target processes do TLS and attaches the probes once per file (dev:inode):
 *   - OpenSSL: a mapped libssl, or an executable such as `node` that exports the SSL symbols;
 *   - Go: an executable with Go build information that uses crypto/tls (capture/go/binary.ts).
 * Files are opened through /proc/<pid>/exe and /proc/<pid>/root/…, so processes in containers (other
 * mount namespaces) are probed the same way. A Go program that cannot be probed is reported with the
 * reason (`failures`), never skipped in silence.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { logger } from '../core/log.js';
import type { NativeGoTlsSpec } from '../native/retap_native.js';
import { definedFunctionsOf, type ElfFile, withElf } from './elf.js';
import { type GoInspection, inspectGoBinary } from './go/binary.js';

const log = logger('capture');
const SSL_SYMBOLS = ['SSL_read', 'SSL_write'] as const;

export interface TlsAttacher {
  attachTls(path: string): number;
  attachGoTls(path: string, spec: NativeGoTlsSpec): number;
}

/** A Go program whose crypto/tls calls are probed. */
export interface GoTlsBinary {
  path: string;
  goVersion: string;
  /** Where the functions were found: the symbol table, or the pclntab of a stripped binary. */
  symbolsFrom: 'symtab' | 'pclntab';
  /** Where the struct offsets came from: the binary's DWARF, or the table by Go version. */
  offsetsFrom: 'dwarf' | 'table';
  probes: number;
}

/** A file whose TLS plaintext cannot be captured, and why. */
export interface TlsFailure {
  path: string;
  reason: string;
  goVersion?: string;
}

export class TlsProbes {
  /** dev:inode of every file looked at (attached, failed, or nothing to attach). */
  private seen = new Set<string>();
  private scanned = new Map<number, number>(); // tgid → maps file size at last scan
  probes = 0;
  /** Files with probes: OpenSSL libraries and executables, and Go programs. */
  readonly attached: string[] = [];
  readonly goBinaries: GoTlsBinary[] = [];
  readonly failures: TlsFailure[] = [];

  constructor(private readonly native: TlsAttacher) {}

  /** Candidates present on most machines, attached before any target starts. */
  attachDefaults(): void {
    for (const p of defaultLibssl()) this.consider(p, p);
    for (const p of [process.execPath, '/usr/bin/node', '/usr/local/bin/node']) this.consider(p, p);
  }

  /**
   * Look at one process's executable and mapped TLS libraries. Cheap when nothing changed;
   * `force` looks again even so (a process that just exec'd).
   */
  scanProcess(tgid: number, force = false): void {
    let maps: string;
    try {
      maps = readFileSync(`/proc/${tgid}/maps`, 'utf8');
    } catch {
      return; // gone
    }
    if (!force && this.scanned.get(tgid) === maps.length) return;
    this.scanned.set(tgid, maps.length);
    this.consider(`/proc/${tgid}/exe`, exeLabel(tgid));
    for (const line of maps.split('\n')) {
      const slash = line.indexOf('/');
      if (slash === -1) continue;
      const path = line.slice(slash).trim();
      if (!/libssl\.so|\/node$|\/nodejs$/.test(path)) continue;
      this.consider(`/proc/${tgid}/root${path}`, path);
    }
  }

  /** `open` is how we reach the file (maybe through /proc); `label` is how people know it. */
  private consider(open: string, label: string): void {
    let id: string;
    try {
      const st = statSync(open);
      if (!st.isFile()) return;
      id = `${st.dev}:${st.ino}`;
    } catch {
      return;
    }
    if (this.seen.has(id)) return;
    this.seen.add(id);
    let go: GoInspection = { kind: 'not-go' };
    let ssl = false;
    try {
      withElf(open, (elf: ElfFile) => {
        go = inspectGoBinary(elf);
        ssl = definedFunctionsOf(elf, SSL_SYMBOLS).size > 0;
      });
    } catch (e) {
      // not ELF, or unreadable: nothing we could attach to
      log.debug(`not probing ${label}: ${(e as Error).message}`);
      return;
    }
    if (ssl) this.attachOpenssl(open, label, id);
    this.attachGo(open, label, id, go);
  }

  /** An attach failed: the file's fault, or only a process that exited meanwhile (look again later). */
  private failed(f: TlsFailure, open: string, id: string): void {
    if (open.startsWith('/proc/') && !existsSync(open)) {
      this.seen.delete(id);
      log.debug(`${f.path}: its process exited before the TLS probes were attached`);
      return;
    }
    this.fail(f);
  }

  private attachOpenssl(open: string, label: string, id: string): void {
    try {
      const n = this.native.attachTls(open);
      this.probes += n;
      this.attached.push(label);
      log.info(`TLS probes attached to ${label} (${n})`);
    } catch (e) {
      this.failed({ path: label, reason: firstLine(e) }, open, id);
    }
  }

  private attachGo(open: string, label: string, id: string, go: GoInspection): void {
    switch (go.kind) {
      case 'not-go':
        return;
      case 'no-tls':
        log.debug(`${label}: Go ${go.goVersion} program without crypto/tls connections`);
        return;
      case 'unsupported':
        this.fail({ path: label, goVersion: go.goVersion, reason: go.reason });
        return;
      case 'ok': {
        const { plan } = go;
        try {
          const n = this.native.attachGoTls(open, plan.spec);
          this.probes += n;
          this.attached.push(label);
          this.goBinaries.push({
            path: label,
            goVersion: plan.goVersion,
            symbolsFrom: plan.symbolsFrom,
            offsetsFrom: plan.offsetsFrom,
            probes: n,
          });
          log.info(
            `Go TLS probes attached to ${label} (${plan.goVersion}, functions from ${plan.symbolsFrom}, offsets from ${plan.offsetsFrom}, ${n} probes)`,
          );
        } catch (e) {
          this.failed({ path: label, goVersion: plan.goVersion, reason: firstLine(e) }, open, id);
        }
      }
    }
  }

  private fail(f: TlsFailure): void {
    this.failures.push(f);
    // info, not warn: `retap capture` prints the failures once at the end, as warnings
    log.info(
      `cannot capture the TLS plaintext of ${f.path}${f.goVersion ? ` (Go ${f.goVersion.replace(/^go/, '')})` : ''}: ${f.reason}`,
    );
  }
}

function firstLine(e: unknown): string {
  return ((e as Error).message ?? String(e)).split('\n')[0] ?? '';
}

/** The executable's path as its process sees it (inside its container, if any). */
function exeLabel(tgid: number): string {
  try {
    return readlinkSync(`/proc/${tgid}/exe`).replace(/ \(deleted\)$/, '');
  } catch {
    return `/proc/${tgid}/exe`;
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
