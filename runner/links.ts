/**
 * The live link feed of a replay: capture (in the orchestrator) sees which request each write of
 * the build belongs to; the mocks (in the worker, inside the namespace) need that to answer a
 * call from the recording made for the same request. The orchestrator serves the links on a
 * Unix socket in the run's directory (a path, so the worker reaches it from inside the network
 * namespace); the worker connects, and a mock asks who made the call that just arrived on one of
 * its connections.
 *
 * One line per linked (or unlinkable) outbound write of the build:
 *   `<build addr> <build port> <peer addr> <peer port> <kernel ns> <request's client port> <method|none>`
 * Capture's clock (CLOCK_MONOTONIC) is process.hrtime's, so the mock compares times directly.
 */
import net from 'node:net';
import type { LiveLink } from '../capture/connections.js';
import { LINK_METHODS, type LinkMethod } from '../core/exchange.js';

const BACKLOG = 10_000;

/** Orchestrator side: pushes links to whoever connects (the worker). */
export async function serveLinks(path: string): Promise<{ push(l: LiveLink): void; close(): Promise<void> }> {
  const clients = new Set<net.Socket>();
  const backlog: string[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => s.destroy());
    s.on('close', () => clients.delete(s));
    if (backlog.length) s.write(backlog.join(''));
    backlog.length = 0;
    clients.add(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    push(l) {
      const line = `${l.call.laddr} ${l.call.lport} ${l.call.raddr} ${l.call.rport} ${l.tsNs} ${l.request?.rport ?? 0} ${l.method ?? 'none'}\n`;
      if (clients.size === 0) {
        if (backlog.length < BACKLOG) backlog.push(line);
        return;
      }
      for (const c of clients) c.write(line);
    },
    close: () =>
      new Promise<void>((r) => {
        for (const c of clients) c.destroy();
        server.close(() => r());
      }),
  };
}

interface Entry {
  tsNs: number;
  clientPort: number;
  method: LinkMethod | undefined;
}

interface Waiter {
  afterNs: number;
  resolve(e: Entry | undefined): void;
  timer: NodeJS.Timeout;
}

const PER_CONNECTION = 256;
const norm = (addr: string): string => (addr.startsWith('::ffff:') ? addr.slice(7) : addr);

/** Worker side: the links capture saw, by the build's connection. */
export class LinkFeed {
  private readonly entries = new Map<string, Entry[]>();
  private readonly waiters = new Map<string, Waiter[]>();
  private buffered = '';

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => undefined);
  }

  /** Connects to the orchestrator's feed; undefined when it is not there (no capture). */
  static async connect(path: string): Promise<LinkFeed | undefined> {
    return new Promise((resolve) => {
      const s = net.connect(path);
      s.once('connect', () => resolve(new LinkFeed(s)));
      s.once('error', () => resolve(undefined));
    });
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl = this.buffered.indexOf('\n');
    while (nl !== -1) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      nl = this.buffered.indexOf('\n');
      const f = line.split(' ');
      if (f.length !== 7) continue;
      const key = `${norm(f[0]!)}:${f[1]}>${norm(f[2]!)}:${f[3]}`;
      const method = LINK_METHODS.includes(f[6] as LinkMethod) ? (f[6] as LinkMethod) : undefined;
      const e: Entry = { tsNs: Number(f[4]), clientPort: Number(f[5]), method };
      let list = this.entries.get(key);
      if (!list) this.entries.set(key, (list = []));
      list.push(e);
      if (list.length > PER_CONNECTION) list.shift();
      const waiting = this.waiters.get(key);
      if (!waiting) continue;
      for (const w of [...waiting]) {
        if (e.tsNs <= w.afterNs) continue;
        clearTimeout(w.timer);
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(e);
      }
      if (waiting.length === 0) this.waiters.delete(key);
    }
  }

  /**
   * The first write capture saw on the build's connection `from` → `to` after `afterNs` (the
   * mock's previous answer on it: the call that just arrived was written after the build read
   * that answer), waiting up to `timeoutMs` for capture to report it. Undefined when capture
   * could not link that write (or did not see it in time).
   */
  causeOf(
    from: { addr: string; port: number },
    to: { addr: string; port: number },
    afterNs: number,
    timeoutMs: number,
  ): Promise<{ clientPort: number; method: LinkMethod } | undefined> {
    const key = `${norm(from.addr)}:${from.port}>${norm(to.addr)}:${to.port}`;
    const done = (e: Entry | undefined) =>
      e?.method && e.clientPort > 0 ? { clientPort: e.clientPort, method: e.method } : undefined;
    const seen = this.entries.get(key)?.find((e) => e.tsNs > afterNs);
    if (seen) return Promise.resolve(done(seen));
    return new Promise((resolve) => {
      const w: Waiter = {
        afterNs,
        resolve: (e) => resolve(done(e)),
        timer: setTimeout(() => {
          const list = this.waiters.get(key);
          list?.splice(list.indexOf(w), 1);
          resolve(undefined);
        }, timeoutMs),
      };
      const list = this.waiters.get(key) ?? [];
      list.push(w);
      this.waiters.set(key, list);
    });
  }

  /** The mock's connection closed: its links are of no further use. */
  forget(from: { addr: string; port: number }, to: { addr: string; port: number }): void {
    this.entries.delete(`${norm(from.addr)}:${from.port}>${norm(to.addr)}:${to.port}`);
  }

  close(): void {
    for (const list of this.waiters.values()) for (const w of list) clearTimeout(w.timer);
    this.waiters.clear();
    this.socket.destroy();
  }
}
