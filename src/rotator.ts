import type { DescribeSecretResponse } from '@aws-sdk/client-secrets-manager';
import type { Logger } from './log';
import type { Env } from './password';
import { RotationStateError } from './errors';
import { AWSCURRENT, AWSPENDING, type SecretStore } from './secrets';

export type Step = 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';

export const STEPS: readonly Step[] = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

/** Everything a step needs. Built once per invocation by the handler. */
export interface StepContext {
  step: Step;
  /** The secret's ARN or name, as the event gave it. */
  secretId: string;
  /** The ClientRequestToken: the version id of the value being rotated in. */
  token: string;
  /**
   * The DescribeSecret result, when this invocation made one: always in createSecret and
   * setSecret (which check that rotation is enabled and the token's labels); in testSecret and
   * finishSecret only in a warm container that holds the version's value, or when the token's
   * AWSPENDING value could not be read (e.g. RotateSecret's value-less placeholder): otherwise
   * they learn the labels from GetSecretValue.
   */
  metadata?: DescribeSecretResponse;
  secrets: SecretStore;
  log: Logger;
  env: Env;
}

/**
 * The base class of every rotator. The framework (handler.ts) validates the event and the
 * secret's labels and then calls one of the four step methods. A rotator writes:
 *
 * - `generatePending(current)`: the new secret value, built from AWSCURRENT;
 * - `setSecret`: make the target accept the AWSPENDING value (idempotent: a retry must succeed);
 * - `verify(value)`: prove a value works on the target (authenticate with it, run a harmless
 *   request); throw a RotationError saying why not.
 *
 * The base class owns the step protocol, for every rotator:
 *
 * - createSecret: reads AWSCURRENT and stores `generatePending(current)` as AWSPENDING with
 *   this rotation's token; when a value is already stored for the token (a retry, or a duplicate
 *   concurrent invocation), that first value is kept (validated) and the new one dropped. So
 *   `generatePending` runs on every attempt and must not change the target.
 * - testSecret: `verify`s AWSPENDING. On the value-less AWSPENDING placeholder of RotateSecret
 *   with RotateImmediately=false (the service's "test the rotation configuration" run, which
 *   invokes testSecret alone), it runs `preflight` instead (default: `verify` AWSCURRENT).
 * - finishSecret: refuses a value-less or invalid AWSPENDING, `verify`s it, and only then moves
 *   AWSCURRENT to it (AWSPREVIOUS follows, the service's job). So invoking finishSecret out of
 *   order (before setSecret ran) cannot promote a value the target does not accept.
 */
export abstract class Rotator {
  /** A short name for logs, e.g. "postgres". */
  abstract readonly name: string;

  /**
   * Build the new secret value from the current one. Called on every createSecret attempt, also
   * on a retry whose first value is then kept: it must only compute a value, with no effect on
   * the target (changing the target is setSecret's job).
   */
  abstract generatePending(current: string, ctx: StepContext): Promise<string>;

  abstract setSecret(ctx: StepContext): Promise<void>;

  /**
   * Prove that `secretString` works on the target: authenticate with it and run a harmless
   * request. Throw a RotationError (AUTH, NETWORK, TLS, ...) naming what failed, never the value.
   * `label` is AWSPENDING (testSecret, and finishSecret before it promotes the value) or
   * AWSCURRENT (testSecret on a value-less AWSPENDING). The value has already passed `validate`.
   */
  abstract verify(secretString: string, label: string, ctx: StepContext): Promise<void>;

  /**
   * Check a secret value read from Secrets Manager is usable by this rotator; throw a
   * SecretFormatError naming the bad field otherwise. Called on AWSCURRENT in createSecret, on
   * every AWSPENDING value before it is stored or used, and on any value before `verify`, so a
   * malformed value is reported, never overwritten or promoted. Also the place to check the
   * function's configuration (environment), which createSecret then checks before anything is
   * stored.
   */
  validate(_secretString: string, _label: string, _ctx: StepContext): void {}

