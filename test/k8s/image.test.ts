/**
 * Images without a daemon or a registry: deploy/image/docker-archive.mjs (the writer) and
 * deploy/image/build (retap's own image). Reproducible bytes, the docker-archive layout, the
 * content of retap's image (what runs, and nothing of the dev dependencies), and a run of it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privilegedUnavailable, requireEbpf } from '../helpers/privileged.js';

const root = join(import.meta.dirname, '..', '..');
const writer = join(root, 'deploy', 'image', 'docker-archive.mjs');
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const tarList = (args: string[]) =>
  execFileSync('tar', args, { encoding: 'utf8', maxBuffer: 64 << 20 })
    .trim()
    .split('\n');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'retap-image-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A small root file system whose file times and creation order differ on every call. */
function rootfs(name: string, stamp: number): string {
  const r = join(dir, name);
  mkdirSync(join(r, 'bin'), { recursive: true });
  mkdirSync(join(r, 'etc'));
  // Created in a different order each time: the archive must not care.
  const files: Array<[string, string]> = [
    ['etc/zz', 'last\n'],
    ['bin/tool', '#!/bin/sh\necho hi\n'],
    ['etc/aa', 'first\n'],
  ];
  for (const [f, text] of stamp % 2 ? files.reverse() : files) writeFileSync(join(r, f), text);
  chmodSync(join(r, 'bin/tool'), 0o755);
  symlinkSync('tool', join(r, 'bin/alias'));
  for (const f of ['etc/zz', 'bin/tool', 'etc/aa', 'bin', 'etc']) utimesSync(join(r, f), stamp, stamp);
  return r;
}

function writeArchive(rootfsDir: string, out: string, extra: string[] = []) {
  return spawnSync(
    'node',
    [
      writer,
      '--rootfs',
      rootfsDir,
      '--tag',
      'retap.local/unit:1',
      '--out',
      out,
      '--epoch',
      '1700000000',
      ...extra,
    ],
    { encoding: 'utf8' },
  );
}

describe('docker-archive writer', () => {
  it('writes the same bytes for the same content, whatever the files’ times and creation order', () => {
    const a = writeArchive(rootfs('a', 1_000_001), join(dir, 'a.tar'), ['--entrypoint', '["/bin/tool"]']);
    const b = writeArchive(rootfs('b', 1_500_000), join(dir, 'b.tar'), ['--entrypoint', '["/bin/tool"]']);
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    expect(sha256(join(dir, 'a.tar'))).toBe(sha256(join(dir, 'b.tar')));
    // A change of content is a change of image.
    writeFileSync(join(dir, 'b', 'etc', 'aa'), 'changed\n');
    writeArchive(join(dir, 'b'), join(dir, 'c.tar'), ['--entrypoint', '["/bin/tool"]']);
    expect(sha256(join(dir, 'c.tar'))).not.toBe(sha256(join(dir, 'a.tar')));
  });

  it('lays out manifest, config and layer as docker save does, digests included', () => {
    const out = join(dir, 'layout.tar');
    const r = writeArchive(rootfs('layout', 5), out, ['--cmd', '["-v"]', '--env', 'A=1', '--label', 'k=v']);
    expect(r.status, r.stderr).toBe(0);
    const x = join(dir, 'layout-x');
    mkdirSync(x);
    execFileSync('tar', ['-C', x, '-xf', out]);
    const [m] = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8')) as Array<{
      Config: string;
      RepoTags: string[];
      Layers: string[];
    }>;
    expect(m!.RepoTags).toEqual(['retap.local/unit:1']);
    const configDigest = sha256(join(x, m!.Config));
    expect(m!.Config).toBe(`${configDigest}.json`);
    expect(r.stdout).toContain(`sha256:${configDigest}`);
    const layer = join(x, m!.Layers[0]!);
    const config = JSON.parse(readFileSync(join(x, m!.Config), 'utf8'));
    expect(config.rootfs.diff_ids).toEqual([`sha256:${sha256(layer)}`]);
    expect(config.created).toBe('2023-11-14T22:13:20Z');
    expect(config.config).toMatchObject({ Cmd: ['-v'], Env: ['A=1'], Labels: { k: 'v' } });
    // Entries sorted, owned by 0:0, stamped with the epoch, no "./" prefix; the link kept.
    const entries = tarList(['--numeric-owner', '--full-time', '-tvf', layer]);
    const names = entries.map((l) => l.split(/\s+/).slice(5).join(' '));
    expect(names).toEqual(['bin/', 'bin/alias -> tool', 'bin/tool', 'etc/', 'etc/aa', 'etc/zz']);
    for (const l of entries) expect(l).toMatch(/^\S+ 0\/0 +\d+ 2023-11-14 22:13:20 /);
    expect(entries[2]).toMatch(/^-rwxr-xr-x/);
  });

  it('refuses bad input with what to do, and writes nothing', () => {
    const missing = writeArchive(join(dir, 'nope'), join(dir, 'nope.tar'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/root filesystem folder .*nope does not exist/);
    const badTag = spawnSync(
      'node',
      [writer, '--rootfs', rootfs('t', 1), '--tag', 'NoTag', '--out', join(dir, 't.tar')],
      {
        encoding: 'utf8',
      },
    );
    expect(badTag.status).toBe(2);
    expect(badTag.stderr).toMatch(/is not NAME:TAG/);
    const badJson = writeArchive(join(dir, 't'), join(dir, 't.tar'), ['--entrypoint', '/bin/tool']);
    expect(badJson.status).toBe(2);
    expect(badJson.stderr).toMatch(/--entrypoint must be a JSON array/);
    expect(existsSync(join(dir, 'nope.tar')) || existsSync(join(dir, 't.tar'))).toBe(false);
  });
});

