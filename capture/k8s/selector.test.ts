import { describe, expect, it } from 'vitest';
import { isRetapError } from '../../core/errors.js';
import { parseSelector } from './selector.js';

describe('label selectors', () => {
  const labels = { app: 'orders', tier: 'api', 'app.kubernetes.io/part-of': 'shop' };

  it.each([
    ['app=orders', true],
    ['app==orders', true],
    ['app=inventory', false],
    ['app!=inventory', true],
    ['app!=orders', false],
    ['missing!=x', true],
    ['tier in (web,api)', true],
    ['tier in (web)', false],
    ['tier notin (web, cache)', true],
    ['missing notin (a)', true],
    ['tier', true],
    ['missing', false],
    ['!missing', true],
    ['!tier', false],
    ['app=orders,tier in (api),!canary', true],
    ['app=orders,tier=web', false],
    ['app.kubernetes.io/part-of=shop', true],
    ['', true],
    ['app=', false], // an empty value is valid syntax: the label must be present and empty
  ])('%s → %s', (text, want) => {
    expect(parseSelector(text).matches(labels)).toBe(want);
  });

  it('matches nothing on absent labels except negations', () => {
    expect(parseSelector('app=orders').matches(undefined)).toBe(false);
    expect(parseSelector('!app').matches(undefined)).toBe(true);
  });

  it.each(['app=a b', '=x', 'app in ()', 'app in (a,,b)', 'app=orders,', 'in (a)', 'a/b/c=d', 'app=x!'])(
    'refuses %j with a usage error that names it',
    (text) => {
      let error: unknown;
      try {
        parseSelector(text);
      } catch (e) {
        error = e;
      }
      expect(isRetapError(error) && error.code).toBe('RETAP_USAGE');
      expect((error as Error).message).toContain(text);
    },
  );
});
