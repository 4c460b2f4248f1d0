import type { RDSClient } from '@aws-sdk/client-rds';
import type { Tag } from '@aws-sdk/client-secrets-manager';
import { ConfigError, describeError, RotationError, RotationStateError } from '../errors';
import { missingModuleOf } from './driver';

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

/**
 * Finds the database of a managed admin secret (one that holds only credentials) through the
 * tags its service put on it. Engines whose service manages admin secrets differently (Redshift)
 * bring their own.
 */
export interface ManagedAdminLookup {
  /** The tag keys it reads, for error messages. */
  readonly tagKeys: readonly string[];
  /** The endpoint; undefined when none of its tags is there. A failed lookup throws a RotationError. */
  find(tags: readonly Tag[] | undefined): Promise<AdminEndpoint | undefined>;
}

/** The value of a tag, its key compared case-insensitively; blank counts as absent. */
export function tagValue(tags: readonly Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key?.toLowerCase() === key.toLowerCase())?.Value?.trim() || undefined;
}

/** Wraps an AWS API failure of a lookup into a ConfigError naming the permission it needs. */
export function lookupFailed(what: string, permission: string, e: unknown): RotationError {
  if (e instanceof RotationError) return e;
  const name = e instanceof Error ? e.name : 'Error';
  return new ConfigError(
    `Looking up the admin secret's database (${what}) failed: ${name}: ${describeError(e)}`,
    `The function needs ${permission} on it, and a route to that API (a NAT gateway or a VPC endpoint).`,
  );
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
  const cluster = tagValue(tags, RDS_CLUSTER_TAG);
  if (cluster) return { kind: 'cluster', arn: cluster };
  const instance = tagValue(tags, RDS_INSTANCE_TAG);
  if (instance) return { kind: 'instance', arn: instance };
  return undefined;
}

/** RDS, Aurora and DocumentDB managed master secrets, looked up in the RDS API. */
export function rdsManagedAdminLookup(clientFor: RdsClientFactory = defaultRdsClientFactory): ManagedAdminLookup {
  return {
    tagKeys: [RDS_INSTANCE_TAG, RDS_CLUSTER_TAG],
    async find(tags) {
      const target = rdsTargetFromTags(tags);
      return target ? rdsEndpoint(target, clientFor) : undefined;
    },
  };
}

/** The region of an ARN (arn:partition:service:region:account:resource), if it has one. */
export function regionOfArn(arn: string): string | undefined {
  const parts = arn.split(':');
  return parts.length >= 6 && parts[0] === 'arn' && parts[3] ? parts[3] : undefined;
}

/** Builds the RDS client for a region. Tests inject one served by an in-process double. */
export type RdsClientFactory = (region: string | undefined) => RDSClient | Promise<RDSClient>;

/**
 * Loads an AWS SDK control-plane client on first use. The Lambda bundles leave these clients
 * out (External, scripts/engines.ts RUNTIME_SDK) and use the Lambda runtime's own AWS SDK, found
 * through NODE_PATH: hence a literal `require` (an `import()` would ignore NODE_PATH). Where the
 * package cannot be loaded (a bundle run outside Lambda), a ConfigError names it and the remedy.
 */
export function loadSdkClient<T>(pkg: string, load: () => T): T {
  try {
    return load();
  } catch (e) {
    throw sdkClientLoadError(pkg, e);
  }
}

/** A missing module while loading `pkg` -> a ConfigError naming it; anything else unchanged. */
export function sdkClientLoadError(pkg: string, err: unknown): unknown {
  if ((err as { code?: unknown } | null)?.code !== 'MODULE_NOT_FOUND') return err;
  const missing = missingModuleOf(err);
  return new ConfigError(
    `The AWS SDK package "${pkg}" cannot be loaded${missing && missing !== pkg ? ` (its module "${missing}" is missing)` : ''}. ` +
      'It is needed only to find the database of a service-managed admin secret that holds no host; the Lambda bundles leave it to the AWS SDK of the Lambda runtime.',
    `Add "host" and "port" to the admin secret, or run where ${pkg} is present (a Lambda Node.js runtime, or npm install --save-exact ${pkg}).`,
  );
}

/**
 * The RDS SDK is loaded on first use only: most rotations never need it, and a cold start
 * should not pay for evaluating it.
 */
const loadRds = async () => loadSdkClient('@aws-sdk/client-rds', () => require('@aws-sdk/client-rds') as typeof import('@aws-sdk/client-rds'));

/**
 * One client per region, made on first use and kept for the container's life. The promise is
 * kept, so two concurrent first calls share one client.
 */
export function perRegion<C>(make: (region: string | undefined) => Promise<C>): (region: string | undefined) => Promise<C> {
  const clients = new Map<string, Promise<C>>();
  return (region) => {
    const key = region ?? '';
    let c = clients.get(key);
    if (!c) {
      c = make(region);
      clients.set(key, c);
    }
    return c;
  };
}

// AWS_ENDPOINT_URL_RDS (read by the SDK itself) points it at a VPC endpoint if needed.
export const defaultRdsClientFactory: RdsClientFactory = perRegion(async (region) => new (await loadRds()).RDSClient(region ? { region } : {}));

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
    if (e instanceof Error && /NotFound/.test(e.name)) throw notFound(target);
    throw lookupFailed(`RDS ${target.kind} ${target.arn}`, permission, e);
  }
}

function notFound(target: RdsTarget): RotationError {
  return new RotationStateError(
    `The admin secret is tagged with the RDS ${target.kind} ${target.arn}, which RDS does not know (or which has no endpoint yet).`,
    'Use the master secret of an existing, available database, or add host and port to the admin secret.',
  );
}

/**
 * The engine value RDS reported, as one of the values the engine's profile lists, without
 * naming any engine here: an RDS Custom name loses its `custom-` prefix (`custom-sqlserver-ee`
 * -> `sqlserver-ee`), and a variant maps to its family (`sqlserver-dev` -> `sqlserver`,
 * `oracle-ee-cdb` -> `oracle`). Anything else is returned unchanged and then refused, e.g. Aurora
 * MySQL 1's `aurora` (end of life): an admin secret of such a cluster names its `engine` itself.
 */
export function normaliseRdsEngine(engine: string, known: readonly string[]): string {
  const bare = engine.replace(/^custom-/, '');
  if (known.includes(engine)) return engine;
  if (known.includes(bare)) return bare;
  return known.find((k) => bare.startsWith(`${k}-`)) ?? engine;
}
