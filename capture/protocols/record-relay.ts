/**
 * A recording TCP relay for loopback: client → relay → server, keeping each direction's chunks
 * in order with a monotonic timestamp. It stands in for capture when testing decoders against
 * real peers (no eBPF needed) and records streams for benchmarks.
 */
import net from 'node:net';
import type { StreamEvent } from './collect.js';

export interface RecordedConnection {
  events: StreamEvent[];
  closed: Promise<void>;
}

export interface RecordingRelay {
  port: number;
  connections: RecordedConnection[];
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (port 0) and forwards each connection to `target`. */
export async function startRecordingRelay(target: { host?: string; port: number }): Promise<RecordingRelay> {
  const connections: RecordedConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const events: StreamEvent[] = [];
    const up = net.connect({ host: target.host ?? '127.0.0.1', port: target.port });
    sockets.add(down);
    sockets.add(up);
    down.setNoDelay(true);
    up.setNoDelay(true);
    const now = () => Number(process.hrtime.bigint());
    down.on('data', (d: Buffer) => {
      events.push({ side: 'client', data: Buffer.from(d), ts: now() });
      up.write(d);
    });
    up.on('data', (d: Buffer) => {
      events.push({ side: 'server', data: Buffer.from(d), ts: now() });
      down.write(d);
    });
    let done = 0;
    let resolve!: () => void;
    const closed = new Promise<void>((r) => {
      resolve = r;
    });
    const finish = () => {
      if (++done === 2) resolve();
    };
    down.on('end', () => up.end());
    up.on('end', () => down.end());
    down.on('close', () => {
      sockets.delete(down);
      up.destroy();
      finish();
    });
    up.on('close', () => {
      sockets.delete(up);
      down.destroy();
      finish();
    });
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    connections.push({ events, closed });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await Promise.all(connections.map((c) => c.closed));
    },
  };
}
