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
import { generatePassword, type PasswordPolicy, type PasswordSource } from './password';
import type { Redactor } from './redact';

export const AWSCURRENT = 'AWSCURRENT';
export const AWSPENDING = 'AWSPENDING';
export const AWSPREVIOUS = 'AWSPREVIOUS';

/**
 * Builds the Secrets Manager client the handler uses, honouring SECRETS_MANAGER_ENDPOINT, with
 * the retry strategy for rotation storms (RotationRetryStrategy; SECRETS_MANAGER_RETRY_BUDGET_MS).
 */
export function defaultSecretsManagerClient(env: Record<string, string | undefined> = process.env): SecretsManagerClient {
  const endpoint = env.SECRETS_MANAGER_ENDPOINT?.trim();
  const retryStrategy = new RotationRetryStrategy({ throttleBudgetMs: retryBudgetFromEnv(env) });
  return new SecretsManagerClient({ ...(endpoint ? { endpoint } : {}), retryStrategy, maxAttempts: retryStrategy.maxAttemptsHint });
}

export const DEFAULT_RETRY_BUDGET_MS = 40_000;

/** SECRETS_MANAGER_RETRY_BUDGET_MS: how long one call may keep retrying ThrottlingException (default 40000, 0-600000). */
export function retryBudgetFromEnv(env: Record<string, string | undefined>): number {
  const raw = env.SECRETS_MANAGER_RETRY_BUDGET_MS?.trim();
  if (!raw) return DEFAULT_RETRY_BUDGET_MS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 600_000) {
    throw new ConfigError(`SECRETS_MANAGER_RETRY_BUDGET_MS must be a whole number of milliseconds (0-600000), got "${raw.slice(0, 40)}".`);
  }
  return n;
}

/** The parts of the SDK's RetryStrategyV2 contract (@smithy/types) this strategy implements. */
interface RetryErrorInfoLike {
  errorType: 'TRANSIENT' | 'THROTTLING' | 'SERVER_ERROR' | 'CLIENT_ERROR';
  retryAfterHint?: Date;
}

class RetryToken {
  constructor(
    readonly firstAttemptMs: number,
    private readonly count: number,
    private readonly delayMs: number,
  ) {}
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    return this.delayMs;
  }
}

export interface RotationRetryOptions {
  /** How long, from its first attempt, one call keeps retrying ThrottlingException (default 40 s). */
  throttleBudgetMs?: number;
  /** Backoff base and cap for throttling (default 500 ms and 10 s). */
  throttleBaseMs?: number;
  throttleCapMs?: number;
  /** After this long from its first attempt (default 3/8 of the budget) a call retries within `lateCapMs` (default 1 s). */
  lateAfterMs?: number;
  lateCapMs?: number;
  /** Attempts for transient (network, 5xx) errors, the SDK standard mode's 3 by default. */
  transientMaxAttempts?: number;
  /** For tests: the random source in [0, 1). */
  random?: () => number;
}

/**
 * The SDK retry strategy for rotation storms. Many secrets whose rotation windows open together
 * meet Secrets Manager's per-Region quota of 50 PutSecretValue + UpdateSecretVersionStage
 * requests per second (not adjustable), and every rotation needs both. A throttled call is not a
 * failure to give up on quickly: it is retried with full-jitter exponential backoff (500 ms
 * base, 10 s cap) for as long as its time budget allows (40 s by default, inside the template's
 * 60 s Lambda timeout; each step makes at most one quota-limited call). A call that has already
 * waited 3/8 of its budget retries within 1 s instead: waiting then comes closer to first come,
 * first served than to a lottery. With full jitter alone about 1 % of the writes of a
 * 1,000-rotation storm (2,000 writes at 50/s: 40 s) ran out of a 40 s budget, in the benchmark
 * and in a simulation; with this rule none did. Beyond about budget x 50 / 2 rotations at once
 * no budget suffices: Secrets Manager's own retry of the failed rotation takes over. Unlike the SDK's
 * standard and adaptive modes, throttling retries draw on no client-wide retry quota: a
 * function serving many secrets would otherwise empty that quota in the first second of a storm
 * and fail every later call at its first ThrottlingException. Transient errors (network, 5xx)
 * keep the standard mode's 3 attempts; client errors are never retried.
 */
