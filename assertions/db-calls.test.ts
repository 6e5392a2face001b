import { describe, expect, it } from 'vitest';
import type { DbCall } from '../core/db.js';
import type { Exchange } from '../core/exchange.js';
import { compareCalls } from './outbound.js';

let n = 0;
function ex(call: DbCall): Exchange {
  n++;
  return {
    id: `c#${n}`,
    protocol: call.system,
    direction: 'outbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 1 },
    peer: { addr: '127.0.0.1', port: 5432 },
    connection: { id: 'c', order: n },
    request: {
      method: 'X',
      target: call.text ?? call.command,
      version: '',
      headers: [],
      body: { data: new Uint8Array(), size: 0, truncated: false },
    },
    response: {
      status: call.error ? 500 : 200,
      version: '',
      headers: [],
      body: { data: new Uint8Array(), size: 0, truncated: false },
    },
    timing: { startUs: n, requestEndNs: 0 },
    extras: { db: call },
  };
}

const sel = (id: string, name = 'pen'): Exchange =>
  ex({
    system: 'postgres',
    kind: 'query',
    command: 'extended',
    text: 'select name from items where id = $1',
    params: [id],
    results: [{ rows: [[name]], tag: 'SELECT 1' }],
  });
const list = (): Exchange =>
  ex({
    system: 'postgres',
    kind: 'query',
    command: 'query',
    text: 'select id from items',
    results: [{ rows: [['1'], ['2']], tag: 'SELECT 2' }],
  });
const cacheSet = (key: string): Exchange =>
  ex({ system: 'redis', kind: 'query', command: 'SET', params: [key, 'v'], reply: { simple: 'OK' } });
const session = (): Exchange =>
  ex({ system: 'postgres', kind: 'session', command: 'startup', session: { user: 'u' } });

describe('database calls as outbound calls', () => {
  it('the same calls give no difference (session start-ups are not compared)', () => {
    expect(
      compareCalls([session(), list(), sel('1'), cacheSet('k')], [list(), sel('1'), cacheSet('k')]),
    ).toEqual([]);
  });

  it('an N+1 query is an extra call, breaking', () => {
    const d = compareCalls([list()], [list(), sel('1'), sel('2')]);
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ kind: 'extra-call', rating: 'breaking', recorded: 0, candidate: 2 });
    expect(d[0]!.message).toBe(
      '2 extra calls to postgres select name from items where id = $1 (recorded 0, now 2; linked by time-window)',
    );
  });

  it('a changed query is the recorded one missing and the new one extra', () => {
    const changed = ex({
      system: 'postgres',
      kind: 'query',
      command: 'query',
      text: 'select id from items order by id',
      results: [],
    });
    const d = compareCalls([list()], [changed]);
    expect(d.map((x) => x.kind).sort()).toEqual(['extra-call', 'missing-call']);
  });

  it('a changed parameter names the position and both values; the answer it got is compared too', () => {
    const d = compareCalls([sel('1')], [sel('2', 'cup')]);
    expect(d.find((x) => x.path.endsWith(' $1'))).toMatchObject({
      kind: 'changed-value',
      recorded: '1',
      candidate: '2',
      rating: 'breaking',
    });
    expect(d.find((x) => x.path.endsWith(' answer'))).toMatchObject({ kind: 'changed-value' });
  });

  it('a dropped cache write is a missing Redis call', () => {
    const d = compareCalls([sel('1'), cacheSet('item:1')], [sel('1')]);
    expect(d).toEqual([
      expect.objectContaining({ kind: 'missing-call', path: 'outbound:redis SET', rating: 'breaking' }),
    ]);
  });

  it('whitespace in SQL does not count', () => {
    const a = ex({ system: 'mysql', kind: 'query', command: 'COM_QUERY', text: 'select  1 ;', results: [] });
    const b = ex({ system: 'mysql', kind: 'query', command: 'COM_QUERY', text: 'select 1', results: [] });
    expect(compareCalls([a], [b])).toEqual([]);
  });

  it("a connection's opening calls are not counted per request, only paired with the recorded ones (warning)", () => {
    const open = (command: string, params: string[] = [], kind: DbCall['kind'] = 'query'): Exchange =>
      ex({ system: 'redis', kind, command, params, reply: { simple: 'OK' }, opening: true });
    // recorded: the pool was open before the request; now it opens under it (ioredis: AUTH, CLIENT SETINFO, INFO)
    const lazy = [
      open('AUTH', ['<password omitted>'], 'setup'),
      open('CLIENT', ['SETINFO', 'LIB-VER', '5'], 'setup'),
      open('INFO'),
    ];
    expect(compareCalls([cacheSet('k')], [...lazy, cacheSet('k')])).toEqual([]);
    expect(compareCalls([...lazy, cacheSet('k')], [cacheSet('k')])).toEqual([]);
    // both opened one under the request: a changed database number is still said, as a warning
    const d = compareCalls(
      [open('SELECT', ['0'], 'setup'), cacheSet('k')],
      [open('SELECT', ['2'], 'setup'), cacheSet('k')],
    );
    expect(d).toEqual([
      expect.objectContaining({
        kind: 'changed-value',
        path: 'outbound:redis SELECT arg 1',
        rating: 'warning',
      }),
    ]);
    // an INFO a request sends itself is counted as before
    const info = ex({ system: 'redis', kind: 'query', command: 'INFO', params: [], reply: 'x' });
    expect(compareCalls([cacheSet('k')], [open('INFO'), info, cacheSet('k')])).toEqual([
      expect.objectContaining({ kind: 'extra-call', path: 'outbound:redis INFO', rating: 'breaking' }),
    ]);
  });
});
