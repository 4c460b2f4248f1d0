/**
 * A stateful, in-memory model of AWS Secrets Manager for testing rotation functions, reached
 * through the real AWS SDK client (in-process transport) or over HTTP (http-server.ts).
 *
 * It enforces the service rules that rotation depends on, as documented in the API reference and
 * recorded against real AWS by LocalStack's validated tests: one version per staging label, at
 * most 20 labels per secret, AWSCURRENT moves need RemoveFromVersionId and drag AWSPREVIOUS
 * along, unlabelled versions are deprecated, ClientRequestToken idempotency, the value-less
 * AWSPENDING placeholder that RotateSecret creates, "A previous rotation isn't complete",
 * deleted secrets, RotationToken, and (opt-in, `quotas`) the per-Region request quotas with
 * ThrottlingException.
 * And it drives rotations the way the service does: RotateSecret returns at once and the four
 * steps are invoked afterwards, one by one, with retries of the whole sequence on failure.
 *
 * Where AWS's behaviour is not documented, the choice made here is marked "unverified".
 */
import { SecretsManagerClient, type SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import { randomInt, randomUUID } from 'node:crypto';
import { STEPS, type Step } from '../rotator';
import { AWSCURRENT, AWSPENDING } from '../secrets';
import {
  err,
  type Input,
  invalid,
  optBool,
  optInt,
  optString,
  optStringList,
  readRotationRules,
  readTags,
  readValue,
  reqString,
  type RotationRules,
  type SecretValue,
  type Tag,
} from './input';
import { attachLabel, countLabels, holderOf, removeLabel, type StageMap } from './labels';
import { PasswordConstraintError, randomPassword } from './random-password';
import {
  compact,
  epochSeconds,
  errorResponse,
  InProcessRequestHandler,
  jsonResponse,
  type JsonResponse,
  SecretsManagerError,
  TARGET_PREFIX,
} from './wire';

export { SecretsManagerError, type JsonResponse } from './wire';

export interface SecretsManagerDoubleOptions {
  /** Default us-east-1. */
  region?: string;
  /** Default 123456789012. */
  accountId?: string;
  /** Remove AWSPENDING from the new version after a successful rotation, as the service does (default true). */
  stripPendingAfterRotation?: boolean;
  /** How many times the whole four-step sequence is run before the rotation is given up (default 1). */
  rotationMaxAttempts?: number;
  /** Pause between attempts, in ms (default 0). */
  rotationRetryDelayMs?: number;
  /** Put a fresh RotationToken in every rotation event (default true; forced on by requireRotationToken). */
  sendRotationToken?: boolean;
  /**
   * Reject a PutSecretValue for the version being rotated unless it carries the RotationToken of
   * the latest event the double sent (AccessDeniedException). Default false.
   */
  requireRotationToken?: boolean;
  /**
   * Moving a label that is already on another version needs RemoveFromVersionId naming that
   * version, for every label (the API's member documentation). When false, only AWSCURRENT needs
   * it (the only case with published evidence). Default true.
   */
  strictLabelMoves?: boolean;
  /**
   * Enforce Secrets Manager's per-Region request quotas with ThrottlingException ("Rate
   * exceeded."), one token bucket per quota (capacity = one second's worth, refilled
   * continuously). `true`: the documented quotas (DOCUMENTED_QUOTAS); an object: those, with the
   * given per-second rates replacing them. Default false: ordinary tests use clients without
   * retries and make calls in bursts no Lambda function makes.
   */
  quotas?: boolean | Partial<Record<QuotaName, number>>;
}

/**
 * Secrets Manager's request quotas per Region and second (sm-semantics.md §1.6: the service
 * quotas page; DescribeSecret + GetSecretValue 10,000/s combined, 50/s for the others, the
 * write APIs combined). Operations that share a quota share a bucket.
 */
export const DOCUMENTED_QUOTAS = {
  'DescribeSecret+GetSecretValue': 10_000,
  'PutSecretValue+UpdateSecret+UpdateSecretVersionStage': 50,
  GetRandomPassword: 50,
  CreateSecret: 50,
  DeleteSecret: 50,
  RestoreSecret: 50,
  'RotateSecret+CancelRotateSecret': 50,
  'TagResource+UntagResource': 50,
  ListSecrets: 50,
  ListSecretVersionIds: 50,
} as const;

export type QuotaName = keyof typeof DOCUMENTED_QUOTAS;

/** A token bucket: `rate` requests per second, bursts of up to one second's worth. */
class TokenBucket {
  private tokens: number;
  private lastMs = performance.now();
  constructor(readonly rate: number) {
    this.tokens = rate;
  }
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.lastMs) / 1000) * this.rate);
    this.lastMs = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** One request the double served. Never contains a secret value or a RotationToken. */
export interface CallRecord {
  operation: string;
  secretId?: string;
  versionId?: string;
  versionStage?: string;
  versionStages?: string[];
  /** The error code, when the call failed (ThrottlingException: refused by a quota, nothing done). */
  error?: string;
}

/** The event the double sends to a rotation function. */
export type RotationEventPayload = {
  Step: Step;
  SecretId: string;
  ClientRequestToken: string;
  RotationToken?: string;
};

export type RotationFunction = (event: RotationEventPayload) => unknown;

export interface RotationOutcome {
  versionId: string;
  succeeded: boolean;
  attempts: number;
  /** The last attempt's error (name: message), when the rotation failed. */
  error?: string;
  /** Every step invoked, in order, over all attempts. */
  steps: Step[];
}

