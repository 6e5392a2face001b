/**
 * The agent's two forms of deployment — plain manifests (deploy/k8s, what `kubectl apply -k` and
 * `retap k8s install` take) and the Helm chart (deploy/helm/retap-agent) — rendered by the real
 * tools (kubectl's kustomize, helm from ci/k8s/build) and checked: least privilege as documented,
 * the same objects from both, and accepted by the API server (server-side dry run).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KubernetesObject, V1DaemonSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadManifests, renderManifests } from '../../capture/k8s/install.js';
import { clusterEnv, kubectl, root, skipCluster } from '../helpers/k8s.js';

const exec = promisify(execFile);
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const chart = join(root, 'deploy', 'helm', 'retap-agent');

/** kubectl and helm as ci/k8s/build left them, or why not. */
function tools(): { kubectl: string; helm: string } | string {
  const lib = readFileSync(join(root, 'ci', 'k8s', 'lib.sh'), 'utf8');
  const v = (name: string) => new RegExp(`^${name}=(v[0-9.]+)`, 'm').exec(lib)?.[1]?.slice(1);
  const cache = process.env.RETAP_K8S_CACHE ?? '/var/cache/retap/k8s';
  const k = join(
    cache,
    `k8s-${v('K8S_VERSION')}_etcd-${v('ETCD_VERSION')}_containerd-${v('CONTAINERD_VERSION')}_crictl-${v('CRICTL_VERSION')}`,
    'bin',
    'kubectl',
  );
  const h = join(cache, `helm-${v('HELM_VERSION')}`, 'bin', 'helm');
  if (!existsSync(k) || !existsSync(h)) return `kubectl or helm is not built (${k}, ${h}): run ci/k8s/build`;
  return { kubectl: k, helm: h };
}
function skipTools(): boolean {
  const t = tools();
  if (typeof t !== 'string') return false;
  if (process.env.RETAP_K8S === '1') throw new Error(`RETAP_K8S=1 but ${t}`);
  console.warn(`skipping the manifest renders: ${t}`);
  return true;
}

const docs = (text: string) =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => !!o?.kind);
const key = (o: KubernetesObject) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
const byKey = (objs: KubernetesObject[]) => Object.fromEntries(objs.map((o) => [key(o), o]));
/** Helm's own bookkeeping labels, which the plain manifests do not carry. */
function withoutHelmLabels(o: KubernetesObject): KubernetesObject {
  const c = structuredClone(o);
  for (const l of [
    'helm.sh/chart',
    'app.kubernetes.io/managed-by',
    'app.kubernetes.io/instance',
    'app.kubernetes.io/version',
  ]) {
    delete c.metadata?.labels?.[l];
  }
  return c;
}
const agentContainer = (objs: KubernetesObject[]) =>
  (objs.find((o) => o.kind === 'DaemonSet') as V1DaemonSet).spec!.template.spec!.containers[0]!;

