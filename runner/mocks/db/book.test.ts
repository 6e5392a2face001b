import { describe, expect, it } from 'vitest';
import type { DbCall } from '../../../core/db.js';
import type { Exchange } from '../../../core/exchange.js';
import { DbBook } from './book.js';

let n = 0;
function pgCall(call: Partial<DbCall>): Exchange {
  const i = n++;
  const empty = { data: new Uint8Array(0), size: 0, truncated: false };
  return {
    id: `p#${i}`,
    protocol: 'postgres',
    direction: 'outbound',
    tls: false,
    service: { addr: '127.0.0.1', port: 1 },
    peer: { addr: '127.0.0.1', port: 5432 },
    connection: { id: 'p', order: i },
    request: { method: 'SELECT', target: call.text ?? '', version: 'postgres/3.0', headers: [], body: empty },
    response: { status: 200, reason: 'SELECT 1', version: 'postgres/3.0', headers: [], body: empty },
    timing: { startUs: i, requestEndNs: 0 },
    extras: { db: { system: 'postgres', kind: 'query', command: 'extended', ...call } },
  };
}

const TEXT = 'select name from items where id = $1';

describe('database answer book (PostgreSQL extended protocol)', () => {
  it('never answers an Execute with a prepare-only recording, and compares misses with Executes', () => {
    const book = new DbBook(
      [
        pgCall({ text: 'select 1', steps: ['P', 'D', 'S'], results: [{ columns: [{ name: 'x', type: 'int4' }] }] }),
        pgCall({
          text: 'select 1',
          steps: ['B', 'E', 'S'],
          params: [],
          results: [{ tag: 'SELECT 1', rows: [['1']] }],
        }),
        pgCall({ text: TEXT, steps: ['P', 'D', 'S'] }),
        pgCall({ text: TEXT, steps: ['B', 'E', 'S'], params: ['2'], results: [{ tag: 'SELECT 1' }] }),
      ],
      () => undefined,
    );
    expect(book.match({ kind: 'query', text: 'select 1', params: [] }, undefined)?.call.steps).toEqual([
      'B',
      'E',
      'S',
    ]);
    expect(book.nearest({ kind: 'query', text: TEXT, params: ['3'] })?.reason).toMatch(/parameter 1 differs/);
    // the prepare round is still there for statement descriptions
    expect(book.withText('query', 'select 1').length).toBe(2);
  });

  it('prefers a recording answered in the result formats the live Bind asks for', () => {
    const text = pgCall({
      text: TEXT,
      steps: ['B', 'E', 'S'],
      params: ['1'],
      results: [{ tag: 'SELECT 1' }],
    });
    const binary = pgCall({
      text: TEXT,
      steps: ['B', 'E', 'S'],
      params: ['1'],
      resultFormats: [1],
      results: [{ tag: 'SELECT 1' }],
    });
    const book = new DbBook([text, binary], () => undefined);
    const live = { kind: 'query' as const, text: TEXT, params: ['1'] };
    expect(book.match({ ...live, resultFormats: [1] }, undefined)?.exchange.id).toBe(binary.id);
    expect(book.match({ ...live, resultFormats: [0] }, undefined)?.exchange.id).toBe(text.id);
    // past the recordings, the last one in those formats again
    expect(book.match({ ...live, resultFormats: [1] }, undefined)?.exchange.id).toBe(binary.id);
  });
});