export class RotationRetryStrategy {
  readonly mode = 'standard';
  private readonly budgetMs: number;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly transientMaxAttempts: number;
  private readonly random: () => number;
  private readonly lateAfterMs: number;
  private readonly lateCapMs: number;

  constructor(options: RotationRetryOptions = {}) {
    this.budgetMs = options.throttleBudgetMs ?? DEFAULT_RETRY_BUDGET_MS;
    this.baseMs = options.throttleBaseMs ?? 500;
    this.capMs = options.throttleCapMs ?? 10_000;
    this.lateAfterMs = options.lateAfterMs ?? Math.round((this.budgetMs * 3) / 8);
    this.lateCapMs = options.lateCapMs ?? 1_000;
    this.transientMaxAttempts = options.transientMaxAttempts ?? 3;
    this.random = options.random ?? Math.random;
  }

  /** For the SDK's amz-sdk-request header only; the budget, not a count, bounds throttling retries. */
  get maxAttemptsHint(): number {
    return Math.max(this.transientMaxAttempts, 1 + Math.ceil(this.budgetMs / (this.baseMs / 2)));
  }

  async acquireInitialRetryToken(_scope: string): Promise<RetryToken> {
    return new RetryToken(Date.now(), 0, 0);
  }

  async refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfoLike): Promise<RetryToken> {
    const next = token.getRetryCount() + 1;
    if (info.errorType === 'THROTTLING') {
      const late = Date.now() - token.firstAttemptMs > this.lateAfterMs;
      const exp = late ? this.lateCapMs : Math.min(this.capMs, this.baseMs * 2 ** Math.min(next - 1, 30));
      let delay = Math.floor(this.random() * exp);
      const hint = info.retryAfterHint instanceof Date ? info.retryAfterHint.getTime() - Date.now() : 0;
      if (hint > delay) delay = Math.min(hint, this.capMs);
      if (Date.now() + delay - token.firstAttemptMs <= this.budgetMs) return new RetryToken(token.firstAttemptMs, next, delay);
    } else if (info.errorType === 'TRANSIENT' && next < this.transientMaxAttempts) {
      return new RetryToken(token.firstAttemptMs, next, Math.floor(this.random() * Math.min(20_000, 100 * 2 ** (next - 1))));
    }
    throw new Error('No retry token available');
  }

  recordSuccess(_token: RetryToken): void {}
}

/**
 * Values by (secret ARN, VersionId), shared by the invocations of one warm container: one cache
 * per Secrets Manager client (the handler keeps one client per container). A version's value
 * never changes (PutSecretValue refuses to change it: ResourceExistsException), so a value read
 * or stored by one step is the value a later step of the same rotation would read: setSecret,
 * testSecret and finishSecret reuse what createSecret read and stored, after their own
 * DescribeSecret has shown which version holds the label. Bounded (least recently used out).
 */
class VersionValueCache {
  private readonly values = new Map<string, string>();
  /** The ARN behind each secret id an event named (DescribeSecret's and GetSecretValue's answers). */
  readonly arns = new Map<string, string>();
  constructor(private readonly max = 64) {}
  has(arn: string, versionId: string): boolean {
    return this.values.has(`${arn}\u0000${versionId}`);
  }
  get(arn: string, versionId: string): string | undefined {
    const k = `${arn}\u0000${versionId}`;
    const v = this.values.get(k);
    if (v !== undefined) {
      this.values.delete(k);
      this.values.set(k, v);
    }
    return v;
  }
  set(arn: string, versionId: string, value: string): void {
    const k = `${arn}\u0000${versionId}`;
    this.values.delete(k);
    this.values.set(k, value);
    if (this.values.size > this.max) this.values.delete(this.values.keys().next().value!);
  }
}

const versionCaches = new WeakMap<SecretsManagerClient, VersionValueCache>();

function versionCacheOf(client: SecretsManagerClient): VersionValueCache {
  let c = versionCaches.get(client);
  if (!c) versionCaches.set(client, (c = new VersionValueCache()));
  return c;
}

