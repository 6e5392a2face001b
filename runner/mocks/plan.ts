/**
 * Which mock endpoints a set of recorded outbound exchanges needs: one per recorded (host, port),
 * each host name on its own loopback address so the runner can point the name there.
 */
import { isIP } from 'node:net';
import { isDbProtocol } from '../../core/db.js';
import type { Exchange } from '../../core/exchange.js';
import { exchangeAuthority, hostName } from '../../core/http.js';
import type { MockEndpoint, MockPlan, MockProtocol } from './types.js';

const SERVED: Record<string, MockProtocol> = {
  http1: 'http1',
  http2: 'http2',
  grpc: 'grpc',
  postgres: 'postgres',
  mysql: 'mysql',
  redis: 'redis',
};

/** Host name of the endpoint an outbound exchange went to (lower case, without brackets or port). */
export function hostOf(ex: Exchange): string {
  return hostName(exchangeAuthority(ex)).toLowerCase();
}

export function endpointKey(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Loopback addresses handed out to host names: 127.0.0.2 … 127.0.255.254. */
function loopbackAddr(i: number): string {
  const n = i + 2;
  return `127.0.${Math.floor(n / 255)}.${(n % 255) + (n >= 255 ? 1 : 0)}`;
}

export function planMocks(outbound: Exchange[]): MockPlan {
  const skipped: MockPlan['skipped'] = [];
  const byKey = new Map<string, MockEndpoint>();
  const addrs = new Map<string, string>();
  // IP-literal hosts keep their own address; names get the next loopback address not taken.
  const literals = new Set(outbound.map(hostOf).filter((h) => isIP(h) !== 0));
  let next = 0;
  const nextAddr = (): string => {
    for (;;) {
      const a = loopbackAddr(next++);
      if (!literals.has(a)) return a;
    }
  };
  for (const ex of outbound) {
    if (ex.direction !== 'outbound') {
      skipped.push({ id: ex.id, reason: 'not an outbound exchange' });
      continue;
    }
    if (ex.quarantine) {
      skipped.push({ id: ex.id, reason: `quarantined (${ex.quarantine.reason})` });
      continue;
    }
    const protocol = SERVED[ex.protocol];
    if (!protocol) {
      skipped.push({
        id: ex.id,
        reason: `protocol ${ex.protocol} is not served by mocks (HTTP/1.1, HTTP/2, gRPC, PostgreSQL, MySQL and Redis are)`,
      });
      continue;
    }
    if (!ex.response && !isDbProtocol(protocol)) {
      skipped.push({ id: ex.id, reason: 'no recorded response to serve' });
      continue;
    }
    const host = hostOf(ex);
    const key = endpointKey(host, ex.peer.port);
    let ep = byKey.get(key);
    if (!ep) {
      const literal = isIP(host) !== 0;
      let addr = addrs.get(host);
      if (addr === undefined) {
        addr = literal ? host : nextAddr();
        addrs.set(host, addr);
      }
      ep = { host, addr, port: ex.peer.port, tls: false, protocols: [], literal, exchanges: 0 };
      byKey.set(key, ep);
    }
    ep.exchanges++;
    if (ex.tls) ep.tls = true;
    if (!ep.protocols.includes(protocol)) ep.protocols.push(protocol);
  }
  return { endpoints: [...byKey.values()], skipped };
}
