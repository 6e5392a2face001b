/**
 * Where node's event loop is probed: found in the node running these tests (its release builds
 * keep the symbol table), and refused with the reason for an executable without symbols.
 */
import { describe, expect, it } from 'vitest';
import { withElf } from '../elf.js';
import { LOOP_REQ_DONE, LOOP_REQ_START, LOOP_REQ_START1, LOOP_TURN } from '../events.js';
import { isNodeExecutable, planNodeLoop } from './node-loop.js';

describe('node event-loop probe plan', () => {
  it('finds every callback start and the lookup and connect requests in node', () => {
    const plan = withElf(process.execPath, planNodeLoop);
    if (!('sites' in plan)) throw new Error(`no plan for ${process.execPath}: ${plan.reason}`);
    const names = (kind: number) => plan.sites.filter((s) => s.kind === kind).map((s) => s.name);
    expect(names(LOOP_TURN)).toEqual(
      expect.arrayContaining(['uv__stream_io', 'uv__async_io', 'uv__run_timers', 'uv__work_done']),
    );
    expect(names(LOOP_REQ_START)).toEqual(['uv_getaddrinfo']);
    expect(names(LOOP_REQ_START1)).toEqual(['uv_tcp_connect']);
    expect(names(LOOP_REQ_DONE).sort()).toEqual(['connect completion', 'getaddrinfo completion']);
    expect(new Set(plan.sites.map((s) => s.offset)).size).toBe(plan.sites.length);
  });

  it('says why an executable without the symbols cannot be probed', () => {
    const plan = withElf('/bin/true', planNodeLoop);
    expect(plan).toEqual({ reason: expect.stringMatching(/stripped|symbol table/) });
  });

  it('knows node by its name', () => {
    expect(
      ['/usr/bin/node', '/usr/local/bin/node20', '/usr/bin/nodejs (deleted)'].map(isNodeExecutable),
    ).toEqual([true, true, true]);
    expect(['/usr/bin/nodemon', '/opt/node/bin/npm'].map(isNodeExecutable)).toEqual([false, false]);
  });
});
