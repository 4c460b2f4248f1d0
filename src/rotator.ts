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
  /** The single DescribeSecret result of this invocation. */
  metadata: DescribeSecretResponse;
  secrets: SecretStore;
  log: Logger;
  env: Env;
}

/**
 * The base class of every rotator. The framework (handler.ts) validates the event and the
 * secret's labels and then calls one of the four step methods; a rotator overrides only what
 * its target needs.
 *
 * - createSecret: by default reads AWSCURRENT and stores `generatePending(current)` as
 *   AWSPENDING with this rotation's token; when a value is already stored for the token (a
 *   retry), that first value is kept (validated) and the new one dropped.
 * - setSecret / testSecret: make the target accept the pending value and prove it works.
 *   These are the ones a custom rotator writes.
 * - finishSecret: moves AWSCURRENT to this version (AWSPREVIOUS follows, the service's job).
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

  abstract testSecret(ctx: StepContext): Promise<void>;

  /**
   * Check a secret value read from Secrets Manager is usable by this rotator; throw a
   * SecretFormatError naming the bad field otherwise. Called on AWSCURRENT in createSecret and
   * on an existing AWSPENDING value, so a malformed value is reported, never overwritten.
   */
  validate(_secretString: string, _label: string, _ctx: StepContext): void {}

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

  async finishSecret(ctx: StepContext): Promise<void> {
    // The handler never runs a step for a version that is already AWSCURRENT.
    const holder = currentVersionId(ctx.metadata);
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
