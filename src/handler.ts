import type { DescribeSecretResponse, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context } from 'aws-lambda';
import { describeError, EventError, RotationError, RotationStateError } from './errors';
import { levelFromEnv, Logger, type LogFields, type LogSink, stdoutSink } from './log';
import type { Env } from './password';
import { Redactor } from './redact';
import type { Rotator, Step, StepContext } from './rotator';
import { AWSCURRENT, AWSPENDING, defaultSecretsManagerClient, SecretStore } from './secrets';

/** The event Secrets Manager sends to a rotation function. */
export interface RotationEvent {
  SecretId: string;
  ClientRequestToken: string;
  Step: string;
  RotationToken?: string;
}

export interface HandlerOptions {
  /** Defaults to a client built from SECRETS_MANAGER_ENDPOINT (created once per container). */
  client?: SecretsManagerClient | (() => SecretsManagerClient);
  /** Defaults to process.env, read on every invocation. */
  env?: Env | (() => Env);
  /** Defaults to stdout (CloudWatch Logs). */
  logSink?: LogSink;
}

/**
 * What the handler reads of the Lambda context (`Context` of @types/aws-lambda): the request id
 * and the function's name for the log lines. Optional, so tests and scripts may call
 * `handler(event)` alone.
 */
export type LambdaContext = Pick<Context, 'awsRequestId'> & Partial<Pick<Context, 'functionName' | 'functionVersion' | 'invokedFunctionArn'>>;

/** A Lambda handler: assignable to `Handler<RotationEvent, void>` of @types/aws-lambda. */
export type RotationHandler = (event: RotationEvent, context?: LambdaContext) => Promise<void>;

/** Step names as the wire sends them, plus the snake_case spelling one AWS guide uses. */
const STEP_ALIASES: Record<string, Step> = {
  createSecret: 'createSecret',
  setSecret: 'setSecret',
  testSecret: 'testSecret',
  finishSecret: 'finishSecret',
  create_secret: 'createSecret',
  set_secret: 'setSecret',
  test_secret: 'testSecret',
  finish_secret: 'finishSecret',
};

/**
 * Wrap a rotator into a Lambda handler. Per invocation: validate the event, make one
 * DescribeSecret call, check the labels exactly as Secrets Manager expects, run the step, and
 * write one structured log line at the start and end (or failure) of the step.
 */
export function createHandler(rotator: Rotator, options: HandlerOptions = {}): RotationHandler {
  let cachedClient: SecretsManagerClient | undefined;
  const getEnv = (): Env => (typeof options.env === 'function' ? options.env() : (options.env ?? process.env));
  const getClient = (env: Env): SecretsManagerClient => {
    if (typeof options.client === 'function') return options.client();
    if (options.client) return options.client;
    cachedClient ??= defaultSecretsManagerClient(env);
    return cachedClient;
  };

  // The first invocation of this handler in its execution environment is the cold start.
  let coldStart = true;

  return async (event: RotationEvent, context?: LambdaContext): Promise<void> => {
    const redactor = new Redactor();
    const started = Date.now();
    // Read once per invocation: the log level, the step and the client all see the same environment.
    const env = getEnv();
    const lambdaFields = invocationFields(context, env, coldStart);
    coldStart = false;
    let log = new Logger(options.logSink ?? stdoutSink, { ...lambdaFields, rotator: rotator.name }, redactor, levelFromEnv(env));
    try {
      const { secretId, token, step, rotationToken } = parseEvent(event);
      redactor.add(rotationToken);
      log = log.child({ secretId, step, versionId: token });
      log.info('step started');
      const secrets = new SecretStore(getClient(env), secretId, token, redactor, log, rotationToken);
      // createSecret and setSecret, the steps that store a value or change the target, read
      // DescribeSecret: rotation must still be enabled (after CancelRotateSecret the leftover
      // AWSPENDING must not be set on the target: nobody would finish it) and the token must be
      // RotateSecret's AWSPENDING. Their reads of AWSCURRENT and AWSPENDING go out at the same time.
      // testSecret (changes nothing) and finishSecret (promotes only a value that logs in and
      // matches AWSCURRENT) learn the labels from their reads in a fresh container.
      // A warm container that stored or read this rotation's value makes DescribeSecret alone: it
      // names the versions holding the labels, whose values the container already has.
      const changes = step === 'createSecret' || step === 'setSecret';
      const warm = step !== 'createSecret' && secrets.holdsPendingValue();
      let metadata: DescribeSecretResponse | undefined;
      let stages: readonly string[];
      if (changes || warm) {
        if (step === 'createSecret') {
          prefetch(secrets.current());
        } else if (!warm) {
          prefetch(secrets.pending());
          if (rotator.readsCurrent(step)) prefetch(secrets.current());
        }
        metadata = await secrets.describe();
        if (changes && metadata.RotationEnabled === false) {
          throw new RotationStateError(`Secret ${secretId} is not enabled for rotation.`, 'Enable rotation on the secret (RotateSecret with a RotationLambdaARN).');
        }
        stages = stagesOf(metadata, secretId, token);
      } else {
        // A fresh container: the step reads AWSPENDING anyway (and AWSCURRENT, when the rotator
        // says so: the database rotators compare them), and GetSecretValue(VersionId = token,
        // VersionStage = AWSPENDING) answers only while the token holds AWSPENDING (and lists the
        // version's labels): the reads at once, no DescribeSecret.
        if (rotator.readsCurrent(step)) prefetch(secrets.current());
        const read = await secrets.pendingStages();
        if (read !== undefined) {
          stages = read;
        } else {
          // No readable AWSPENDING for the token: DescribeSecret says why (already AWSCURRENT, another
          // label, unknown, or RotateSecret's value-less placeholder, which testSecret alone may meet).
          metadata = await secrets.describe();
          stages = stagesOf(metadata, secretId, token);
        }
      }
      if (stages.includes(AWSCURRENT)) {
        log.info('version is already AWSCURRENT; step is a no-op', { durationMs: Date.now() - started, outcome: 'skipped' });
        return;
      }
      if (!stages.includes(AWSPENDING)) {
        throw new RotationStateError(
          `Secret version ${token} is not set as AWSPENDING for rotation of secret ${secretId}.`,
          'Another rotation may have replaced it; start a new rotation.',
        );
      }

      const ctx: StepContext = { step, secretId, token, ...(metadata ? { metadata } : {}), secrets, log, env };
      await rotator[step](ctx);
      log.info('step succeeded', { durationMs: Date.now() - started, outcome: 'succeeded' });
    } catch (err) {
      const safe = toSafeError(err, redactor);
      log.error('step failed', {
        durationMs: Date.now() - started,
        outcome: 'failed',
        errorName: safe.name,
        errorCode: safe instanceof RotationError ? safe.code : null,
        error: safe.message,
      });
      throw safe;
    }
  };
}

