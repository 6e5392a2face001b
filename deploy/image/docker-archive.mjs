#!/usr/bin/env node
// Write a root-filesystem folder as a docker-archive image (the `docker save` layout that
// `ctr images import`, `docker load` and `podman load` read), with no daemon and no registry.
//
//   node deploy/image/docker-archive.mjs --rootfs DIR --tag NAME:TAG --out FILE.tar
//        [--entrypoint '["/bin/x"]'] [--cmd '["arg"]'] [--env K=V]... [--workdir DIR]
//        [--user UID[:GID]] [--label K=V]... [--epoch SECONDS]
//
// Reproducible: one uncompressed layer whose entries are sorted by name, owned by 0:0, stamped
// with --epoch (default $SOURCE_DATE_EPOCH, else 0); the config carries no host or time of
// its own. The same folder content gives byte-identical archives, so the image id (sha256 of
// the config) names the content. Prints the image id and the archive's size.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

function fail(message, hint) {
  process.stderr.write(`docker-archive: ${message}\n${hint ? `  → ${hint}\n` : ''}`);
  process.exit(2);
}

const { values: o } = parseArgs({
  options: {
    rootfs: { type: 'string' },
    tag: { type: 'string' },
    out: { type: 'string' },
    entrypoint: { type: 'string' },
    cmd: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
    workdir: { type: 'string' },
    user: { type: 'string' },
    label: { type: 'string', multiple: true, default: [] },
    epoch: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (o.help) {
  process.stdout.write(
    'usage: docker-archive.mjs --rootfs DIR --tag NAME:TAG --out FILE.tar [--entrypoint JSON] [--cmd JSON]\n' +
      '       [--env K=V]... [--workdir DIR] [--user U] [--label K=V]... [--epoch SECONDS]\n',
  );
  process.exit(0);
}
if (!o.rootfs || !o.tag || !o.out) fail('--rootfs, --tag and --out are required', 'see --help');
const rootfs = resolve(o.rootfs);
try {
  if (!statSync(rootfs).isDirectory()) fail(`${rootfs} is not a folder`);
} catch {
  fail(`root filesystem folder ${rootfs} does not exist`, 'build the rootfs first');
}
if (!/^[a-z0-9]+([._/:-][a-z0-9]+)*:\w[\w.-]{0,127}$/.test(o.tag)) {
  fail(
    `image tag ${JSON.stringify(o.tag)} is not NAME:TAG`,
    'use lower-case names such as retap.local/retap:0.1.0',
  );
}
const epoch = Number(o.epoch ?? process.env.SOURCE_DATE_EPOCH ?? 0);
if (!Number.isInteger(epoch) || epoch < 0) fail(`--epoch must be whole seconds since 1970, got ${o.epoch}`);
const jsonArray = (name, text) => {
  if (text === undefined) return undefined;
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    fail(`--${name} must be a JSON array of strings, got ${text}`);
  }
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
    fail(`--${name} must be a JSON array of strings`);
  return v;
};
const pairs = (name, list) =>
  list.map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0) fail(`--${name} ${JSON.stringify(kv)} is not KEY=VALUE`);
    return [kv.slice(0, i), kv.slice(i + 1)];
  });

const work = mkdtempSync(join(tmpdir(), 'retap-image-'));
try {
  // 1. The layer: GNU tar with everything that varies between two builds pinned.
  const layerTmp = join(work, 'layer.tar');
  tar(['-C', rootfs, '-cf', layerTmp, '--', ...entries(rootfs)]);
  const layerDigest = await sha256File(layerTmp);

  // 2. The image config (OCI image spec's config, which docker-archive uses as is).
  const created = new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
  const config = {
    architecture: goArch(process.arch),
    os: 'linux',
    created,
    config: {
      ...(o.entrypoint ? { Entrypoint: jsonArray('entrypoint', o.entrypoint) } : {}),
      ...(o.cmd ? { Cmd: jsonArray('cmd', o.cmd) } : {}),
      Env: o.env.length
        ? pairs('env', o.env).map(([k, v]) => `${k}=${v}`)
        : ['PATH=/usr/local/bin:/usr/bin:/bin'],
      ...(o.workdir ? { WorkingDir: o.workdir } : {}),
      ...(o.user ? { User: o.user } : {}),
      ...(o.label.length ? { Labels: Object.fromEntries(pairs('label', o.label)) } : {}),
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
    history: [{ created, created_by: 'retap deploy/image/docker-archive.mjs' }],
  };
  const configText = JSON.stringify(config);
  const configDigest = createHash('sha256').update(configText).digest('hex');

  // 3. The archive: manifest.json, the config and the layer, by digest.
  const tree = join(work, 'archive');
  mkdirSync(join(tree, layerDigest), { recursive: true });
  renameSync(layerTmp, join(tree, layerDigest, 'layer.tar'));
  writeFileSync(join(tree, `${configDigest}.json`), configText);
  const manifest = [
    { Config: `${configDigest}.json`, RepoTags: [o.tag], Layers: [`${layerDigest}/layer.tar`] },
  ];
  writeFileSync(join(tree, 'manifest.json'), JSON.stringify(manifest));
  const [name, tagName] = splitTag(o.tag);
  writeFileSync(join(tree, 'repositories'), JSON.stringify({ [name]: { [tagName]: layerDigest } }));

  const out = resolve(o.out);
  mkdirSync(dirname(out), { recursive: true });
  const outTmp = `${out}.tmp-${process.pid}`;
  tar(['-C', tree, '-cf', outTmp, '--', ...entries(tree)]);
  renameSync(outTmp, out); // whole archive or none
  const size = statSync(out).size;
  process.stdout.write(`${o.tag} sha256:${configDigest} ${(size / 1048576).toFixed(1)} MiB ${out}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

function tar(args) {
  const pinned = [
    '--sort=name',
    `--mtime=@${epoch}`,
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--format=gnu',
    '--no-acls',
    '--no-xattrs',
    '--no-selinux',
  ];
  const r = spawnSync('tar', [...pinned, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.error) fail(`tar could not start: ${r.error.message}`, 'install GNU tar');
  if (r.status !== 0) fail(`tar ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

/** A folder's top-level names in byte order: entries carry no "./" prefix, as `docker save` writes them. */
function entries(dir) {
  const names = readdirSync(dir).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  if (names.length === 0) fail(`${dir} is empty`);
  return names;
}

function sha256File(path) {
  return new Promise((ok, ko) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('end', () => ok(h.digest('hex')))
      .on('error', ko);
  });
}

function goArch(arch) {
  return { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' }[arch] ?? arch;
}

function splitTag(tag) {
  const i = tag.lastIndexOf(':');
  return [tag.slice(0, i), tag.slice(i + 1)];
}
