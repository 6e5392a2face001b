import { describe, expect, it } from 'vitest';
import { parseServiceArgs } from './http-kit.js';

describe('parseServiceArgs', () => {
  it('defaults to any port on 127.0.0.1', () => {
    expect(parseServiceArgs('orders', [])).toEqual({
      port: 0,
      host: '127.0.0.1',
      variant: undefined,
      cert: undefined,
      key: undefined,
      exitWithParent: false,
    });
  });

  it('reads every flag', () => {
    const a = parseServiceArgs('payments', [
      '--port',
      '8443',
      '--cert',
      'c.pem',
      '--key',
      'k.pem',
      '--exit-with-parent',
    ]);
    expect(a).toMatchObject({ port: 8443, cert: 'c.pem', key: 'k.pem', exitWithParent: true });
    expect(parseServiceArgs('orders', ['--variant', 'all']).variant).toBe('all');
  });

  it('refuses bad ports and unknown flags', () => {
    expect(() => parseServiceArgs('orders', ['--port', '70000'])).toThrow(/orders: --port '70000'/);
    expect(() => parseServiceArgs('orders', ['--port', 'x'])).toThrow(/--port/);
    expect(() => parseServiceArgs('orders', ['--colour', 'red'])).toThrow();
  });
});
