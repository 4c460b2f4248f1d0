import { describe, expect, it } from 'vitest';
import { defaultAlternateUsername, parseDbSecret, sameHost, strategyOf } from '../../src/db/secret';
import { nodeTlsOptions, parseTlsMode, tlsAttempts } from '../../src/db/tls';
import { SecretFormatError } from '../../src/errors';

const base = { engine: 'postgres', host: 'h', username: 'u', password: 'SuperSecretPw1!' };

describe('database secret parsing', () => {
  it('accepts a valid secret and keeps unknown keys', () => {
    const s = parseDbSecret(JSON.stringify({ ...base, port: '5433', extra: 'kept' }), 'AWSCURRENT', ['postgres']);
    expect(s.extra).toBe('kept');
  });

  it.each([
    ['engine', { ...base, engine: undefined }],
    ['host', { ...base, host: '' }],
    ['username', { ...base, username: 42 }],
    ['password', { ...base, password: undefined }],
  ])('names the missing field %s', (field, value) => {
    expect(() => parseDbSecret(JSON.stringify(value), 'AWSCURRENT', ['postgres'])).toThrow(new RegExp(`"${field}"`));
  });

  it('never echoes the secret when the JSON is invalid', () => {
    try {
      parseDbSecret('{"password":"SuperSecretPw1!"', 'AWSPENDING', ['postgres']);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SecretFormatError);
      expect((err as Error).message).not.toContain('SuperSecretPw1!');
      expect((err as Error).message).toContain('AWSPENDING');
    }
  });

  it('rejects an engine the function does not rotate, a bad port, a bad strategy', () => {
    expect(() => parseDbSecret(JSON.stringify({ ...base, engine: 'mysql' }), 'x', ['postgres'])).toThrow(/engine "mysql"/);
    expect(() => parseDbSecret(JSON.stringify({ ...base, port: 70000 }), 'x', ['postgres'])).toThrow(/port/);
    expect(() => parseDbSecret(JSON.stringify({ ...base, rotationStrategy: 'both' }), 'x', ['postgres'])).toThrow(/rotationStrategy/);
  });

  it('chooses the strategy per secret', () => {
    expect(strategyOf({ ...base })).toBe('single');
    expect(strategyOf({ ...base, masterarn: 'arn:m' })).toBe('alternating');
    expect(strategyOf({ ...base, masterarn: 'arn:m', rotationStrategy: 'single' })).toBe('single');
  });

  it('alternates user <-> user_clone', () => {
    expect(defaultAlternateUsername('app')).toBe('app_clone');
    expect(defaultAlternateUsername('app_clone')).toBe('app');
    expect(defaultAlternateUsername('_clone')).toBe('_clone_clone');
  });

  it('compares hosts like DNS', () => {
    expect(sameHost('DB.Example.com.', 'db.example.com')).toBe(true);
    expect(sameHost('a', 'b')).toBe(false);
  });
});

describe('TLS modes', () => {
  it('defaults to verify-full; no silent plaintext fallback', () => {
    expect(parseTlsMode(undefined, {})).toBe('verify-full');
    expect(tlsAttempts('verify-full', undefined)).toHaveLength(1);
  });

  it('maps the secret ssl field', () => {
    expect(parseTlsMode(true, {})).toBe('verify-full');
    expect(parseTlsMode('TRUE', {})).toBe('verify-full');
    expect(parseTlsMode(false, {})).toBe('disable');
    expect(parseTlsMode('false', {})).toBe('disable');
    expect(parseTlsMode('prefer', {})).toBe('prefer');
    expect(parseTlsMode('verify-ca', {})).toBe('verify-ca');
    expect(() => parseTlsMode(1, {})).toThrow(SecretFormatError);
    expect(() => parseTlsMode('maybe', {})).toThrow(/"ssl"/);
  });

  it('DEFAULT_SSL_MODE changes the default for an absent field only', () => {
    expect(parseTlsMode(undefined, { DEFAULT_SSL_MODE: 'require' })).toBe('require');
    expect(parseTlsMode(true, { DEFAULT_SSL_MODE: 'disable' })).toBe('verify-full');
  });

  it('prefer tries verified TLS first, then plaintext', () => {
    const [first, second] = tlsAttempts('prefer', 'PEM');
    expect(first).toEqual({ enabled: true, verifyChain: true, verifyHostname: true, ca: 'PEM' });
    expect(second.enabled).toBe(false);
  });

  it('builds Node TLS options', () => {
    expect(nodeTlsOptions({ enabled: false, verifyChain: false, verifyHostname: false }, 'h')).toBeUndefined();
    const full = nodeTlsOptions({ enabled: true, verifyChain: true, verifyHostname: true, ca: 'PEM' }, 'db.example')!;
    expect(full).toMatchObject({ ca: 'PEM', rejectUnauthorized: true, servername: 'db.example' });
    expect(full.checkServerIdentity).toBeUndefined();
    const ca = nodeTlsOptions({ enabled: true, verifyChain: true, verifyHostname: false }, '10.0.0.1')!;
    expect(ca.servername).toBeUndefined();
    expect(typeof ca.checkServerIdentity).toBe('function');
  });
});

describe('default trust store', () => {
  it('is Node\'s roots plus the Amazon RDS CAs of every region, used when no CA is configured', async () => {
    const { X509Certificate } = await import('node:crypto');
    const { rootCertificates } = await import('node:tls');
    const { defaultTrustedCas } = await import('../../src/db/tls');
    const cas = defaultTrustedCas();
    expect(cas.length).toBeGreaterThan(rootCertificates.length);
    const subjects = cas.slice(rootCertificates.length).map((pem) => new X509Certificate(pem).subject);
    expect(subjects.some((s) => /Amazon RDS/.test(s) && /us-east-1/.test(s))).toBe(true);
    expect(subjects.some((s) => /Amazon RDS/.test(s) && /eu-west-1/.test(s))).toBe(true);
    const opts = nodeTlsOptions({ enabled: true, verifyChain: true, verifyHostname: true }, 'db.example')!;
    expect(opts.ca).toBe(cas);
  });
});
