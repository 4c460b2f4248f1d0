/**
 * The double over HTTP (AWS JSON 1.1 on a local port): the real SDK client through its real
 * node:http transport, a full rotation whose handler talks HTTP too, the raw error shape, the
 * `aws` CLI, and the serve.ts command.
 */
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler, Rotator } from '../../src';
import { type SecretsManagerServer, startSecretsManagerServer } from '../../src/testing/http-server';
import { SecretsManagerDouble } from '../../src/testing/secrets-manager-double';
import { findOnPath } from '../support/server-process';

const run = promisify(execFile);
const FN = 'arn:aws:lambda:us-east-1:123456789012:function:http-rotator';

let sm: SecretsManagerDouble;
let server: SecretsManagerServer;
let client: SecretsManagerClient;

beforeAll(async () => {
  sm = new SecretsManagerDouble();
  server = await startSecretsManagerServer(sm);
  client = new SecretsManagerClient({
    endpoint: server.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' },
  });
});

afterAll(async () => {
  client?.destroy();
  await server?.close();
});

class CounterRotator extends Rotator {
  readonly name = 'counter';
  async generatePending(current: string): Promise<string> {
    return String(Number(current) + 1);
  }
  async setSecret(): Promise<void> {}
  async verify(value: string): Promise<void> {
    if (!/^\d+$/.test(value)) throw new Error('not a number');
  }
}

