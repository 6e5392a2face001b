/**
 * The Java test peers (test/fixtures/java), built by ci/setup with Maven into
 * /var/cache/retap/java-peers/<hash>/. Tests use `describe.skipIf(skipWithoutJavaPeers())`: a skip
 * without them, a failure under RETAP_REQUIRE_EBPF=1.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../core/paths.js';
import { skipWithoutTool } from './privileged.js';

const builder = join(packageRoot(), 'test', 'fixtures', 'java', 'build.mjs');

export function skipWithoutJavaPeers(): boolean {
  return skipWithoutTool(
    'the Java test peers',
    ['node', builder, '--check'],
    'run ci/setup, or node test/fixtures/java/build.mjs',
  );
}

/** `java -cp` class path of the JDBC peer (its jar and the driver's, HikariCP's). */
export function jdbcClassPath(): string {
  const dir = execFileSync('node', [builder, '--check'], { encoding: 'utf8' }).trim();
  return join(dir, 'jdbc', '*');
}
