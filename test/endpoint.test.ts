/**
 * The handler as deployed: no injected client. It builds its own Secrets Manager client from
 * SECRETS_MANAGER_ENDPOINT, once per container, and talks to the double over real HTTP.
 */
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHandler, Rotator, type StepContext } from '../src';
import { startSecretsManagerServer } from '../src/testing/http-server';
import { SecretsManagerDouble } from '../src/testing/secrets-manager-double';
import { freePort } from './support/server-process';

class CountingRotator extends Rotator {
  readonly name = 'counting';
  async generatePending(current: string): Promise<string> {
    return JSON.stringify({ n: JSON.parse(current).n + 1 });
  }
  async setSecret(_ctx: StepContext): Promise<void> {}
  async verify(value: string): Promise<void> {
    if (typeof JSON.parse(value).n !== 'number') throw new Error('not a counter');
  }
}

const saved = { ...process.env };
let sm: SecretsManagerDouble;
let server: Awaited<ReturnType<typeof startSecretsManagerServer>>;

beforeAll(async () => {
  sm = new SecretsManagerDouble();
  server = await startSecretsManagerServer(sm);
  // What Lambda provides: a region and credentials in the environment.
  Object.assign(process.env, { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
});

afterAll(async () => {
  process.env = saved;
  await server.close();
});

it('uses SECRETS_MANAGER_ENDPOINT when no client is given', async () => {
  const handler = createHandler(new CountingRotator(), { env: { SECRETS_MANAGER_ENDPOINT: server.endpoint }, logSink: () => undefined });
  const fn = 'arn:aws:lambda:us-east-1:123456789012:function:counting';
  sm.registerFunction(fn, handler);
  const admin = new SecretsManagerClient({ endpoint: server.endpoint });
  const { ARN } = await admin.send(new CreateSecretCommand({ Name: 'endpoint/test', SecretString: '{"n":1}' }));
  sm.resetCalls();
  const r = await sm.rotateAndWait(ARN!, { lambdaArn: fn });
  expect(r.succeeded).toBe(true);
  expect(JSON.parse((await admin.send(new GetSecretValueCommand({ SecretId: ARN }))).SecretString!).n).toBe(2);
  // The handler's calls reached the double over HTTP: DescribeSecret once per step.
  expect(sm.countCalls('DescribeSecret')).toBe(4);
});

it('a wrong endpoint fails the step with the SDK\'s network error, not a hang', async () => {
  const handler = createHandler(new CountingRotator(), { env: { SECRETS_MANAGER_ENDPOINT: `http://127.0.0.1:${await freePort()}` }, logSink: () => undefined });
  await expect(handler({ SecretId: 'x', ClientRequestToken: 'y'.repeat(36), Step: 'createSecret' })).rejects.toThrow(/ECONNREFUSED|connect/i);
});
