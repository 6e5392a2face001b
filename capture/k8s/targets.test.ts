import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Exchange } from '../../core/exchange.js';
import { sampleExchange } from '../../snapshots/sample.js';
import { PodCgroups } from './cgroups.js';
import { containerNames, workloadOf } from './pods.js';
import { parseSelector } from './selector.js';
import { type PodSource, TargetTracker } from './targets.js';

const id = (c: string) => c.repeat(64);
const UID_A = '11111111-2222-3333-4444-555555555555';
const UID_B = '66666666-7777-8888-9999-000000000000';

function pod(
  name: string,
  uid: string,
  labels: Record<string, string>,
  containers: Record<string, string>,
): V1Pod {
  return {
    metadata: {
      name,
      uid,
      namespace: 'shop',
      labels: { ...labels, 'pod-template-hash': '7d9f' },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: `${labels.app}-7d9f`,
          uid: 'rs',
          controller: true,
        },
      ],
    },
    status: {
      phase: 'Running',
      podIP: uid === UID_A ? '198.18.0.10' : '198.18.0.11',
      containerStatuses: Object.entries(containers).map(([n, cid]) => ({
        name: n,
        containerID: `containerd://${cid}`,
        image: 'x',
        imageID: 'x',
        ready: true,
        restartCount: 0,
      })),
    },
  };
}

describe('pods', () => {
  it('names the Deployment behind a ReplicaSet, and keeps other controllers as they are', () => {
    expect(workloadOf(pod('orders-7d9f-x', UID_A, { app: 'orders' }, {}))).toEqual({
      kind: 'Deployment',
      name: 'orders',
    });
    const sts: V1Pod = {
      metadata: {
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'u', controller: true },
        ],
      },
    };
    expect(workloadOf(sts)).toEqual({ kind: 'StatefulSet', name: 'db' });
    expect(workloadOf({ metadata: { name: 'bare' } })).toBeUndefined();
  });

  it('maps container ids to names, including the previous id of a restarted container', () => {
    const p = pod('p', UID_A, { app: 'a' }, { main: id('a') });
    p.status!.containerStatuses![0]!.lastState = {
      terminated: { exitCode: 1, containerID: `containerd://${id('9')}` },
    };
    expect(containerNames(p)).toEqual(
      new Map([
        [id('a'), 'main'],
        [id('9'), 'main'],
      ]),
    );
  });
});

