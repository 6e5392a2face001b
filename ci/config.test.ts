import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../assertions/config.js';
import { ErrorCodes, ExitCodes, RetapError } from '../core/errors.js';
import { packageRoot } from '../core/paths.js';
import { loadCiConfig, parseCiConfig } from './config.js';

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
    expect(cfg.assertions.budgets.map((b) => b.source)).toEqual([
      'p95 < 250ms',
      'GET /orders/{id}: p99 < +20%',
      'errors < 1%',
    ]);
  });

  it('reads the Kubernetes example (replay.k8s, no build command)', () => {
    const text = readFileSync(join(packageRoot(), 'examples', 'gate', 'retap-kind.yaml'), 'utf8');
    const cfg = parseCiConfig(text, 'retap-kind.yaml', '/repo');
    expect(cfg.replay.build).toMatchObject({
      command: '',
      port: 8080,
      ready: 'http://localhost:8080/health',
      readyTimeoutMs: 120_000,
    });
    expect(cfg.replay.k8s).toEqual({
      image: 'orders:pr',
      baselineImage: 'orders:base',
      retapImage: 'retap.local/retap:ci',
      pullPolicy: 'Never',
      shards: 1,
    });
  });

  it("replay.k8s takes the baseline's arguments and the agents' namespace", () => {
    const text =
      'version: 1\nreplay:\n  k8s:\n    image: a\n    args: [x, --variant, all]\n    baselineImage: a\n    baselineArgs: [x]\n    agentNamespace: tools\n';
    expect(parseCiConfig(text, 'retap.yaml', '/r').replay.k8s).toEqual({
      image: 'a',
      args: ['x', '--variant', 'all'],
      baselineImage: 'a',
      baselineArgs: ['x'],
      agentNamespace: 'tools',
    });
    expect(errorOf('version: 1\nreplay:\n  k8s:\n    image: a\n    baselineArg: [x]\n')).toMatch(
      /baselineArg/,
    );
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
    expect(errorOf('replay:\n  build:\n    env: {}\n')).toMatch(/:3: \$\.replay\.build is missing 'port'/);
    expect(errorOf('replay:\n  k8s:\n    args: [a]\n')).toMatch(/:3: \$\.replay\.k8s is missing 'image'/);
    expect(errorOf('replay:\n  k8s:\n    image: i\n    pullPolicy: sometimes\n')).toMatch(
      /:4: \$\.replay\.k8s\.pullPolicy must be one of "Always", "IfNotPresent", "Never"/,
    );
    expect(
      parseCiConfig(
        'replay:\n  build: { port: 8080 }\n  k8s: { image: reg/orders:1, args: [--port, "8080"], kubeconfig: kc }\n',
        'retap.yaml',
        '/r',
      ).replay,
    ).toMatchObject({
      build: { command: '', port: 8080 },
      k8s: { image: 'reg/orders:1', args: ['--port', '8080'], kubeconfig: '/r/kc' },
    });
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

  it('turns durations into milliseconds', () => {
    const cfg = parseCiConfig(
      'replay:\n  timeout: 1.5s\n  build:\n    command: x\n    port: 1\n    readyTimeout: 2m\n',
      'retap.yaml',
      '/r',
    );
    expect(cfg.replay.timeoutMs).toBe(1500);
    expect(cfg.replay.build?.readyTimeoutMs).toBe(120_000);
  });
});

