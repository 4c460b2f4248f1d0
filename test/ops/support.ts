/**
 * Helpers for the operations tests: the CLI run in-process (main() against the harness's double
 * served over HTTP) or as a spawned process, the configuration test run (RotateImmediately=false),
 * and a no-leak assertion over CLI output in every encoding a value could take.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { main } from '../../src/ops/cli';
import type { Env } from '../../src/password';
import { startSecretsManagerServer } from '../../src/testing';
import type { RotationHarness } from '../support/rotation-harness';

export const ROOT = join(__dirname, '..', '..');

/** The SDK's default credential chain reads the process environment: dummy keys for the double. */
export function fakeAwsCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID ??= 'AKIDOPSTEST';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'ops-test-secret-access-key';
}

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** main() in this process, against the harness's double over HTTP. */
export async function runCli(h: RotationHarness, args: string[], env: Env = {}): Promise<CliResult> {
  fakeAwsCredentials();
  const server = await startSecretsManagerServer(h.sm);
  let out = '';
  let err = '';
  try {
    const code = await main([...args, '--endpoint-url', server.endpoint, '--region', h.sm.region], {
      out: (t) => (out += t),
      err: (t) => (err += t),
      env: { ...h.env, ...env },
    });
    return { code, out, err };
  } finally {
    await server.close();
  }
}

/** The CLI as a user runs it: `node bin/rotation-lambdas.js ...` (or another script) in a child process, endpoint from SECRETS_MANAGER_ENDPOINT. */
export function spawnCli(endpoint: string, args: string[], env: Env = {}, script = join(ROOT, 'bin', 'rotation-lambdas.js')): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, ...args],
      {
        cwd: ROOT,
        timeout: 60_000,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          NODE_NO_WARNINGS: '1',
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'AKIDOPSTEST',
          AWS_SECRET_ACCESS_KEY: 'ops-test-secret-access-key',
          AWS_EC2_METADATA_DISABLED: 'true',
          SECRETS_MANAGER_ENDPOINT: endpoint,
          ...env,
        },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 99) : 0;
        resolve({ code, out: String(stdout), err: String(stderr) });
      },
    );
  });
}

/** RotateSecret with RotateImmediately=false: the service runs testSecret alone, on a value-less AWSPENDING. */
export function configurationTest(h: RotationHarness, arn: string) {
  return h.sm.rotateAndWait(arn, { lambdaArn: h.lambdaArn, rotateImmediately: false });
}

/** Every form a value could be printed in: raw, JSON-escaped, base64 (both alphabets), URL-encoded. */
export function encodings(value: string): string[] {
  const forms = new Set<string>([value, JSON.stringify(value).slice(1, -1), Buffer.from(value).toString('base64'), Buffer.from(value).toString('base64url')]);
  try {
    forms.add(encodeURIComponent(value));
    forms.add(encodeURI(value));
  } catch {
    // lone surrogate
  }
  return [...forms].filter((f) => f.length >= 6);
}

/** Throws if any value appears in the text in any of its encodings. */
export function assertNoSecretIn(text: string, values: Array<string | undefined>, where = 'output'): void {
  values.forEach((v, i) => {
    if (!v) return;
    for (const f of encodings(v)) {
      if (text.includes(f)) throw new Error(`Secret #${i + 1} (length ${v.length}) appears in ${where}: ${text.split(f).join('<LEAKED>').slice(0, 400)}`);
    }
  });
}
