import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway certificate authority and a server certificate it signed, for TLS tests. */
export interface TestCerts {
  dir: string;
  caPem: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** A second, unrelated CA: verification against it must fail. */
  otherCaPem: string;
}

/**
 * Generates a self-signed CA and a server certificate for `localhost` and 127.0.0.1 with the
 * openssl CLI (Debian's openssl package). The key files are readable by their owner only, as
 * PostgreSQL requires; `owner` (a system user name) gets them chowned when given.
 */
export function makeTestCerts(owner?: string): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'rl-certs-'));
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=rotation-lambdas test CA',
    '-keyout', 'ca.key', '-out', 'ca.pem']);
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=unrelated test CA',
    '-keyout', 'other-ca.key', '-out', 'other-ca.pem']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-extfile', 'san.ext', '-out', 'server.pem']);
  execFileSync('chmod', ['600', join(dir, 'server.key')]);
  execFileSync('chmod', ['755', dir]);
  if (owner) execFileSync('chown', [owner, join(dir, 'server.key'), join(dir, 'server.pem'), join(dir, 'ca.pem')]);
  return {
    dir,
    caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    caFile: join(dir, 'ca.pem'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server.key'),
    otherCaPem: readFileSync(join(dir, 'other-ca.pem'), 'utf8'),
  };
}