/** One version as GetSecretValue returned it: its value, id and labels. */
interface VersionRead {
  value: string;
  versionId?: string;
  stages: string[];
}

/**
 * The per-invocation view of Secrets Manager a rotator works through. It reads each version at
 * most once per invocation (and, in a warm container, a version an earlier step already read or
 * stored not at all: VersionValueCache), registers every value it reads with the redactor, and
 * always passes the ClientRequestToken (and the RotationToken, when the event has one) on writes.
 */
export class SecretStore {
  private readonly cache = new Map<string, Promise<VersionRead | undefined>>();
  private readonly versions: VersionValueCache;
  /** This secret's DescribeSecret result of this invocation (which version holds which label). */
  private metadata?: DescribeSecretResponse;

  constructor(
    readonly client: SecretsManagerClient,
    readonly secretId: string,
    readonly token: string,
    private readonly redactor: Redactor,
    private readonly log: Logger,
    private readonly rotationToken?: string,
  ) {
    this.versions = versionCacheOf(client);
  }

  /** DescribeSecret of this secret, or of another one (the admin secret's tags). */
  async describe(secretId = this.secretId): Promise<DescribeSecretResponse> {
    const out = await this.send('DescribeSecret', secretId, () => this.client.send(new DescribeSecretCommand({ SecretId: secretId })));
    if (secretId === this.secretId) {
      this.metadata = out;
      if (out.ARN) this.rememberArn(out.ARN);
    }
    return out;
  }

  /**
   * Whether this warm container already holds the value of this rotation's version (stored by
   * its createSecret, or read by an earlier step): then DescribeSecret alone tells a step which
   * versions hold the labels, and their values need no read.
   */
  holdsPendingValue(): boolean {
    const arn = this.versions.arns.get(this.secretId);
    return arn !== undefined && this.versions.has(arn, this.token);
  }

  private rememberArn(arn: string): void {
    this.versions.arns.delete(this.secretId);
    this.versions.arns.set(this.secretId, arn);
    if (this.versions.arns.size > 256) this.versions.arns.delete(this.versions.arns.keys().next().value!);
  }

  /** AWSCURRENT of this secret; it must exist. */
  async current(): Promise<string> {
    return (await this.currentVersion()).value;
  }

  /** The id of the version holding AWSCURRENT (from the same read as current()). */
  async currentVersionId(): Promise<string | undefined> {
    return (await this.currentVersion()).versionId;
  }

  private async currentVersion(): Promise<VersionRead> {
    const v = await this.readVersion(this.secretId, { VersionStage: AWSCURRENT });
    if (v === undefined) {
      throw new RotationStateError(`Secret ${this.secretId} has no AWSCURRENT value.`, 'Put an initial value before rotating.');
    }
    return v;
  }

  /** The AWSPENDING value of this rotation (VersionId = token), or undefined if not yet created. */
  async pending(): Promise<string | undefined> {
    return this.read(this.secretId, { VersionId: this.token, VersionStage: AWSPENDING });
  }

