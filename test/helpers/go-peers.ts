/**
 * The Go test peers (test/fixtures/go), built by ci/setup into /var/cache/retap/go-peers/<hash>/.
 * Tests use `describe.skipIf(skipWithoutGoPeers())`: a skip without them, a failure under
 * RETAP_REQUIRE_EBPF=1.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withElf } from '../../capture/elf.js';
import { packageRoot } from '../../core/paths.js';
import { skipWithoutTool } from './privileged.js';

// from the checkout's root: this module also runs compiled, from dist/ (benchmarks)
const builder = join(packageRoot(), 'test', 'fixtures', 'go', 'build.mjs');

export interface GoPeers {
  /** stdlib HTTPS peer, installed Go, with symbols and DWARF */
  gotls: string;
  /** the same, -ldflags='-s -w' */
  gotlsStripped: string;
  /** the same, built by the older release in build.mjs (OLD_GO) */
  gotlsOld: string;
  /** gRPC over TLS (google.golang.org/grpc) */
  gogrpc: string;
  /** the concurrent quote service of the causal-link tests (net/http server and client) */
  gocausal: string;
  /** the same, -ldflags='-s -w' */
  gocausalStripped: string;
  /** PostgreSQL client (github.com/jackc/pgx/v5, pgxpool): test/fixtures/go/pgx */
  gopgx: string;
}

let cached: { dir: string; missing: boolean } | undefined;

function state(): { dir: string; missing: boolean } {
  if (cached) return cached;
  try {
    cached = { dir: execFileSync('node', [builder, '--check'], { encoding: 'utf8' }).trim(), missing: false };
  } catch {
    cached = { dir: '', missing: true };
  }
  return cached;
}

export function skipWithoutGoPeers(): boolean {
  return skipWithoutTool(
    'the Go test peers',
    ['node', builder, '--check'],
    'run ci/setup, or node test/fixtures/go/build.mjs',
  );
}

export function goPeers(): GoPeers {
  const { dir, missing } = state();
  if (missing)
    throw new Error('the Go test peers are not built: run ci/setup (or node test/fixtures/go/build.mjs)');
  return {
    gotls: join(dir, 'gotls'),
    gotlsStripped: join(dir, 'gotls-stripped'),
    gotlsOld: join(dir, 'gotls-old'),
    gogrpc: join(dir, 'gogrpc'),
    gocausal: join(dir, 'gocausal'),
    gocausalStripped: join(dir, 'gocausal-stripped'),
    gopgx: join(dir, 'gopgx'),
  };
}

/** The bytes the peers send for request i of a body size (test/fixtures/go/tls/main.go: body). */
export function goBody(i: number, size: number): Buffer {
  if (size === 0) return Buffer.from(`payload-${i}`);
  return goPattern(i, size);
}

/** pattern(key, n) of the Go peer. */
export function goPattern(key: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 97 + ((i * 7 + key * 13 + Math.floor(i / 251)) % 26);
  return b;
}

/**
 * Copies a Go binary to `dst` with the version in its build information replaced by `version`
 * (same length: `go1.26.8` → `go1.99.8`), for tests of releases the code does not know.
 */
export function copyWithGoVersion(src: string, dst: string, version: string): void {
  const image = readFileSync(src);
  const sect = withElf(src, (elf) => elf.section('.go.buildinfo'));
  if (!sect) throw new Error(`${src} has no .go.buildinfo`);
  // Go 1.18+: a 32-byte header, then the version as a varint-prefixed string
  const len = image[sect.offset + 32]!;
  if (len !== version.length)
    throw new Error(`${src}: version is ${len} bytes, ${version} is ${version.length}`);
  image.write(version, sect.offset + 33, 'latin1');
  writeFileSync(dst, image, { mode: 0o755 });
}
