import { describe, expect, it } from 'vitest';
import { type DemoContext, parseDemoArgs, runStages, STAGES, type Stage } from './demo.js';

function context(signal = new AbortController().signal): DemoContext & { lines: string[] } {
  const lines: string[] = [];
  return {
    options: parseDemoArgs([]),
    signal,
    say: (l) => lines.push(l),
    cleanups: [],
    lines,
  };
}

describe('parseDemoArgs', () => {
  it('has defaults', () => {
    expect(parseDemoArgs([])).toEqual({
      sessions: 5,
      seed: 1,
      variants: [],
      keep: false,
      json: false,
      portBase: undefined,
      out: 'retap-demo',
    });
  });

  it('reads every option', () => {
    expect(
      parseDemoArgs(['--sessions', '12', '--seed', '7', '--variant', 'slow,error', '--keep', '--json']),
    ).toMatchObject({
      sessions: 12,
      seed: 7,
      variants: ['slow', 'error'],
      keep: true,
      json: true,
    });
    expect(parseDemoArgs(['--variant', 'all']).variants).toHaveLength(4);
  });

  it('refuses bad values with usage errors', () => {
    expect(() => parseDemoArgs(['--sessions', '0'])).toThrow(/--sessions/);
    expect(() => parseDemoArgs(['--variant', 'fast'])).toThrow(
      expect.objectContaining({ code: 'RETAP_USAGE' }),
    );
    expect(() => parseDemoArgs(['--nope'])).toThrow(expect.objectContaining({ code: 'RETAP_USAGE' }));
  });
});

describe('runStages', () => {
  it('lists every stage, in order, all built', () => {
    expect(STAGES.map((s) => s.name)).toEqual([
      'start',
      'capture',
      'traffic',
      'snapshot',
      'replay',
      'verdict',
    ]);
    expect(STAGES.filter((s) => !s.run).map((s) => s.name)).toEqual([]);
  });

  it('runs stages in order and reports the ones not built', async () => {
    const order: string[] = [];
    const step = (name: string): string => {
      order.push(name);
      return `did ${name}`;
    };
    const stages: Stage[] = [
      { name: 'a', title: 'A', run: async () => step('a') },
      { name: 'b', title: 'B', planned: 'will do b' },
      { name: 'c', title: 'C', run: async () => step('c') },
    ];
    const { results, error } = await runStages(context(), stages);
    expect(error).toBeUndefined();
    expect(order).toEqual(['a', 'c']);
    expect(results.map((r) => [r.name, r.status, r.detail])).toEqual([
      ['a', 'done', 'did a'],
      ['b', 'not-built', 'not built yet in this version: will do b'],
      ['c', 'done', 'did c'],
    ]);
  });

  it('skips what follows a failure and returns the error', async () => {
    const boom = new Error('port in use');
    const stages: Stage[] = [
      {
        name: 'a',
        title: 'A',
        run: async () => {
          throw boom;
        },
      },
      { name: 'b', title: 'B', run: async () => 'never' },
    ];
    const { results, error } = await runStages(context(), stages);
    expect(error).toBe(boom);
    expect(results.map((r) => r.status)).toEqual(['failed', 'skipped']);
    expect(results[0]?.detail).toBe('port in use');
  });

  it('stops after an abort', async () => {
    const controller = new AbortController();
    const stages: Stage[] = [
      {
        name: 'a',
        title: 'A',
        run: async () => {
          controller.abort();
          return 'aborted while running';
        },
      },
      { name: 'b', title: 'B', run: async () => 'never' },
    ];
    const { results } = await runStages(context(controller.signal), stages);
    expect(results.map((r) => [r.status, r.detail])).toEqual([
      ['done', 'aborted while running'],
      ['skipped', 'interrupted'],
    ]);
  });
});
