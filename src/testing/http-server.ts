import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecretsManagerDouble } from './secrets-manager-double';
import { errorResponse, type JsonResponse, SecretsManagerError } from './wire';

export interface SecretsManagerServerOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
}

export interface SecretsManagerServer {
  /** e.g. http://127.0.0.1:43121, for `endpoint` in an SDK client or `aws --endpoint-url`. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves a double over HTTP, speaking AWS JSON 1.1 like the real endpoint: `POST /` with
 * `X-Amz-Target: secretsmanager.<Op>`. SigV4 signatures are accepted without checking.
 */
export async function startSecretsManagerServer(
  double: SecretsManagerDouble,
  options: SecretsManagerServerOptions = {},
): Promise<SecretsManagerServer> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    void serve(double, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return {
    endpoint: `http://${hostPart}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        // SDK clients keep connections alive; do not wait for them to time out.
        server.closeAllConnections();
      }),
  };
}

async function serve(double: SecretsManagerDouble, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let result: JsonResponse;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'POST' || path !== '/') {
      result = errorResponse(new SecretsManagerError('UnknownOperationException', `${req.method} ${path} is not an operation; send POST / with X-Amz-Target.`));
      result.status = req.method !== 'POST' && path === '/' ? 405 : 404;
    } else {
      const target = req.headers['x-amz-target'];
      result = await double.handleJsonRequest(Array.isArray(target) ? target[0] : target, Buffer.concat(chunks).toString('utf8'));
    }
  } catch (e) {
    result = errorResponse(new SecretsManagerError('InternalServiceError', `The Secrets Manager double failed: ${e instanceof Error ? e.message : String(e)}`));
  }
  res.writeHead(result.status, { ...result.headers, 'content-length': Buffer.byteLength(result.body) });
  res.end(result.body);
}
