/**
 * The custom-rotator example (examples/api-key) end to end: a real HTTP service that accepts
 * registered keys, the example rotator built on the base class, and the Secrets Manager double.
 */
import { CreateSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
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

it('rotates an API key through the base class: only generatePending, setSecret and testSecret written', async () => {
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
