import { describe, expect, it } from 'vitest';
import { staleReason } from './gc.js';
import {
  ANN_HEARTBEAT,
  ANN_HEARTBEAT_SECONDS,
  ANN_OWNER,
  CA_PATH,
  deploymentObject,
  formatOwner,
  labelValue,
  namespaceObject,
  parseOwner,
  readyPath,
} from './manifests.js';

describe('run namespace objects', () => {
  it('labels the run, snapshot and build with valid label values; the full texts in annotations', () => {
    expect(labelValue('registry.example:5000/team/orders:sha-1234')).toBe(
      'registry.example_5000_team_orders_sha-1234',
    );
    expect(labelValue('-x-')).toBe('x');
    expect(labelValue('')).toBe('none');
    expect(labelValue('a'.repeat(80))).toHaveLength(63);
    const ns = namespaceObject(
      {
        name: 'retap-run-abc',
        runId: 'abc',
        snapshot: { name: 'orders', path: '/s/orders/v1' },
        image: 'reg/orders:1',
        owner: { host: 'ci-7', pid: 42, start: '991' },
        heartbeatSeconds: 10,
      },
      new Date('2026-01-01T00:00:00Z'),
    );
    expect(ns.metadata?.labels).toMatchObject({
      'retap.dev/run': 'abc',
      'retap.dev/snapshot': 'orders',
      'retap.dev/build': 'reg_orders_1',
    });
    expect(ns.metadata?.annotations).toMatchObject({
      [ANN_OWNER]: 'ci-7/42/991',
      [ANN_HEARTBEAT]: '2026-01-01T00:00:00.000Z',
      'retap.dev/build-image': 'reg/orders:1',
    });
    expect(parseOwner(formatOwner({ host: 'a/b', pid: 7, start: '' }))).toEqual({
      host: 'a/b',
      pid: 7,
      start: '',
    });
  });

  it('puts the mocks beside the build: hostAliases to loopback, CA env, native sidecar first', () => {
    const d = deploymentObject({
      namespace: 'retap-run-x',
      runId: 'x',
      label: 'candidate#2',
      build: {
        image: 'orders:1',
        port: 8080,
        ready: 'http://127.0.0.1:8080/healthz?deep=1',
        env: { A: '1' },
      },
      retapImage: 'retap:1',
      hostAliases: {
        'inventory.svc': '127.0.0.2',
        'pay.example': '127.0.0.3',
        alias: '127.0.0.2',
        localhost: '127.0.0.1',
      },
    });
    expect(d.metadata?.name).toBe('build-candidate-2');
    const pod = d.spec!.template.spec!;
    expect(pod.hostAliases).toEqual([
      { ip: '127.0.0.2', hostnames: ['alias', 'inventory.svc'] },
      { ip: '127.0.0.3', hostnames: ['pay.example'] },
    ]);
    expect(pod.initContainers?.[0]).toMatchObject({
      name: 'retap-run',
      restartPolicy: 'Always',
      image: 'retap:1',
    });
    const build = pod.containers[0]!;
    expect(build.readinessProbe?.httpGet).toEqual({ path: '/healthz?deep=1', port: 8080 });
    expect(build.env).toContainEqual({ name: 'A', value: '1' });
    expect(build.env).toContainEqual({ name: 'SSL_CERT_FILE', value: CA_PATH });
    expect(build.env).toContainEqual({ name: 'NODE_EXTRA_CA_CERTS', value: CA_PATH });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(readyPath(undefined)).toBeUndefined();
    expect(readyPath('ready')).toBe('/ready');
  });
});

describe('gc --k8s: when a run namespace is stale', () => {
  const now = Date.parse('2026-01-01T00:10:00Z');
  const ann = (owner: string, beat: string) => ({
    [ANN_OWNER]: owner,
    [ANN_HEARTBEAT]: beat,
    [ANN_HEARTBEAT_SECONDS]: '10',
  });
  it('an owner on this host: by its process, at once', () => {
    const alive = (pid: number) => (pid === 42 ? '991' : undefined);
    expect(staleReason(ann('me/42/991', '2026-01-01T00:00:00Z'), now, 'me', alive)).toBeUndefined();
    expect(staleReason(ann('me/43/991', '2026-01-01T00:09:59Z'), now, 'me', alive)).toMatch(
      /pid 43 on this host\) is gone/,
    );
    expect(staleReason(ann('me/42/5', '2026-01-01T00:09:59Z'), now, 'me', alive)).toMatch(/another process/);
  });
  it('an owner elsewhere: by its heartbeat, after three periods (30 s at least)', () => {
    const none = () => undefined;
    expect(staleReason(ann('ci-7/42/1', '2026-01-01T00:09:35Z'), now, 'me', none)).toBeUndefined();
    expect(staleReason(ann('ci-7/42/1', '2026-01-01T00:09:00Z'), now, 'me', none)).toMatch(
      /heartbeat is 60 s old/,
    );
    expect(staleReason({}, now, 'me', none)).toMatch(/no heartbeat/);
  });
});
