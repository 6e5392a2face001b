/**
 * A self-signed P-256 certificate (for localhost and 127.0.0.1 unless told other names), for TLS
 * peers in tests and benchmarks (bench/ imports it too).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export function selfSignedCert(
  dir: string,
  subjectAltName = 'DNS:localhost,IP:127.0.0.1',
): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      `subjectAltName=${subjectAltName}`,
    ],
    // stderr is kept so that a failure says what openssl objected to
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { cert, key };
}