describe('the SDK over HTTP', () => {
  it('serves the API on the endpoint with the SDK’s own HTTP transport', async () => {
    expect(server.endpoint).toBe(`http://127.0.0.1:${server.port}`);
    const created = await client.send(new CreateSecretCommand({ Name: 'http/app', SecretString: `it's "quoted" \\ ✓` }));
    expect(created.ARN).toMatch(/^arn:aws:secretsmanager:us-east-1:123456789012:secret:http\/app-[A-Za-z0-9]{6}$/);
    const got = await client.send(new GetSecretValueCommand({ SecretId: created.ARN }));
    expect(got.SecretString).toBe(`it's "quoted" \\ ✓`);
    expect(got.CreatedDate).toBeInstanceOf(Date);
    const e = await client.send(new GetSecretValueCommand({ SecretId: 'http/none' })).catch((x) => x);
    expect(e).toMatchObject({ name: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret.", $metadata: { httpStatusCode: 400 } });
  });

  it('drives a rotation whose handler reaches the double over HTTP', async () => {
    const { ARN } = await client.send(new CreateSecretCommand({ Name: 'http/counter', SecretString: '41' }));
    const lines: string[] = [];
    sm.registerFunction(FN, createHandler(new CounterRotator(), { client, env: {}, logSink: (l) => lines.push(l) }));
    const outcome = await sm.rotateAndWait(ARN!, { lambdaArn: FN });
    expect(outcome).toMatchObject({ succeeded: true, attempts: 1 });
    expect((await client.send(new GetSecretValueCommand({ SecretId: ARN }))).SecretString).toBe('42');
    expect((await client.send(new DescribeSecretCommand({ SecretId: ARN }))).VersionIdsToStages![outcome.versionId]).toEqual(['AWSCURRENT']);
    expect(lines.map((l) => JSON.parse(l).outcome).filter(Boolean)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
  });
});

describe('raw HTTP', () => {
  it('answers errors with 400 and exactly {__type, Message} in application/x-amz-json-1.1, ignoring the signature', async () => {
    const res = await fetch(`${server.endpoint}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'secretsmanager.GetSecretValue',
        authorization: 'AWS4-HMAC-SHA256 Credential=garbage, SignedHeaders=host, Signature=0000',
      },
      body: JSON.stringify({ SecretId: 'raw/missing' }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    const body = await res.json();
    expect(body).toEqual({ __type: 'ResourceNotFoundException', Message: "Secrets Manager can't find the specified secret." });
  });

  it('rejects a put without ClientRequestToken (SDKs add one; raw callers must)', async () => {
    await client.send(new CreateSecretCommand({ Name: 'raw/put', SecretString: 'a' }));
    const res = await fetch(server.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.PutSecretValue' },
      body: JSON.stringify({ SecretId: 'raw/put', SecretString: 'b' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ __type: 'InvalidRequestException', Message: 'You must provide a ClientRequestToken value. We recommend a UUID-type value.' });
  });

  it('only POST / is an operation', async () => {
    expect((await fetch(server.endpoint)).status).toBe(405);
    expect((await fetch(`${server.endpoint}/other`, { method: 'POST', body: '{}' })).status).toBe(404);
    const noTarget = await fetch(server.endpoint, { method: 'POST', body: '{}' });
    expect(noTarget.status).toBe(400);
    expect(((await noTarget.json()) as { __type: string }).__type).toBe('UnknownOperationException');
  });

  it('a client can keep its connection open while the server closes', async () => {
    const other = await startSecretsManagerServer(new SecretsManagerDouble(), { port: 0 });
    const c = new SecretsManagerClient({ endpoint: other.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    await c.send(new CreateSecretCommand({ Name: 'keepalive', SecretString: 'x' }));
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(1000);
    c.destroy();
  });

  it('close() still answers a request in flight, with Connection: close, and then ends at once', async () => {
    const other = await startSecretsManagerServer(new SecretsManagerDouble());
    const body = JSON.stringify({ SecretId: 'inflight/missing' });
    const socket = connect(other.port, '127.0.0.1');
    await once(socket, 'connect');
    let response = '';
    socket.on('data', (d: Buffer) => (response += d.toString()));
    const ended = once(socket, 'end');
    // Headers and half of the body: the request is in flight when close() is called.
    socket.write(
      `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n` +
        `X-Amz-Target: secretsmanager.GetSecretValue\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 5)}`,
    );
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    const closed = other.close();
    socket.write(body.slice(5));
    await Promise.all([closed, ended]);
    // Well under both the keep-alive timeout (5 s) and the forced cut (2 s).
    expect(Date.now() - started).toBeLessThan(1000);
    expect(response).toMatch(/^HTTP\/1\.1 400 /);
    expect(response.toLowerCase()).toContain('connection: close');
    expect(JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4))).toEqual({
      __type: 'ResourceNotFoundException',
      Message: "Secrets Manager can't find the specified secret.",
    });
    socket.destroy();
  });
});

const aws = findOnPath('aws');

describe('the aws CLI against the HTTP endpoint', () => {
  it.skipIf(!aws)('create-secret, put-secret-value, get-secret-value and describe-secret work with dummy credentials', async () => {
    const env = {
      ...process.env,
      AWS_ACCESS_KEY_ID: 'AKIDCLITEST',
      AWS_SECRET_ACCESS_KEY: 'cli-test-secret',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: '/nonexistent/aws-config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
      AWS_PAGER: '',
    };
    const cli = async (...args: string[]): Promise<Record<string, unknown>> => {
      const { stdout } = await run(aws!, ['--endpoint-url', server.endpoint, '--output', 'json', 'secretsmanager', ...args], { env, timeout: 30_000 });
      return JSON.parse(stdout);
    };
    const value = `{"password":"p'a\\"ss; %"}`;
    const created = await cli('create-secret', '--name', 'cli/app', '--secret-string', value, '--description', 'from the CLI');
    expect(created).toMatchObject({ Name: 'cli/app' });
    expect(created.ARN).toMatch(/^arn:aws:secretsmanager:us-east-1:123456789012:secret:cli\/app-/);
    const put = await cli('put-secret-value', '--secret-id', 'cli/app', '--secret-string', 'second', '--version-stages', 'AWSPENDING');
    expect(put.VersionStages).toEqual(['AWSPENDING']);
    // Independent calls in parallel: each CLI start costs about a second.
    const [got, described, failed] = await Promise.all([
      cli('get-secret-value', '--secret-id', created.ARN as string),
      cli('describe-secret', '--secret-id', 'cli/app'),
      run(aws!, ['--endpoint-url', server.endpoint, 'secretsmanager', 'get-secret-value', '--secret-id', 'cli/none'], { env }).catch((e) => e),
    ]);
    expect(got).toMatchObject({ Name: 'cli/app', SecretString: value, VersionId: created.VersionId, VersionStages: ['AWSCURRENT'] });
    expect(described).toMatchObject({
      ARN: created.ARN,
      Description: 'from the CLI',
      VersionIdsToStages: { [created.VersionId as string]: ['AWSCURRENT'], [put.VersionId as string]: ['AWSPENDING'] },
    });
    // Errors reach the CLI as the service's code and message.
    expect(failed.stderr).toContain('ResourceNotFoundException');
    expect(failed.stderr).toContain("Secrets Manager can't find the specified secret.");
    // And the SDK sees what the CLI wrote.
    const viaSdk = await client.send(new PutSecretValueCommand({ SecretId: 'cli/app', SecretString: 'third' }));
    expect(viaSdk.VersionStages).toEqual(['AWSCURRENT']);
  });
});

describe('serve.ts', () => {
  it('starts an empty double on the requested port and prints the endpoint', async () => {
    const child = spawn(process.execPath, [join(__dirname, '../../node_modules/tsx/dist/cli.mjs'), join(__dirname, '../../src/testing/serve.ts'), '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const endpoint = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`serve.ts printed no endpoint: ${out}`)), 20_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        child.once('exit', (code) => reject(new Error(`serve.ts exited with ${code}`)));
      });
      const c = new SecretsManagerClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
      await c.send(new CreateSecretCommand({ Name: 'served', SecretString: 'v' }));
      expect((await c.send(new GetSecretValueCommand({ SecretId: 'served' }))).SecretString).toBe('v');
      c.destroy();
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });
});
