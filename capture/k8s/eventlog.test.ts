import { describe, expect, it } from 'vitest';
import { sampleExchange } from '../../snapshots/sample.js';
import { EventLog } from './eventlog.js';
import { decodeEvent, encodeEvent } from './wire.js';

describe('wire events', () => {
  it('carry exchanges with their bytes intact', () => {
    const ex = sampleExchange(3);
    ex.request.body.data = new Uint8Array([0, 1, 2, 255, 10, 13]);
    const back = decodeEvent(encodeEvent({ t: 'exchange', seq: 7, n: 5, ex }));
    expect(back).toEqual({ t: 'exchange', seq: 7, n: 5, ex });
    expect(back.t === 'exchange' && back.ex.request.body.data).toBeInstanceOf(Uint8Array);
    // one line per event
    expect(encodeEvent({ t: 'exchange', seq: 7, n: 5, ex }).split('\n')).toHaveLength(2);
  });
});

describe('event log', () => {
  const stats = (i: number) => ({ t: 'stats' as const, exchanges: i, counters: { pad: i } });

  it('numbers events and reads them after a sequence number', () => {
    const log = new EventLog(1 << 20);
    for (let i = 0; i < 5; i++) expect(log.push(stats(i))).toBe(i + 1);
    const r = log.read(2);
    expect(r.lost).toBeUndefined();
    expect(r.lines.map((l) => decodeEvent(l).seq)).toEqual([3, 4, 5]);
    expect(r.last).toBe(5);
    expect(log.read(5).lines).toEqual([]);
    expect(log.read(0, 2).lines.map((l) => decodeEvent(l).seq)).toEqual([1, 2]);
  });

  it('keeps only its byte budget and says exactly which events a late reader missed', () => {
    const one = encodeEvent({ ...stats(0), seq: 1 }).length;
    const log = new EventLog(one * 3 + 2);
    for (let i = 0; i < 10; i++) log.push(stats(0));
    const r = log.read(0);
    expect(r.lost).toEqual({ fromSeq: 1, toSeq: 7 });
    expect(r.lines.map((l) => decodeEvent(l).seq)).toEqual([8, 9, 10]);
    // a reader that had seen up to 8 misses nothing
    expect(log.read(8).lost).toBeUndefined();
  });

  it('wakes a waiting reader on a push and on close', async () => {
    const log = new EventLog(1 << 20);
    let woke = 0;
    const w = log.wait(0).then(() => woke++);
    await Promise.resolve();
    expect(woke).toBe(0);
    log.push(stats(1));
    await w;
    expect(woke).toBe(1);
    const w2 = log.wait(1).then(() => woke++);
    log.close();
    await w2;
    expect(woke).toBe(2);
    expect(log.push(stats(2))).toBe(0); // closed: ignored
  });
});
