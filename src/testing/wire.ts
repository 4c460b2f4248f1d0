/**
 * The AWS JSON 1.1 wire format of Secrets Manager, shared by the in-process SDK transport and the
 * HTTP server: `POST /`, `X-Amz-Target: secretsmanager.<Op>`, JSON body; errors are HTTP 400
 * (InternalServiceError 500) with `{"__type": "<Code>", "Message": "..."}`.
 */
import { HttpResponse } from '@smithy/core/protocols';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

export const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
export const TARGET_PREFIX = 'secretsmanager.';

/** A Secrets Manager error as the service sends it. Messages never contain secret values. */
export class SecretsManagerError extends Error {
  /** The error code, e.g. ResourceNotFoundException: what the SDK turns into the exception `name`. */
  readonly __type: string;
  readonly status: number;

  constructor(type: string, message: string, status = type === 'InternalServiceError' ? 500 : 400) {
    super(message);
    this.name = type;
    this.__type = type;
    this.status = status;
  }

  toJSON(): { __type: string; Message: string } {
    return { __type: this.__type, Message: this.message };
  }
}

/** What handleJsonRequest returns: enough to write an HTTP response. */
export interface JsonResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type JsonRequestHandler = (target: string | undefined, bodyText: string) => Promise<JsonResponse>;

export function jsonResponse(status: number, payload: unknown): JsonResponse {
  return {
    status,
    headers: { 'content-type': JSON_CONTENT_TYPE, 'x-amzn-requestid': randomUUID() },
    body: JSON.stringify(payload),
  };
}

export function errorResponse(err: SecretsManagerError): JsonResponse {
  return jsonResponse(err.status, err.toJSON());
}

/**
 * Drops members without a value (undefined/null), recursively: the service returns only members
 * that have one.
 */
export function compact<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => compact(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined && v !== null) out[k] = compact(v);
    }
    return out as T;
  }
  return value;
}

/** Wire timestamps are epoch seconds (a JSON number, fractional). */
export function epochSeconds(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : ms / 1000;
}

/** Text for an XML element (the Query-protocol doubles' responses). */
export function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** An AWS Query protocol result (RDS, Redshift): `<ActionResponse><ActionResult>...`. */
export function queryResult(ns: string, action: string, result: string): JsonResponse {
  const id = randomUUID();
  return {
    status: 200,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': id },
    body: `<${action}Response xmlns="${ns}"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>${id}</RequestId></ResponseMetadata></${action}Response>`,
  };
}

/** An AWS Query protocol error: `<ErrorResponse><Error><Code>`, which the SDK turns into the exception name. */
export function queryError(ns: string, status: number, code: string, message: string): JsonResponse {
  const id = randomUUID();
  return {
    status,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': id },
    body: `<ErrorResponse xmlns="${ns}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlText(message)}</Message></Error><RequestId>${id}</RequestId></ErrorResponse>`,
  };
}

/** The parts of a Smithy HttpRequest the transport reads. */
interface WireRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
}

function headerValue(headers: Record<string, string>, name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return body;
  // Decode the bytes themselves: the SDK's JSON body is a Uint8Array subclass whose valueOf()
  // (used by Buffer.from) is deprecated.
  if (body instanceof Uint8Array) return new TextDecoder().decode(body);
  throw new Error('The in-process transport only supports string or byte request bodies.');
}

/**
 * An SDK `requestHandler` that hands each request to the double instead of the network, and
 * returns a real Smithy HttpResponse with a stream body, so the SDK's own serializer,
 * deserializer and error parsing run exactly as they do against AWS.
 */
export class InProcessRequestHandler {
  readonly metadata = { handlerProtocol: 'http/1.1' };

  constructor(private readonly dispatch: JsonRequestHandler) {}

  async handle(request: WireRequest): Promise<{ response: HttpResponse }> {
    let result: JsonResponse;
    if (request.method !== 'POST' || request.path.split('?')[0] !== '/') {
      result = errorResponse(new SecretsManagerError('UnknownOperationException', `${request.method} ${request.path} is not an operation.`));
      result.status = 404;
    } else {
      result = await this.dispatch(headerValue(request.headers, 'x-amz-target'), bodyText(request.body));
    }
    const bytes = Buffer.from(result.body, 'utf8');
    return {
      response: new HttpResponse({
        statusCode: result.status,
        headers: { ...result.headers, 'content-length': String(bytes.length) },
        body: Readable.from([bytes]),
      }),
    };
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {}
}