describe('deploy/k8s', () => {
  const objects = loadManifests();
  const ds = objects.find((o) => o.kind === 'DaemonSet') as V1DaemonSet;
  const pod = ds.spec!.template.spec!;
  const c = pod.containers[0]!;

  it('asks for exactly the measured privileges: hostPID, SYS_ADMIN and SYS_PTRACE, read-only host mounts, not privileged', () => {
    expect(pod.hostPID).toBe(true);
    expect(pod.hostNetwork).toBeFalsy();
    expect(c.securityContext?.privileged).toBe(false);
    expect(c.securityContext?.capabilities).toEqual({ drop: ['ALL'], add: ['SYS_ADMIN', 'SYS_PTRACE'] });
    expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(c.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
    expect(c.volumeMounts?.every((m) => m.readOnly)).toBe(true);
    expect(pod.volumes?.map((v) => v.hostPath?.path).sort()).toEqual([
      '/sys/fs/cgroup',
      '/sys/kernel/tracing',
    ]);
  });

  it('grants the agent read access to pods and nothing else', () => {
    const role = objects.find((o) => o.kind === 'ClusterRole' && o.metadata?.name === 'retap-agent') as {
      rules: unknown;
    };
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
  });

  it("runs this version's image, which install can replace", () => {
    expect(c.image).toBe(`retap.local/retap:${version}`);
    const chartMeta = parseAllDocuments(readFileSync(join(chart, 'Chart.yaml'), 'utf8'))[0]!.toJS() as {
      version: string;
      appVersion: string;
    };
    expect(chartMeta.appVersion).toBe(version);
    const custom = agentContainer(
      renderManifests({ image: 'registry.example/retap:9', imagePullPolicy: 'Always' }),
    );
    expect([custom.image, custom.imagePullPolicy]).toEqual(['registry.example/retap:9', 'Always']);
  });
});

describe.skipIf(skipTools())('deploy/k8s and the Helm chart, rendered', () => {
  const t = tools() as { kubectl: string; helm: string };
  const kustomize = async () =>
    docs((await exec(t.kubectl, ['kustomize', join(root, 'deploy', 'k8s')])).stdout);
  const helm = async (args: string[] = [], namespace = 'retap-system') =>
    docs((await exec(t.helm, ['template', 'retap-agent', chart, '--namespace', namespace, ...args])).stdout);

  it('kubectl kustomize gives the objects retap k8s install applies', async () => {
    expect(byKey(await kustomize())).toEqual(byKey(loadManifests()));
  });

  it('the chart with its defaults renders the same objects (the namespace is Helm’s to create)', async () => {
    const plain = (await kustomize()).filter((o) => o.kind !== 'Namespace');
    expect(byKey((await helm()).map(withoutHelmLabels))).toEqual(byKey(plain));
  });

  it('the chart’s values change what they say', async () => {
    const objs = await helm([
      '--set',
      'image.repository=registry.example/retap',
      '--set',
      'image.tag=9.9.9',
      '--set',
      'capabilities={BPF,PERFMON,SYS_PTRACE}',
      '--set',
      'ringBufferMiB=16',
      '--set',
      'captureRbac.create=false',
    ]);
    const c = agentContainer(objs);
    expect(c.image).toBe('registry.example/retap:9.9.9');
    expect(c.securityContext?.capabilities?.add).toEqual(['BPF', 'PERFMON', 'SYS_PTRACE']);
    expect(c.args).toEqual(['agent', '--verbose', '--ring-buffer', '16']);
    expect(objs.some((o) => o.metadata?.name === 'retap-capture')).toBe(false);
  });

  describe.skipIf(skipCluster())('on the test cluster', () => {
    it('the API server accepts both (server-side dry run)', async () => {
      expect(typeof clusterEnv()).toBe('object');
      // the plain manifests: their namespace does not exist in a dry run, so check it first alone
      await kubectl(['apply', '--dry-run=server', '-f', join(root, 'deploy', 'k8s', 'namespace.yaml')]);
      const ns = `retap-helm-${randomBytes(3).toString('hex')}`;
      await kubectl(['create', 'namespace', ns]);
      try {
        const rendered = (await exec(t.helm, ['template', 'retap-agent', chart, '--namespace', ns])).stdout;
        const out = await kubectl(['apply', '--dry-run=server', '-f', '-'], rendered);
        expect(out).toContain('daemonset.apps/retap-agent');
        const plain = (await exec(t.kubectl, ['kustomize', join(root, 'deploy', 'k8s')])).stdout.replaceAll(
          'namespace: retap-system',
          `namespace: ${ns}`,
        );
        const out2 = await kubectl(
          ['apply', '--dry-run=server', '-f', '-'],
          plain.replace(/^apiVersion: v1\nkind: Namespace[\s\S]*?^---\n/m, ''),
        );
        expect(out2).toContain('daemonset.apps/retap-agent');
      } finally {
        await kubectl(['delete', 'namespace', ns, '--wait=false']);
      }
    }, 120_000);
  });
});
