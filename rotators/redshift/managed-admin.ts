/**
 * Redshift-managed admin secrets (`ManageMasterPassword` on a provisioned cluster,
 * `manageAdminPassword` on a Serverless namespace) hold only username and password. Redshift
 * tags them with the cluster or namespace ARN; the endpoint comes from the Redshift API, never
 * from the child secret. The SDK clients are loaded on first use only.
 */
import type { RedshiftClient } from '@aws-sdk/client-redshift';
import type { ListNamespacesCommandOutput, ListWorkgroupsCommandOutput, RedshiftServerlessClient } from '@aws-sdk/client-redshift-serverless';
import { type AdminEndpoint, loadSdkClient, lookupFailed, type ManagedAdminLookup, perRegion, regionOfArn, tagValue } from '../../src/db';
import { RotationStateError } from '../../src/api';

export const REDSHIFT_CLUSTER_TAG = 'aws:redshift:primaryClusterArn';
export const REDSHIFT_SERVERLESS_TAG = 'aws:redshift-serverless:namespaceArn';

export interface RedshiftLookupClients {
  redshift?: (region: string | undefined) => RedshiftClient | Promise<RedshiftClient>;
  serverless?: (region: string | undefined) => RedshiftServerlessClient | Promise<RedshiftServerlessClient>;
}

// Literal requires, loaded on first use: the Lambda bundles leave these clients to the runtime's SDK.
const loadRedshift = async () => loadSdkClient('@aws-sdk/client-redshift', () => require('@aws-sdk/client-redshift') as typeof import('@aws-sdk/client-redshift'));
const loadServerless = async () =>
  loadSdkClient('@aws-sdk/client-redshift-serverless', () => require('@aws-sdk/client-redshift-serverless') as typeof import('@aws-sdk/client-redshift-serverless'));

// AWS_ENDPOINT_URL_REDSHIFT / AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS (read by the SDK) select VPC endpoints.
const defaultRedshift = perRegion(async (region) => new (await loadRedshift()).RedshiftClient(region ? { region } : {}));
const defaultServerless = perRegion(async (region) => new (await loadServerless()).RedshiftServerlessClient(region ? { region } : {}));

/** The managed-admin lookup of the Redshift rotator. */
export function redshiftManagedAdminLookup(clients: RedshiftLookupClients = {}): ManagedAdminLookup {
  return {
    tagKeys: [REDSHIFT_CLUSTER_TAG, REDSHIFT_SERVERLESS_TAG],
    async find(tags) {
      const cluster = tagValue(tags, REDSHIFT_CLUSTER_TAG);
      if (cluster) return clusterEndpoint(cluster, clients.redshift ?? defaultRedshift);
      const namespace = tagValue(tags, REDSHIFT_SERVERLESS_TAG);
      if (namespace) return namespaceEndpoint(namespace, clients.serverless ?? defaultServerless);
      return undefined;
    },
  };
}

/** arn:aws:redshift:<region>:<account>:cluster:<identifier> */
async function clusterEndpoint(arn: string, clientFor: NonNullable<RedshiftLookupClients['redshift']>): Promise<AdminEndpoint> {
  const id = /:cluster:([^:/]+)$/.exec(arn)?.[1];
  if (!id) throw new RotationStateError(`The admin secret's ${REDSHIFT_CLUSTER_TAG} tag "${arn.slice(0, 200)}" is not a Redshift cluster ARN.`);
  try {
    const client = await clientFor(regionOfArn(arn));
    const { DescribeClustersCommand } = await loadRedshift();
    const out = await client.send(new DescribeClustersCommand({ ClusterIdentifier: id }));
    const c = out.Clusters?.[0];
    if (!c?.Endpoint?.Address) throw notFound('cluster', arn);
    return { host: c.Endpoint.Address, port: c.Endpoint.Port, engine: 'redshift', source: `Redshift cluster ${arn}` };
  } catch (e) {
    if (e instanceof Error && /ClusterNotFound/.test(e.name)) throw notFound('cluster', arn);
    throw lookupFailed(`Redshift cluster ${arn}`, 'redshift:DescribeClusters', e);
  }
}

/** A Serverless namespace ARN names the namespace by id: find its name, then the workgroup serving it. */
async function namespaceEndpoint(arn: string, clientFor: NonNullable<RedshiftLookupClients['serverless']>): Promise<AdminEndpoint> {
  try {
    const client = await clientFor(regionOfArn(arn));
    const { ListNamespacesCommand, ListWorkgroupsCommand } = await loadServerless();
    let name: string | undefined;
    let token: string | undefined;
    do {
      const page: ListNamespacesCommandOutput = await client.send(new ListNamespacesCommand({ nextToken: token }));
      name = page.namespaces?.find((n) => n.namespaceArn === arn)?.namespaceName;
      token = page.nextToken;
    } while (!name && token);
    if (!name) throw notFound('namespace', arn);
    token = undefined;
    do {
      const page: ListWorkgroupsCommandOutput = await client.send(new ListWorkgroupsCommand({ nextToken: token }));
      const wg = page.workgroups?.find((w) => w.namespaceName === name);
      if (wg) {
        if (!wg.endpoint?.address) throw notFound('namespace', arn);
        return { host: wg.endpoint.address, port: wg.endpoint.port, engine: 'redshift', source: `Redshift Serverless workgroup ${wg.workgroupName} of namespace ${name}` };
      }
      token = page.nextToken;
    } while (token);
    throw notFound('namespace', arn);
  } catch (e) {
    throw lookupFailed(`Redshift Serverless namespace ${arn}`, 'redshift-serverless:ListNamespaces and redshift-serverless:ListWorkgroups', e);
  }
}

function notFound(kind: 'cluster' | 'namespace', arn: string): RotationStateError {
  return new RotationStateError(
    `The admin secret is tagged with the Redshift ${kind} ${arn}, which Redshift does not know (or which has no endpoint${kind === 'namespace' ? ' or workgroup' : ''} yet).`,
    'Use the admin secret of an existing, available cluster or workgroup, or add host and port to the admin secret.',
  );
}
