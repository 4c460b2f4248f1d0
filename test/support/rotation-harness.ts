/**
 * Engine-neutral helpers for end-to-end rotation tests: a Secrets Manager double driven through
 * the real AWS SDK client, one rotation function registered with it, captured log lines and
 * error messages, and the no-leak assertion every test must end with.
 *
 *   const h = createRotationHarness({
 *     handler: (opts) => createHandler(new DatabaseRotator(engine), opts), // opts = { client, env, logSink }
 *     env: { EXCLUDE_CHARACTERS: '' },          // optional; h.env can be changed between rotations
 *     sm: { rotationMaxAttempts: 1 },           // optional SecretsManagerDouble options
 *   });
 *   const arn = await h.createSecret({ engine: 'postgres', host, username, password });
 *   const r = await h.rotate(arn);            // RotateSecret + wait: { succeeded, error, versionId, attempts, steps, calls }
 *   const cur = await h.current(arn);         // { versionId, value (string), json (parsed or undefined) }
 *   const { username, password } = await h.credentials(arn); // AWSCURRENT of a database secret
 *   h.stages(arn);                            // { versionId: ['AWSCURRENT', ...] }
 *   h.sensitive(pw1, pw2);                    // extra values that must never be logged (set out-of-band, admin...)
 *   h.intercept = async (event, invoke) => { await invoke(event); await invoke(event); }; // wrap every invocation
 *   const run = h.begin(arn);                 // RotateSecret without invoking: send run.event(step) yourself
 *   await h.invoke(run.event('createSecret')); // call the handler directly (errors are recorded, then rethrown)
 *   run.complete();                           // what the service does after a successful rotation
 *   h.logs / h.records() / h.errors / h.events // raw log lines, parsed lines, error messages, events received
 *   h.assertNoLeaks();                        // throws if a sensitive value appears in a log line or an error
 *
 * Every value stored through createSecret, and every version a rotation creates, is registered
 * as sensitive automatically (the whole secret string and each string under a credential-like
 * key such as password, token, secret, key). Values shorter than 8 characters are not checked:
 * they would match ordinary text.
 *
 * In a test file: `afterEach(() => assertNoLeaksInAll())` checks every harness created since the
 * previous call, so no test can forget it.
 */
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import type { HandlerOptions, RotationEvent, RotationHandler } from '../../src/handler';
import type { Env } from '../../src/password';
import { type ManualRotation, type RotationOutcome, SecretsManagerDouble } from '../../src/testing/secrets-manager-double';

export type DoubleOptions = ConstructorParameters<typeof SecretsManagerDouble>[0];

export interface RotationHarnessOptions {
  /** Builds the handler under test from the harness's client, env and log sink. */
  handler: (options: Required<Pick<HandlerOptions, 'client' | 'logSink'>> & { env: () => Env }) => RotationHandler;
  env?: Env;
  sm?: DoubleOptions;
  /** Defaults to a unique function ARN. */
  lambdaArn?: string;
}

export interface RotationResult extends RotationOutcome {
  /** Secrets Manager operations made while the rotation ran (RotateSecret itself included). */
  calls: string[];
}

/** The Secrets Manager calls the rotation function made (RotateSecret, the test's own call, left out). */
export function handlerCalls(calls: string[]): number {
  return calls.filter((c) => c !== 'RotateSecret').length;
}

export interface SecretVersion {
  versionId: string;
  value: string;
  /** The parsed JSON, when the value is a JSON object. */
  json?: Record<string, unknown>;
}

export type Interceptor = (event: RotationEvent, invoke: (event: RotationEvent) => Promise<void>) => Promise<void>;

const CREDENTIAL_KEY = /pass|pwd|secret|token|key|credential|private/i;
const MIN_CHECKED_LENGTH = 8;

const live: RotationHarness[] = [];

export class RotationHarness {
  readonly sm: SecretsManagerDouble;
  readonly client: SecretsManagerClient;
  readonly lambdaArn: string;
  readonly handler: RotationHandler;
  env: Env;
  intercept?: Interceptor;
  /** Raw log lines written by the handler. */
  readonly logs: string[] = [];
  /** Messages (and stacks) of every error the handler threw, and every failed rotation's error. */
  readonly errors: string[] = [];
  /** Every event the double delivered (and every direct invoke). */
  readonly events: RotationEvent[] = [];
  private readonly secrets = new Set<string>();

  constructor(options: RotationHarnessOptions) {
    this.sm = new SecretsManagerDouble(options.sm);
    this.client = this.sm.client();
    this.env = { ...(options.env ?? {}) };
    this.lambdaArn = options.lambdaArn ?? `arn:aws:lambda:us-east-1:123456789012:function:rotation-test-${randomUUID().slice(0, 8)}`;
    this.handler = options.handler({ client: this.client, env: () => this.env, logSink: (line) => this.logs.push(line) });
    this.sm.registerFunction(this.lambdaArn, (event: RotationEvent) => this.dispatch(event));
  }

  /** CreateSecret with this value (object -> JSON); returns the ARN. The value is registered as sensitive. */
  async createSecret(value: string | Record<string, unknown>, name = `test/${randomUUID()}`): Promise<string> {
    const secretString = typeof value === 'string' ? value : JSON.stringify(value);
    this.registerSecretString(secretString);
    const out = await this.client.send(new CreateSecretCommand({ Name: name, SecretString: secretString }));
    if (!out.ARN) throw new Error('CreateSecret returned no ARN');
    return out.ARN;
  }

