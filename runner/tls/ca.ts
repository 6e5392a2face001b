/**
 * An ephemeral certificate authority for TLS mocks, made with the `openssl` CLI (node:crypto
 * cannot sign certificates). The CA key and every leaf key stay in `dir` with mode 0600; the
 * build under test trusts `caCertPath` through SSL_CERT_FILE / NODE_EXTRA_CA_CERTS / … .
 * A dir that already holds a CA made by us (ca.pem + ca.key) is reused, so a client that trusted
 * it once keeps trusting it (`retap mock --tls-dir`).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { ErrorCodes, RetapError } from '../../core/errors.js';

export interface LeafCert {
  /** PEM certificate followed by nothing else (the CA is not chained: clients trust it directly). */
  cert: string;
  /** PEM private key (PKCS#8). */
  key: string;
}

export interface EphemeralCa {
  dir: string;
  caCertPath: string;
  /** PEM of the CA certificate. */
  caCert: string;
  /** A server certificate whose SANs are `hostnames` (DNS names and IP literals); cached per set. */
  certFor(hostnames: string[]): LeafCert;
}

const OPENSSL_TIMEOUT_MS = 20_000;
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const CA_CERT = 'ca.pem';
const CA_KEY = 'ca.key';

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, timeout: OPENSSL_TIMEOUT_MS, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') {
      throw new RetapError(
        ErrorCodes.ENV_SETUP,
        'cannot make TLS certificates for mocks: the openssl command is not installed',
        {
          hint: 'Install it (apt-get install openssl) and run again.',
          cause: e,
        },
      );
    }
    const tail = (err.stderr?.toString() ?? '').trim().split('\n').slice(-3).join(' | ');
    throw new RetapError(
      ErrorCodes.ENV_SETUP,
      `openssl ${args[0]} failed in ${cwd}: ${tail || err.message}`,
      {
        hint: 'Check that the directory is writable and openssl works (openssl version).',
        cause: e,
      },
    );
  }
}

const secret = (path: string) => chmodSync(path, 0o600);

/** SAN list for openssl: IP literals as IP:, names as DNS:. Brackets of IPv6 hosts are dropped. */
export function subjectAltNames(hostnames: string[]): string {
  const seen = new Set<string>();
  for (const raw of hostnames) {
    const h = raw.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (h === '' || /[\s,]/.test(h)) continue;
    seen.add(isIP(h) ? `IP:${h}` : `DNS:${h}`);
  }
  return [...seen].join(',');
}

/** Creates (or reuses) the CA in `dir`; leaf certificates are made on demand by `certFor`. */
export async function createEphemeralCa(dir: string): Promise<EphemeralCa> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCertPath = join(dir, CA_CERT);
  const caKeyPath = join(dir, CA_KEY);
  if (!existsSync(caCertPath) || !existsSync(caKeyPath)) {
    openssl(
      [
        'req',
        '-x509',
        ...EC,
        '-keyout',
        CA_KEY,
        '-out',
        CA_CERT,
        '-days',
        '7',
        '-subj',
        `/CN=retap ephemeral mock CA ${Date.now().toString(36)}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
    secret(caKeyPath);
    secret(caCertPath);
  }
  const caCert = readFileSync(caCertPath, 'utf8');
  const cache = new Map<string, LeafCert>();

  const certFor = (hostnames: string[]): LeafCert => {
    const san = subjectAltNames(hostnames);
    if (san === '')
      throw new RetapError(ErrorCodes.INTERNAL, 'certFor needs at least one host name or IP address');
    const cached = cache.get(san);
    if (cached) return cached;
    const base = `leaf-${createHash('sha256').update(san).digest('hex').slice(0, 16)}`;
    const [keyFile, csrFile, extFile, certFile] = ['key', 'csr', 'ext', 'pem'].map((x) => `${base}.${x}`) as [
      string,
      string,
      string,
      string,
    ];
    const cn = (hostnames[0] ?? 'mock').replace(/[/\\=]/g, '_').slice(0, 60);
    openssl(['req', ...EC, '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${cn}`], dir);
    writeFileSync(
      join(dir, extFile),
      [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        `subjectAltName=${san}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csrFile,
        '-CA',
        CA_CERT,
        '-CAkey',
        CA_KEY,
        '-CAcreateserial',
        '-out',
        certFile,
        '-days',
        '7',
        '-extfile',
        extFile,
      ],
      dir,
    );
    for (const f of [keyFile, certFile]) secret(join(dir, f));
    rmSync(join(dir, csrFile), { force: true });
    const leaf = {
      cert: readFileSync(join(dir, certFile), 'utf8'),
      key: readFileSync(join(dir, keyFile), 'utf8'),
    };
    cache.set(san, leaf);
    return leaf;
  };

  return { dir, caCertPath, caCert, certFor };
}