/** The RetapError parseCiConfig throws for `text`. */
function thrown(text: string): RetapError {
  try {
    parseCiConfig(text, 'retap.yaml', '/repo');
  } catch (e) {
    if (e instanceof RetapError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe('retap.yaml is read strictly: an unknown key is a usage error', () => {
  it('refuses an unknown top-level key with its line, exit 64 and the nearest known key', () => {
    const e = thrown('version: 1\nrepaly:\n  snapshot: orders\n');
    expect(e.code).toBe(ErrorCodes.CONFIG_UNKNOWN_KEY);
    expect(e.exitCode).toBe(ExitCodes.USAGE);
    // the key's own line, not the line of its value
    expect(e.message).toMatch(
      /^retap\.yaml:2: \$\.repaly is not a known setting \(known: version, snapshots,/,
    );
    expect(e.hint).toBe("Did you mean 'replay'? Rename 'repaly' in retap.yaml line 2, or remove it.");
    expect(e.details).toEqual({
      file: 'retap.yaml',
      line: 2,
      key: 'repaly',
      path: '$.repaly',
      suggestion: 'replay',
    });
  });

  it('refuses sections nobody reads instead of ignoring them', () => {
    for (const section of ['capture', 'report', 'database']) {
      const e = thrown(`version: 1\n${section}:\n  x: 1\n`);
      expect(e.code, section).toBe(ErrorCodes.CONFIG_UNKNOWN_KEY);
      expect(e.details?.line, section).toBe(2);
      expect(e.hint, section).toMatch(
        new RegExp(`^Remove '${section}' from retap\\.yaml line 2: retap reads no such setting`),
      );
    }
  });

  it('refuses unknown keys inside known sections, nested ones included', () => {
    const cases: Array<[string, number, string, string]> = [
      ['replay:\n  snapshot: s\n  mockmiss: fail\n', 3, '$.replay.mockmiss', 'mockMiss'],
      [
        'replay:\n  build:\n    command: x\n    port: 1\n    readytimeout: 5s\n',
        5,
        '$.replay.build.readytimeout',
        'readyTimeout',
      ],
      ['ci:\n  report: out\n', 2, '$.ci.report', 'reports'],
      ['snapshots:\n  dirs: x\n', 2, '$.snapshots.dirs', 'dir'],
      ['assertions:\n  budget: ["p95 < 1s"]\n', 2, '$.assertions.budget', 'budgets'],
      ['assertions:\n  latency:\n    minSample: 3\n', 3, '$.assertions.latency.minSample', 'minSamples'],
      [
        'assertions:\n  ignore:\n    - { route: "GET /a", paht: $.x }\n',
        3,
        '$.assertions.ignore[0].paht',
        'path',
      ],
      [
        'assertions:\n  headers:\n    ignore: []\n    compar: [etag]\n',
        4,
        '$.assertions.headers.compar',
        'compare',
      ],
    ];
    for (const [text, line, path, near] of cases) {
      const e = thrown(text);
      expect(e.code, path).toBe(ErrorCodes.CONFIG_UNKNOWN_KEY);
      expect(e.details, path).toMatchObject({ line, path, suggestion: near });
      expect(e.message, path).toContain(`retap.yaml:${line}: ${path} is not a known setting`);
    }
  });

  it('a wrong value stays a configuration error (exit 3), with its line', () => {
    const e = thrown('version: 1\nreplay:\n  runs: many\n');
    expect(e.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(e.exitCode).toBe(ExitCodes.INFRASTRUCTURE);
    expect(e.details).toEqual({ file: 'retap.yaml', line: 3 });
  });
});

describe('the assertions section, read by the same reader', () => {
  it('is parsed over the defaults; no section gives the defaults', () => {
    expect(parseCiConfig('version: 1\n', 'retap.yaml', '/r').assertions).toEqual(defaultConfig());
    const cfg = parseCiConfig(
      'assertions:\n  failOn: breaking\n  proto: [protos, /abs]\n',
      'retap.yaml',
      '/r',
    );
    expect(cfg.assertions.failOn).toBe('breaking');
    // .proto folders are relative to the file that names them
    expect(cfg.assertions.protoDirs).toEqual(['/r/protos', '/abs']);
  });

  it("its value errors keep assertions' message and gain the file and line", () => {
    const e = thrown('version: 1\nassertions:\n  budgets:\n    - "p95 < 1s"\n    - "p95 < soon"\n');
    expect(e.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(e.message).toMatch(/^budget 'p95 < soon' \(retap\.yaml assertions\.budgets\[1\]\)/);
    expect(e.details).toMatchObject({ file: 'retap.yaml', line: 5, budget: 'p95 < soon' });
    const rule = thrown('assertions:\n  ignore:\n    - { route: "GET /a" }\n');
    expect(rule.message).toMatch(/retap\.yaml assertions\.ignore\[0\]: names nothing to match/);
    expect(rule.details).toMatchObject({ line: 3 });
  });
});

describe('loadCiConfig', () => {
  it('reads ./retap.yaml when present, defaults when not, and a named file strictly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'retap-config-'));
    try {
      expect((await loadCiConfig(undefined, dir)).assertions).toEqual(defaultConfig());
      await expect(loadCiConfig('missing.yaml', dir)).rejects.toMatchObject({
        code: ErrorCodes.CONFIG_INVALID,
      });
      writeFileSync(join(dir, 'retap.yaml'), 'version: 1\nassertions:\n  failOn: breaking\n');
      const cfg = await loadCiConfig(undefined, dir);
      expect(cfg.file).toBe(join(dir, 'retap.yaml'));
      expect(cfg.assertions.failOn).toBe('breaking');
      writeFileSync(join(dir, 'other.yaml'), 'version: 1\nreprot: {}\n');
      await expect(loadCiConfig('other.yaml', dir)).rejects.toMatchObject({
        code: ErrorCodes.CONFIG_UNKNOWN_KEY,
        details: { file: 'other.yaml', line: 2, key: 'reprot' },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('retap.yaml sections the snapshot writers read', () => {
  it('redaction: and snapshots.gzip are kept as written', () => {
    const cfg = parseCiConfig(
      "snapshots:\n  gzip: true\nredaction:\n  headers: [x-ref]\n  patterns:\n    - { id: code, regex: 'C-[0-9]+' }\n",
      'retap.yaml',
      '/r',
    );
    expect(cfg.gzip).toBe(true);
    expect(cfg.redaction).toEqual({ headers: ['x-ref'], patterns: [{ id: 'code', regex: 'C-[0-9]+' }] });
    const none = parseCiConfig('version: 1\n', 'retap.yaml', '/r');
    expect(none.gzip).toBeUndefined();
    expect(none.redaction).toBeUndefined();
  });

  it('a rule that is not a regular expression is refused with its line and path', () => {
    const text = "redaction:\n  jsonFields: ['^ok$', '(unclosed']\n";
    expect(() => parseCiConfig(text, 'retap.yaml', '/r')).toThrow(
      /retap\.yaml:2: \$\.redaction\.jsonFields\.1 is not a JavaScript regular expression/,
    );
    const e = (() => {
      try {
        parseCiConfig(text, 'retap.yaml', '/r');
      } catch (err) {
        return err as RetapError;
      }
    })();
    expect(e?.code).toBe(ErrorCodes.CONFIG_INVALID);
  });
});
