/**
 * Finds where target processes do TLS and attaches the probes:
 *   - OpenSSL: a mapped libssl, or an executable such as `node` that exports the SSL symbols;
 *   - Go: an executable with Go build information that uses crypto/tls (capture/go/binary.ts).
 * Files are opened through /proc/<pid>/exe and /proc/<pid>/root/…, so processes in containers (other
 * mount namespaces) are probed the same way. A Go program that cannot be probed is reported with the
 * reason (`failures`), never skipped in silence.
 *
 * Two modes (docs/capture.md, "What TLS capture costs other processes"):
 *   - per process (targets are processes): each file's probes are attached once per target process,
 *     with its pid. The kernel then writes the breakpoints into that process's memory only, so a
 *     process that is not a target runs its SSL calls without a trap. Every target gets the default
 *     libraries (attached before it maps them: the kernel adds the breakpoints when it does) and
 *     whatever it maps; new processes are attached as the session hears of them (fork and exec
 *     records, first data), and their probes go when they exit.
 *   - for every process (`--all`, cgroup targets): once per file, pid -1; the programs filter.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { logger } from '../core/log.js';
import type { NativeGoTlsSpec } from '../native/retap_native.js';
import { isNodeExecutable, type LoopPlan, planNodeLoop } from './causal/node-loop.js';
import { definedFunctionsOf, type ElfFile, withElf } from './elf.js';
import { type GoInspection, inspectGoBinary } from './go/binary.js';
import { type OpensslPlan, planOpenssl } from './openssl.js';

const log = logger('capture');
const SSL_SYMBOLS = ['SSL_read', 'SSL_write'] as const;

export interface TlsAttacher {
  attachTls(path: string, pid?: number): number;
  attachTlsSites(path: string, sites: OpensslPlan['sites'], pid?: number): number;
  attachGoTls(path: string, spec: NativeGoTlsSpec, pid?: number): number;
  attachLoopSites(path: string, sites: Array<{ offset: number; kind: number }>, pid?: number): number;
  detachPid(pid: number): number;
  setTlsPerProcess(on: boolean): void;
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
  /** Files looked at, by dev:inode. */
  private files = new Map<string, TlsFile>();
  /** Default files: attached for every target process (per-process mode). */
  private defaults: string[] = [];
  /** pid the probes were attached for (-1: every process) → dev:inode of the files attached. */
  private attachedFor = new Map<number, Set<string>>();
  private scanned = new Map<number, number>(); // tgid → maps file size at last scan
  /** Probes attached so far (all modes, all processes). */
  probes = 0;
  /** Files with probes: OpenSSL libraries and executables, and Go programs. */
  readonly attached: string[] = [];
  readonly goBinaries: GoTlsBinary[] = [];
  readonly failures: TlsFailure[] = [];

  constructor(
    private readonly native: TlsAttacher,
    private perProcess = false,
  ) {}

  /** Probes go per target process (true) or on each file for every process (false). */
  get mode(): 'process' | 'all' {
    return this.perProcess ? 'process' : 'all';
  }

  /** Candidates present on most machines: attached at once for every process, or for each target. */
  attachDefaults(): void {
    // Per process, only libraries are attached ahead (a process may map one later, as python's
    // `import ssl` does); an executable is attached for the processes that run it. Each probe
    // attached per process costs the kernel a walk over every process mapping the file.
    const libs = defaultLibssl();
    for (const p of [...libs, process.execPath, '/usr/bin/node', '/usr/local/bin/node']) {
      const f = this.inspect(p, p);
      if (!f) continue;
      if (!this.perProcess) this.attach(f, -1, p);
      else if (libs.includes(p) && !this.defaults.includes(f.id)) this.defaults.push(f.id);
    }
  }

  /**
   * Look at one process's executable and mapped TLS libraries. Cheap when nothing changed;
   * `force` looks again even so (a process that just forked or exec'd).
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
    const pid = this.perProcess ? tgid : -1;
    if (this.perProcess) {
      for (const id of this.defaults) {
        const f = this.files.get(id);
        if (f) this.attach(f, pid, f.open);
      }
    }
    const exe = `/proc/${tgid}/exe`;
    const ef = this.inspect(exe, exeLabel(tgid));
    if (ef) this.attach(ef, pid, exe);
    for (const line of maps.split('\n')) {
      const slash = line.indexOf('/');
      if (slash === -1) continue;
      const path = line.slice(slash).trim();
      if (!/libssl\.so|\/node$|\/nodejs$/.test(path)) continue;
      const open = `/proc/${tgid}/root${path}`;
      const f = this.inspect(open, path);
      if (f) this.attach(f, pid, open);
    }
  }

  /** A target process exited: its probes go (per-process mode; nothing to do otherwise). */
  forget(tgid: number): void {
    this.scanned.delete(tgid);
    if (!this.perProcess || !this.attachedFor.has(tgid)) return;
    this.attachedFor.delete(tgid);
    this.native.detachPid(tgid);
  }

  /**
   * Targets that are not processes arrived (a cgroup): probes on every file for every process,
   * and the per-process ones go.
   */
  toEveryProcess(): void {
    if (!this.perProcess) return;
    this.perProcess = false;
    const ids = new Set<string>(this.defaults);
    for (const set of this.attachedFor.values()) for (const id of set) ids.add(id);
    const pids = [...this.attachedFor.keys()];
    for (const id of ids) {
      const f = this.files.get(id);
      if (f) this.attach(f, -1, f.open);
    }
    // The new probes stay quiet until this switch (one store in the programs), the old ones go
    // quiet with it: no call is recorded twice or missed while both are attached.
    this.native.setTlsPerProcess(false);
    for (const pid of pids) {
      if (pid <= 0) continue;
      this.attachedFor.delete(pid);
      this.native.detachPid(pid);
    }
  }

  /** `open` is how we reach the file (maybe through /proc); `label` is how people know it. */
  private inspect(open: string, label: string): TlsFile | undefined {
    let id: string;
    try {
      const st = statSync(open);
      if (!st.isFile()) return undefined;
      id = `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
    const known = this.files.get(id);
    if (known) {
      known.open = open; // the newest way in: an earlier process may have gone
      return known.ssl || known.go.kind !== 'not-go' ? known : undefined;
    }
    let go: GoInspection = { kind: 'not-go' };
    let ssl = false;
    let plan: OpensslPlan | undefined;
    let loop: LoopPlan | undefined;
    try {
      withElf(open, (elf: ElfFile) => {
        go = inspectGoBinary(elf);
        ssl = definedFunctionsOf(elf, SSL_SYMBOLS).size > 0;
        if (ssl) plan = planSafely(elf, label);
        // node: the event loop's callback starts, for the links of its calls (capture/causal)
        if (isNodeExecutable(label)) loop = planLoopSafely(elf, label);
      });
    } catch (e) {
      // not ELF, or unreadable: nothing we could attach to
      log.debug(`not probing ${label}: ${(e as Error).message}`);
      return undefined;
    }
    const g = go as GoInspection; // assigned in the callback: TypeScript cannot see it
    const f: TlsFile = {
      id,
      open,
      label,
      ssl,
      go: g,
      broken: false,
      listed: false,
      ...(plan ? { plan } : {}),
      ...(loop ? { loop } : {}),
    };
    this.files.set(id, f);
    if (g.kind === 'no-tls') log.debug(`${label}: Go ${g.goVersion} program without crypto/tls connections`);
    if (g.kind === 'unsupported') {
      this.fail({ path: label, goVersion: g.goVersion, reason: g.reason });
      f.broken = !ssl;
    }
    return ssl || g.kind !== 'not-go' ? f : undefined;
  }

  /** Attach a file's probes for `pid` (-1: every process), once. */
  private attach(f: TlsFile, pid: number, open: string): void {
    if (f.broken) return;
    let set = this.attachedFor.get(pid);
    if (set?.has(f.id) || this.attachedFor.get(-1)?.has(f.id)) return;
    if (!set) this.attachedFor.set(pid, (set = new Set()));
    set.add(f.id);
    const who = pid === -1 ? 'every process' : `pid ${pid}`;
    if (f.ssl) {
      try {
        const n = f.plan
          ? this.native.attachTlsSites(open, f.plan.sites, pid)
          : this.native.attachTls(open, pid);
        this.probes += n;
        this.listed(f);
        log.debug(`TLS probes attached to ${f.label} for ${who} (${n})`);
      } catch (e) {
        set.delete(f.id);
        this.failed(f, pid, open, { path: f.label, reason: firstLine(e) });
      }
    }
    if (f.loop) this.attachLoop(f, f.loop, pid, open, who);
    const go = f.go;
    if (go.kind !== 'ok') return;
    const { plan } = go;
    try {
      const n = this.native.attachGoTls(open, plan.spec, pid);
      this.probes += n;
      set.add(f.id);
      if (!f.listed) {
        this.goBinaries.push({
          path: f.label,
          goVersion: plan.goVersion,
          symbolsFrom: plan.symbolsFrom,
          offsetsFrom: plan.offsetsFrom,
          probes: n,
        });
      }
      this.listed(f);
      log.debug(
        `Go TLS probes attached to ${f.label} for ${who} (${plan.goVersion}, functions from ${plan.symbolsFrom}, offsets from ${plan.offsetsFrom}, ${n} probes)`,
      );
    } catch (e) {
      set.delete(f.id);
      this.failed(f, pid, open, { path: f.label, goVersion: plan.goVersion, reason: firstLine(e) });
    }
  }

  /** node's event-loop probes: without them its calls are linked by time window (said once per file). */
  private attachLoop(f: TlsFile, loop: LoopPlan, pid: number, open: string, who: string): void {
    if (!('sites' in loop)) {
      if (!f.loopSaid)
        log.info(
          `${f.label}: its event loop cannot be probed (${loop.reason}); its calls are linked by time window`,
        );
      f.loopSaid = true;
      return;
    }
    try {
      const n = this.native.attachLoopSites(
        open,
        loop.sites.map(({ offset, kind }) => ({ offset, kind })),
        pid,
      );
      this.probes += n;
      log.debug(`event-loop probes attached to ${f.label} for ${who} (${n})`);
    } catch (e) {
      if (pid > 0 && !existsSync(`/proc/${pid}`)) return;
      if (!f.loopSaid)
        log.warn(
          `${f.label}: its event loop could not be probed (${firstLine(e)}); its calls are linked by time window`,
        );
      f.loopSaid = true;
    }
  }

  private listed(f: TlsFile): void {
    if (f.listed) return;
    f.listed = true;
    this.attached.push(f.label);
    const how = f.plan
      ? `: ${Object.entries(f.plan.how)
          .map(([fn, at]) => `${fn} at ${at}`)
          .join(', ')}`
      : f.ssl
        ? ': SSL_read/SSL_write(_ex) entries, single-stepped'
        : '';
    log.info(`TLS probes on ${f.label} (${this.perProcess ? 'per target process' : 'every process'})${how}`);
  }

  /** An attach failed: the file's fault, or only a process that exited meanwhile (look again later). */
  private failed(f: TlsFile, pid: number, open: string, failure: TlsFailure): void {
    if ((pid > 0 && !existsSync(`/proc/${pid}`)) || (open.startsWith('/proc/') && !existsSync(open))) {
      log.debug(`${f.label}: its process exited before the TLS probes were attached`);
      return;
    }
    f.broken = true;
    this.fail(failure);
  }

  private fail(f: TlsFailure): void {
    this.failures.push(f);
    // info, not warn: `retap capture` prints the failures once at the end, as warnings
    log.info(
      `cannot capture the TLS plaintext of ${f.path}${f.goVersion ? ` (Go ${f.goVersion.replace(/^go/, '')})` : ''}: ${f.reason}`,
    );
  }
}

interface TlsFile {
  id: string;
  /** The newest path it was reached by. */
  open: string;
  label: string;
  ssl: boolean;
  go: GoInspection;
  /** An attach failed for a reason of the file's own: not tried again. */
  broken: boolean;
  /** In `attached` (and `goBinaries`). */
  listed: boolean;
  /** Where the OpenSSL probes go: on instructions the kernel emulates (no single step) when it can. */
  plan?: OpensslPlan;
  /** node: where its event loop is probed (or why it cannot be). */
  loop?: LoopPlan;
  /** Why the loop is not probed was logged. */
  loopSaid?: boolean;
}

function planLoopSafely(elf: ElfFile, label: string): LoopPlan {
  try {
    return planNodeLoop(elf);
  } catch (e) {
    log.debug(`${label}: no event-loop probes (${(e as Error).message})`);
    return { reason: firstLine(e) };
  }
}

/** The planned OpenSSL probes; a plan that cannot be made falls back to the exported entries. */
function planSafely(elf: ElfFile, label: string): OpensslPlan | undefined {
  try {
    const plan = planOpenssl(elf);
    return plan?.sites.some((s) => s.kind === 'enter') ? plan : undefined;
  } catch (e) {
    log.debug(`${label}: probing the exported SSL entries (${(e as Error).message})`);
    return undefined;
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
