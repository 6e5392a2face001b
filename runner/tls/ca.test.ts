import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEphemeralCa, subjectAltNames } from './ca.js';

const dir = mkdtempSync(join(tmpdir(), 'retap-ca-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ephemeral CA', () => {
  it('writes SANs for names and IP literals', () => {
    expect(subjectAltNames(['Payments.internal', '127.0.0.3', '[::1]', 'payments.internal'])).toBe(
      'DNS:payments.internal,IP:127.0.0.3,IP:::1',
    );
  });

  it('signs leaf certificates the CA verifies, keeps keys 0600, reuses the CA in the same dir', async () => {
    const ca = await createEphemeralCa(dir);
    const leaf = ca.certFor(['payments.internal', '127.0.0.3']);
    const x = new X509Certificate(leaf.cert);
    const root = new X509Certificate(ca.caCert);
    expect(x.verify(root.publicKey)).toBe(true);
    expect(x.checkHost('payments.internal')).toBe('payments.internal');
    expect(x.checkIP('127.0.0.3')).toBe('127.0.0.3');
    expect(x.checkHost('other.internal')).toBeUndefined();
    expect(ca.certFor(['payments.internal', '127.0.0.3'])).toBe(leaf);
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.key')))
      expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    const again = await createEphemeralCa(dir);
    expect(again.caCert).toBe(ca.caCert);
  });
});
