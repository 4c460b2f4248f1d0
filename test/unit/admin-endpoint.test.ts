/**
 * Finding the database of an RDS-managed admin secret: tags, regions, engine names, and the
 * default RDS client (loaded lazily) talking to the RDS double over real HTTP, the way the
 * deployed function talks to RDS (AWS_ENDPOINT_URL_RDS is the SDK's own endpoint override).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRdsClientFactory, loadSdkClient, normaliseRdsEngine, rdsEndpoint, rdsTargetFromTags, regionOfArn } from '../../src/db/admin-endpoint';
import { ConfigError, RotationStateError } from '../../src/errors';
import { RdsDouble } from '../../src/testing';

describe('rdsTargetFromTags', () => {
  it('finds the instance or cluster tag in any case; a cluster tag wins; blank values do not count', () => {
    expect(rdsTargetFromTags(undefined)).toBeUndefined();
    expect(rdsTargetFromTags([{ Key: 'team', Value: 'db' }])).toBeUndefined();
    expect(rdsTargetFromTags([{ Key: 'aws:rds:primarydbinstancearn', Value: ' arn:aws:rds:us-east-1:1:db:a ' }])).toEqual({ kind: 'instance', arn: 'arn:aws:rds:us-east-1:1:db:a' });
    expect(
      rdsTargetFromTags([
        { Key: 'aws:rds:primaryDBInstanceArn', Value: 'arn:aws:rds:us-east-1:1:db:a' },
        { Key: 'AWS:RDS:PRIMARYDBCLUSTERARN', Value: 'arn:aws:rds:us-east-1:1:cluster:c' },
      ]),
    ).toEqual({ kind: 'cluster', arn: 'arn:aws:rds:us-east-1:1:cluster:c' });
    expect(rdsTargetFromTags([{ Key: 'aws:rds:primaryDBClusterArn', Value: '  ' }])).toBeUndefined();
  });

  it('reads the region of an ARN', () => {
    expect(regionOfArn('arn:aws-cn:rds:cn-north-1:123456789012:db:x')).toBe('cn-north-1');
    expect(regionOfArn('not-an-arn')).toBeUndefined();
  });

  it('maps RDS engine names the rotators do not list to theirs', () => {
    const sqlserver = ['sqlserver', 'sqlserver-ee', 'sqlserver-se', 'sqlserver-ex', 'sqlserver-web'];
    expect(normaliseRdsEngine('sqlserver-web', sqlserver)).toBe('sqlserver-web');
    expect(normaliseRdsEngine('custom-sqlserver-ee', sqlserver)).toBe('sqlserver-ee');
    expect(normaliseRdsEngine('custom-sqlserver-dev', sqlserver)).toBe('sqlserver');
    expect(normaliseRdsEngine('custom-oracle-se2', ['oracle', 'oracle-se2'])).toBe('oracle-se2');
    expect(normaliseRdsEngine('neo4j', ['mongo', 'docdb'])).toBe('neo4j');
    expect(normaliseRdsEngine('custom-oracle-ee-cdb', ['oracle'])).toBe('oracle');
    // Aurora MySQL 1 (end of life) is not guessed: refused later unless the admin secret names its engine.
    expect(normaliseRdsEngine('aurora', ['mysql', 'aurora-mysql', 'mariadb'])).toBe('aurora');
    expect(normaliseRdsEngine('aurora', ['postgres', 'aurora-postgresql'])).toBe('aurora');
    expect(normaliseRdsEngine('docdb', ['mongo', 'docdb'])).toBe('docdb');
  });
});

describe('rdsEndpoint with the default client over HTTP', () => {
  const rds = new RdsDouble('eu-north-1');
  let server: Server;
  const saved: Record<string, string | undefined> = {};
  const vars = { AWS_ENDPOINT_URL_RDS: '', AWS_ACCESS_KEY_ID: 'AKIDRDSHTTPTEST', AWS_SECRET_ACCESS_KEY: 'rds-http-test', AWS_SESSION_TOKEN: '' };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        // The region the client signed for: Credential=<key>/<date>/<region>/rds/aws4_request.
        const region = /Credential=[^/]+\/\d+\/([^/]+)\/rds\//.exec(String(req.headers.authorization))?.[1] ?? '';
        const out = rds.handle(region, Buffer.concat(chunks).toString('utf8'));
        res.writeHead(out.status, out.headers).end(out.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    vars.AWS_ENDPOINT_URL_RDS = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const [k, v] of Object.entries(vars)) {
      saved[k] = process.env[k];
      if (v) process.env[k] = v;
      else delete process.env[k];
    }
  });

  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('looks up an instance and a cluster by ARN, signed for the ARN\'s region', async () => {
    const instance = rds.addInstance({ id: 'orders-db', engine: 'postgres', address: 'orders-db.abc.eu-north-1.rds.amazonaws.com', port: 5432 });
    const cluster = rds.addCluster({ id: 'orders', engine: 'aurora-mysql', endpoint: 'orders.cluster-abc.eu-north-1.rds.amazonaws.com', port: 3306 });
    await expect(rdsEndpoint({ kind: 'instance', arn: instance }, defaultRdsClientFactory)).resolves.toEqual({
      host: 'orders-db.abc.eu-north-1.rds.amazonaws.com', port: 5432, engine: 'postgres', source: `RDS instance ${instance}`,
    });
    await expect(rdsEndpoint({ kind: 'cluster', arn: cluster }, defaultRdsClientFactory)).resolves.toEqual({
      host: 'orders.cluster-abc.eu-north-1.rds.amazonaws.com', port: 3306, engine: 'aurora-mysql', source: `RDS cluster ${cluster}`,
    });
    expect(rds.calls.map((c) => [c.action, c.region, c.params.DBInstanceIdentifier ?? c.params.DBClusterIdentifier])).toEqual([
      ['DescribeDBInstances', 'eu-north-1', instance],
      ['DescribeDBClusters', 'eu-north-1', cluster],
    ]);
  });

  it('an unknown database is a state error; an API refusal is a config error naming the permission', async () => {
    const missing = await rdsEndpoint({ kind: 'cluster', arn: rds.clusterArn('gone') }, defaultRdsClientFactory).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(RotationStateError);
    expect((missing as Error).message).toContain('which RDS does not know');
    // The double refuses another region, as RDS refuses a call it is not allowed.
    const refused = await rdsEndpoint({ kind: 'instance', arn: 'arn:aws:rds:sa-east-1:123456789012:db:x' }, defaultRdsClientFactory).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as Error).message).toMatch(/\(RDS instance arn:aws:rds:sa-east-1:123456789012:db:x\) failed: InvalidClientTokenId: .* needs rds:DescribeDBInstances on it/);
  });
});

describe('loadSdkClient (control-plane clients the Lambda bundles leave to the runtime\'s SDK)', () => {
  it('turns a missing package into a CONFIG error naming it and the remedy', () => {
    let err: unknown;
    try {
      loadSdkClient('@aws-sdk/client-not-there', () => require('@aws-sdk/client-not-there'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG');
    expect((err as ConfigError).message).toMatch(/^The AWS SDK package "@aws-sdk\/client-not-there" cannot be loaded\. /);
    expect((err as ConfigError).remedy).toBe(
      'Add "host" and "port" to the admin secret, or run where @aws-sdk/client-not-there is present (a Lambda Node.js runtime, or npm install --save-exact @aws-sdk/client-not-there).',
    );
  });

  it('names a missing dependency of the package too; other failures pass unchanged; a present package loads', () => {
    const missingDep = Object.assign(new Error("Cannot find module '@smithy/gone'\nRequire stack:\n- /x"), { code: 'MODULE_NOT_FOUND' });
    expect(() => loadSdkClient('@aws-sdk/client-rds', () => { throw missingDep; })).toThrow(/"@aws-sdk\/client-rds" cannot be loaded \(its module "@smithy\/gone" is missing\)/);
    const other = new SyntaxError('boom');
    expect(() => loadSdkClient('@aws-sdk/client-rds', () => { throw other; })).toThrow(other);
    expect(typeof loadSdkClient('@aws-sdk/client-rds', () => require('@aws-sdk/client-rds') as typeof import('@aws-sdk/client-rds')).RDSClient).toBe('function');
  });
});