export interface RotateOptions {
  lambdaArn?: string;
  rotateImmediately?: boolean;
  clientRequestToken?: string;
  rotationRules?: { AutomaticallyAfterDays?: number; Duration?: string; ScheduleExpression?: string };
}

/** A rotation started with beginRotation(): the test sends the events itself. */
export interface ManualRotation {
  readonly secretArn: string;
  readonly versionId: string;
  /** The event for one step (with a fresh RotationToken when the double sends them). */
  event(step: Step): RotationEventPayload;
  /** What the service does after a successful rotation: strip AWSPENDING, set LastRotatedDate. */
  complete(): void;
}

interface Version {
  id: string;
  secretString?: string;
  /** Base64, as on the wire. */
  secretBinary?: string;
  stages: string[];
  createdMs: number;
  lastAccessedMs?: number;
}

interface RotationRun {
  versionId: string;
  secretArn: string;
  lambdaArn: string;
  rotateImmediately: boolean;
  rotationToken?: string;
  cancelled: boolean;
  done?: Promise<RotationOutcome>;
}

interface Secret {
  arn: string;
  name: string;
  description?: string;
  kmsKeyId?: string;
  tags?: Tag[];
  versions: Map<string, Version>;
  createdMs: number;
  lastChangedMs: number;
  lastAccessedMs?: number;
  deletedMs?: number;
  rotationEnabled?: boolean;
  rotationLambdaArn?: string;
  rotationRules?: RotationRules;
  lastRotatedMs?: number;
  nextRotationMs?: number;
  run?: RotationRun;
}

const DAY_MS = 86_400_000;
const MAX_LABELS = 20;
const MAX_VERSIONS = 100;
const NAME_RE = /^[A-Za-z0-9/_+=.@!-]+$/;
const ROTATION_TOKEN_RE = /^[a-zA-Z0-9-]+$/;
const DEFAULT_MANUAL_LAMBDA = 'function:manual-steps';

const MSG = {
  secretNotFound: "Secrets Manager can't find the specified secret.",
  stageNotFound: (stage: string) => `Secrets Manager can't find the specified secret value for staging label: ${stage}`,
  versionNotFound: (id: string) => `Secrets Manager can't find the specified secret value for VersionId: ${id}`,
  mismatch: 'You provided a VersionStage that is not associated to the provided VersionId.',
  needToken: 'You must provide a ClientRequestToken value. We recommend a UUID-type value.',
  markedForDeletion: "You can't perform this operation on the secret because it was marked for deletion.",
  scheduledForDeletion: "You can't create this secret because a secret with this name is already scheduled for deletion.",
  exists: (name: string) => `The operation failed because the secret ${name} already exists.`,
  tokenInUse: (token: string, arn: string) =>
    `You can't use ClientRequestToken ${token} because that value is already in use for a version of secret ${arn}.`,
  invalidName: 'Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!',
  noLambda: 'No Lambda rotation function ARN is associated with this secret.',
  cannotInvoke:
    'Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.',
  previousRotation: "A previous rotation isn't complete. That rotation will be reattempted.",
  removeFromEmpty: (label: string, holder: string) =>
    `The parameter RemoveFromVersionId can't be empty. Staging label ${label} is currently attached to version ${holder}, so you must explicitly reference that version in RemoveFromVersionId.`,
};

function hasValue(v: Version): boolean {
  return v.secretString !== undefined || v.secretBinary !== undefined;
}

function sameValue(v: Version, value: SecretValue): boolean {
  return v.secretString === value.secretString && v.secretBinary === value.secretBinary;
}

/** TagResource's rule: a tag replaces the one with the same key, others are kept. */
function mergeTags(s: Secret, tags: Tag[]): void {
  const merged = new Map((s.tags ?? []).map((t) => [t.Key, t]));
  for (const t of tags) merged.set(t.Key, t);
  s.tags = [...merged.values()];
}

function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

