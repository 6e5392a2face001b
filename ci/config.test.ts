import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { configFromYaml } from '../assertions/config.js';
import { packageRoot } from '../core/paths.js';
import { durationMs, parseCiConfig } from './config.js';

const example = readFileSync(join(packageRoot(), 'examples', 'gate', 'retap.yaml'), 'utf8');

function errorOf(text: string): string {
  try {
    parseCiConfig(text, 'retap.yaml', '/repo');
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('retap.yaml for retap ci', () => {
  it('reads the example of a service repository, and its assertions section is valid too', () => {
    const cfg = parseCiConfig(example, 'retap.yaml', '/repo');
    expect(cfg.snapshotsDir).toBe('/repo/.retap/snapshots');
    expect(cfg.replay.snapshot).toBe('orders');
    expect(cfg.replay.build).toMatchObject({
      command: 'node dist/server.js --port 8080',
      port: 8080,
      ready: 'http://localhost:8080/health',
      readyTimeoutMs: 30_000,
      env: { INVENTORY_URL: 'http://inventory.internal:4001' },
    });
    expect(cfg.replay.runs).toBe(2);
    expect(cfg.replay.connections).toBe('recorded');
    expect(cfg.ci).toMatchObject({
      reports: '/repo/retap-reports',
      formats: ['junit', 'markdown', 'html', 'json'],
    });
    const assertions = configFromYaml((parseYaml(example) as { assertions: unknown }).assertions);
    expect(assertions.budgets.map((b) => b.source)).toEqual([
      'p95 < 250ms',
      'GET /orders/{id}: p99 < +20%',
      'errors < 1%',
    ]);
  });

  it('defaults: annotations and step summary on, ten annotations at most', () => {
    expect(parseCiConfig('version: 1\n', 'retap.yaml', '/r').ci).toEqual({
      stepSummary: true,
      annotations: true,
      maxAnnotations: 10,
    });
  });

  it('names the file, the line and the path of a wrong value', () => {
    const text = 'version: 1\nreplay:\n  build:\n    command: node s.js\n    port: eighty\n';
    expect(errorOf(text)).toMatch(/^retap\.yaml:5: \$\.replay\.build\.port must be integer/);
  });

  it('names an unknown setting and lists the known ones', () => {
    const text = 'replay:\n  snapshot: s\n  buidl: {}\n';
    expect(errorOf(text)).toMatch(
      /^retap\.yaml:3: \$\.replay\.buidl is not a known setting \(known: snapshot, build,/,
    );
  });

  it('checks durations, enums and required fields', () => {
    expect(errorOf('replay:\n  timeout: soon\n')).toMatch(/:2: \$\.replay\.timeout must be a duration/);
    expect(errorOf('replay:\n  mockMiss: ignore\n')).toMatch(
      /:2: \$\.replay\.mockMiss must be one of "fail", "closest", "passthrough"/,
    );
    expect(errorOf('replay:\n  build:\n    port: 1\n')).toMatch(/:3: \$\.replay\.build is missing 'command'/);
    expect(errorOf('ci:\n  formats: [pdf]\n')).toMatch(/\$\.ci\.formats\[0\] must be one of/);
    expect(errorOf('replay:\n  client: curl\n')).toMatch(
      /:2: \$\.replay\.client must be one of "h1", "undici"/,
    );
    expect(parseCiConfig('replay:\n  client: undici\n', 'retap.yaml', '/r').replay.client).toBe('undici');
    expect(parseCiConfig('version: 1\n', 'retap.yaml', '/r').replay.client).toBeUndefined();
    expect(errorOf('replay:\n  connections: shared\n')).toMatch(
      /:2: \$\.replay\.connections must be one of "recorded", "pooled"/,
    );
    expect(parseCiConfig('replay:\n  connections: pooled\n', 'retap.yaml', '/r').replay.connections).toBe(
      'pooled',
    );
    expect(parseCiConfig('version: 1\n', 'retap.yaml', '/r').replay.connections).toBeUndefined();
    expect(parseCiConfig('replay:\n  reflection: false\n', 'retap.yaml', '/r').replay.reflection).toBe(false);
    expect(parseCiConfig('version: 1\n', 'retap.yaml', '/r').replay.reflection).toBeUndefined();
    expect(errorOf('replay:\n  reflection: no-thanks\n')).toMatch(
      /:2: \$\.replay\.reflection must be boolean/,
    );
  });

  it('checks the validity thresholds of the assertions section', () => {
    expect(errorOf('assertions:\n  validity:\n    maxStatusChange: 3\n')).toMatch(
      /^retap\.yaml:3: \$\.assertions\.validity\.maxStatusChange must be <= 1/,
    );
    expect(errorOf('assertions:\n  validity: { minCalls: 1 }\n')).toMatch(
      /\$\.assertions\.validity\.minCalls is not a known setting \(known: maxStatusChange, minCallsMade\)/,
    );
    expect(() =>
      parseCiConfig('assertions:\n  budgets: []\n  validity: { minCallsMade: 0.8 }\n', 'retap.yaml', '/r'),
    ).not.toThrow();
  });

  it('reports YAML syntax errors with their line', () => {
    expect(errorOf('replay:\n  snapshot: [a\n')).toMatch(/^retap\.yaml:\d+: not valid YAML/);
  });

  it('parses durations', () => {
    expect(durationMs('500ms')).toBe(500);
    expect(durationMs('2m')).toBe(120_000);
  });
});