/** Unpacks a docker-archive's single layer into a folder. */
function unpack(archive: string, into: string): { config: Record<string, unknown> } {
  const x = `${into}-archive`;
  mkdirSync(x);
  mkdirSync(into);
  execFileSync('tar', ['-C', x, '-xf', archive]);
  const [m] = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8')) as Array<{
    Config: string;
    Layers: string[];
  }>;
  execFileSync('tar', ['-C', into, '-xf', join(x, m!.Layers[0]!)]);
  return { config: JSON.parse(readFileSync(join(x, m!.Config), 'utf8')) };
}

describe("retap's image (deploy/image/build)", () => {
  let rootfsDir: string;
  let config: Record<string, unknown>;
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;

  beforeAll(() => {
    const build = (out: string) =>
      spawnSync(join(root, 'deploy', 'image', 'build'), ['--out', out], { encoding: 'utf8', cwd: root });
    const a = build(join(dir, 'retap-a.tar'));
    expect(a.status, a.stderr).toBe(0);
    const b = build(join(dir, 'retap-b.tar'));
    expect(b.status, b.stderr).toBe(0);
    rootfsDir = join(dir, 'retap-rootfs');
    ({ config } = unpack(join(dir, 'retap-a.tar'), rootfsDir));
  }, 180_000);

  it('is reproducible: two builds of one tree are byte-identical', () => {
    expect(sha256(join(dir, 'retap-a.tar'))).toBe(sha256(join(dir, 'retap-b.tar')));
  });

  it('holds what retap runs on and nothing of the dev dependencies', () => {
    const app = join(rootfsDir, 'opt', 'retap');
    for (const f of ['bin/retap.js', 'dist/cli/main.js', 'package.json', 'build/Release/retap_native.node']) {
      expect(existsSync(join(app, f)), f).toBe(true);
    }
    const deps = Object.keys(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).dependencies);
    for (const d of deps) expect(existsSync(join(app, 'node_modules', d)), d).toBe(true);
    // a dev dependency a runtime one also needs (jose, under @kubernetes/client-node) belongs in
    // the image; what only development needs is marked "dev" in the lock file and must not be there
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.keys(lock.packages).filter(
      (k) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(k) && lock.packages[k]?.dev,
    );
    expect(devOnly.length).toBeGreaterThan(10);
    for (const k of devOnly) expect(existsSync(join(app, k)), k).toBe(false);
    expect(tarList(['-tf', join(dir, 'retap-a.tar')]).some((n) => n.endsWith('.test.js'))).toBe(false);
    // Every library node and the addon load is inside, at the path the loader looks for.
    const elfs = [join(rootfsDir, 'usr/local/bin/node'), join(app, 'build/Release/retap_native.node')];
    const needed = execFileSync('ldd', elfs, { encoding: 'utf8' })
      .split('\n')
      .map((l) => /=> (\/\S+)/.exec(l)?.[1] ?? /^\s*(\/\S+) \(/.exec(l)?.[1])
      .filter((p): p is string => p !== undefined);
    expect(needed.length).toBeGreaterThan(4);
    for (const lib of needed) expect(existsSync(join(rootfsDir, lib)), lib).toBe(true);
    expect(config.config).toMatchObject({ Entrypoint: ['/usr/local/bin/node', '/opt/retap/bin/retap.js'] });
    expect(
      (config.config as { Labels: Record<string, string> }).Labels['org.opencontainers.image.version'],
    ).toBe(version);
  });

  it.skipIf(privilegedUnavailable() !== undefined && !requireEbpf)(
    'runs: retap --version inside its root file system',
    () => {
      // chroot needs root; under RETAP_REQUIRE_EBPF=1 a missing privilege fails here instead of skipping.
      const r = spawnSync(
        'chroot',
        [rootfsDir, '/usr/local/bin/node', '/opt/retap/bin/retap.js', '--version'],
        {
          encoding: 'utf8',
          env: { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' },
        },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    },
  );

  it('matches the Dockerfile for Docker users: same entrypoint, same application files', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const entry = /^ENTRYPOINT (.+)$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(entry!)).toEqual((config.config as { Entrypoint: string[] }).Entrypoint);
    const copied = [...dockerfile.matchAll(/^COPY --from=build \S+ (\/opt\/retap\/\S+)$/gm)].map(
      (m) => m[1]!,
    );
    expect(copied.length).toBeGreaterThan(5);
    for (const dest of copied) expect(existsSync(join(rootfsDir, dest)), dest).toBe(true);
  });
});