  /** Rotate once (RotateSecret, then wait for the four steps) and register the new version as sensitive. */
  async rotate(secretId: string): Promise<RotationResult> {
    const before = this.sm.calls.length;
    const outcome = await this.sm.rotateAndWait(secretId, { lambdaArn: this.lambdaArn });
    const calls = this.sm.calls.slice(before).map((c) => c.operation);
    if (outcome.error) this.errors.push(outcome.error);
    if (outcome.versionId) await this.version(secretId, outcome.versionId).catch(() => undefined);
    return { ...outcome, calls };
  }

  /**
   * Start a rotation without invoking anything (RotateSecret's checks and AWSPENDING placeholder):
   * the test sends `rotation.event(step)` through invoke() itself and calls `complete()`.
   */
  begin(secretId: string): ManualRotation {
    return this.sm.beginRotation(secretId, { lambdaArn: this.lambdaArn });
  }

  /** Call the handler directly; a thrown error is recorded, then rethrown. */
  async invoke(event: RotationEvent): Promise<void> {
    try {
      await this.handler(event);
    } catch (err) {
      this.errors.push(errorText(err));
      throw err;
    }
  }

  async current(secretId: string): Promise<SecretVersion> {
    return this.read(secretId, { VersionStage: 'AWSCURRENT' });
  }

  /** AWSCURRENT's version id, username and password (a database secret's credentials). */
  async credentials(secretId: string): Promise<{ versionId: string; username: string; password: string }> {
    const cur = await this.current(secretId);
    return { versionId: cur.versionId, username: String(cur.json?.username), password: String(cur.json?.password) };
  }

  async version(secretId: string, versionId: string): Promise<SecretVersion> {
    return this.read(secretId, { VersionId: versionId });
  }

  /** versionId -> staging labels, for labelled versions. */
  stages(secretId: string): Record<string, string[]> {
    return this.sm.versionStages(secretId);
  }

  /** The version holding a label, if any. */
  holderOf(secretId: string, label: string): string | undefined {
    return Object.entries(this.stages(secretId)).find(([, s]) => s.includes(label))?.[0];
  }

  /** Register values that must never appear in logs or errors. */
  sensitive(...values: Array<string | undefined>): void {
    for (const v of values) if (typeof v === 'string' && v.length >= MIN_CHECKED_LENGTH) this.secrets.add(v);
  }

  /** Every value registered as sensitive (for checks of further encodings, e.g. base64). */
  sensitiveValues(): string[] {
    return [...this.secrets];
  }

  /** Log lines parsed as JSON. */
  records(): Array<Record<string, unknown>> {
    return this.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Record an error caught by the test itself (e.g. from calling an engine directly). */
  recordError(err: unknown): void {
    this.errors.push(errorText(err));
  }

  /** Throws if any sensitive value (raw, JSON-escaped or URI-encoded) appears in a log line or error. */
  assertNoLeaks(): void {
    const haystacks = [...this.logs.map((l, i) => [`log line ${i + 1}`, l]), ...this.errors.map((e, i) => [`error ${i + 1}`, e])];
    const values = [...this.secrets];
    for (const [where, text] of haystacks) {
      values.forEach((v, i) => {
        for (const form of forms(v)) {
          if (text.includes(form)) {
            const shown = text.split(form).join('<LEAKED>').slice(0, 600);
            throw new Error(`Sensitive value #${i + 1} (length ${v.length}) appears in ${where}: ${shown}`);
          }
        }
      });
    }
  }

  private async dispatch(event: RotationEvent): Promise<void> {
    this.events.push(event);
    if (this.intercept) return this.intercept(event, (e) => this.invoke(e));
    return this.invoke(event);
  }

  private async read(secretId: string, sel: { VersionId?: string; VersionStage?: string }): Promise<SecretVersion> {
    const out = await this.client.send(new GetSecretValueCommand({ SecretId: secretId, ...sel }));
    const value = out.SecretString ?? '';
    this.registerSecretString(value);
    return { versionId: out.VersionId ?? '', value, json: parseObject(value) };
  }

  private registerSecretString(value: string): void {
    this.sensitive(value);
    const json = parseObject(value);
    if (json) collect(json, (s) => this.sensitive(s));
  }
}

/** Create a harness; it is checked by the next assertNoLeaksInAll(). */
export function createRotationHarness(options: RotationHarnessOptions): RotationHarness {
  const h = new RotationHarness(options);
  live.push(h);
  return h;
}

/** Assert no leaks in every harness created since the last call (use in afterEach), then forget them. */
export function assertNoLeaksInAll(): void {
  const all = live.splice(0, live.length);
  for (const h of all) h.assertNoLeaks();
}

function forms(v: string): string[] {
  const out = new Set([v, JSON.stringify(v).slice(1, -1)]);
  try {
    out.add(encodeURIComponent(v));
  } catch {
    // lone surrogate: no URI form
  }
  return [...out].filter((f) => f.length >= MIN_CHECKED_LENGTH);
}

function parseObject(value: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(value);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function collect(v: unknown, add: (s: string) => void, key = ''): void {
  if (typeof v === 'string') {
    if (CREDENTIAL_KEY.test(key)) add(v);
  } else if (Array.isArray(v)) {
    for (const item of v) collect(item, add, key);
  } else if (v && typeof v === 'object') {
    for (const [k, val] of Object.entries(v)) collect(val, add, k);
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}\n${err.stack ?? ''}`;
  return String(err);
}