  /**
   * The RotateImmediately=false test run (testSecret alone on a value-less AWSPENDING): prove the
   * rotation can work, changing nothing. By default: AWSCURRENT is valid and `verify`s. A rotator
   * that can check more (the database rotators run a whole preflight) overrides it.
   */
  async preflight(ctx: StepContext): Promise<void> {
    ctx.log.info('AWSPENDING has no value (a RotateImmediately=false test run); testing AWSCURRENT');
    const current = await ctx.secrets.current();
    this.validate(current, AWSCURRENT, ctx);
    await this.verify(current, AWSCURRENT, ctx);
    ctx.log.info('AWSCURRENT works');
  }

  /**
   * Whether this step reads AWSCURRENT (createSecret always does): the handler then starts that
   * read together with the step's label check, so the step waits one round trip of reads, not two.
   * Default: finishSecret only (its UpdateSecretVersionStage names AWSCURRENT's holder). Return
   * true for the steps where your own code calls `ctx.secrets.current()`.
   */
  readsCurrent(step: Step): boolean {
    return step === 'finishSecret';
  }

  /** Verifies AWSPENDING, or runs `preflight` on a RotateImmediately=false test run (value-less AWSPENDING). */
  async testSecret(ctx: StepContext): Promise<void> {
    const pending = await ctx.secrets.pending();
    if (pending === undefined) return this.preflight(ctx);
    this.validate(pending, AWSPENDING, ctx);
    await this.verify(pending, AWSPENDING, ctx);
    ctx.log.info('AWSPENDING works');
  }

  async createSecret(ctx: StepContext): Promise<void> {
    const current = await ctx.secrets.current();
    this.validate(current, AWSCURRENT, ctx);
    // No "is there already a pending value?" read: PutSecretValue with this rotation's token is
    // the check. It fills the value-less AWSPENDING placeholder RotateSecret created; repeated with
    // the same value it is a no-op; with another value (a retry after a Put whose answer was lost,
    // or after later steps failed) it fails with ResourceExistsException, and the value stored
    // first is kept: it may already be set on the target.
    const pending = await this.generatePending(current, ctx);
    this.validate(pending, AWSPENDING, ctx);
    if (await ctx.secrets.putPending(pending)) return;
    const existing = await ctx.secrets.pending();
    if (existing === undefined) {
      throw new RotationStateError(
        `Secret ${ctx.secretId} already has a value for version ${ctx.token}, but not as AWSPENDING.`,
        'Another rotation or a manual change replaced it; start a new rotation.',
      );
    }
    this.validate(existing, AWSPENDING, ctx);
    ctx.log.info('AWSPENDING value already exists; nothing to create', { versionId: ctx.token });
  }

  /**
   * Moves AWSCURRENT to this rotation's version, but only once its value is proven to work:
   * the value-less placeholder RotateSecret creates, an invalid value, or one the target does
   * not accept (setSecret never ran, or was undone) is refused and AWSCURRENT stays.
   */
  async finishSecret(ctx: StepContext): Promise<void> {
    const pending = await ctx.secrets.pending();
    if (pending === undefined) {
      throw new RotationStateError(
        `AWSPENDING version ${ctx.token} of secret ${ctx.secretId} has no value; refusing to move AWSCURRENT to it.`,
        'finishSecret runs after createSecret, setSecret and testSecret have succeeded for this version; start a new rotation.',
      );
    }
    this.validate(pending, AWSPENDING, ctx);
    await this.verify(pending, AWSPENDING, ctx);
    // The handler never runs a step for a version that is already AWSCURRENT. The holder is the
    // version AWSCURRENT's read (the comparison verify() made) came from.
    const holder = await ctx.secrets.currentVersionId();
    await ctx.secrets.moveCurrentToToken(holder);
    ctx.log.info('moved AWSCURRENT', { versionId: ctx.token, previousVersionId: holder ?? null });
  }
}

/** The version id holding AWSCURRENT, from a DescribeSecret result. */
export function currentVersionId(metadata: DescribeSecretResponse): string | undefined {
  for (const [id, stages] of Object.entries(metadata.VersionIdsToStages ?? {})) {
    if (stages.includes(AWSCURRENT)) return id;
  }
  return undefined;
}
