/**
 * The custom-rotator example (examples/api-key) end to end: a real HTTP service that accepts
 * registered keys, the example rotator built on the base class, and the Secrets Manager double.
 */
import { CreateSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyRotator } from '../examples/api-key/rotator';
import { createHandler } from '../src';
import { SecretsManagerDouble } from '../src/testing/secrets-manager-double';

const keys = new Map<string, string>([['k-0', 'Initial-Api-Key-0001']]);
let server: Server;
let endpoint: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const auth = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    const authorised = [...keys.values()].includes(auth);
    if (!authorised) return void res.writeHead(401).end();
    if (req.method === 'GET' && req.url === '/whoami') return void res.writeHead(200).end('{}');
    const m = /^\/keys\/([^/]+)$/.exec(req.url ?? '');
    if (req.method === 'PUT' && m) {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        keys.set(decodeURIComponent(m[1]), JSON.parse(body).apiKey);
        res.writeHead(204).end();
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

it('rotates an API key through the base class: only generatePending, setSecret and verify written', async () => {
  const sm = new SecretsManagerDouble();
  const client = sm.client();
  const lines: string[] = [];
  const fn = 'arn:aws:lambda:us-east-1:123456789012:function:api-key';
  sm.registerFunction(fn, createHandler(new ApiKeyRotator(), { client, env: {}, logSink: (l) => lines.push(l) }));
  const { ARN } = await client.send(
    new CreateSecretCommand({ Name: 'example/api-key', SecretString: JSON.stringify({ endpoint, keyId: 'k-0', apiKey: 'Initial-Api-Key-0001' }) }),
  );
  for (let i = 1; i <= 2; i++) {
    const r = await sm.rotateAndWait(ARN!, { lambdaArn: fn });
    expect(r.succeeded).toBe(true);
    const now = JSON.parse((await client.send(new GetSecretValueCommand({ SecretId: ARN }))).SecretString!);
    expect(keys.get(now.keyId)).toBe(now.apiKey);
    expect(now.apiKey).toMatch(/^[A-Za-z0-9]{40}$/);
    for (const l of lines) expect(l).not.toContain(now.apiKey);
  }
  expect(keys.size).toBe(3);
});

describe('the base class\'s protocol rules hold for the custom rotator', () => {
  async function setup() {
    const sm = new SecretsManagerDouble();
    const client = sm.client();
    const lines: string[] = [];
    const fn = 'arn:aws:lambda:us-east-1:123456789012:function:api-key-protocol';
    const handler = createHandler(new ApiKeyRotator(), { client, env: {}, logSink: (l) => lines.push(l) });
    sm.registerFunction(fn, handler);
    const { ARN } = await client.send(
      new CreateSecretCommand({ Name: `example/api-key-${Math.random()}`, SecretString: JSON.stringify({ endpoint, keyId: 'k-0', apiKey: 'Initial-Api-Key-0001' }) }),
    );
    const stages = () => sm.versionStages(ARN!);
    const holder = (label: string) => Object.entries(stages()).find(([, s]) => s.includes(label))?.[0];
    return { sm, client, lines, fn, handler, arn: ARN!, holder };
  }

  it('passes the RotateImmediately=false test run (testSecret alone, on the value-less placeholder): it verifies AWSCURRENT', async () => {
    const { sm, fn, arn, lines, holder } = await setup();
    const before = holder('AWSCURRENT');
    const r = await sm.rotateAndWait(arn, { lambdaArn: fn, rotateImmediately: false });
    expect(r).toMatchObject({ succeeded: true, steps: ['testSecret'] });
    expect(holder('AWSCURRENT')).toBe(before);
    expect(lines.map((l) => JSON.parse(l).message)).toContain('AWSCURRENT works');
  });

  it('an out-of-order finishSecret (setSecret never ran) is refused: AUTH, AWSCURRENT does not move, no key registered', async () => {
    const { sm, handler, arn, holder } = await setup();
    const before = holder('AWSCURRENT');
    const registered = keys.size;
    const run = sm.beginRotation(arn);
    await handler(run.event('createSecret'));
    const err = await handler(run.event('finishSecret')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AUTH', message: expect.stringMatching(/The AWSPENDING key .* does not authenticate: HTTP 401/) });
    expect(holder('AWSCURRENT')).toBe(before);
    expect(keys.size).toBe(registered);
  });

  it('finishSecret on the value-less placeholder is refused with STATE', async () => {
    const { sm, handler, arn, holder } = await setup();
    const before = holder('AWSCURRENT');
    const run = sm.beginRotation(arn);
    await expect(handler(run.event('finishSecret'))).rejects.toMatchObject({ code: 'STATE' });
    expect(holder('AWSCURRENT')).toBe(before);
  });
});
