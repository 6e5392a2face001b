import { describe, expect, it } from 'vitest';
import { ErrorCodes, ExitCodes, RetapError } from './errors.js';
import { nearestWord } from './suggest.js';

describe('nearestWord', () => {
  const keys = ['snapshot', 'build', 'baseline', 'runs', 'mockMiss', 'timeout', 'connections'];

  it('finds typos: a swap, a missing letter, another case', () => {
    expect(nearestWord('buidl', keys)).toBe('build');
    expect(nearestWord('snapshots', keys)).toBe('snapshot');
    expect(nearestWord('mockmiss', keys)).toBe('mockMiss');
    expect(nearestWord('timout', keys)).toBe('timeout');
    expect(nearestWord('conections', keys)).toBe('connections');
  });

  it('names nothing when no key is near', () => {
    expect(nearestWord('database', keys)).toBeUndefined();
    expect(nearestWord('x', keys)).toBeUndefined();
    expect(nearestWord('anything', [])).toBeUndefined();
  });
});

describe('exit codes of error codes', () => {
  it('an unknown key in a settings file is a usage error (64), a bad value is not', () => {
    expect(new RetapError(ErrorCodes.CONFIG_UNKNOWN_KEY, 'x').exitCode).toBe(ExitCodes.USAGE);
    expect(new RetapError(ErrorCodes.USAGE, 'x').exitCode).toBe(ExitCodes.USAGE);
    expect(new RetapError(ErrorCodes.CONFIG_INVALID, 'x').exitCode).toBe(ExitCodes.INFRASTRUCTURE);
  });
});
