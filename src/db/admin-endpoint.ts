import type { RDSClient } from '@aws-sdk/client-rds';
import type { Tag } from '@aws-sdk/client-secrets-manager';
import { ConfigError, RotationError, RotationStateError } from '../errors';

/**
 * Where an admin secret that names no host connects. An RDS-managed master secret (RDS or
 * Aurora `ManageMasterUserPassword`, DocumentDB's managed master password) holds only username
 * and password; RDS tags it with the ARN of its database, and the database's endpoint comes
 * from the RDS API, i.e. from AWS's own record, never from the child secret, whose writers could
 * otherwise send the admin credentials to a server of their choice.
 */
export interface AdminEndpoint {
  host: string;
  port?: number;
  /** The engine as RDS names it (e.g. "sqlserver-se"), when RDS said. */
  engine?: string;
  /** For logs: where the endpoint came from. */
  source: string;
}

/** The tags RDS puts on the master secrets it manages (keys compared case-insensitively). */
export const RDS_INSTANCE_TAG = 'aws:rds:primaryDBInstanceArn';
export const RDS_CLUSTER_TAG = 'aws:rds:primaryDBClusterArn';

export interface RdsTarget {
  kind: 'instance' | 'cluster';
  arn: string;
}

/** The database an RDS-managed secret belongs to, from its tags (a cluster tag wins). */
export function rdsTargetFromTags(tags: readonly Tag[] | undefined): RdsTarget | undefined {
  const find = (key: string) => tags?.find((t) => t.Key?.toLowerCase() === key.toLowerCase())?.Value?.trim();
  const cluster = find(RDS_CLUSTER_TAG);
  if (cluster) return { kind: 'cluster', arn: cluster };
  const instance = find(RDS_INSTANCE_TAG);
  if (instance) return { kind: 'instance', arn: instance };
  return undefined;
}

/** The region of an ARN (arn:partition:service:region:account:resource), if it has one. */
export function regionOfArn(arn: string): string | undefined {
  const parts = arn.split(':');
  return parts.length >= 6 && parts[0] === 'arn' && parts[3] ? parts[3] : undefined;
}

/** Builds the RDS client for a region. Tests inject one served by an in-process double. */
export type RdsClientFactory = (region: string | undefined) => RDSClient | Promise<RDSClient>;

/**
 * The RDS SDK is loaded on first use only: most rotations never need it, and a cold start
 * should not pay for evaluating it.
 */
const loadRds = () => import('@aws-sdk/client-rds');

export const defaultRdsClientFactory: RdsClientFactory = (() => {
  const clients = new Map<string, RDSClient>();
  return async (region) => {
    const key = region ?? '';
    let c = clients.get(key);
    if (!c) {
      const { RDSClient } = await loadRds();
      // AWS_ENDPOINT_URL_RDS (read by the SDK itself) points it at a VPC endpoint if needed.
      c = new RDSClient(region ? { region } : {});
      clients.set(key, c);
    }
    return c;
  };
})();

/** Look up the endpoint of the database an RDS-managed master secret belongs to. */
export async function rdsEndpoint(target: RdsTarget, clientFor: RdsClientFactory): Promise<AdminEndpoint> {
  const permission = target.kind === 'cluster' ? 'rds:DescribeDBClusters' : 'rds:DescribeDBInstances';
  try {
    const client = await clientFor(regionOfArn(target.arn));
    const { DescribeDBClustersCommand, DescribeDBInstancesCommand } = await loadRds();
    if (target.kind === 'cluster') {
      const out = await client.send(new DescribeDBClustersCommand({ DBClusterIdentifier: target.arn }));
      const c = out.DBClusters?.[0];
      if (!c?.Endpoint) throw notFound(target);
      return { host: c.Endpoint, port: c.Port, engine: c.Engine, source: `RDS cluster ${target.arn}` };
    }
    const out = await client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target.arn }));
    const i = out.DBInstances?.[0];
    if (!i?.Endpoint?.Address) throw notFound(target);
    return { host: i.Endpoint.Address, port: i.Endpoint.Port, engine: i.Engine, source: `RDS instance ${target.arn}` };
  } catch (e) {
    if (e instanceof RotationError) throw e;
    const name = e instanceof Error ? e.name : 'Error';
    const message = e instanceof Error ? e.message : String(e);
    if (/NotFound/.test(name)) throw notFound(target);
    throw new ConfigError(
      `Looking up the admin secret's database (${target.kind} ${target.arn}) in the RDS API failed: ${name}: ${message}`,
      `The function needs ${permission} on it, and a route to the RDS API (a NAT gateway or an "rds" VPC endpoint).`,
    );
  }
}

function notFound(target: RdsTarget): RotationError {
  return new RotationStateError(
    `The admin secret is tagged with the RDS ${target.kind} ${target.arn}, which RDS does not know (or which has no endpoint yet).`,
    'Use the master secret of an existing, available database, or add host and port to the admin secret.',
  );
}

/**
 * RDS engine names the rotators do not list themselves, mapped to the name they do
 * (e.g. RDS Custom for SQL Server, Aurora MySQL 1's "aurora").
 */
export function normaliseRdsEngine(engine: string, known: readonly string[]): string {
  if (known.includes(engine)) return engine;
  if (engine.startsWith('custom-sqlserver') || engine.startsWith('sqlserver')) return 'sqlserver';
  if (engine.startsWith('custom-oracle') || engine.startsWith('oracle')) return 'oracle';
  if (engine === 'aurora') return 'aurora-mysql';
  return engine;
}
