/**
 * A node agent of a test's (or benchmark's) own: deploy/k8s's DaemonSet and RBAC in a namespace
 * of its own, with cluster-wide names made unique and retap-capture's rights there too, so other
 * tests that install and uninstall retap-system's agent on the same cluster cannot pull it away
 * mid-run. Use it with `--agent-namespace`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kubectl, root } from '../helpers/k8s.js';

export interface OwnAgent {
  namespace: string;
  remove(): Promise<void>;
}

export async function installOwnAgent(tag: string, image: string): Promise<OwnAgent> {
  const ns = `retap-agent-${tag}`;
  const name = `retap-agent-${tag}`;
  const docs = ['agent-rbac.yaml', 'daemonset.yaml'].flatMap((f) =>
    parseAllDocuments(readFileSync(join(root, 'deploy', 'k8s', f), 'utf8')).map(
      (d) => d.toJS() as { kind: string; metadata: Record<string, unknown>; [k: string]: unknown },
    ),
  );
  for (const o of docs) {
    if (o.metadata.namespace) o.metadata.namespace = ns;
    if (o.kind === 'ClusterRole') o.metadata.name = name;
    if (o.kind === 'ClusterRoleBinding') {
      o.metadata.name = name;
      (o.roleRef as { name: string }).name = name;
      (o.subjects as Array<{ namespace: string }>)[0]!.namespace = ns;
    }
    if (o.kind === 'DaemonSet') {
      const c = (o.spec as { template: { spec: { containers: Array<Record<string, unknown>> } } }).template
        .spec.containers[0]!;
      c.image = image;
      c.imagePullPolicy = 'Never';
    }
  }
  // what retap-capture grants in retap-system, here (for a least-privilege runner)
  docs.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'retap-capture', namespace: ns },
    rules: [
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['pods/portforward'], verbs: ['create', 'get'] },
    ],
  });
  const remove = async (): Promise<void> => {
    await kubectl(['delete', 'clusterrolebinding,clusterrole', name, '--ignore-not-found']).catch(
      () => undefined,
    );
    await kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--timeout=120s']).catch(() => undefined);
  };
  try {
    await kubectl(['create', 'namespace', ns]);
    await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }));
    await kubectl(
      ['-n', ns, 'rollout', 'status', 'daemonset/retap-agent', '--timeout=240s'],
      undefined,
      300_000,
    );
  } catch (e) {
    await remove();
    throw e;
  }
  return { namespace: ns, remove };
}