describe('target tracker', () => {
  let root: string;
  let pods: V1Pod[];
  let session: { added: bigint[]; removed: bigint[]; watched: number[] };
  let out: Exchange[];

  const source: PodSource = {
    list: () => pods,
    byUid: (uid) => pods.find((p) => p.metadata?.uid === uid),
    byIp: (ip) => pods.find((p) => p.status?.podIP === ip),
  };
  /** A container cgroup in the cgroupfs layout, with the given processes. */
  const container = (uid: string, cid: string, pids: number[]) => {
    const dir = join(root, 'kubepods', 'besteffort', `pod${uid}`, cid);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cgroup.procs'), pids.map((p) => `${p}\n`).join(''));
    return dir;
  };
  const tracker = (opts: { container?: string } = {}) => {
    const t = new TargetTracker(
      { node: 'n1', namespace: 'shop', selector: parseSelector('app=orders'), ...opts },
      source,
      new PodCgroups({ dir: root, layout: 'unified' }),
      (ex) => out.push(ex),
    );
    t.bind({
      addCgroup: (c) => session.added.push(c),
      removeCgroup: (c) => session.removed.push(c),
      watchProcess: (p) => session.watched.push(p),
    });
    return t;
  };
  const exchangeOf = (pid: number, peer = '198.18.0.99'): Exchange => {
    const ex = sampleExchange(pid);
    ex.service.pid = pid;
    ex.peer.addr = peer;
    return ex;
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'retap-tracker-'));
    pods = [];
    session = { added: [], removed: [], watched: [] };
    out = [];
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('targets the matching pods’ containers, never the others, and labels their exchanges', () => {
    pods = [
      pod('orders-7d9f-a', UID_A, { app: 'orders' }, { orders: id('a') }),
      pod('shadow-7d9f-b', UID_B, { app: 'shadow' }, { orders: id('b') }),
    ];
    container(UID_A, id('a'), [101, 102]);
    container(UID_B, id('b'), [201]);
    const t = tracker();
    expect(session.added).toHaveLength(1);
    expect(session.watched).toEqual([101, 102]);
    t.accept(exchangeOf(101, '198.18.0.11'));
    expect(out).toHaveLength(1);
    const ex = out[0]!;
    expect(ex.service.k8s).toEqual({
      namespace: 'shop',
      pod: 'orders-7d9f-a',
      container: 'orders',
      workload: { kind: 'Deployment', name: 'orders' },
      node: 'n1',
    });
    expect(ex.service.name).toBe('orders');
    // the peer is a pod of this node: named too
    expect(ex.peer.k8s?.pod).toBe('shadow-7d9f-b');
    // ids are unique across nodes
    expect(ex.id.startsWith('n1/')).toBe(true);
    expect(ex.connection.id.startsWith('n1/')).toBe(true);
    expect(t.summary()).toEqual([
      { namespace: 'shop', pod: 'orders-7d9f-a', uid: UID_A, containers: ['orders'] },
    ]);
  });

  it('targets a new container before the pod status names it, and holds its exchanges until it does', () => {
    pods = [pod('orders-7d9f-a', UID_A, { app: 'orders' }, {})];
    container(UID_A, id('c'), [301]);
    const t = tracker();
    expect(session.added).toHaveLength(1); // targeted at once: its first requests count
    t.accept(exchangeOf(301), 1000);
    expect(out).toHaveLength(0); // waiting for a name
    pods = [pod('orders-7d9f-a', UID_A, { app: 'orders' }, { orders: id('c') })];
    t.sync(1500);
    expect(out.map((e) => e.service.k8s?.container)).toEqual(['orders']);
  });

  it('gives up waiting after a while: kept without a container name, or dropped under --container', () => {
    pods = [pod('orders-7d9f-a', UID_A, { app: 'orders' }, {})];
    container(UID_A, id('d'), [401]);
    const t = tracker();
    t.accept(exchangeOf(401), 0);
    t.sync(20_000);
    expect(out).toHaveLength(1);
    expect(out[0]!.service.k8s?.container).toBeUndefined();
    expect(out[0]!.service.k8s?.pod).toBe('orders-7d9f-a');

    out = [];
    const only = tracker({ container: 'orders' });
    only.accept(exchangeOf(401), 0);
    only.sync(20_000);
    expect(out).toHaveLength(0);
    expect(only.counters.unattributed).toBe(1);
  });

  it('follows a restart: the old cgroup leaves the kernel filter, the new one enters', () => {
    pods = [pod('orders-7d9f-a', UID_A, { app: 'orders' }, { orders: id('e') })];
    const old = container(UID_A, id('e'), [501]);
    const t = tracker();
    expect(session.added).toHaveLength(1);
    rmSync(old, { recursive: true });
    container(UID_A, id('f'), [502]);
    pods = [pod('orders-7d9f-a', UID_A, { app: 'orders' }, { orders: id('f') })];
    t.sync();
    expect(session.added).toHaveLength(2);
    expect(session.removed).toEqual([session.added[0]]);
    // an exchange of the old container that completes late is still labelled
    t.accept(exchangeOf(501));
    expect(out[0]?.service.k8s?.pod).toBe('orders-7d9f-a');
    expect(t.counters.containersTargeted).toBe(2);
  });

  it('with --container, leaves the pod’s other containers out of the filter', () => {
    pods = [pod('orders-7d9f-a', UID_A, { app: 'orders' }, { orders: id('1'), sidecar: id('2') })];
    container(UID_A, id('1'), [601]);
    container(UID_A, id('2'), [602]);
    tracker({ container: 'orders' });
    expect(session.added).toHaveLength(1);
    expect(session.watched).toEqual([601]);
  });

  it('finds pods in the systemd driver’s layout too', () => {
    pods = [pod('orders-7d9f-a', UID_A, { app: 'orders' }, { orders: id('7') })];
    const dir = join(
      root,
      'kubepods.slice',
      'kubepods-burstable.slice',
      `kubepods-burstable-pod${UID_A.replaceAll('-', '_')}.slice`,
      `cri-containerd-${id('7')}.scope`,
    );
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cgroup.procs'), '701\n');
    const t = tracker();
    expect(session.added).toHaveLength(1);
    t.accept(exchangeOf(701));
    expect(out[0]?.service.k8s?.container).toBe('orders');
  });
});