/** The token's labels from a DescribeSecret result; an unknown token is refused. */
function stagesOf(metadata: DescribeSecretResponse, secretId: string, token: string): readonly string[] {
  const versions = metadata.VersionIdsToStages ?? {};
  const stages = Object.hasOwn(versions, token) ? versions[token] : undefined;
  if (!stages) {
    throw new RotationStateError(
      `Secret version ${token} has no stage for rotation of secret ${secretId}.`,
      'The ClientRequestToken must be a version created by RotateSecret; a stale or hand-made event cannot be replayed.',
    );
  }
  return stages;
}

/** Starts a read whose result a later await of the same (cached) read uses; its failure is reported there. */
function prefetch(read: Promise<unknown>): void {
  read.catch(() => undefined);
}

/**
 * The Lambda fields of every line, named as Powertools for AWS Lambda's Logger names them:
 * `function_request_id` (the context's awsRequestId), `cold_start`, `function_name` and, when
 * X-Ray tracing is on, `xray_trace_id`. Absent values are left out.
 */
function invocationFields(context: LambdaContext | undefined, env: Env, coldStart: boolean): LogFields {
  const fields: LogFields = { cold_start: coldStart };
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
  const requestId = str(context?.awsRequestId);
  const functionName = str(context?.functionName) ?? str(env.AWS_LAMBDA_FUNCTION_NAME);
  const traceId = /(?:^|;)Root=([^;]+)/.exec(str(env._X_AMZN_TRACE_ID) ?? str(process.env._X_AMZN_TRACE_ID) ?? '')?.[1];
  if (requestId) fields.function_request_id = requestId;
  if (functionName) fields.function_name = functionName;
  if (traceId) fields.xray_trace_id = traceId;
  return fields;
}

function parseEvent(event: RotationEvent): { secretId: string; token: string; step: Step; rotationToken?: string } {
  if (!event || typeof event !== 'object') throw new EventError('The rotation event must be an object.');
  const missing = (['SecretId', 'ClientRequestToken', 'Step'] as const).filter(
    (k) => typeof event[k] !== 'string' || event[k].length === 0,
  );
  if (missing.length) throw new EventError(`The rotation event is missing ${missing.join(', ')}.`);
  // Secrets Manager's own limit: a longer id is not a secret of any account (and would fill every log line).
  if (event.SecretId.length > 2048) throw new EventError(`The rotation event's SecretId is ${event.SecretId.length} characters long; a secret ARN or name has at most 2048.`);
  const step = Object.hasOwn(STEP_ALIASES, event.Step) ? STEP_ALIASES[event.Step] : undefined;
  if (!step) {
    throw new EventError(
      `Invalid step parameter "${event.Step.slice(0, 40)}"; expected createSecret, setSecret, testSecret or finishSecret.`,
    );
  }
  if (event.RotationToken !== undefined && typeof event.RotationToken !== 'string') {
    throw new EventError('RotationToken, when present, must be a string.');
  }
  return { secretId: event.SecretId, token: event.ClientRequestToken, step, rotationToken: event.RotationToken || undefined };
}

/**
 * Returns an error whose message, stack and causes contain no registered secret value.
 * RotationErrors keep their class (and code) unless scrubbing changed their message; anything
 * else (driver, SDK) is wrapped, keeping its name. Causes (a ConnectError's driver error may carry
 * SQL text) are replaced by scrubbed copies, and the original stack is kept, scrubbed.
 */
function toSafeError(err: unknown, redactor: Redactor, depth = 0): Error {
  const message = redactor.scrub(describeError(err));
  let safe: Error;
  if (err instanceof RotationError && message === err.message) {
    safe = err;
  } else if (err instanceof RotationError) {
    safe = new RotationError(err.code, message);
    safe.name = err.name;
  } else {
    safe = new Error(message);
    safe.name = err instanceof Error ? err.name : 'Error';
  }
  if (err instanceof Error) {
    if (typeof err.stack === 'string') safe.stack = redactor.scrub(err.stack);
    if (err.cause === undefined || depth >= 4) {
      delete safe.cause;
    } else {
      Object.defineProperty(safe, 'cause', { value: toSafeError(err.cause, redactor, depth + 1), writable: true, configurable: true });
    }
  }
  return safe;
}
