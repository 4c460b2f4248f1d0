import {
  DescribeSecretCommand,
  type DescribeSecretResponse,
  GetRandomPasswordCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { awsErrorName, RotationStateError, SecretFormatError } from './errors';
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
    return this.client.send(new DescribeSecretCommand({ SecretId: secretId }));
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
      throw new RotationStateError(`Secret ${secretId} has no AWSCURRENT value.`);
    }
    return v;
  }

  async putPending(secretString: string): Promise<void> {
    this.redactor.addSecretString(secretString);
    await this.client.send(
      new PutSecretValueCommand({
        SecretId: this.secretId,
        ClientRequestToken: this.token,
        SecretString: secretString,
        VersionStages: [AWSPENDING],
        ...(this.rotationToken ? { RotationToken: this.rotationToken } : {}),
      }),
    );
    this.cache.set(this.key(this.secretId, { VersionId: this.token, VersionStage: AWSPENDING }), Promise.resolve(secretString));
    this.log.info('stored AWSPENDING value', { versionId: this.token });
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
    await this.client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: this.secretId,
        VersionStage: AWSCURRENT,
        MoveToVersionId: this.token,
        ...(currentHolder ? { RemoveFromVersionId: currentHolder } : {}),
      }),
    );
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
      const out = await this.client.send(new GetSecretValueCommand({ SecretId: secretId, ...sel }));
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
}
