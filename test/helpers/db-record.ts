/**
 * Records a real client talking to a real database through the loopback recording relay, decodes
 * the streams with the registered decoder, and turns them into outbound Exchanges the way capture
 * would (connection ids, order, peer = the server's address): what the mocks are then started from.
 */
import type { Exchange } from '../../core/exchange.js';
import { decodeEvents } from '../../capture/protocols/collect.js';
import { decoderByName } from '../../capture/protocols/index.js';
import { type RecordingRelay, startRecordingRelay } from '../../capture/protocols/record-relay.js';

export interface Recorded {
  exchanges: Exchange[];
  raw: number;
}

export async function record(
  protocol: 'postgres' | 'mysql' | 'redis',
  server: { host: string; port: number },
  drive: (port: number) => Promise<void>,
): Promise<Recorded> {
  const relay: RecordingRelay = await startRecordingRelay({ host: server.host, port: server.port });
  try {
    await drive(relay.port);
  } finally {
    await relay.close();
  }
  return toExchanges(protocol, relay, server);
}

export function toExchanges(
  protocol: string,
  relay: RecordingRelay,
  server: { host: string; port: number },
): Recorded {
  const decoder = decoderByName(protocol)!;
  const exchanges: Exchange[] = [];
  let raw = 0;
  const t0 = Date.now() * 1000;
  // one clock origin for every connection, so calls on different connections keep their order
  const first = Math.min(...relay.connections.map((c) => c.events[0]?.ts ?? Number.POSITIVE_INFINITY));
  relay.connections.forEach((conn, ci) => {
    const r = decodeEvents(decoder, conn.events);
    raw += r.raw.reduce((n, x) => n + x.bytes, 0);
    r.exchanges.forEach((d, order) => {
      const start = d.requestStartNs;
      const ex: Exchange = {
        id: `c${ci}#${order}`,
        protocol: d.protocol,
        direction: 'outbound',
        tls: false,
        service: { addr: '127.0.0.1', port: 40000 + ci, name: 'test' },
        peer: { addr: server.host, port: server.port },
        connection: { id: `c${ci}`, order },
        request: d.request,
        timing: {
          startUs: Math.round(t0 + (start - first) / 1000),
          requestEndNs: d.requestEndNs - start,
          ...(d.responseStartNs !== undefined ? { responseStartNs: d.responseStartNs - start } : {}),
          ...(d.responseEndNs !== undefined ? { responseEndNs: d.responseEndNs - start } : {}),
        },
      };
      if (d.response) ex.response = d.response;
      if (d.notes) ex.notes = d.notes;
      if (d.extras) ex.extras = d.extras;
      exchanges.push(ex);
    });
  });
  return { exchanges, raw };
}