function describeThrown(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

function nextRotation(fromMs: number, rules: RotationRules | undefined): number | undefined {
  if (!rules) return undefined;
  if (rules.AutomaticallyAfterDays !== undefined) return fromMs + rules.AutomaticallyAfterDays * DAY_MS;
  const rate = /^rate\((\d+) (hours?|days?)\)$/.exec(rules.ScheduleExpression ?? '');
  if (rate) return fromMs + Number(rate[1]) * (rate[2].startsWith('hour') ? 3_600_000 : DAY_MS);
  return undefined;
}

export class SecretsManagerDouble {
  readonly region: string;
  readonly accountId: string;
  /** Every operation served, in order (see CallRecord). */
  readonly calls: CallRecord[] = [];

  private readonly secrets = new Map<string, Secret>();
  private readonly functions = new Map<string, RotationFunction>();
  private readonly injected = new Map<string, SecretsManagerError[]>();
  private readonly injectedAt = new Map<number, SecretsManagerError>();
  private readonly options: Required<Omit<SecretsManagerDoubleOptions, 'region' | 'accountId' | 'quotas'>>;
  /** Operation -> its quota's bucket, when quotas are enforced. */
  private readonly buckets = new Map<string, TokenBucket>();
  /** Set while the service itself starts a scheduled rotation (not an API call: no quota). */
  private unmetered = false;

  private readonly operations: Record<string, (input: Input) => object> = {
    CreateSecret: (i) => this.createSecret(i),
    DescribeSecret: (i) => this.describeSecret(i),
    GetSecretValue: (i) => this.getSecretValue(i),
    PutSecretValue: (i) => this.putSecretValue(i),
    UpdateSecret: (i) => this.updateSecret(i),
    UpdateSecretVersionStage: (i) => this.updateSecretVersionStage(i),
    GetRandomPassword: (i) => this.getRandomPassword(i),
    RotateSecret: (i) => this.rotateSecret(i, false),
    CancelRotateSecret: (i) => this.cancelRotateSecret(i),
    ListSecretVersionIds: (i) => this.listSecretVersionIds(i),
    ListSecrets: (i) => this.listSecrets(i),
    DeleteSecret: (i) => this.deleteSecret(i),
    RestoreSecret: (i) => this.restoreSecret(i),
    TagResource: (i) => this.tagResource(i),
    UntagResource: (i) => this.untagResource(i),
  };

  constructor(options: SecretsManagerDoubleOptions = {}) {
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '123456789012';
    this.options = {
      stripPendingAfterRotation: options.stripPendingAfterRotation ?? true,
      rotationMaxAttempts: Math.max(1, options.rotationMaxAttempts ?? 1),
      rotationRetryDelayMs: options.rotationRetryDelayMs ?? 0,
      sendRotationToken: (options.sendRotationToken ?? true) || (options.requireRotationToken ?? false),
      requireRotationToken: options.requireRotationToken ?? false,
      strictLabelMoves: options.strictLabelMoves ?? true,
    };
    if (options.quotas) {
      const rates: Record<string, number> = { ...DOCUMENTED_QUOTAS, ...(options.quotas === true ? {} : options.quotas) };
      for (const [name, rate] of Object.entries(rates)) {
        if (!Object.hasOwn(DOCUMENTED_QUOTAS, name)) throw new Error(`Unknown quota "${name}"; known: ${Object.keys(DOCUMENTED_QUOTAS).join(', ')}.`);
        if (!(rate > 0)) throw new Error(`Quota ${name} must be a positive rate, got ${rate}.`);
        const bucket = new TokenBucket(rate);
        for (const op of name.split('+')) this.buckets.set(op, bucket);
      }
    }
  }

  // ---- transports ---------------------------------------------------------------------------

  /**
   * A real SecretsManagerClient whose requests are served in-process by this double (region,
   * dummy credentials, no SDK retries unless `config` says otherwise).
   */
  client(config: SecretsManagerClientConfig = {}): SecretsManagerClient {
    return new SecretsManagerClient({
      region: this.region,
      credentials: { accessKeyId: 'AKIDSECRETSMANAGERDOUBLE', secretAccessKey: 'secrets-manager-double' },
      maxAttempts: 1,
      requestHandler: new InProcessRequestHandler((target, body) => this.handleJsonRequest(target, body)),
      ...config,
    });
  }

  /** The AWS JSON 1.1 dispatcher both transports use: X-Amz-Target value and body text in, HTTP response out. */
  async handleJsonRequest(target: string | undefined, bodyText: string): Promise<JsonResponse> {
    const operation = target?.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
    if (!operation || !Object.hasOwn(this.operations, operation)) {
      return errorResponse(err('UnknownOperationException', `The operation ${operation ?? target ?? '(no X-Amz-Target)'} is not supported.`));
    }
    let input: unknown;
    try {
      input = bodyText.trim() === '' ? {} : JSON.parse(bodyText);
    } catch {
      return errorResponse(err('SerializationException', 'The request body is not valid JSON.'));
    }
    if (!input || typeof input !== 'object' || Array.isArray(input)) {
      return errorResponse(err('SerializationException', 'The request body must be a JSON object.'));
    }
    try {
      return jsonResponse(200, this.invoke(operation, input as Input));
    } catch (e) {
      if (e instanceof SecretsManagerError) return errorResponse(e);
      return errorResponse(err('InternalServiceError', `The Secrets Manager double failed: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  /**
   * Serve one operation directly (no wire): records the call, applies injected failures, and
   * returns the response members that have a value. Throws SecretsManagerError.
   */
  invoke(operation: string, input: Input): object {
    const op = Object.hasOwn(this.operations, operation) ? this.operations[operation] : undefined;
    if (!op) throw err('UnknownOperationException', `The operation ${operation} is not supported.`);
    return this.serve(operation, input, () => op(input));
  }

  private serve(operation: string, input: Input, run: () => object): object {
    const str = (k: string): string | undefined => (typeof input[k] === 'string' ? (input[k] as string) : undefined);
    const record: CallRecord = compact({
      operation,
      secretId: str('SecretId') ?? str('Name'),
      versionId: str('VersionId') ?? str('ClientRequestToken') ?? str('MoveToVersionId'),
      versionStage: str('VersionStage'),
      versionStages: Array.isArray(input.VersionStages) ? (input.VersionStages as string[]).slice() : undefined,
    });
    this.calls.push(record);
    try {
      if (!this.unmetered && this.buckets.get(operation)?.take() === false) throw err('ThrottlingException', 'Rate exceeded.');
      const at = this.injectedAt.get(this.calls.length - 1);
      this.injectedAt.delete(this.calls.length - 1);
      const failure = at ?? this.injected.get(operation)?.shift();
      if (failure) throw failure;
      return compact(run());
    } catch (e) {
      record.error = e instanceof SecretsManagerError ? e.__type : 'InternalServiceError';
      throw e;
    }
  }

  // ---- test helpers -------------------------------------------------------------------------

  /** Number of calls served, of one operation or of all. */
  countCalls(operation?: string): number {
    return operation ? this.calls.filter((c) => c.operation === operation).length : this.calls.length;
  }

  resetCalls(): void {
    this.calls.length = 0;
  }

  /** Make the next call of `operation` fail with this error (queued; one failure per call). */
  failNext(operation: string, type: string, message = 'Injected failure.'): void {
    const queue = this.injected.get(operation) ?? [];
    queue.push(new SecretsManagerError(type, message));
    this.injected.set(operation, queue);
  }

  /**
   * Make the call served at this position of `calls` (0-based, whatever its operation) fail with
   * this error, before it has any effect: a fault at the Nth call of a rotation.
   */
  failCallAt(index: number, type: string, message = 'Injected failure.'): void {
    this.injectedAt.set(index, new SecretsManagerError(type, message));
  }

  /** The function RotateSecret invokes for this Lambda ARN. */
  registerFunction(lambdaArn: string, fn: RotationFunction): void {
    this.functions.set(lambdaArn, fn);
  }

  /**
   * Tag a secret from the service side, as RDS does for the master secrets it manages
   * (aws:rds:primaryDBInstanceArn / aws:rds:primaryDBClusterArn). Not recorded as a call.
   */
  tagSecret(secretId: string, tags: Tag[]): void {
    mergeTags(this.findLive(secretId), tags);
  }

  /** Labelled versions of a secret (name or ARN): versionId -> stages. */
  versionStages(secretId: string): Record<string, string[]> {
    const s = this.find(secretId);
    const out: Record<string, string[]> = {};
    for (const v of s.versions.values()) if (v.stages.length) out[v.id] = [...v.stages];
    return out;
  }

  /** RotateSecret (same code path as the API, logged as a RotateSecret call), then wait for the outcome. */
  async rotateAndWait(secretId: string, options: RotateOptions = {}): Promise<RotationOutcome> {
    this.invoke('RotateSecret', this.rotateInput(secretId, options));
    return this.waitForRotation(secretId);
  }

  /**
   * A rotation the service starts on its schedule (same code path as RotateSecret, logged as a
   * RotateSecret call, but not an API call of the account: it draws on no quota), then wait for
   * the outcome. For rotation storms: many schedules opening together.
   */
  async scheduledRotation(secretId: string, options: RotateOptions = {}): Promise<RotationOutcome> {
    this.unmeteredInvoke('RotateSecret', this.rotateInput(secretId, options));
    return this.waitForRotation(secretId);
  }

  /**
   * invoke() outside the account's quotas: set-up a test does through another path (the console,
   * another account), or what the service does itself. Still recorded in the call log.
   */
  unmeteredInvoke(operation: string, input: Input): object {
    const was = this.unmetered;
    this.unmetered = true;
    try {
      return this.invoke(operation, input);
    } finally {
      this.unmetered = was;
    }
  }

  /** Calls refused with ThrottlingException, of one operation or of all. */
  countThrottled(operation?: string): number {
    return this.calls.filter((c) => c.error === 'ThrottlingException' && (!operation || c.operation === operation)).length;
  }

  /** The outcome of the latest rotation the double drove for this secret. */
  async waitForRotation(secretId: string): Promise<RotationOutcome> {
    const done = this.find(secretId).run?.done;
    if (!done) throw new Error(`No rotation driven by the double was started for secret ${secretId}.`);
    return done;
  }

  /**
   * Start a rotation exactly as RotateSecret does (checks, saved configuration, value-less
   * AWSPENDING placeholder) but invoke nothing: the test sends `event(step)` to its handler and
   * calls `complete()` when done. No registered function is needed.
   */
  beginRotation(secretId: string, options: RotateOptions = {}): ManualRotation {
    const input = this.rotateInput(secretId, options);
    const s = this.find(secretId);
    if (!input.RotationLambdaARN && !s.rotationLambdaArn) {
      input.RotationLambdaARN = `arn:aws:lambda:${this.region}:${this.accountId}:${DEFAULT_MANUAL_LAMBDA}`;
    }
    this.serve('RotateSecret', input, () => this.rotateSecret(input, true));
    const run = s.run!;
    return {
      secretArn: run.secretArn,
      versionId: run.versionId,
      event: (step) => this.eventFor(run, step),
      complete: () => this.finishRun(s, run, true),
    };
  }

  private rotateInput(secretId: string, o: RotateOptions): Input {
    return compact({
      SecretId: secretId,
      ClientRequestToken: o.clientRequestToken ?? randomUUID(),
      RotationLambdaARN: o.lambdaArn,
      RotationRules: o.rotationRules,
      RotateImmediately: o.rotateImmediately,
    });
  }

  // ---- lookup -------------------------------------------------------------------------------

  private arnPrefix(): string {
    return `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:`;
  }

  /** By name, full ARN or partial ARN (without the 6-character suffix). */
  private lookup(secretId: string): Secret | undefined {
    if (!secretId.startsWith('arn:')) return this.secrets.get(secretId);
    for (const s of this.secrets.values()) if (s.arn === secretId) return s;
    return secretId.startsWith(this.arnPrefix()) ? this.secrets.get(secretId.slice(this.arnPrefix().length)) : undefined;
  }

  private find(secretId: string): Secret {
    const s = this.lookup(secretId);
    if (!s) throw err('ResourceNotFoundException', MSG.secretNotFound);
    return s;
  }

  private findLive(secretId: string): Secret {
    const s = this.find(secretId);
    if (s.deletedMs !== undefined) throw err('InvalidRequestException', MSG.markedForDeletion);
    return s;
  }

  private token(input: Input, missingType: string): string {
    const t = optString(input, 'ClientRequestToken', 32, 64);
    if (t === undefined) throw err(missingType, MSG.needToken);
    return t;
  }

  private stageMap(s: Secret): StageMap {
    return new Map([...s.versions.values()].map((v) => [v.id, [...v.stages]]));
  }

  /** Writes a label map computed by the callers back, enforcing the 20-labels-per-secret quota. */
  private commitStages(s: Secret, map: StageMap): void {
    if (countLabels(map) > MAX_LABELS) {
      // Unverified text: the quota is documented, the message is not.
      throw err('LimitExceededException', `A secret can have at most ${MAX_LABELS} staging labels attached across all of its versions.`);
    }
    for (const [id, stages] of map) {
      const v = s.versions.get(id);
      if (v) v.stages = stages;
    }
  }

  /** Adds a version or fills a value-less placeholder, then applies the labels (already validated). */
  private storeValue(s: Secret, id: string, value: SecretValue, labels: string[]): Version {
    const map = this.stageMap(s);
    if (!map.has(id)) map.set(id, []);
    for (const label of labels) attachLabel(map, label, id, true);
    let v = s.versions.get(id);
    if (!v) {
      v = { id, stages: [], createdMs: Date.now() };
      s.versions.set(id, v);
    }
    try {
      this.commitStages(s, map);
    } catch (e) {
      if (!hasValue(v) && v.stages.length === 0) s.versions.delete(id);
      throw e;
    }
    v.secretString = value.secretString;
    v.secretBinary = value.secretBinary;
    s.lastChangedMs = Date.now();
    this.pruneVersions(s);
    return v;
  }

  /** "Removes outdated versions when there are more than 100, but not those created less than 24 hours ago." */
  private pruneVersions(s: Secret): void {
    const cutoff = Date.now() - DAY_MS;
    for (const v of [...s.versions.values()]) {
      if (s.versions.size <= MAX_VERSIONS) return;
      if (v.stages.length === 0 && v.createdMs < cutoff) s.versions.delete(v.id);
    }
  }

  // ---- operations ---------------------------------------------------------------------------

  private createSecret(i: Input): object {
    const name = reqString(i, 'Name', 1, 512);
    if (!NAME_RE.test(name)) throw err('ValidationException', MSG.invalidName);
    const token = this.token(i, 'InvalidRequestException');
    const value = readValue(i);
    const description = optString(i, 'Description', 0, 2048);
    const kmsKeyId = optString(i, 'KmsKeyId', 0, 2048);
    const tags = readTags(i, 'Tags');
    const existing = this.secrets.get(name);
    if (existing) {
      if (existing.deletedMs !== undefined) throw err('InvalidRequestException', MSG.scheduledForDeletion);
      const v = existing.versions.get(token);
      if (v && value && sameValue(v, value)) return { ARN: existing.arn, Name: name, VersionId: token };
      if (v) throw err('ResourceExistsException', MSG.tokenInUse(token, existing.arn));
      throw err('ResourceExistsException', MSG.exists(name));
    }
    const now = Date.now();
    const s: Secret = {
      arn: `${this.arnPrefix()}${name}-${suffix()}`,
      name,
      description,
      kmsKeyId: kmsKeyId || undefined,
      tags,
      versions: new Map(),
      createdMs: now,
      lastChangedMs: now,
    };
    this.secrets.set(name, s);
    if (value) this.storeValue(s, token, value, [AWSCURRENT]);
    return { ARN: s.arn, Name: name, VersionId: value ? token : undefined };
  }

  private describeSecret(i: Input): object {
    const s = this.find(reqString(i, 'SecretId', 1, 2048));
    const stages = this.versionStages(s.arn);
    return {
      ARN: s.arn,
      Name: s.name,
      Description: s.description,
      KmsKeyId: s.kmsKeyId,
      RotationEnabled: s.rotationEnabled,
      RotationLambdaARN: s.rotationLambdaArn,
      RotationRules: s.rotationRules,
      LastRotatedDate: epochSeconds(s.lastRotatedMs),
      LastChangedDate: epochSeconds(s.lastChangedMs),
      LastAccessedDate: epochSeconds(s.lastAccessedMs),
      DeletedDate: epochSeconds(s.deletedMs),
      NextRotationDate: s.rotationEnabled ? epochSeconds(s.nextRotationMs) : undefined,
      Tags: s.tags,
      VersionIdsToStages: Object.keys(stages).length ? stages : undefined,
      CreatedDate: epochSeconds(s.createdMs),
    };
  }

  private getSecretValue(i: Input): object {
    const s = this.findLive(reqString(i, 'SecretId', 1, 2048));
    const versionId = optString(i, 'VersionId', 32, 64);
    const stage = optString(i, 'VersionStage', 1, 256);
    let v: Version | undefined;
    if (versionId !== undefined) {
      v = s.versions.get(versionId);
      if (v && stage !== undefined && !v.stages.includes(stage)) throw err('InvalidRequestException', MSG.mismatch);
      if (!v) throw err('ResourceNotFoundException', MSG.versionNotFound(versionId));
    } else {
      const id = holderOf(this.stageMap(s), stage ?? AWSCURRENT);
      v = id === undefined ? undefined : s.versions.get(id);
      if (!v) throw err('ResourceNotFoundException', MSG.stageNotFound(stage ?? AWSCURRENT));
    }
    // The AWSPENDING placeholder of a rotation has no value until createSecret stores one.
    if (!hasValue(v)) {
      throw err('ResourceNotFoundException', stage !== undefined || versionId === undefined ? MSG.stageNotFound(stage ?? AWSCURRENT) : MSG.versionNotFound(v.id));
    }
    const today = dayOf(Date.now());
    s.lastAccessedMs = today;
    v.lastAccessedMs = today;
    return {
      ARN: s.arn,
      Name: s.name,
      VersionId: v.id,
      SecretString: v.secretString,
      SecretBinary: v.secretBinary,
      VersionStages: [...v.stages],
      CreatedDate: epochSeconds(v.createdMs),
    };
  }

  private putSecretValue(i: Input): object {
    const s = this.findLive(reqString(i, 'SecretId', 1, 2048));
    const token = this.token(i, 'InvalidRequestException');
    const value = readValue(i);
    // Unverified text: AWS documents that one of the two is required, not the message.
    if (!value) throw err('InvalidRequestException', 'You must provide either SecretString or SecretBinary.');
    const requested = optStringList(i, 'VersionStages', 1, 20, 1, 256);
    const rotationToken = optString(i, 'RotationToken', 36, 256);
    if (rotationToken !== undefined && !ROTATION_TOKEN_RE.test(rotationToken)) {
      throw invalid('RotationToken', 'Member must satisfy regular expression pattern: ^[a-zA-Z0-9\\-]+$');
    }
    this.checkRotationToken(s, token, rotationToken);
    const existing = s.versions.get(token);
    if (existing && hasValue(existing)) {
      if (!sameValue(existing, value)) throw err('ResourceExistsException', MSG.tokenInUse(token, s.arn));
      return { ARN: s.arn, Name: s.name, VersionId: token, VersionStages: [...existing.stages] };
    }
    const labels = requested ?? [AWSCURRENT];
    const hasCurrent = holderOf(this.stageMap(s), AWSCURRENT) !== undefined;
    const v = this.storeValue(s, token, value, hasCurrent || labels.includes(AWSCURRENT) ? labels : [...labels, AWSCURRENT]);
    return { ARN: s.arn, Name: s.name, VersionId: token, VersionStages: [...v.stages] };
  }

  private checkRotationToken(s: Secret, versionId: string, rotationToken: string | undefined): void {
    if (!this.options.requireRotationToken) return;
    const run = s.run;
    if (!run || run.versionId !== versionId) return;
    if (rotationToken === undefined || rotationToken !== run.rotationToken) {
      throw err('AccessDeniedException', 'The RotationToken is missing or does not match the rotation in progress for this secret version.');
    }
  }

  private updateSecret(i: Input): object {
    const s = this.findLive(reqString(i, 'SecretId', 1, 2048));
    const value = readValue(i);
    const description = optString(i, 'Description', 0, 2048);
    const kmsKeyId = optString(i, 'KmsKeyId', 0, 2048);
    const token = value ? this.token(i, 'InvalidRequestException') : optString(i, 'ClientRequestToken', 32, 64);
    if (value && token) {
      const existing = s.versions.get(token);
      if (existing && hasValue(existing)) {
        if (!sameValue(existing, value)) throw err('ResourceExistsException', MSG.tokenInUse(token, s.arn));
        return { ARN: s.arn, Name: s.name, VersionId: token };
      }
    }
    if (description !== undefined) s.description = description;
    if (kmsKeyId !== undefined) s.kmsKeyId = kmsKeyId || undefined;
    s.lastChangedMs = Date.now();
    if (value && token) this.storeValue(s, token, value, [AWSCURRENT]);
    return { ARN: s.arn, Name: s.name, VersionId: value ? token : undefined };
  }

  private updateSecretVersionStage(i: Input): object {
    const s = this.findLive(reqString(i, 'SecretId', 1, 2048));
    const label = reqString(i, 'VersionStage', 1, 256);
    const removeFrom = optString(i, 'RemoveFromVersionId', 32, 64);
    const moveTo = optString(i, 'MoveToVersionId', 32, 64);
    if (removeFrom === undefined && moveTo === undefined) {
      throw err('InvalidParameterException', 'You must specify MoveToVersionId, RemoveFromVersionId or both.');
    }
    for (const id of [removeFrom, moveTo]) {
      // Unverified: AWS's code/text for an unknown version id here is not documented.
      if (id !== undefined && !s.versions.has(id)) throw err('ResourceNotFoundException', MSG.versionNotFound(id));
    }
    const map = this.stageMap(s);
    const holder = holderOf(map, label);
    if (moveTo !== undefined) {
      if (holder === moveTo) return { ARN: s.arn, Name: s.name };
      const mustName = label === AWSCURRENT || this.options.strictLabelMoves;
      if (holder !== undefined && removeFrom !== holder && (mustName || removeFrom !== undefined)) {
        if (removeFrom === undefined) throw err('InvalidParameterException', MSG.removeFromEmpty(label, holder));
        throw err('InvalidParameterException', `Staging label ${label} is attached to version ${holder}, not to the RemoveFromVersionId ${removeFrom}.`);
      }
      attachLabel(map, label, moveTo, false);
    } else {
      if (holder !== removeFrom) {
        throw err('InvalidParameterException', `Staging label ${label} is not attached to version ${removeFrom}.`);
      }
      if (label === AWSCURRENT) {
        // Unverified: a secret with a value always has an AWSCURRENT version, so it can only be moved.
        throw err('InvalidParameterException', "You can't remove the staging label AWSCURRENT; move it to another version with MoveToVersionId.");
      }
      removeLabel(map, removeFrom!, label);
    }
    this.commitStages(s, map);
    return { ARN: s.arn, Name: s.name };
  }

  private getRandomPassword(i: Input): object {
    const req = {
      PasswordLength: optInt(i, 'PasswordLength', 1, 4096),
      ExcludeCharacters: optString(i, 'ExcludeCharacters', 0, 4096),
      ExcludeNumbers: optBool(i, 'ExcludeNumbers'),
      ExcludePunctuation: optBool(i, 'ExcludePunctuation'),
      ExcludeUppercase: optBool(i, 'ExcludeUppercase'),
      ExcludeLowercase: optBool(i, 'ExcludeLowercase'),
      IncludeSpace: optBool(i, 'IncludeSpace'),
      RequireEachIncludedType: optBool(i, 'RequireEachIncludedType'),
    };
    try {
      return { RandomPassword: randomPassword(req) };
    } catch (e) {
      if (e instanceof PasswordConstraintError) throw err('InvalidParameterException', e.message);
      throw e;
    }
  }

  private rotateSecret(i: Input, manual: boolean): object {
    const s = this.findLive(reqString(i, 'SecretId', 1, 2048));
    const token = this.token(i, 'InvalidParameterException');
    const lambdaArn = optString(i, 'RotationLambdaARN', 0, 2048) || undefined;
    const rules = readRotationRules(i);
    const rotateImmediately = optBool(i, 'RotateImmediately') ?? true;
    const fnArn = lambdaArn ?? s.rotationLambdaArn;
    if (!fnArn) throw err('InvalidRequestException', MSG.noLambda);
    const map = this.stageMap(s);
    const pending = holderOf(map, AWSPENDING);
    if (pending !== undefined && pending !== holderOf(map, AWSCURRENT)) throw err('InvalidRequestException', MSG.previousRotation);
    // AWS checks it can invoke the function before saving anything (the order of these checks is unverified).
    if (!manual && !this.functions.has(fnArn)) throw err('AccessDeniedException', MSG.cannotInvoke);
    if (s.versions.has(token)) throw err('ResourceExistsException', MSG.tokenInUse(token, s.arn));

    const now = Date.now();
    s.rotationLambdaArn = fnArn;
    if (rules) s.rotationRules = rules;
    s.rotationEnabled = true;
    s.nextRotationMs = nextRotation(now, s.rotationRules);
    s.versions.set(token, { id: token, stages: [], createdMs: now });
    map.set(token, []);
    attachLabel(map, AWSPENDING, token, false);
    this.commitStages(s, map);

    const run: RotationRun = { versionId: token, secretArn: s.arn, lambdaArn: fnArn, rotateImmediately, cancelled: false };
    s.run = run;
    if (!manual) {
      const fn = this.functions.get(fnArn)!;
      // Returns first; the steps run afterwards, as the service's asynchronous rotation does.
      run.done = new Promise((resolve) => setImmediate(() => resolve(this.drive(s, run, fn))));
    }
    return { ARN: s.arn, Name: s.name, VersionId: token };
  }

  private cancelRotateSecret(i: Input): object {
    const s = this.findLive(reqString(i, 'SecretId', 1, 2048));
    if (!s.rotationLambdaArn) {
      throw err(
        'InvalidRequestException',
        "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.",
      );
    }
    s.rotationEnabled = false;
    if (s.run) s.run.cancelled = true;
    const map = this.stageMap(s);
    const pending = holderOf(map, AWSPENDING);
    // The labels are left for the caller to clean up, as the API documents.
    return { ARN: s.arn, Name: s.name, VersionId: pending !== holderOf(map, AWSCURRENT) ? pending : undefined };
  }

  private listSecretVersionIds(i: Input): object {
    const s = this.find(reqString(i, 'SecretId', 1, 2048));
    const max = optInt(i, 'MaxResults', 1, 100) ?? 100;
    const start = decodeNextToken(optString(i, 'NextToken', 1, 4096));
    const includeDeprecated = optBool(i, 'IncludeDeprecated') ?? false;
    const all = [...s.versions.values()].filter((v) => includeDeprecated || v.stages.length > 0);
    const page = all.slice(start, start + max);
    return {
      ARN: s.arn,
      Name: s.name,
      Versions: page.map((v) => ({
        VersionId: v.id,
        VersionStages: v.stages.length ? [...v.stages] : undefined,
        LastAccessedDate: epochSeconds(v.lastAccessedMs),
        CreatedDate: epochSeconds(v.createdMs),
        KmsKeyIds: [s.kmsKeyId ?? 'DefaultEncryptionKey'],
      })),
      NextToken: start + max < all.length ? encodeNextToken(start + max) : undefined,
    };
  }

  private listSecrets(i: Input): object {
    const max = optInt(i, 'MaxResults', 1, 100) ?? 100;
    const start = decodeNextToken(optString(i, 'NextToken', 1, 4096));
    const includeDeleted = optBool(i, 'IncludePlannedDeletion') ?? false;
    const all = [...this.secrets.values()].filter((s) => includeDeleted || s.deletedMs === undefined);
    return {
      SecretList: all.slice(start, start + max).map((s) => {
        const { VersionIdsToStages, ...rest } = this.describeSecret({ SecretId: s.arn }) as Input;
        return { ...rest, SecretVersionsToStages: VersionIdsToStages };
      }),
      NextToken: start + max < all.length ? encodeNextToken(start + max) : undefined,
    };
  }

  private deleteSecret(i: Input): object {
    const id = reqString(i, 'SecretId', 1, 2048);
    const window = i.RecoveryWindowInDays;
    if (window !== undefined && window !== null && (typeof window !== 'number' || window < 7 || window > 30)) {
      throw err('InvalidParameterException', 'The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).');
    }
    const force = optBool(i, 'ForceDeleteWithoutRecovery') ?? false;
    if (force && window !== undefined && window !== null) {
      throw err('InvalidParameterException', "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
    }
    const now = Date.now();
    const s = this.lookup(id);
    if (!s) {
      // A forced delete of a missing secret answers as if it existed (AWS-validated).
      if (!force) throw err('ResourceNotFoundException', MSG.secretNotFound);
      const name = id.startsWith(this.arnPrefix()) ? id.slice(this.arnPrefix().length) : id;
      return { ARN: id.startsWith('arn:') ? id : `${this.arnPrefix()}${name}-${suffix()}`, Name: name, DeletionDate: epochSeconds(now) };
    }
    if (s.deletedMs !== undefined && !force) throw err('InvalidRequestException', MSG.markedForDeletion);
    if (force) {
      this.secrets.delete(s.name);
      return { ARN: s.arn, Name: s.name, DeletionDate: epochSeconds(now) };
    }
    s.deletedMs = now;
    return { ARN: s.arn, Name: s.name, DeletionDate: epochSeconds(now + ((window as number | undefined) ?? 30) * DAY_MS) };
  }

  private restoreSecret(i: Input): object {
    const s = this.find(reqString(i, 'SecretId', 1, 2048));
    s.deletedMs = undefined;
    return { ARN: s.arn, Name: s.name };
  }

  private tagResource(i: Input): object {
    const s = this.findLive(reqString(i, 'SecretId', 1, 2048));
    const tags = readTags(i, 'Tags');
    if (!tags) throw invalid('Tags', 'Member must not be null');
    mergeTags(s, tags);
    return {};
  }

  private untagResource(i: Input): object {
    const s = this.findLive(reqString(i, 'SecretId', 1, 2048));
    const keys = optStringList(i, 'TagKeys', 0, 200, 1, 128);
    if (!keys) throw invalid('TagKeys', 'Member must not be null');
    s.tags = (s.tags ?? []).filter((t) => !keys.includes(t.Key));
    return {};
  }

  // ---- rotation driver ----------------------------------------------------------------------

  private eventFor(run: RotationRun, step: Step): RotationEventPayload {
    const event: RotationEventPayload = { Step: step, SecretId: run.secretArn, ClientRequestToken: run.versionId };
    if (this.options.sendRotationToken) {
      run.rotationToken = randomUUID();
      event.RotationToken = run.rotationToken;
    }
    return event;
  }

  /** Invokes the steps one by one; on a failure retries the whole sequence with the same token. */
  private async drive(s: Secret, run: RotationRun, fn: RotationFunction): Promise<RotationOutcome> {
    const steps: Step[] = run.rotateImmediately ? [...STEPS] : ['testSecret'];
    const invoked: Step[] = [];
    let attempts = 0;
    let error: string | undefined;
    while (attempts < this.options.rotationMaxAttempts && !run.cancelled) {
      attempts++;
      error = undefined;
      try {
        for (const step of steps) {
          invoked.push(step);
          await fn(this.eventFor(run, step));
        }
        break;
      } catch (e) {
        error = describeThrown(e);
        if (this.options.rotationRetryDelayMs > 0 && attempts < this.options.rotationMaxAttempts) {
          await new Promise((r) => setTimeout(r, this.options.rotationRetryDelayMs));
        }
      }
    }
    const succeeded = error === undefined && attempts > 0;
    this.finishRun(s, run, succeeded);
    return compact({ versionId: run.versionId, succeeded, attempts, error, steps: invoked });
  }

  /**
   * After the function: a successful rotation loses AWSPENDING (the service's own clean-up) and
   * sets LastRotatedDate; a RotateImmediately=false test run removes its placeholder either way;
   * a failed rotation keeps AWSPENDING, so the next RotateSecret reports the incomplete rotation.
   */
  private finishRun(s: Secret, run: RotationRun, succeeded: boolean): void {
    const v = s.versions.get(run.versionId);
    if (!run.rotateImmediately) {
      if (v?.stages.includes(AWSPENDING)) v.stages = v.stages.filter((l) => l !== AWSPENDING);
      if (v && v.stages.length === 0 && !hasValue(v)) s.versions.delete(v.id);
      return;
    }
    if (!succeeded) return;
    if (this.options.stripPendingAfterRotation && v?.stages.includes(AWSPENDING)) v.stages = v.stages.filter((l) => l !== AWSPENDING);
    s.lastRotatedMs = Date.now();
    s.nextRotationMs = nextRotation(s.lastRotatedMs, s.rotationRules);
  }
}

function suffix(): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  for (let k = 0; k < 6; k++) out += chars[randomInt(chars.length)];
  return out;
}

function encodeNextToken(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString('base64');
}

function decodeNextToken(token: string | undefined): number {
  if (token === undefined) return 0;
  const m = /^offset:(\d+)$/.exec(Buffer.from(token, 'base64').toString('utf8'));
  if (!m) throw err('InvalidNextTokenException', 'The NextToken value is invalid.');
  return Number(m[1]);
}
