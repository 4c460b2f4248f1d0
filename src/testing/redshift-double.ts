/**
 * A small stateful double of the Redshift API calls the Redshift rotator uses to find the
 * database of a Redshift-managed admin secret: DescribeClusters (Redshift, AWS Query protocol,
 * XML) and ListNamespaces / ListWorkgroups (Redshift Serverless, AWS JSON 1.1, paginated). The
 * real `@aws-sdk/client-redshift` and `@aws-sdk/client-redshift-serverless` clients talk to it
 * unchanged, in-process.
 */
import { RedshiftClient } from '@aws-sdk/client-redshift';
import { RedshiftServerlessClient } from '@aws-sdk/client-redshift-serverless';
import { randomUUID } from 'node:crypto';
import { InProcessRequestHandler, type JsonResponse, jsonResponse, queryError, queryResult, xmlText as xml } from './wire';

export interface RedshiftCall {
  service: 'redshift' | 'redshift-serverless';
  action: string;
  params: Record<string, unknown>;
}

const NS = 'http://redshift.amazonaws.com/doc/2012-12-01/';
const CREDENTIALS = { accessKeyId: 'AKIDREDSHIFTDOUBLE', secretAccessKey: 'redshift-double' };

export class RedshiftDouble {
  readonly calls: RedshiftCall[] = [];
  private readonly clusters = new Map<string, { address: string; port: number }>();
  private readonly namespaces: Array<{ id: string; name: string }> = [];
  private readonly workgroups: Array<{ name: string; namespace: string; address: string; port: number }> = [];

  constructor(
    readonly region = 'us-east-1',
    readonly account = '123456789012',
    /** Serverless list operations return at most this many items a page. */
    readonly pageSize = 2,
  ) {}

  addCluster(id: string, address: string, port = 5439): string {
    this.clusters.set(id, { address, port });
    return `arn:aws:redshift:${this.region}:${this.account}:cluster:${id}`;
  }

  /** A Serverless namespace; its ARN names it by id, as Redshift's do. */
  addNamespace(name: string): string {
    const id = randomUUID();
    this.namespaces.push({ id, name });
    return `arn:aws:redshift-serverless:${this.region}:${this.account}:namespace/${id}`;
  }

  addWorkgroup(name: string, namespace: string, address: string, port = 5439): void {
    this.workgroups.push({ name, namespace, address, port });
  }

  client(region = this.region): RedshiftClient {
    return new RedshiftClient({
      region,
      credentials: CREDENTIALS,
      maxAttempts: 1,
      requestHandler: new InProcessRequestHandler(async (_target, body) => this.handleQuery(body)),
    });
  }

  serverlessClient(region = this.region): RedshiftServerlessClient {
    return new RedshiftServerlessClient({
      region,
      credentials: CREDENTIALS,
      maxAttempts: 1,
      requestHandler: new InProcessRequestHandler(async (target, body) => this.handleJson(target, body)),
    });
  }

  private handleQuery(body: string): JsonResponse {
    const params = Object.fromEntries(new URLSearchParams(body));
    this.calls.push({ service: 'redshift', action: params.Action ?? '', params });
    if (params.Action !== 'DescribeClusters') return xmlError(400, 'InvalidAction', `The action ${params.Action} is not valid for this web service.`);
    const id = params.ClusterIdentifier;
    const c = id === undefined ? undefined : this.clusters.get(id);
    if (id !== undefined && !c) return xmlError(404, 'ClusterNotFound', `Cluster ${id} not found.`);
    const members = [...this.clusters.entries()]
      .filter(([k]) => id === undefined || k === id)
      .map(([k, v]) => `<Cluster><ClusterIdentifier>${xml(k)}</ClusterIdentifier><ClusterStatus>available</ClusterStatus><Endpoint><Address>${xml(v.address)}</Address><Port>${v.port}</Port></Endpoint></Cluster>`)
      .join('');
    return queryResult(NS, 'DescribeClusters', `<Clusters>${members}</Clusters>`);
  }

  private handleJson(target: string | undefined, body: string): JsonResponse {
    const action = (target ?? '').replace(/^RedshiftServerless\./, '');
    const params = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    this.calls.push({ service: 'redshift-serverless', action, params });
    const start = typeof params.nextToken === 'string' ? Number(params.nextToken) : 0;
    const page = <T>(items: T[]) => ({ items: items.slice(start, start + this.pageSize), next: start + this.pageSize < items.length ? String(start + this.pageSize) : undefined });
    switch (action) {
      case 'ListNamespaces': {
        const p = page(this.namespaces);
        return jsonResponse(200, {
          namespaces: p.items.map((n) => ({ namespaceId: n.id, namespaceName: n.name, namespaceArn: `arn:aws:redshift-serverless:${this.region}:${this.account}:namespace/${n.id}`, status: 'AVAILABLE' })),
          ...(p.next ? { nextToken: p.next } : {}),
        });
      }
      case 'ListWorkgroups': {
        const p = page(this.workgroups);
        return jsonResponse(200, {
          workgroups: p.items.map((w) => ({ workgroupName: w.name, namespaceName: w.namespace, status: 'AVAILABLE', endpoint: { address: w.address, port: w.port } })),
          ...(p.next ? { nextToken: p.next } : {}),
        });
      }
      default:
        return jsonResponse(400, { __type: 'UnknownOperationException', message: `${action} is not served by the double.` });
    }
  }
}

const xmlError = (status: number, code: string, message: string) => queryError(NS, status, code, message);