  /**
   * The labels of this rotation's version, learnt from GetSecretValue(VersionId = token,
   * VersionStage = AWSPENDING), which the service answers only while the token holds AWSPENDING
   * (InvalidRequestException otherwise) and has a value (ResourceNotFoundException for
   * RotateSecret's placeholder): `undefined` when that read found nothing, and the step must ask
   * DescribeSecret why. The value is kept for pending().
   */
  async pendingStages(): Promise<string[] | undefined> {
    try {
      return (await this.readVersion(this.secretId, { VersionId: this.token, VersionStage: AWSPENDING }))?.stages;
    } catch (err) {
      // The token is not AWSPENDING (InvalidRequestException) or not even a well-formed version id
      // (a validation error): an answer, not a failure; DescribeSecret, not this read, says which.
      if (err instanceof RotationError && (err.code === 'STATE' || err.code === 'EVENT')) return undefined;
      throw err;
    }
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
   * Store this rotation's AWSPENDING value (PutSecretValue with ClientRequestToken = token).
   * Returns true when stored (or already stored with this exact value: the call is idempotent),
   * false when the version already holds another value (ResourceExistsException: a version is
   * never changed; a retry after a lost answer, or a duplicate concurrent createSecret), which the
   * caller then reads with pending() and validates.
   */
  async putPending(secretString: string): Promise<boolean> {
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
      const name = awsErrorName(err instanceof RotationError && err.cause !== undefined ? err.cause : err);
      if (name !== 'ResourceExistsException') throw err;
      this.cache.delete(key);
      return false;
    }
    this.cache.set(key, Promise.resolve({ value: secretString, versionId: this.token, stages: [AWSPENDING] }));
    if (this.metadata?.ARN) this.versions.set(this.metadata.ARN, this.token, secretString);
    this.log.info('stored AWSPENDING value', { versionId: this.token });
    return true;
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

  /**
   * A new password under `policy`: generated here with node:crypto (source `local`, the
   * default: no API call), or by GetRandomPassword (source `secretsmanager`). Registered with the
   * redactor either way.
   */
  async randomPassword(policy: PasswordPolicy, source: PasswordSource = 'local'): Promise<string> {
    let pw: string | undefined;
    if (source === 'local') {
      pw = generatePassword(policy);
    } else {
      const out = await this.send('GetRandomPassword', this.secretId, () => this.client.send(new GetRandomPasswordCommand({ ...policy })));
      pw = out.RandomPassword;
      if (!pw) throw new SecretFormatError('GetRandomPassword returned no password.');
    }
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

  /**
   * A value of this secret an earlier step already read or stored: only when this invocation's
   * DescribeSecret shows the version and (when one is asked for) that it holds the label.
   */
  private known(secretId: string, sel: { VersionId?: string; VersionStage?: string }): VersionRead | undefined {
    const m = this.metadata;
    if (secretId !== this.secretId || !m?.ARN || !m.VersionIdsToStages) return undefined;
    const stages = m.VersionIdsToStages;
    const id = sel.VersionId ?? Object.keys(stages).find((v) => sel.VersionStage !== undefined && stages[v].includes(sel.VersionStage));
    if (id === undefined || !Object.hasOwn(stages, id)) return undefined;
    if (sel.VersionStage !== undefined && !stages[id].includes(sel.VersionStage)) return undefined;
    const v = this.versions.get(m.ARN, id);
    if (v === undefined) return undefined;
    this.redactor.addSecretString(v);
    return { value: v, versionId: id, stages: stages[id] };
  }

  private async read(secretId: string, sel: { VersionId?: string; VersionStage?: string }): Promise<string | undefined> {
    return (await this.readVersion(secretId, sel))?.value;
  }

  private readVersion(secretId: string, sel: { VersionId?: string; VersionStage?: string }): Promise<VersionRead | undefined> {
    const k = this.key(secretId, sel);
    let p = this.cache.get(k);
    if (!p) {
      const known = this.known(secretId, sel);
      p = known !== undefined ? Promise.resolve(known) : this.fetch(secretId, sel);
      this.cache.set(k, p);
      p.catch(() => this.cache.delete(k));
    }
    return p;
  }

  private async fetch(secretId: string, sel: { VersionId?: string; VersionStage?: string }): Promise<VersionRead | undefined> {
    try {
      const out = await this.send('GetSecretValue', secretId, () => this.client.send(new GetSecretValueCommand({ SecretId: secretId, ...sel })), true);
      if (out.SecretString === undefined) {
        throw new SecretFormatError(
          `Secret ${secretId} (${sel.VersionStage ?? sel.VersionId}) has no SecretString; binary secrets are not supported.`,
        );
      }
      this.redactor.addSecretString(out.SecretString);
      // Only this secret's versions: another secret's (the admin's) are read once per invocation.
      if (secretId === this.secretId && out.ARN && out.VersionId) {
        this.rememberArn(out.ARN);
        this.versions.set(out.ARN, out.VersionId, out.SecretString);
      }
      return { value: out.SecretString, versionId: out.VersionId, stages: out.VersionStages ?? [] };
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
