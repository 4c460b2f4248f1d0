/**
 * A small stateful double of the two RDS API operations the rotators use to find the database
 * of an RDS-managed master secret: DescribeDBInstances and DescribeDBClusters. It speaks the
 * real AWS Query protocol (form-encoded request, XML response, XML errors), so the real
 * `@aws-sdk/client-rds` client talks to it unchanged, in-process.
 */
import { RDSClient, type RDSClientConfig } from '@aws-sdk/client-rds';
import { InProcessRequestHandler, type JsonResponse, queryError, queryResult, xmlText as xml } from './wire';

export interface RdsInstance {
  /** The instance identifier (the ARN is derived from it). */
  id: string;
  engine: string;
  address: string;
  port: number;
}

export interface RdsCluster {
  id: string;
  engine: string;
  /** The writer (cluster) endpoint. */
  endpoint: string;
  port: number;
  readerEndpoint?: string;
}

export interface RdsCall {
  action: string;
  params: Record<string, string>;
  region: string;
}

const NS = 'http://rds.amazonaws.com/doc/2014-10-31/';

export class RdsDouble {
  readonly calls: RdsCall[] = [];
  private readonly instances = new Map<string, RdsInstance>();
  private readonly clusters = new Map<string, RdsCluster>();

  constructor(
    readonly region = 'us-east-1',
    readonly account = '123456789012',
  ) {}

  addInstance(i: RdsInstance): string {
    this.instances.set(i.id, i);
    return this.instanceArn(i.id);
  }

  addCluster(c: RdsCluster): string {
    this.clusters.set(c.id, c);
    return this.clusterArn(c.id);
  }

  instanceArn(id: string): string {
    return `arn:aws:rds:${this.region}:${this.account}:db:${id}`;
  }

  clusterArn(id: string): string {
    return `arn:aws:rds:${this.region}:${this.account}:cluster:${id}`;
  }

  /** A real RDSClient served in-process by this double. `region` is the one the caller asked for. */
  client(region = this.region, config: RDSClientConfig = {}): RDSClient {
    return new RDSClient({
      region,
      credentials: { accessKeyId: 'AKIDRDSDOUBLE', secretAccessKey: 'rds-double' },
      maxAttempts: 1,
      requestHandler: new InProcessRequestHandler(async (_target, body) => this.handle(region, body)),
      ...config,
    });
  }

  /** Serve one Query-protocol request body. */
  handle(region: string, body: string): JsonResponse {
    const params = Object.fromEntries(new URLSearchParams(body));
    const action = params.Action ?? '';
    this.calls.push({ action, params, region });
    if (region !== this.region) return error(400, 'InvalidClientTokenId', `The double serves ${this.region} only.`);
    switch (action) {
      case 'DescribeDBInstances': {
        const id = idFrom(params.DBInstanceIdentifier, `arn:aws:rds:${this.region}:${this.account}:db:`);
        const found = id === undefined ? [...this.instances.values()] : [this.instances.get(id)].filter((x) => x !== undefined);
        if (id !== undefined && found.length === 0) return error(404, 'DBInstanceNotFound', `DBInstance ${params.DBInstanceIdentifier} not found.`);
        const members = found
          .map(
            (i) =>
              `<DBInstance><DBInstanceIdentifier>${xml(i.id)}</DBInstanceIdentifier><DBInstanceArn>${xml(this.instanceArn(i.id))}</DBInstanceArn>` +
              `<Engine>${xml(i.engine)}</Engine><DBInstanceStatus>available</DBInstanceStatus>` +
              `<Endpoint><Address>${xml(i.address)}</Address><Port>${i.port}</Port></Endpoint></DBInstance>`,
          )
          .join('');
        return ok(action, `<DBInstances>${members}</DBInstances>`);
      }
      case 'DescribeDBClusters': {
        const id = idFrom(params.DBClusterIdentifier, `arn:aws:rds:${this.region}:${this.account}:cluster:`);
        const found = id === undefined ? [...this.clusters.values()] : [this.clusters.get(id)].filter((x) => x !== undefined);
        if (id !== undefined && found.length === 0) return error(404, 'DBClusterNotFoundFault', `DBCluster ${params.DBClusterIdentifier} not found.`);
        const members = found
          .map(
            (c) =>
              `<DBCluster><DBClusterIdentifier>${xml(c.id)}</DBClusterIdentifier><DBClusterArn>${xml(this.clusterArn(c.id))}</DBClusterArn>` +
              `<Engine>${xml(c.engine)}</Engine><Status>available</Status><Endpoint>${xml(c.endpoint)}</Endpoint>` +
              (c.readerEndpoint ? `<ReaderEndpoint>${xml(c.readerEndpoint)}</ReaderEndpoint>` : '') +
              `<Port>${c.port}</Port></DBCluster>`,
          )
          .join('');
        return ok(action, `<DBClusters>${members}</DBClusters>`);
      }
      default:
        return error(400, 'InvalidAction', `The action ${action} is not valid for this web service.`);
    }
  }
}

/** An identifier or ARN (of this account and region) -> identifier; another account's ARN stays as is and is not found. */
function idFrom(value: string | undefined, arnPrefix: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  return value.startsWith(arnPrefix) ? value.slice(arnPrefix.length) : value;
}

const ok = (action: string, result: string) => queryResult(NS, action, result);
const error = (status: number, code: string, message: string) => queryError(NS, status, code, message);
