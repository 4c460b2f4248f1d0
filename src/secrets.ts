import {
  DescribeSecretCommand,
  type DescribeSecretResponse,
  GetRandomPasswordCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  type ListSecretVersionIdsResponse,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { awsErrorName, ConfigError, describeError, EventError, PrivilegeError, RotationError, RotationStateError, SecretFormatError } from './errors';
import type { Logger } from './log';
import type { PasswordPolicy } from './password';
import type { Redactor } from './redact';

export const AWSCURRENT = 'AWSCURRENT';
export const AWSPENDING = 'AWSPENDING';
export const AWSPREVIOUS = 'AWSPREVIOUS';

/** Builds the Secrets Manager client the handler uses, honouring SECRETS_MANAGER_ENDPOINT. */
export function defaultSecretsManagerClient(env: Record<string, string | undefined> = process.env): SecretsManagerClient {
  const endpoint = env.SECRETS_MANAGER_ENDPOINT?.trim();
  return new SecretsManagerClient(endpoint ? { endpoint } : {});
}

/**
 * The per-invocation view of Secrets Manager a rotator works through. It reads each version at
 * most once per invocation, registers every value it reads with the redactor, and always passes
 * the ClientRequestToken (and the RotationToken, when the event has one) on writes.
 */
export class SecretStore {
  private readonly cache = new Map<string, Promise<string | undefined>>();

  constructor(
    readonly client: SecretsManagerClient,
    readonly secretId: string,
    readonly token: string,
    private readonly redactor: Redactor,
    private readonly log: Logger,
    private readonly rotationToken?: string,
  ) {}

  /** DescribeSecret of this secret, or of another one (the admin secret's tags). */
  async describe(secretId = this.secretId): Promise<DescribeSecretResponse> {
    return this.send('DescribeSecret', secretId, () => this.client.send(new DescribeSecretCommand({ SecretId: secretId })));
  }

  /** AWSCURRENT of this secret; it must exist. */
  async current(): Promise<string> {
    const v = await this.read(this.secretId, { VersionStage: AWSCURRENT });
    if (v === undefined) {
      throw new RotationStateError(`Secret ${this.secretId} has no AWSCURRENT value.`, 'Put an initial value before rotating.');
    }
    return v;
  }

  /** The AWSPENDING value of this rotation (VersionId = token), or undefined if not yet created. */
  async pending(): Promise<string | undefined> {
    return this.read(this.secretId, { VersionId: this.token, VersionStage: AWSPENDING });
  }

  /** The pending value, which a step after createSecret requires. */
  async requirePending(): Promise<string> {
    const v = await this.pending();
    if (v === undefined) {
      throw new RotationStateError(
        `Secret ${this.secretId} has no AWSPENDING value for version ${this.token}.`,
        'createSecret must run (and succeed) before the other steps.',
      );
    }
    return v;
  }

  /** AWSPREVIOUS, or undefined when the secret has never been rotated. */
  async previous(): Promise<string | undefined> {
    return this.read(this.secretId, { VersionStage: AWSPREVIOUS });
  }

  /** AWSCURRENT of another secret (the multi-user admin secret). */
  async other(secretId: string): Promise<string> {
    const v = await this.read(secretId, { VersionStage: AWSCURRENT });
    if (v === undefined) {
      throw new ConfigError(
        `The admin secret ${shortId(secretId)} (the "masterarn" field) was not found, or has no AWSCURRENT value.`,
        'Check the ARN in "masterarn", and that the function\'s role may read that secret (secretsmanager:GetSecretValue).',
      );
    }
    return v;
  }

  /**
   * Store this rotation's AWSPENDING value. If another invocation of the same step stored one
   * for this token first (ResourceExistsException: a duplicate, concurrent createSecret), that
   * value is re-read, checked with `validate`, and used: the step converges instead of failing.
   */
  async putPending(secretString: string, validate?: (stored: string) => void): Promise<void> {
    this.redactor.addSecretString(secretString);
    const key = this.key(this.secretId, { VersionId: this.token, VersionStage: AWSPENDING });
    try {
      await this.send('PutSecretValue', this.secretId, () =>
        this.client.send(
          new PutSecretValueCommand({
            SecretId: this.secretId,
            ClientRequestToken: this.token,
            SecretString: secretString,
            VersionStages: [AWSPENDING],
            ...(this.rotationToken ? { RotationToken: this.rotationToken } : {}),
          }),
        ),
      );
    } catch (err) {
      if (!(err instanceof RotationError && err.cause !== undefined && awsErrorName(err.cause) === 'ResourceExistsException')) throw err;
      this.cache.delete(key);
      const stored = await this.pending();
      if (stored === undefined) throw err;
      validate?.(stored);
      this.log.info('another invocation stored this rotation\'s AWSPENDING value first; using it', { versionId: this.token });
      return;
    }
    this.cache.set(key, Promise.resolve(secretString));
    this.log.info('stored AWSPENDING value', { versionId: this.token });
  }

  /**
   * Ids of this secret's versions that hold no staging label (deprecated versions), newest
   * first, at most `limit`; this rotation's own version is left out.
   */
  async unlabelledVersionIds(limit: number): Promise<string[]> {
    const found: Array<{ id: string; created: number }> = [];
    let next: string | undefined;
    for (let page = 0; page < 10; page++) {
      const out: ListSecretVersionIdsResponse = await this.send('ListSecretVersionIds', this.secretId, () =>
        this.client.send(new ListSecretVersionIdsCommand({ SecretId: this.secretId, IncludeDeprecated: true, MaxResults: 100, NextToken: next })),
      );
      for (const v of out.Versions ?? []) {
        if (v.VersionId && v.VersionId !== this.token && (v.VersionStages ?? []).length === 0) {
          found.push({ id: v.VersionId, created: v.CreatedDate ? new Date(v.CreatedDate).getTime() : 0 });
        }
      }
      next = out.NextToken;
      if (!next) break;
    }
    return found.sort((a, b) => b.created - a.created).slice(0, limit).map((v) => v.id);
  }

  /** The value of one version of this secret, by id (undefined if it has none). */
  async byVersionId(versionId: string): Promise<string | undefined> {
    return this.read(this.secretId, { VersionId: versionId });
  }

  async randomPassword(policy: PasswordPolicy): Promise<string> {
    const out = await this.client.send(new GetRandomPasswordCommand({ ...policy }));
    const pw = out.RandomPassword;
    if (!pw) throw new SecretFormatError('GetRandomPassword returned no password.');
    this.redactor.add(pw);
    return pw;
  }

  /** Move AWSCURRENT to this rotation's version, removing it from the version that holds it. */
  async moveCurrentToToken(currentHolder: string | undefined): Promise<void> {
    try {
      await this.send('UpdateSecretVersionStage', this.secretId, () =>
        this.client.send(
          new UpdateSecretVersionStageCommand({
            SecretId: this.secretId,
            VersionStage: AWSCURRENT,
            MoveToVersionId: this.token,
            ...(currentHolder ? { RemoveFromVersionId: currentHolder } : {}),
          }),
        ),
      );
    } catch (err) {
      // A duplicate finishSecret may have moved the label between our DescribeSecret and this
      // call (RemoveFromVersionId no longer matches): if this version holds AWSCURRENT now, done.
      if (!(err instanceof RotationError && awsErrorName(err.cause) === 'InvalidParameterException')) throw err;
      const stages = (await this.describe()).VersionIdsToStages ?? {};
      if (!(Object.hasOwn(stages, this.token) && stages[this.token].includes(AWSCURRENT))) throw err;
      this.log.info('AWSCURRENT was already moved to this version (a concurrent invocation)', { versionId: this.token });
    }
  }

  private key(secretId: string, sel: { VersionId?: string; VersionStage?: string }): string {
    return `${secretId}\u0000${sel.VersionId ?? ''}\u0000${sel.VersionStage ?? ''}`;
  }

  private read(secretId: string, sel: { VersionId?: string; VersionStage?: string }): Promise<string | undefined> {
    const k = this.key(secretId, sel);
    let p = this.cache.get(k);
    if (!p) {
      p = this.fetch(secretId, sel);
      this.cache.set(k, p);
      p.catch(() => this.cache.delete(k));
    }
    return p;
  }

  private async fetch(secretId: string, sel: { VersionId?: string; VersionStage?: string }): Promise<string | undefined> {
    try {
      const out = await this.send('GetSecretValue', secretId, () => this.client.send(new GetSecretValueCommand({ SecretId: secretId, ...sel })), true);
      if (out.SecretString === undefined) {
        throw new SecretFormatError(
          `Secret ${secretId} (${sel.VersionStage ?? sel.VersionId}) has no SecretString; binary secrets are not supported.`,
        );
      }
      this.redactor.addSecretString(out.SecretString);
      return out.SecretString;
    } catch (err) {
      if (awsErrorName(err) === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  }

  /** One Secrets Manager call; its failure becomes a typed, actionable RotationError (see secretsManagerError). */
  private async send<T>(operation: string, secretId: string, call: () => Promise<T>, passNotFound = false): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (passNotFound && awsErrorName(err) === 'ResourceNotFoundException') throw err;
      throw secretsManagerError(err, operation, secretId, secretId === this.secretId);
    }
  }
}

/** A SecretId short enough to put in a message (an event may carry a huge one). */
function shortId(secretId: string): string {
  return secretId.length > 200 ? `${secretId.slice(0, 200)}... (${secretId.length} characters)` : secretId;
}

const THROTTLED = new Set(['ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'ServiceUnavailable', 'ServiceUnavailableException', 'InternalServiceError', 'InternalFailure', 'TimeoutError', 'RequestTimeout']);
const NETWORK_CODES = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED)$/;

/**
 * Maps a Secrets Manager failure to the framework's codes, with what to do about it. The SDK's
 * own name and message are kept (SecretId shortened), never a secret value: Secrets Manager's
 * messages name secrets and versions, not values. `ofEvent`: the call was about the event's
 * secret (so a malformed id is the event's fault).
 */
export function secretsManagerError(err: unknown, operation: string, secretId: string, ofEvent: boolean): RotationError {
  if (err instanceof RotationError) return err;
  const name = awsErrorName(err) ?? 'Error';
  const detail = `${operation} on ${shortId(secretId)} failed: ${name}: ${describeError(err).slice(0, 300)}`;
  const code = (err as { code?: unknown })?.code;
  const wrap = (e: RotationError) => Object.defineProperty(e, 'cause', { value: err, writable: true, configurable: true });
  if (name === 'ResourceNotFoundException') {
    return wrap(ofEvent
      ? new RotationStateError(`${detail} (secret or version not found).`, 'Check that the secret and this rotation\'s version still exist; start a new rotation.')
      : new ConfigError(`${detail} (secret not found).`, 'Check the ARN the rotated secret names (e.g. its "masterarn" field).'));
  }
  if (name === 'ValidationException' || (name === 'InvalidParameterException' && ofEvent && secretId.length > 2048)) {
    return wrap(ofEvent ? new EventError(`${detail} The event's SecretId is not a valid secret id.`) : new ConfigError(`${detail}`, 'Check the secret ARN.'));
  }
  if (/^KMS|^(DecryptionFailure|EncryptionFailure)$/.test(name) || (name === 'AccessDeniedException' && /kms/i.test(describeError(err)))) {
    return wrap(new ConfigError(`${detail}`, 'The function\'s role needs kms:Decrypt (and kms:GenerateDataKey to store a value) on the secret\'s KMS key, and the key must be enabled.'));
  }
  if (name === 'AccessDeniedException' || name === 'AccessDenied' || name === 'UnrecognizedClientException') {
    return wrap(new PrivilegeError(`${detail}`, `The function's role needs secretsmanager:${operation} on ${shortId(secretId)} (check its policy and the secret's resource policy).`));
  }
  if (THROTTLED.has(name) || (typeof code === 'string' && NETWORK_CODES.test(code)) || /ECONNREFUSED|ECONNRESET|ETIMEDOUT|socket hang up/.test(describeError(err))) {
    return wrap(new RotationError('NETWORK', `${detail} (after the SDK's retries).`, {
      remedy: 'Secrets Manager was throttling or unreachable; the service retries the step. Check the route to Secrets Manager (NAT gateway or VPC endpoint) if it persists.',
    }));
  }
  if (name === 'InvalidRequestException') {
    return wrap(new RotationStateError(`${detail}`, 'The secret is not in a state this step can act on (deleted, or its rotation was cancelled); start a new rotation.'));
  }
  return wrap(new RotationError('STATE', `${detail}`));
}
