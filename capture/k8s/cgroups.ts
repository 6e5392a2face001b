/**
 * Pods and containers in the node's cgroup v2 tree, as the node agent sees it through a read-only
 * mount of the host's /sys/fs/cgroup.
 *
 * Layouts met: cgroupfs driver `kubepods[/<qos>]/pod<uid>/<container id>` and systemd driver
 * `kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_with_underscores>.slice/
 * cri-containerd-<id>.scope`, under the v2 root — `/sys/fs/cgroup` on v2-only nodes, the hybrid
 * layout's `/sys/fs/cgroup/unified`. Containers are found by their ids in directory names and
 * identified to BPF by the directory's inode (the cgroup id), so nothing depends on the cgroup
 * namespace a process reads its own path in (on v2-only nodes each container has its own).
 */
import { readdirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, RetapError } from '../../core/errors.js';

const CGROUP2_SUPER_MAGIC = 0x63677270;
const CONTAINER_ID = /([0-9a-f]{64})/;
/** A pod uid in a directory name; the systemd driver writes `_` for `-`. */
const POD_UID = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/;
/** How deep pod directories may sit below the v2 root (kubepods.slice/…/pod.slice is 3). */
const MAX_DEPTH = 4;

export interface CgroupRoot {
  /** The v2 hierarchy's root directory as mounted in this process. */
  dir: string;
  layout: 'unified' | 'hybrid';
}

function isCgroup2(dir: string): boolean {
  try {
    return statfsSync(dir).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/** The host's v2 root under `hostDir` (the host's /sys/fs/cgroup mounted somewhere). */
export function findCgroup2Root(hostDir: string): CgroupRoot {
  if (isCgroup2(hostDir)) return { dir: hostDir, layout: 'unified' };
  if (isCgroup2(join(hostDir, 'unified'))) return { dir: join(hostDir, 'unified'), layout: 'hybrid' };
  throw new RetapError(
    ErrorCodes.CAPTURE_UNAVAILABLE,
    `no cgroup v2 hierarchy at ${hostDir} or ${hostDir}/unified`,
    {
      hint: "Mount the host's /sys/fs/cgroup there (read-only hostPath; the DaemonSet in deploy/k8s does).",
    },
  );
}

/** Container id from a pod's status (`containerd://<id>`, `cri-o://<id>`, `docker://<id>`). */
export function containerIdOf(statusId: string | undefined): string | undefined {
  if (!statusId) return undefined;
  return CONTAINER_ID.exec(statusId)?.[1];
}

export interface ContainerCgroup {
  /** 64-hex container id, as in the pod's status (without the runtime prefix). */
  id: string;
  dir: string;
  /** What BPF sees as the cgroup id. */
  cgroupId: bigint;
}

/** Where each pod's cgroup directory is; looked up lazily, cached, re-searched when missing. */
export class PodCgroups {
  private dirs = new Map<string, string>();
  private indexedAt = 0;

  constructor(readonly root: CgroupRoot) {}

  /** The pod's cgroup directory, or undefined while it does not exist (yet). */
  podDir(uid: string): string | undefined {
    const cached = this.dirs.get(uid);
    if (cached !== undefined && exists(cached)) return cached;
    this.dirs.delete(uid);
    this.index();
    return this.dirs.get(uid);
  }

  /** Container cgroups of a pod (the sandbox's too: its pause process sends nothing). */
  containers(uid: string): ContainerCgroup[] {
    const dir = this.podDir(uid);
    if (dir === undefined) return [];
    const out: ContainerCgroup[] = [];
    for (const name of subdirs(dir)) {
      const id = CONTAINER_ID.exec(name)?.[1];
      if (id === undefined) continue;
      const child = join(dir, name);
      try {
        out.push({ id, dir: child, cgroupId: statSync(child, { bigint: true }).ino });
      } catch {
        /* removed meanwhile */
      }
    }
    return out;
  }

  forget(uid: string): void {
    this.dirs.delete(uid);
  }

  /** One bounded walk that notes every pod directory below the root (at most every 100 ms). */
  private index(): void {
    const now = Date.now();
    if (now - this.indexedAt < 100) return;
    this.indexedAt = now;
    const walk = (dir: string, depth: number): void => {
      for (const name of subdirs(dir)) {
        const m = POD_UID.exec(name);
        if (m) {
          this.dirs.set(m[1]!.replaceAll('_', '-'), join(dir, name));
          continue;
        }
        // only the kubelet's part of the tree (kubepods, kubepods.slice, a custom --cgroup-root)
        if (depth < MAX_DEPTH && (depth > 0 || /kube/.test(name))) walk(join(dir, name), depth + 1);
      }
    };
    walk(this.root.dir, 0);
  }
}

/** Processes (host pids) in a cgroup directory. */
export function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * The pod uid and container id a process belongs to, from /proc/<pid>/cgroup (whatever cgroup
 * namespace shortens the path, the ids are in its last components).
 */
export function processContainer(pid: number): { podUid: string; containerId: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
    const pod = POD_UID.exec(path)?.[1];
    const id = CONTAINER_ID.exec(path.slice(path.lastIndexOf('/')))?.[1];
    if (pod && id) return { podUid: pod.replaceAll('_', '-'), containerId: id };
  }
  return undefined;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}

function exists(dir: string): boolean {
  try {
    statSync(dir);
    return true;
  } catch {
    return false;
  }
}
