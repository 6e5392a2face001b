/**
 * The client side of an agent's stream against a local stand-in agent that serves a real EventLog
 * over HTTP the way the agent does (serveEvents): a stream cut in the middle is read again from
 * where it stopped, without duplicates; what the agent's bounded buffer dropped meanwhile is
 * counted exactly; an agent that goes away hands over to its successor, and the window is named.
 */
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Exchange } from '../../core/exchange.js';
import { sampleExchange } from '../../snapshots/sample.js';
import { EventLog, serveEvents } from './eventlog.js';
import { type AgentPod, type AgentTransport, NodeStream } from './remote.js';
import { encodeEvent } from './wire.js';

interface FakeAgent {
  pod: AgentPod;
  log: EventLog;
  n: number;
  /** Cut the next events stream after this many lines. */
  cutAfter?: number;
  server: Server;
  port: number;
  exchange(): void;
  end(code: 'stopped' | 'shutdown'): void;
  requests: string[];
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function fakeAgent(name: string, bufferBytes = 1 << 20): Promise<FakeAgent> {
  const a = {} as FakeAgent;
  a.pod = { name, node: 'n1' };
  a.log = new EventLog(bufferBytes);
  a.n = 0;
  a.requests = [];
  a.exchange = () => {
    a.n++;
    a.log.push({ t: 'exchange', n: a.n, ex: sampleExchange(a.n) });
  };
  a.end = (code) => {
    a.log.push({ t: 'end', code, reason: code, exchanges: a.n, counters: { ringbufDrops: 0 } });
    a.log.close();
  };
  a.server = createServer((req, res) => {
    a.requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST') return void res.writeHead(201).end(JSON.stringify({ id: 'c1' }));
    if (req.method === 'DELETE') {
      a.end('stopped');
      return void res.writeHead(202).end('{}');
    }
    if (url.pathname.endsWith('/events')) {
      const after = Number(url.searchParams.get('after'));
      if (a.cutAfter !== undefined) {
        // write a few lines, then drop the connection as a broken port-forward would
        const { lines } = a.log.read(after, a.cutAfter);
        a.cutAfter = undefined;
        res.writeHead(200);
        res.write(lines.join(''));
        setTimeout(() => res.destroy(), 20);
        return;
      }
      return void serveEvents(a.log, after, res, () => {});
    }
    res.writeHead(200).end('{}');
  });
  servers.push(a.server);
  await new Promise<void>((r) => a.server.listen(0, '127.0.0.1', r));
  a.port = (a.server.address() as AddressInfo).port;
  return a;
}

function transport(agents: () => FakeAgent[]): AgentTransport {
  return {
    request: (agent, r) =>
      new Promise<IncomingMessage>((resolve, reject) => {
        const a = agents().find((x) => x.pod.name === agent.name);
        if (!a) return reject(new Error(`pod ${agent.name} is gone`));
        const body = r.body === undefined ? undefined : JSON.stringify(r.body);
        const req = request({ host: '127.0.0.1', port: a.port, method: r.method, path: r.path }, resolve);
        req.on('error', reject);
        req.end(body);
      }),
    agents: async () => agents().map((a) => a.pod),
    logHint: () => 'its log',
  };
}

function stream(t: AgentTransport, agent: FakeAgent, got: Exchange[], notices: string[]) {
  return new NodeStream(
    t,
    agent.pod,
    { selector: 'app=x', maxDurationMs: 60_000 },
    async (ex) => void got.push(ex),
    (n) => void notices.push(n),
    10_000,
  );
}

describe('an agent stream, read from outside', () => {
  it('reads a broken stream again from where it stopped: nothing twice, nothing lost', async () => {
    const a = await fakeAgent('agent-1');
    const got: Exchange[] = [];
    const notices: string[] = [];
    const s = stream(
      transport(() => [a]),
      a,
      got,
      notices,
    );
    await s.start();
    for (let i = 0; i < 10; i++) a.exchange();
    a.cutAfter = 4;
    const run = s.run();
    await new Promise((r) => setTimeout(r, 800));
    for (let i = 0; i < 5; i++) a.exchange();
    await s.stop();
    await run;
    expect(got.map((e) => e.id)).toEqual(Array.from({ length: 15 }, (_, i) => sampleExchange(i + 1).id));
    expect(s.report).toMatchObject({ resumes: 1, lostExchanges: 0, gaps: [], endReason: 'stopped' });
    expect(a.requests.filter((r) => r.includes('/events?after=4'))).toHaveLength(1);
    expect(notices.join('\n')).toContain('reading again after event 4');
  });

  it('counts exactly the exchanges the agent could no longer keep while the reader was away', async () => {
    const one = encodeEvent({ t: 'exchange', seq: 1, n: 1, ex: sampleExchange(1) }).length;
    const a = await fakeAgent('agent-1', one * 5);
    const got: Exchange[] = [];
    const notices: string[] = [];
    const s = stream(
      transport(() => [a]),
      a,
      got,
      notices,
    );
    await s.start();
    a.exchange();
    a.exchange();
    a.cutAfter = 2;
    const run = s.run();
    await new Promise((r) => setTimeout(r, 100));
    // while the reader is away: 12 more, of which the buffer keeps about the last 5
    for (let i = 0; i < 12; i++) a.exchange();
    await s.stop();
    await run;
    const kept = got.length;
    expect(kept).toBeLessThan(14);
    expect(s.report.lostExchanges).toBe(14 - kept);
    expect(notices.join('\n')).toContain('no longer had events');
  });

  it('moves to the successor of an agent that went away, and names the window nothing was recorded in', async () => {
    const first = await fakeAgent('agent-1');
    const second = await fakeAgent('agent-2');
    let live = [first];
    const got: Exchange[] = [];
    const notices: string[] = [];
    const s = stream(
      transport(() => live),
      first,
      got,
      notices,
    );
    await s.start();
    const run = s.run();
    first.exchange();
    first.exchange();
    await new Promise((r) => setTimeout(r, 100));
    first.end('shutdown'); // the DaemonSet replaces its pod
    live = [];
    await new Promise((r) => setTimeout(r, 700));
    live = [second];
    await new Promise((r) => setTimeout(r, 1200));
    second.exchange();
    await new Promise((r) => setTimeout(r, 100));
    await s.stop();
    await run;
    expect(got).toHaveLength(3);
    expect(s.report.agentPod).toBe('agent-2');
    expect(s.report.gaps).toHaveLength(1);
    expect(s.report.gaps[0]!.toUs).toBeGreaterThan(s.report.gaps[0]!.fromUs);
    expect(s.report.lostExchanges).toBe(0);
    expect(notices.join('\n')).toMatch(/recording again on agent-2; nothing recorded from .* to /);
  });
});
