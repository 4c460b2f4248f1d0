/**
 * The `sam local invoke` path that works offline (README, "Deploying with SAM"): the double of
 * `npm run sam-local-double` holding the sample events' secret, and the function's built bundle
 * run as the container runs it — `index.handler` loaded from a directory holding only the
 * bundle, the variables of events/sam-local/env-vars.json pointing SECRETS_MANAGER_ENDPOINT at
 * the double, the sample event and a Lambda context. Also the log lines of a real bundle:
 * Lambda's JSON fields, and no secret value.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundles, isolatedEnv } from '../scripts/build';
import { engineByName } from '../scripts/engines';
import { type SamLocalDouble, startSamLocalDouble } from '../scripts/sam-local-double';
import { REPO } from './support/repo-copy';

const INITIAL_PASSWORD = `Initial-'"\\;--$$-Pässword-1`;
let dir: string;
let bundle: string;
let local: SamLocalDouble;
let closedPort: number;

/** A port nothing listens on: bound, then released. */
async function freeClosedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rl-sam-local-'));
  const { bundles } = await buildBundles({ outdir: join(dir, 'build'), engines: [engineByName('postgres')] });
  // The function's code directory holds the bundle only, as SAM's artifacts do.
  bundle = join(dir, 'task', 'index.js');
  rmSync(join(dir, 'task'), { recursive: true, force: true });
  mkdirSync(join(dir, 'task'));
  copyFileSync(bundles[0].file, bundle);
  closedPort = await freeClosedPort();
  local = await startSamLocalDouble({
    secret: { engine: 'postgres', host: '127.0.0.1', port: closedPort, username: 'app', password: INITIAL_PASSWORD, ssl: false },
  });
}, 180_000);

afterAll(async () => {
  await local?.server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The env-vars file's variables, with its endpoint moved to the port the double got. */
function envVars(): Record<string, string> {
  const file = JSON.parse(readFileSync(join(REPO, 'events', 'sam-local', 'env-vars.json'), 'utf8'));
  const vars: Record<string, string> = { ...file.Parameters, ...(file.PostgresFunction ?? {}) };
  expect(vars.SECRETS_MANAGER_ENDPOINT).toBe('http://127.0.0.1:4566');
  vars.SECRETS_MANAGER_ENDPOINT = local.server.endpoint;
  return vars;
}

const INVOKE = `
const m = require(process.argv[1]);
const event = require(process.argv[2]);
m.handler(event, { awsRequestId: 'local-request-1', functionName: 'rotation-lambdas-postgres' }).then(
  () => process.stderr.write('RESULT ok\\n'),
  (e) => process.stderr.write('RESULT ' + e.constructor.name + ' ' + e.name + ' ' + e.code + '\\n'));
`;

/** Runs the bundle in a child process (asynchronously: the double answers from this process). */
async function invoke(eventFile: string): Promise<{ result: string; lines: Array<Record<string, unknown>>; raw: string }> {
  const env: NodeJS.ProcessEnv = {
    ...isolatedEnv(),
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_REGION: 'us-east-1',
    AWS_LAMBDA_FUNCTION_NAME: 'rotation-lambdas-postgres',
    AWS_LAMBDA_LOG_LEVEL: 'INFO',
    ...envVars(),
  };
  delete env.LOG_LEVEL;
  const r = await new Promise<{ stdout: string; stderr: string }>((res, rej) =>
    execFile(process.execPath, ['-e', INVOKE, bundle, join(REPO, 'events', eventFile)], { cwd: join(dir, 'task'), env, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? rej(new Error(`${err.message}\n${stderr}\n${stdout}`)) : res({ stdout, stderr }),
    ),
  );
  const result = /RESULT (.*)/.exec(r.stderr)?.[1] ?? `no result: ${r.stderr}`;
  const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return { result, lines, raw: r.stdout };
}

describe('sam local invoke path (offline)', () => {
  it('createSecret writes AWSPENDING through the HTTP double, with Lambda JSON log lines and no secret in them', async () => {
    const { result, lines, raw } = await invoke('createSecret.json');
    expect(result).toBe('ok');
    const pending = local.double.invoke('GetSecretValue', { SecretId: local.secretId, VersionStage: 'AWSPENDING' }) as { SecretString: string; VersionId: string };
    expect(pending.VersionId).toBe(local.token);
    const value = JSON.parse(pending.SecretString);
    expect(value.password).not.toBe(INITIAL_PASSWORD);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) {
      expect(l).toMatchObject({ level: 'INFO', function_request_id: 'local-request-1', function_name: 'rotation-lambdas-postgres', cold_start: true, step: 'createSecret' });
      expect(typeof l.message).toBe('string');
      expect(new Date(String(l.timestamp)).toISOString()).toBe(l.timestamp);
    }
    expect(lines.map((l) => l.message)).toContain('step succeeded');
    for (const secret of [INITIAL_PASSWORD, value.password]) expect(raw).not.toContain(secret);
  });

  it('setSecret fails with its class name as errorType (KeepNames) and code NETWORK when the database is not there', async () => {
    const { result, lines, raw } = await invoke('setSecret.json');
    // Lambda reports constructor.name as errorType: it must be the framework's class name, not a minified one.
    const [className, name, code] = result.split(' ');
    expect(className).toMatch(/^[A-Z][A-Za-z]{3,}Error$/);
    expect(className).toBe(name);
    expect(code).toBe('NETWORK');
    const failed = lines.find((l) => l.message === 'step failed');
    expect(failed).toMatchObject({ level: 'ERROR', errorCode: 'NETWORK', function_request_id: 'local-request-1' });
    const pending = JSON.parse((local.double.invoke('GetSecretValue', { SecretId: local.secretId, VersionStage: 'AWSPENDING' }) as { SecretString: string }).SecretString);
    for (const secret of [INITIAL_PASSWORD, pending.password]) expect(raw).not.toContain(secret);
  });
});
