import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecretsManagerDouble } from './secrets-manager-double';
import { errorResponse, type JsonResponse, SecretsManagerError } from './wire';

/** How long close() lets requests in flight finish before cutting their connections. */
const CLOSE_GRACE_MS = 2000;

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
  let closing = false;
  const server = createServer((req, res) => {
    void serve(double, req, res, () => closing);
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
        closing = true;
        // A client that never finishes its request must not hold close() forever.
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        server.close((e) => {
          clearTimeout(force);
          if (e) reject(e);
          else resolve();
        });
        // SDK clients keep idle connections alive: close those now rather than after the
        // keep-alive timeout. A request in flight is still answered (with Connection: close).
        server.closeIdleConnections();
      }),
  };
}

async function serve(double: SecretsManagerDouble, req: IncomingMessage, res: ServerResponse, closing: () => boolean): Promise<void> {
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
  const headers: Record<string, string | number> = { ...result.headers, 'content-length': Buffer.byteLength(result.body) };
  // While closing, the connection ends with this response instead of waiting as keep-alive.
  if (closing()) headers.connection = 'close';
  res.writeHead(result.status, headers);
  res.end(result.body);
}
