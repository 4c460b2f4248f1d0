/**
 * The Secrets Manager double through the real AWS SDK client (in-process transport): the
 * documented service rules (sm-semantics.md §1), the LocalStack/AWS-validated label traces, the
 * rotation driver (§2) with a small rotator built on the framework's Rotator/createHandler, and
 * GetRandomPassword's constraints.
 */
import {
  CancelRotateSecretCommand,
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetRandomPasswordCommand,
  type GetRandomPasswordRequest,
  GetSecretValueCommand,
  ListSecretsCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  RotateSecretCommand,
  type SecretsManagerClient,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateSecretCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createHandler, DEFAULT_PASSWORD_POLICY, defaultSecretsManagerClient, Logger, Redactor, RotationRetryStrategy, Rotator, SecretStore, type StepContext } from '../../src';
import { DIGITS, LOWERCASE, PUNCTUATION, UPPERCASE } from '../../src/testing/random-password';
import { DOCUMENTED_QUOTAS, type RotationEventPayload, SecretsManagerDouble, type SecretsManagerDoubleOptions } from '../../src/testing/secrets-manager-double';

const FN = 'arn:aws:lambda:us-east-1:123456789012:function:api-key-rotator';
/** Hostile on purpose: quotes, backslash, semicolon, %, spaces, unicode. */
const INITIAL = `Init'ial"Key\\; %s DROP ✓ ${'x'.repeat(8)}`;

/** A rotator for a plain-string API key held by an in-memory "service"; it records its calls. */
class ApiKeyRotator extends Rotator {
  readonly name = 'api-key';
  readonly accepted = new Set<string>([INITIAL]);
  readonly calls: string[] = [];
  failSetTimes = 0;

  async generatePending(_current: string, ctx: StepContext): Promise<string> {
    return ctx.secrets.randomPassword({
      PasswordLength: 40, ExcludeCharacters: '', ExcludeNumbers: false, ExcludePunctuation: true,
      ExcludeUppercase: false, ExcludeLowercase: false, RequireEachIncludedType: true,
    });
  }

  async setSecret(ctx: StepContext): Promise<void> {
    this.calls.push(`setSecret:${ctx.token}`);
    if (this.failSetTimes > 0) {
      this.failSetTimes--;
      throw new Error('the key service is unavailable');
    }
    this.accepted.add(await ctx.secrets.requirePending());
  }

  async verify(key: string): Promise<void> {
    if (!this.accepted.has(key)) throw new Error('the key service rejects the key');
  }

  override async testSecret(ctx: StepContext): Promise<void> {
    this.calls.push(`testSecret:${ctx.token}`);
    // Invoked alone (RotateImmediately=false) there is no pending value yet: test the current one.
    const key = (await ctx.secrets.pending()) ?? (await ctx.secrets.current());
    if (!this.accepted.has(key)) throw new Error('the key service rejects the key');
  }
}

let sm: SecretsManagerDouble;
let client: SecretsManagerClient;
let rotator: ApiKeyRotator;
let events: RotationEventPayload[];

function setup(options: SecretsManagerDoubleOptions = {}): void {
  sm = new SecretsManagerDouble(options);
  client = sm.client();
  rotator = new ApiKeyRotator();
  events = [];
  const handler = createHandler(rotator, { client, env: {}, logSink: () => undefined });
  sm.registerFunction(FN, async (event) => {
    events.push(event);
    await handler(event);
  });
}

beforeEach(() => setup());

/** `value: null` creates a secret without a value. */
async function create(value: string | null = INITIAL, name = `app/${randomUUID()}`): Promise<{ arn: string; name: string; v0?: string }> {
  const out = await client.send(new CreateSecretCommand({ Name: name, ...(value === null ? {} : { SecretString: value }) }));
  return { arn: out.ARN!, name, v0: out.VersionId };
}

async function put(arn: string, value: string, stages?: string[], token: string = randomUUID()): Promise<string> {
  const out = await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretString: value, VersionStages: stages }));
  return out.VersionId!;
}

/** The SDK exception a call rejects with. */
async function failure(p: Promise<unknown>): Promise<{ name: string; message: string; $fault: string; $metadata: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (e) {
    return e as never;
  }
  throw new Error('expected the call to fail');
}

async function stagesById(arn: string): Promise<Record<string, string[]>> {
  return (await client.send(new DescribeSecretCommand({ SecretId: arn }))).VersionIdsToStages ?? {};
}

describe('secrets, versions and lookups', () => {
  it('creates a secret with an AWS-shaped ARN and finds it by name, ARN and partial ARN', async () => {
    const token = randomUUID();
    const out = await client.send(new CreateSecretCommand({ Name: 'app/db', SecretString: INITIAL, ClientRequestToken: token, Description: 'd' }));
    expect(out.ARN).toMatch(/^arn:aws:secretsmanager:us-east-1:123456789012:secret:app\/db-[A-Za-z0-9]{6}$/);
    expect(out).toMatchObject({ Name: 'app/db', VersionId: token });
    for (const id of ['app/db', out.ARN!, 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db']) {
      const d = await client.send(new DescribeSecretCommand({ SecretId: id }));
      expect(d).toMatchObject({ ARN: out.ARN, Name: 'app/db', Description: 'd', VersionIdsToStages: { [token]: ['AWSCURRENT'] } });
      expect(d.CreatedDate).toBeInstanceOf(Date);
      expect(Math.abs(d.CreatedDate!.getTime() - Date.now())).toBeLessThan(5000);
      // Only members with a value: rotation was never configured.
      expect(d).not.toHaveProperty('RotationEnabled');
      expect(d).not.toHaveProperty('DeletedDate');
    }
    const v = await client.send(new GetSecretValueCommand({ SecretId: 'app/db' }));
    expect(v).toMatchObject({ ARN: out.ARN, Name: 'app/db', VersionId: token, SecretString: INITIAL, VersionStages: ['AWSCURRENT'] });
    expect(v.CreatedDate).toBeInstanceOf(Date);
  });

  it('a secret created without a value has no versions; the first PutSecretValue gets AWSCURRENT regardless', async () => {
    const { arn, v0 } = await create(null);
    expect(v0).toBeUndefined();
    const d = await client.send(new DescribeSecretCommand({ SecretId: arn }));
    expect(d).not.toHaveProperty('VersionIdsToStages');
    expect(await failure(client.send(new GetSecretValueCommand({ SecretId: arn })))).toMatchObject({
      name: 'ResourceNotFoundException',
      message: "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
    });
    const id = await put(arn, 'first', ['CUSTOM']);
    expect(await stagesById(arn)).toEqual({ [id]: ['AWSCURRENT', 'CUSTOM'] });
  });

  it('CreateSecret is idempotent for the same token and value; otherwise the name exists', async () => {
    const token = randomUUID();
    const a = await client.send(new CreateSecretCommand({ Name: 'dup', SecretString: 'v', ClientRequestToken: token }));
    const b = await client.send(new CreateSecretCommand({ Name: 'dup', SecretString: 'v', ClientRequestToken: token }));
    expect(b).toMatchObject({ ARN: a.ARN, VersionId: token });
    expect(await failure(client.send(new CreateSecretCommand({ Name: 'dup', SecretString: 'v' })))).toMatchObject({
      name: 'ResourceExistsException',
      message: 'The operation failed because the secret dup already exists.',
      $metadata: { httpStatusCode: 400 },
    });
    expect(await failure(client.send(new CreateSecretCommand({ Name: 'bad name?', SecretString: 'v' })))).toMatchObject({
      name: 'ValidationException',
      message: 'Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!',
    });
    expect(await failure(client.send(new CreateSecretCommand({ Name: 'both', SecretString: 'v', SecretBinary: new Uint8Array([1]) })))).toMatchObject({
      name: 'InvalidParameterException',
    });
  });

  it('PutSecretValue: same token + same value is a no-op returning the same version; another value is ResourceExistsException', async () => {
    const { arn } = await create();
    const token = randomUUID();
    const first = await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretString: 'v1', VersionStages: ['AWSPENDING'] }));
    const again = await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretString: 'v1', VersionStages: ['AWSPENDING'] }));
    expect(again).toMatchObject({ ARN: arn, VersionId: token, VersionStages: ['AWSPENDING'] });
    expect(first.VersionId).toBe(again.VersionId);
    const e = await failure(client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretString: 'v2' })));
    expect(e).toMatchObject({ name: 'ResourceExistsException', $fault: 'client', $metadata: { httpStatusCode: 400 } });
    expect(e.message).toBe(`You can't use ClientRequestToken ${token} because that value is already in use for a version of secret ${arn}.`);
    expect(e.message).not.toContain('v2');
    const versions = await client.send(new ListSecretVersionIdsCommand({ SecretId: arn }));
    expect(versions.Versions).toHaveLength(2);
    expect((await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token }))).SecretString).toBe('v1');
  });

  it('binary values round-trip as bytes and are idempotent by content', async () => {
    const { arn } = await create();
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const token = randomUUID();
    await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretBinary: bytes }));
    await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretBinary: bytes }));
    const got = await client.send(new GetSecretValueCommand({ SecretId: arn }));
    expect(got.SecretString).toBeUndefined();
    expect([...got.SecretBinary!]).toEqual([...bytes]);
    expect((await failure(client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretBinary: new Uint8Array([9]) })))).name).toBe(
      'ResourceExistsException',
    );
  });

  it('ClientRequestToken must be 32-64 characters', async () => {
    const { arn } = await create();
    for (const token of ['t'.repeat(31), 't'.repeat(65)]) {
      expect(await failure(put(arn, 'x', undefined, token))).toMatchObject({ name: 'ValidationException' });
    }
    expect(await put(arn, 'x', undefined, 't'.repeat(32))).toBe('t'.repeat(32));
    expect(await put(arn, 'y', undefined, 'u'.repeat(64))).toBe('u'.repeat(64));
  });

  it('not-found and mismatch errors carry the service texts and HTTP 400', async () => {
    const { arn, v0 } = await create();
    const unknown = randomUUID();
    const cases: Array<[Promise<unknown>, string, string]> = [
      [client.send(new GetSecretValueCommand({ SecretId: 'no/such/secret' })), 'ResourceNotFoundException', "Secrets Manager can't find the specified secret."],
      [client.send(new DescribeSecretCommand({ SecretId: `${arn}x` })), 'ResourceNotFoundException', "Secrets Manager can't find the specified secret."],
      [client.send(new GetSecretValueCommand({ SecretId: arn, VersionStage: 'AWSPREVIOUS' })), 'ResourceNotFoundException',
        "Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS"],
      [client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: unknown })), 'ResourceNotFoundException',
        `Secrets Manager can't find the specified secret value for VersionId: ${unknown}`],
      [client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: v0, VersionStage: 'AWSPENDING' })), 'InvalidRequestException',
        'You provided a VersionStage that is not associated to the provided VersionId.'],
    ];
    for (const [p, name, message] of cases) {
      expect(await failure(p)).toMatchObject({ name, message, $fault: 'client', $metadata: { httpStatusCode: 400 } });
    }
    // Both selectors naming the same version are fine.
    expect((await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: v0, VersionStage: 'AWSCURRENT' }))).SecretString).toBe(INITIAL);
  });

  it('UpdateSecret: a value makes a new AWSCURRENT version; description-only changes create none', async () => {
    const { arn, v0 } = await create();
    const d = await client.send(new UpdateSecretCommand({ SecretId: arn, Description: 'only metadata' }));
    expect(d.VersionId).toBeUndefined();
    const token = randomUUID();
    const u = await client.send(new UpdateSecretCommand({ SecretId: arn, SecretString: 'next', ClientRequestToken: token }));
    expect(u.VersionId).toBe(token);
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSPREVIOUS'], [token]: ['AWSCURRENT'] });
    expect((await client.send(new DescribeSecretCommand({ SecretId: arn }))).Description).toBe('only metadata');
  });

  it('tags, ListSecrets and pagination of versions', async () => {
    const { arn, name } = await create();
    await client.send(new TagResourceCommand({ SecretId: arn, Tags: [{ Key: 'team', Value: 'a' }, { Key: 'env', Value: 'dev' }] }));
    await client.send(new TagResourceCommand({ SecretId: arn, Tags: [{ Key: 'team', Value: 'b' }] }));
    await client.send(new UntagResourceCommand({ SecretId: arn, TagKeys: ['env', 'absent'] }));
    expect((await client.send(new DescribeSecretCommand({ SecretId: arn }))).Tags).toEqual([{ Key: 'team', Value: 'b' }]);
    const list = await client.send(new ListSecretsCommand({}));
    expect(list.SecretList?.map((s) => s.Name)).toContain(name);
    for (let k = 0; k < 4; k++) await put(arn, `v${k}`, [`L${k}`]);
    const page1 = await client.send(new ListSecretVersionIdsCommand({ SecretId: arn, MaxResults: 3 }));
    expect(page1.Versions).toHaveLength(3);
    const page2 = await client.send(new ListSecretVersionIdsCommand({ SecretId: arn, MaxResults: 3, NextToken: page1.NextToken }));
    expect(page2.Versions).toHaveLength(2);
    expect(page2.NextToken).toBeUndefined();
    expect(page1.Versions![0]).toMatchObject({ KmsKeyIds: ['DefaultEncryptionKey'] });
    expect(page1.Versions![0].CreatedDate).toBeInstanceOf(Date);
  });
});

describe('staging labels', () => {
  it('reproduces the AWS-validated UpdateSecretVersionStage traces (sm-semantics §1.4)', async () => {
    const { arn, v0 } = await create();
    const v1 = await put(arn, 'pending', ['AWSPENDING']);
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSCURRENT'], [v1]: ['AWSPENDING'] });

    // AWSCURRENT cannot move without naming its holder.
    expect(await failure(client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSCURRENT', MoveToVersionId: v1 })))).toMatchObject({
      name: 'InvalidParameterException',
      message: `The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently attached to version ${v0}, so you must explicitly reference that version in RemoveFromVersionId.`,
    });

    // v0 [AWSCURRENT], v1 [AWSPENDING]; move AWSCURRENT v0 -> v1: AWSPENDING is not removed by this call.
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSCURRENT', MoveToVersionId: v1, RemoveFromVersionId: v0 }));
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSPREVIOUS'], [v1]: ['AWSCURRENT', 'AWSPENDING'] });

    // PutSecretValue without stages: v1 -> [AWSPREVIOUS] (AWSPENDING gone too), v0 deprecated.
    const v2 = await put(arn, 'v2');
    expect(await stagesById(arn)).toEqual({ [v1]: ['AWSPREVIOUS'], [v2]: ['AWSCURRENT'] });
    const listed = await client.send(new ListSecretVersionIdsCommand({ SecretId: arn }));
    expect(listed.Versions!.map((v) => v.VersionId).sort()).toEqual([v1, v2].sort());
    const withDeprecated = await client.send(new ListSecretVersionIdsCommand({ SecretId: arn, IncludeDeprecated: true }));
    const deprecated = withDeprecated.Versions!.find((v) => v.VersionId === v0)!;
    expect(deprecated).toBeDefined();
    expect(deprecated).not.toHaveProperty('VersionStages');
    // A deprecated version is still readable by id.
    expect((await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: v0 }))).SecretString).toBe(INITIAL);

    // Custom labels survive: v2 [AWSPREVIOUS, PUT0] -> after AWSCURRENT moves again, v2 [PUT0].
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'PUT0', MoveToVersionId: v2 }));
    const v3 = await put(arn, 'v3');
    expect((await stagesById(arn))[v2]).toEqual(['AWSPREVIOUS', 'PUT0']);
    const v4 = await put(arn, 'v4');
    expect(await stagesById(arn)).toEqual({ [v2]: ['PUT0'], [v3]: ['AWSPREVIOUS'], [v4]: ['AWSCURRENT'] });

    // Removing the last label deprecates a version.
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'PUT0', RemoveFromVersionId: v2 }));
    expect(await stagesById(arn)).toEqual({ [v3]: ['AWSPREVIOUS'], [v4]: ['AWSCURRENT'] });
  });

  it('moving AWSCURRENT back (rollback) swaps AWSCURRENT and AWSPREVIOUS', async () => {
    const { arn, v0 } = await create();
    const v1 = await put(arn, 'v1');
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSCURRENT', MoveToVersionId: v0, RemoveFromVersionId: v1 }));
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSCURRENT'], [v1]: ['AWSPREVIOUS'] });
    // Moving a label onto the version that holds it is a no-op.
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSCURRENT', MoveToVersionId: v0 }));
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSCURRENT'], [v1]: ['AWSPREVIOUS'] });
  });

  it('PutSecretValue with VersionStages [AWSPENDING] leaves AWSCURRENT (and the default read) alone', async () => {
    const { arn, v0 } = await create();
    const v1 = await put(arn, 'new', ['AWSPENDING']);
    expect((await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString).toBe(INITIAL);
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSCURRENT'], [v1]: ['AWSPENDING'] });
    // A later PutSecretValue listing AWSPENDING moves it.
    const v2 = await put(arn, 'newer', ['AWSPENDING']);
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSCURRENT'], [v2]: ['AWSPENDING'] });
  });

  it('other labels need RemoveFromVersionId naming the holder (strict default), or move freely when not strict', async () => {
    const { arn, v0 } = await create();
    const v1 = await put(arn, 'v1', ['BLUE']);
    const move = (extra: object = {}) =>
      client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'BLUE', MoveToVersionId: v0, ...extra }));
    expect((await failure(move())).name).toBe('InvalidParameterException');
    const wrong = await failure(move({ RemoveFromVersionId: v0 }));
    expect(wrong).toMatchObject({ name: 'InvalidParameterException' });
    expect(wrong.message).toContain(v1);
    await move({ RemoveFromVersionId: v1 });
    expect((await stagesById(arn))[v0!]).toEqual(['AWSCURRENT', 'BLUE']);

    setup({ strictLabelMoves: false });
    const s2 = await create();
    const w1 = await put(s2.arn, 'w1', ['BLUE']);
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: s2.arn, VersionStage: 'BLUE', MoveToVersionId: s2.v0 }));
    expect(await stagesById(s2.arn)).toEqual({ [s2.v0!]: ['AWSCURRENT', 'BLUE'] });
    expect(sm.versionStages(s2.arn)[w1]).toBeUndefined();
  });

  it('AWSCURRENT can only be moved, never just removed; unknown versions are reported', async () => {
    const { arn, v0 } = await create();
    expect((await failure(client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSCURRENT', RemoveFromVersionId: v0 })))).name).toBe(
      'InvalidParameterException',
    );
    expect((await failure(client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'X', MoveToVersionId: randomUUID() })))).name).toBe(
      'ResourceNotFoundException',
    );
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSCURRENT'] });
  });

  it('at most 20 staging labels per secret (LimitExceededException, state unchanged)', async () => {
    const { arn, v0 } = await create();
    for (let k = 1; k < 20; k++) {
      await client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: `L${k}`, MoveToVersionId: v0 }));
    }
    expect((await stagesById(arn))[v0!]).toHaveLength(20);
    const before = sm.versionStages(arn);
    expect((await failure(client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'L20', MoveToVersionId: v0 })))).name).toBe(
      'LimitExceededException',
    );
    expect((await failure(put(arn, 'more', ['EXTRA'])))).toMatchObject({ name: 'LimitExceededException' });
    expect(sm.versionStages(arn)).toEqual(before);
    // A put that only moves an existing label is within the quota.
    const v1 = await put(arn, 'ok', ['L3']);
    expect(sm.versionStages(arn)[v1]).toEqual(['L3']);
  });
});

describe('the rotation placeholder and manual steps', () => {
  it('RotateSecret creates a value-less AWSPENDING version that createSecret fills', async () => {
    const { arn, v0 } = await create();
    const handler = createHandler(rotator, { client, env: {}, logSink: () => undefined });
    const rotation = sm.beginRotation(arn);
    const token = rotation.versionId;
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSCURRENT'], [token]: ['AWSPENDING'] });
    for (const sel of [{ VersionId: token }, { VersionStage: 'AWSPENDING' }, { VersionId: token, VersionStage: 'AWSPENDING' }]) {
      expect((await failure(client.send(new GetSecretValueCommand({ SecretId: arn, ...sel })))).name).toBe('ResourceNotFoundException');
    }
    // A second rotation cannot start while this one is pending.
    expect(await failure(client.send(new RotateSecretCommand({ SecretId: arn, RotationLambdaARN: FN })))).toMatchObject({
      name: 'InvalidRequestException',
      message: "A previous rotation isn't complete. That rotation will be reattempted.",
    });

    await handler(rotation.event('createSecret'));
    const pending = await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token, VersionStage: 'AWSPENDING' }));
    expect(pending.VersionId).toBe(token);
    expect(pending.SecretString).toMatch(/^[A-Za-z0-9]{40}$/);
    // Filled in place: still two versions.
    expect((await client.send(new ListSecretVersionIdsCommand({ SecretId: arn, IncludeDeprecated: true }))).Versions).toHaveLength(2);

    for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) await handler(rotation.event(step));
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSPREVIOUS'], [token]: ['AWSCURRENT', 'AWSPENDING'] });
    rotation.complete();
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSPREVIOUS'], [token]: ['AWSCURRENT'] });
    const d = await client.send(new DescribeSecretCommand({ SecretId: arn }));
    expect(d.RotationEnabled).toBe(true);
    expect(d.LastRotatedDate).toBeInstanceOf(Date);
    expect(rotator.accepted.has(pending.SecretString!)).toBe(true);
  });

  it('PutSecretValue fills the placeholder even with different stages requested, keeping the version id', async () => {
    const { arn } = await create();
    const rotation = sm.beginRotation(arn);
    const out = await client.send(
      new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: rotation.versionId, SecretString: 'filled', VersionStages: ['AWSPENDING'] }),
    );
    expect(out).toMatchObject({ VersionId: rotation.versionId, VersionStages: ['AWSPENDING'] });
  });

  it('RotateSecret needs a Lambda ARN the first time, and one it can invoke', async () => {
    const { arn } = await create();
    expect(await failure(client.send(new RotateSecretCommand({ SecretId: arn })))).toMatchObject({
      name: 'InvalidRequestException',
      message: 'No Lambda rotation function ARN is associated with this secret.',
    });
    const denied = await failure(client.send(new RotateSecretCommand({ SecretId: arn, RotationLambdaARN: `${FN}-unknown` })));
    expect(denied.name).toBe('AccessDeniedException');
    // Nothing was saved: no rotation configuration, no placeholder.
    const d = await client.send(new DescribeSecretCommand({ SecretId: arn }));
    expect(d).not.toHaveProperty('RotationEnabled');
    expect(d).not.toHaveProperty('RotationLambdaARN');
    expect(Object.keys(d.VersionIdsToStages!)).toHaveLength(1);
  });
});

describe('the rotation driver', () => {
  it('RotateSecret returns at once; the four steps then run in order with the ARN, token and a RotationToken', async () => {
    const { arn, v0 } = await create();
    const out = await client.send(new RotateSecretCommand({ SecretId: arn, RotationLambdaARN: FN, RotationRules: { AutomaticallyAfterDays: 30 } }));
    // Returned before any step ran.
    expect(events).toHaveLength(0);
    expect(sm.versionStages(arn)[out.VersionId!]).toEqual(['AWSPENDING']);
    const outcome = await sm.waitForRotation(arn);
    expect(outcome).toEqual({
      versionId: out.VersionId,
      succeeded: true,
      attempts: 1,
      steps: ['createSecret', 'setSecret', 'testSecret', 'finishSecret'],
    });
    expect(events.map((e) => e.Step)).toEqual(outcome.steps);
    for (const e of events) {
      expect(e).toMatchObject({ SecretId: arn, ClientRequestToken: out.VersionId });
      expect(e.RotationToken).toMatch(/^[a-zA-Z0-9-]{36,256}$/);
    }
    expect(new Set(events.map((e) => e.RotationToken)).size).toBe(4);
    expect(rotator.calls).toEqual([`setSecret:${out.VersionId}`, `testSecret:${out.VersionId}`]);
    // AWSPENDING stripped by the service after success.
    expect(await stagesById(arn)).toEqual({ [v0!]: ['AWSPREVIOUS'], [out.VersionId!]: ['AWSCURRENT'] });
    const d = await client.send(new DescribeSecretCommand({ SecretId: arn }));
    expect(d).toMatchObject({ RotationEnabled: true, RotationLambdaARN: FN, RotationRules: { AutomaticallyAfterDays: 30 } });
    expect(d.LastRotatedDate).toBeInstanceOf(Date);
    expect(d.NextRotationDate!.getTime() - d.LastRotatedDate!.getTime()).toBeCloseTo(30 * 86_400_000, -4);
    const current = (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString!;
    expect(rotator.accepted.has(current)).toBe(true);
    // The second rotation uses the saved Lambda ARN.
    const again = await sm.rotateAndWait(arn);
    expect(again.succeeded).toBe(true);
    expect(sm.versionStages(arn)).toEqual({ [out.VersionId!]: ['AWSPREVIOUS'], [again.versionId]: ['AWSCURRENT'] });
  });

  it('retries the whole sequence with the same token after a failing step', async () => {
    setup({ rotationMaxAttempts: 3 });
    const { arn } = await create();
    rotator.failSetTimes = 2;
    const token = randomUUID();
    const outcome = await sm.rotateAndWait(arn, { lambdaArn: FN, clientRequestToken: token });
    expect(outcome).toMatchObject({ versionId: token, succeeded: true, attempts: 3 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.steps).toEqual([
      'createSecret', 'setSecret',
      'createSecret', 'setSecret',
      'createSecret', 'setSecret', 'testSecret', 'finishSecret',
    ]);
    expect(new Set(events.map((e) => e.ClientRequestToken))).toEqual(new Set([token]));
    // createSecret stored the value once; the retries' Puts were refused and the first value kept.
    expect(sm.calls.filter((c) => c.operation === 'PutSecretValue').map((c) => c.error)).toEqual([undefined, 'ResourceExistsException', 'ResourceExistsException']);
    expect(sm.versionStages(arn)[token]).toEqual(['AWSCURRENT']);
  });

  it('a rotation that keeps failing keeps AWSPENDING, and the next RotateSecret reports it', async () => {
    setup({ rotationMaxAttempts: 2 });
    const { arn, v0 } = await create();
    rotator.failSetTimes = 5;
    const outcome = await sm.rotateAndWait(arn, { lambdaArn: FN });
    expect(outcome).toMatchObject({ succeeded: false, attempts: 2 });
    expect(outcome.error).toMatch(/the key service is unavailable/);
    expect(sm.versionStages(arn)).toEqual({ [v0!]: ['AWSCURRENT'], [outcome.versionId]: ['AWSPENDING'] });
    expect((await client.send(new DescribeSecretCommand({ SecretId: arn }))).LastRotatedDate).toBeUndefined();
    await expect(sm.rotateAndWait(arn)).rejects.toMatchObject({
      name: 'InvalidRequestException',
      message: "A previous rotation isn't complete. That rotation will be reattempted.",
    });
    // CancelRotateSecret turns rotation off and names the unfinished version; the labels stay.
    const cancelled = await client.send(new CancelRotateSecretCommand({ SecretId: arn }));
    expect(cancelled.VersionId).toBe(outcome.versionId);
    expect((await client.send(new DescribeSecretCommand({ SecretId: arn }))).RotationEnabled).toBe(false);
    // Cleaning up the label by hand unblocks rotation.
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSPENDING', RemoveFromVersionId: outcome.versionId }));
    rotator.failSetTimes = 0;
    expect((await sm.rotateAndWait(arn)).succeeded).toBe(true);
    expect((await client.send(new DescribeSecretCommand({ SecretId: arn }))).RotationEnabled).toBe(true);
  });

  it('RotateImmediately=false runs only testSecret, then removes the placeholder', async () => {
    const { arn, v0 } = await create();
    const outcome = await sm.rotateAndWait(arn, { lambdaArn: FN, rotateImmediately: false });
    expect(outcome).toMatchObject({ succeeded: true, attempts: 1, steps: ['testSecret'] });
    expect(events).toHaveLength(1);
    expect(rotator.calls).toEqual([`testSecret:${outcome.versionId}`]);
    expect(sm.versionStages(arn)).toEqual({ [v0!]: ['AWSCURRENT'] });
    const all = await client.send(new ListSecretVersionIdsCommand({ SecretId: arn, IncludeDeprecated: true }));
    expect(all.Versions!.map((v) => v.VersionId)).toEqual([v0]);
    const d = await client.send(new DescribeSecretCommand({ SecretId: arn }));
    expect(d).toMatchObject({ RotationEnabled: true, RotationLambdaARN: FN });
    expect(d.LastRotatedDate).toBeUndefined();
  });

  it('with stripPendingAfterRotation=false AWSPENDING stays on AWSCURRENT, which does not block the next rotation', async () => {
    setup({ stripPendingAfterRotation: false });
    const { arn } = await create();
    const first = await sm.rotateAndWait(arn, { lambdaArn: FN });
    expect(sm.versionStages(arn)[first.versionId]).toEqual(['AWSCURRENT', 'AWSPENDING']);
    const second = await sm.rotateAndWait(arn);
    expect(second.succeeded).toBe(true);
    expect(sm.versionStages(arn)).toEqual({ [first.versionId]: ['AWSPREVIOUS'], [second.versionId]: ['AWSCURRENT', 'AWSPENDING'] });
  });

  it('requireRotationToken: a put for the rotating version needs the RotationToken of the latest event', async () => {
    setup({ requireRotationToken: true });
    const { arn } = await create();
    const rotation = sm.beginRotation(arn, { lambdaArn: FN });
    const event = rotation.event('createSecret');
    const attempt = (rt?: string) =>
      client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: rotation.versionId, SecretString: 'p', VersionStages: ['AWSPENDING'], RotationToken: rt }));
    expect((await failure(attempt())).name).toBe('AccessDeniedException');
    expect((await failure(attempt(randomUUID()))).name).toBe('AccessDeniedException');
    expect((await failure(attempt('not a valid token; spaces and ! are rejected'))).name).toBe('ValidationException');
    expect((await attempt(event.RotationToken)).VersionId).toBe(rotation.versionId);
    // Other versions are not part of the rotation.
    await put(arn, 'unrelated', ['OTHER']);
    // complete() strips AWSPENDING (the service's clean-up), which unblocks the next rotation,
    // and a driven rotation passes each event's token through the framework.
    rotation.complete();
    expect(sm.versionStages(arn)[rotation.versionId]).toBeUndefined();
    expect((await sm.rotateAndWait(arn)).succeeded).toBe(true);
  });
});

describe('deleted secrets', () => {
  it('are readable by DescribeSecret only, until restored; a forced delete frees the name', async () => {
    const { arn, name } = await create();
    const del = await client.send(new DeleteSecretCommand({ SecretId: arn, RecoveryWindowInDays: 7 }));
    expect(del.DeletionDate!.getTime() - Date.now()).toBeGreaterThan(6.9 * 86_400_000);
    expect((await client.send(new DescribeSecretCommand({ SecretId: arn }))).DeletedDate).toBeInstanceOf(Date);
    const marked = "You can't perform this operation on the secret because it was marked for deletion.";
    expect(await failure(client.send(new GetSecretValueCommand({ SecretId: arn })))).toMatchObject({ name: 'InvalidRequestException', message: marked });
    expect(await failure(put(arn, 'x'))).toMatchObject({ name: 'InvalidRequestException', message: marked });
    expect(await failure(client.send(new TagResourceCommand({ SecretId: arn, Tags: [{ Key: 'k', Value: 'v' }] })))).toMatchObject({ message: marked });
    expect(await failure(client.send(new CreateSecretCommand({ Name: name, SecretString: 'x' })))).toMatchObject({
      name: 'InvalidRequestException',
      message: "You can't create this secret because a secret with this name is already scheduled for deletion.",
    });
    expect((await failure(client.send(new DeleteSecretCommand({ SecretId: arn })))).name).toBe('InvalidRequestException');
    await client.send(new RestoreSecretCommand({ SecretId: arn }));
    expect((await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString).toBe(INITIAL);

    await client.send(new DeleteSecretCommand({ SecretId: arn, ForceDeleteWithoutRecovery: true }));
    expect((await failure(client.send(new DescribeSecretCommand({ SecretId: arn })))).name).toBe('ResourceNotFoundException');
    // Forced delete of a missing secret answers as if it existed.
    expect((await client.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }))).Name).toBe(name);
    expect((await failure(client.send(new DeleteSecretCommand({ SecretId: name })))).name).toBe('ResourceNotFoundException');
    expect((await failure(client.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 3 })))).name).toBe('InvalidParameterException');
    const again = await create('new', name);
    expect(again.arn).not.toBe(arn);
  });
});

describe('GetRandomPassword', () => {
  const ALL = LOWERCASE + UPPERCASE + DIGITS + PUNCTUATION;
  const gen = async (req: GetRandomPasswordRequest): Promise<string> => (await client.send(new GetRandomPasswordCommand(req))).RandomPassword!;

  it('defaults: 32 characters from letters, digits and all 32 punctuation characters, each type present', async () => {
    expect(PUNCTUATION).toHaveLength(32);
    const seen = new Set<string>();
    for (let k = 0; k < 300; k++) {
      const pw = await gen({});
      expect(pw).toHaveLength(32);
      for (const set of [LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION]) expect([...pw].some((c) => set.includes(c))).toBe(true);
      for (const c of pw) seen.add(c);
    }
    // 9600 draws from 94 characters: every one of them shows up, nothing else (no space).
    expect([...seen].sort().join('')).toBe([...ALL].sort().join(''));
  });

  it.each([
    [{ PasswordLength: 64, ExcludeCharacters: `/@"'\\:` }, `/@"'\\:`],
    [{ PasswordLength: 20, ExcludePunctuation: true }, PUNCTUATION],
    [{ PasswordLength: 20, ExcludeNumbers: true, ExcludeUppercase: true }, DIGITS + UPPERCASE],
    [{ PasswordLength: 12, ExcludeLowercase: true, ExcludeCharacters: 'ABCDEFGHIJ0123' }, `${LOWERCASE}ABCDEFGHIJ0123`],
    [{ PasswordLength: 4, ExcludeCharacters: 'aeiouAEIOU' }, 'aeiouAEIOU'],
  ] as Array<[GetRandomPasswordRequest, string]>)('honours %o exactly', async (req, forbidden) => {
    const required = [
      req.ExcludeLowercase ? '' : LOWERCASE,
      req.ExcludeUppercase ? '' : UPPERCASE,
      req.ExcludeNumbers ? '' : DIGITS,
      req.ExcludePunctuation ? '' : PUNCTUATION,
    ].filter(Boolean);
    for (let k = 0; k < 200; k++) {
      const pw = await gen(req);
      expect(pw).toHaveLength(req.PasswordLength!);
      for (const c of pw) expect(forbidden.includes(c)).toBe(false);
      for (const set of required) expect([...pw].some((c) => set.includes(c) && !forbidden.includes(c))).toBe(true);
    }
  });

  it('IncludeSpace adds the space; RequireEachIncludedType=false really allows missing types', async () => {
    let spaces = 0;
    let missingType = 0;
    for (let k = 0; k < 400; k++) {
      if ((await gen({ PasswordLength: 40, IncludeSpace: true })).includes(' ')) spaces++;
      const pw = await gen({ PasswordLength: 4, RequireEachIncludedType: false });
      if (![LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION].every((set) => [...pw].some((c) => set.includes(c)))) missingType++;
    }
    // P(no space in 40 draws from 95) = 0.65: expect roughly 140 of 400 with a space.
    expect(spaces).toBeGreaterThan(60);
    // P(all four types in 4 free draws) is about 0.08: most passwords miss a type.
    expect(missingType).toBeGreaterThan(300);
  });

  it('rejects impossible constraints', async () => {
    expect((await failure(gen({ PasswordLength: 0 }))).name).toBe('ValidationException');
    expect((await failure(gen({ PasswordLength: 4097 }))).name).toBe('ValidationException');
    expect(await failure(gen({ PasswordLength: 3 }))).toMatchObject({ name: 'InvalidParameterException', message: 'Password length is too short based on the required types.' });
    expect((await gen({ PasswordLength: 3, RequireEachIncludedType: false })).length).toBe(3);
    expect((await failure(gen({ ExcludeLowercase: true, ExcludeUppercase: true, ExcludeNumbers: true, ExcludePunctuation: true }))).name).toBe(
      'InvalidParameterException',
    );
    expect((await gen({ PasswordLength: 4096 })).length).toBe(4096);
  });
});

describe('the call log, injected failures and the wire', () => {
  it('records every operation with ids and labels but never a value', async () => {
    const { arn } = await create('Sup3r-Secret-Value');
    sm.resetCalls();
    const v1 = await put(arn, 'Another-Secret-Value', ['AWSPENDING']);
    await client.send(new GetSecretValueCommand({ SecretId: arn, VersionStage: 'AWSPENDING' }));
    await failure(client.send(new GetSecretValueCommand({ SecretId: arn, VersionStage: 'AWSPREVIOUS' })));
    expect(sm.calls).toEqual([
      { operation: 'PutSecretValue', secretId: arn, versionId: v1, versionStages: ['AWSPENDING'] },
      { operation: 'GetSecretValue', secretId: arn, versionStage: 'AWSPENDING' },
      { operation: 'GetSecretValue', secretId: arn, versionStage: 'AWSPREVIOUS', error: 'ResourceNotFoundException' },
    ]);
    expect(sm.countCalls('GetSecretValue')).toBe(2);
    expect(sm.countCalls()).toBe(3);
    expect(JSON.stringify(sm.calls)).not.toMatch(/Secret-Value/);
    sm.resetCalls();
    expect(sm.calls).toEqual([]);
  });

  it('failNext makes one call fail with the given error, surfaced by the SDK (InternalServiceError as a 500 fault)', async () => {
    const { arn } = await create();
    sm.failNext('GetSecretValue', 'InternalServiceError', 'try again');
    expect(await failure(client.send(new GetSecretValueCommand({ SecretId: arn })))).toMatchObject({
      name: 'InternalServiceError',
      message: 'try again',
      $fault: 'server',
      $metadata: { httpStatusCode: 500 },
    });
    expect((await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString).toBe(INITIAL);
    expect(sm.calls.at(-2)).toMatchObject({ operation: 'GetSecretValue', error: 'InternalServiceError' });
  });

  it('handleJsonRequest: epoch-second timestamps, only members with values, JSON 1.1 errors', async () => {
    const { arn } = await create();
    const ok = await sm.handleJsonRequest('secretsmanager.DescribeSecret', JSON.stringify({ SecretId: arn }));
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toBe('application/x-amz-json-1.1');
    const body = JSON.parse(ok.body);
    expect(typeof body.CreatedDate).toBe('number');
    expect(Math.abs(body.CreatedDate - Date.now() / 1000)).toBeLessThan(5);
    expect(ok.body).not.toContain('null');
    expect(Object.keys(body).sort()).toEqual(['ARN', 'CreatedDate', 'LastChangedDate', 'Name', 'VersionIdsToStages']);

    const unknown = await sm.handleJsonRequest('secretsmanager.Nope', '{}');
    expect(unknown.status).toBe(400);
    expect(JSON.parse(unknown.body).__type).toBe('UnknownOperationException');
    const badJson = await sm.handleJsonRequest('secretsmanager.DescribeSecret', '{');
    expect(JSON.parse(badJson.body).__type).toBe('SerializationException');
    const noToken = await sm.handleJsonRequest('secretsmanager.PutSecretValue', JSON.stringify({ SecretId: arn, SecretString: 'x' }));
    expect(JSON.parse(noToken.body)).toEqual({
      __type: 'InvalidRequestException',
      Message: 'You must provide a ClientRequestToken value. We recommend a UUID-type value.',
    });
    const rotateNoToken = await sm.handleJsonRequest('secretsmanager.RotateSecret', JSON.stringify({ SecretId: arn, RotationLambdaARN: FN }));
    expect(JSON.parse(rotateNoToken.body).__type).toBe('InvalidParameterException');
    const missing = await sm.handleJsonRequest('secretsmanager.DescribeSecret', '{}');
    expect(JSON.parse(missing.body).__type).toBe('ValidationException');
  });
});

describe('createSecret without a pending read: PutSecretValue decides', () => {
  /** Runs each step through a handler; `fresh` builds a new client per step (a cold container each time). */
  async function countPerStep(fresh: boolean): Promise<Record<string, string[]>> {
    const { arn } = await create();
    const r = new ApiKeyRotator();
    const shared = sm.client();
    const run = sm.beginRotation(arn);
    const perStep: Record<string, string[]> = {};
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
      const h = createHandler(r, { client: fresh ? sm.client() : shared, env: {}, logSink: () => undefined });
      sm.resetCalls();
      await h(run.event(step));
      perStep[step] = sm.calls.map((c) => c.operation);
    }
    run.complete();
    expect(sm.versionStages(arn)[run.versionId]).toEqual(['AWSCURRENT']);
    return perStep;
  }

  it('counts the calls per step: 7 in a warm function, 8 with a cold container per step (the previous design: 12)', async () => {
    const warm = await countPerStep(false);
    expect(warm).toEqual({
      createSecret: ['GetSecretValue', 'DescribeSecret', 'PutSecretValue'],
      // The values createSecret read and stored are reused by version id (from each step's DescribeSecret).
      setSecret: ['DescribeSecret'],
      testSecret: ['DescribeSecret'],
      finishSecret: ['DescribeSecret', 'UpdateSecretVersionStage'],
    });
    const cold = await countPerStep(true);
    expect(cold).toEqual({
      createSecret: ['GetSecretValue', 'DescribeSecret', 'PutSecretValue'],
      // setSecret changes the target: DescribeSecret (rotation still enabled?) with its read.
      setSecret: ['GetSecretValue', 'DescribeSecret'],
      // The read of AWSPENDING (VersionId = token, VersionStage = AWSPENDING) is the label check.
      testSecret: ['GetSecretValue'],
      // finishSecret verifies AWSPENDING before promoting it, and names AWSCURRENT's holder (both read at once).
      finishSecret: ['GetSecretValue', 'GetSecretValue', 'UpdateSecretVersionStage'],
    });
  });

  it('a Put stored but never acknowledged: the step fails, and its retry keeps the first value (ResourceExistsException, then a read)', async () => {
    const { arn } = await create();
    const lossy = sm.client();
    let dropNextPutAnswer = true;
    lossy.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'PutSecretValueCommand' && dropNextPutAnswer) {
          dropNextPutAnswer = false;
          throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' });
        }
        return out;
      },
      { step: 'deserialize', name: 'dropPutAnswer' },
    );
    const r = new ApiKeyRotator();
    const h = createHandler(r, { client: lossy, env: {}, logSink: () => undefined });
    const run = sm.beginRotation(arn);
    await expect(h(run.event('createSecret'))).rejects.toThrow(/socket hang up/);
    const stored = (await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: run.versionId }))).SecretString!;
    expect(stored).toHaveLength(40);

    sm.resetCalls();
    await h(run.event('createSecret'));
    expect(sm.calls.map((c) => [c.operation, c.error])).toEqual([
      ['GetSecretValue', undefined],
      ['DescribeSecret', undefined],
      ['PutSecretValue', 'ResourceExistsException'],
      ['GetSecretValue', undefined],
    ]);
    for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) await h(run.event(step));
    run.complete();
    expect((await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString).toBe(stored);
    expect(r.accepted.has(stored)).toBe(true);
    expect(r.accepted.size).toBe(2);
  });

  it('a Put whose answer is lost and that the SDK resends (same token, same value) is idempotent', async () => {
    const { arn } = await create();
    const retrying = sm.client({ retryStrategy: new RotationRetryStrategy({ random: () => 0 }) });
    let drop = true;
    retrying.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'PutSecretValueCommand' && drop) {
          drop = false;
          throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' });
        }
        return out;
      },
      { step: 'deserialize', name: 'dropPutAnswer' },
    );
    const run = sm.beginRotation(arn);
    sm.resetCalls();
    await createHandler(new ApiKeyRotator(), { client: retrying, env: {}, logSink: () => undefined })(run.event('createSecret'));
    expect(sm.calls.filter((c) => c.operation === 'PutSecretValue').map((c) => c.error)).toEqual([undefined, undefined]);
    expect(sm.versionStages(arn)[run.versionId]).toEqual(['AWSPENDING']);
  });

  it('a malformed value already stored for the token is reported, never overwritten', async () => {
    const { arn } = await create();
    const strict = new (class extends ApiKeyRotator {
      override validate(value: string, label: string): void {
        if (value.length !== 40 && label === 'AWSPENDING') throw new Error(`${label} is malformed`);
      }
    })();
    const run = sm.beginRotation(arn);
    await put(arn, 'short', ['AWSPENDING'], run.versionId);
    const h = createHandler(strict, { client, env: {}, logSink: () => undefined });
    await expect(h(run.event('createSecret'))).rejects.toThrow(/AWSPENDING is malformed/);
    expect((await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: run.versionId }))).SecretString).toBe('short');
  });

  it('PASSWORD_SOURCE=secretsmanager keeps GetRandomPassword; the default generates in the function', async () => {
    const { arn } = await create();
    const run = sm.beginRotation(arn);
    const h = createHandler(rotator, { client, env: {}, logSink: () => undefined });
    await h(run.event('createSecret'));
    expect(sm.countCalls('GetRandomPassword')).toBe(0);
    const store = new SecretStore(client, arn, run.versionId, new Redactor(), new Logger(() => undefined, {}, new Redactor(), 'error'));
    const policy = { ...DEFAULT_PASSWORD_POLICY, PasswordLength: 24 };
    expect(await store.randomPassword(policy, 'secretsmanager')).toHaveLength(24);
    expect(sm.countCalls('GetRandomPassword')).toBe(1);
    expect(await store.randomPassword(policy)).toHaveLength(24);
    expect(sm.countCalls('GetRandomPassword')).toBe(1);
  });
});

describe('request quotas (opt-in) and the retry strategy for rotation storms', () => {
  const WRITES = 'PutSecretValue+UpdateSecret+UpdateSecretVersionStage';

  it('the documented per-Region quotas: reads 10,000/s, writes 50/s combined, the rest 50/s', () => {
    expect(DOCUMENTED_QUOTAS['DescribeSecret+GetSecretValue']).toBe(10_000);
    expect(DOCUMENTED_QUOTAS[WRITES]).toBe(50);
    expect(DOCUMENTED_QUOTAS.GetRandomPassword).toBe(50);
    expect(DOCUMENTED_QUOTAS.ListSecretVersionIds).toBe(50);
    expect(() => new SecretsManagerDouble({ quotas: { Nope: 5 } as never })).toThrow(/Unknown quota/);
  });

  it('are off by default: a burst of 120 writes all succeed', async () => {
    const { arn } = await create();
    const results = await Promise.allSettled(Array.from({ length: 120 }, (_, k) => put(arn, `v${k}`)));
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(0);
  });

  it('when on, writes over the combined quota fail with ThrottlingException and change nothing; reads have their own bucket', async () => {
    setup({ quotas: { [WRITES]: 5 } });
    const { arn } = await create();
    const before = sm.versionStages(arn);
    const outcomes: string[] = [];
    for (let k = 0; k < 4; k++) {
      outcomes.push(await put(arn, `v${k}`, ['AWSPENDING']).then(() => 'ok', (e) => e.name));
    }
    for (let k = 0; k < 4; k++) {
      outcomes.push(
        await client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'BLUE', MoveToVersionId: Object.keys(before)[0] })).then(() => 'ok', (e) => e.name),
      );
    }
    expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ThrottlingException', 'ThrottlingException', 'ThrottlingException']);
    const throttled = await failure(put(arn, 'never stored', ['AWSPENDING']));
    expect(throttled).toMatchObject({ name: 'ThrottlingException', message: 'Rate exceeded.', $metadata: { httpStatusCode: 400 } });
    expect(sm.countThrottled('UpdateSecretVersionStage')).toBe(3);
    expect(JSON.stringify(sm.calls)).not.toContain('never stored');
    // Reads draw on the 10,000/s bucket: 200 at once are fine.
    const reads = await Promise.allSettled(Array.from({ length: 200 }, () => client.send(new DescribeSecretCommand({ SecretId: arn }))));
    expect(reads.every((r) => r.status === 'fulfilled')).toBe(true);
    // The bucket refills: 5 per second.
    await new Promise((r) => setTimeout(r, 450));
    expect(await put(arn, 'later', ['AWSPENDING']).then(() => 'ok')).toBe('ok');
  });

  it('RotationRetryStrategy: throttling retried with full-jitter backoff within its time budget; transient 3 attempts; client errors never', async () => {
    const s = new RotationRetryStrategy({ throttleBaseMs: 500, throttleCapMs: 10_000, throttleBudgetMs: 40_000, random: () => 0.999 });
    let t = await s.acquireInitialRetryToken('');
    const delays: number[] = [];
    for (let k = 0; k < 5; k++) {
      t = await s.refreshRetryTokenForRetry(t, { errorType: 'THROTTLING' });
      delays.push(t.getRetryDelay());
    }
    expect(delays).toEqual([499, 999, 1998, 3996, 7992]);
    // A call that has waited lateAfterMs retries within lateCapMs (closer to first come, first served).
    const late = new RotationRetryStrategy({ lateAfterMs: 0, lateCapMs: 1000, random: () => 0.999 });
    const l0 = await late.acquireInitialRetryToken('');
    await new Promise((r) => setTimeout(r, 5));
    expect((await late.refreshRetryTokenForRetry(await late.refreshRetryTokenForRetry(l0, { errorType: 'THROTTLING' }), { errorType: 'THROTTLING' })).getRetryDelay()).toBe(999);
    // The budget counts from the first attempt: a retry whose delay would end past it is refused.
    const tight = new RotationRetryStrategy({ throttleBudgetMs: 600, random: () => 0.999 });
    const t0 = await tight.acquireInitialRetryToken('');
    const t1 = await tight.refreshRetryTokenForRetry(t0, { errorType: 'THROTTLING' });
    await expect(tight.refreshRetryTokenForRetry(t1, { errorType: 'THROTTLING' })).rejects.toThrow(/No retry token/);
    let tr = await s.acquireInitialRetryToken('');
    tr = await s.refreshRetryTokenForRetry(tr, { errorType: 'TRANSIENT' });
    tr = await s.refreshRetryTokenForRetry(tr, { errorType: 'TRANSIENT' });
    await expect(s.refreshRetryTokenForRetry(tr, { errorType: 'TRANSIENT' })).rejects.toThrow(/No retry token/);
    await expect(s.refreshRetryTokenForRetry(await s.acquireInitialRetryToken(''), { errorType: 'CLIENT_ERROR' })).rejects.toThrow(/No retry token/);
    expect(defaultSecretsManagerClient({ SECRETS_MANAGER_ENDPOINT: 'http://127.0.0.1:1' }).config.retryStrategy).toBeDefined();
    expect(() => defaultSecretsManagerClient({ SECRETS_MANAGER_RETRY_BUDGET_MS: 'soon' })).toThrow(/SECRETS_MANAGER_RETRY_BUDGET_MS/);
  });

  /** `n` scheduled rotations at once through one handler (the double sets the write quota). */
  async function storm(n: number, c: SecretsManagerClient): Promise<{ failed: number; throttled: number; ms: number }> {
    const handler = createHandler(new ApiKeyRotator(), { client: c, env: {}, logSink: () => undefined });
    const fn = `${FN}-storm`;
    sm.registerFunction(fn, handler);
    const arns = await Promise.all(Array.from({ length: n }, () => create().then((x) => x.arn)));
    const t0 = Date.now();
    const outcomes = await Promise.all(arns.map((arn) => sm.scheduledRotation(arn, { lambdaArn: fn })));
    return { failed: outcomes.filter((o) => !o.succeeded).length, throttled: sm.countThrottled(), ms: Date.now() - t0 };
  }

  it('a storm: every rotation completes with RotationRetryStrategy, where the SDK\'s standard retries give up', async () => {
    setup({ quotas: { [WRITES]: 10 } });
    const ours = await storm(24, sm.client({ retryStrategy: new RotationRetryStrategy({ throttleBaseMs: 100, throttleCapMs: 1000, throttleBudgetMs: 20_000 }) }));
    expect(ours.failed).toBe(0);
    expect(ours.throttled).toBeGreaterThan(0);
    // 48 writes at 10/s after a burst of 10: at least 3.8 s.
    expect(ours.ms).toBeGreaterThan(3500);

    setup({ quotas: { [WRITES]: 10 } });
    const standard = await storm(24, sm.client({ maxAttempts: 3, retryMode: 'standard' }));
    expect(standard.failed).toBeGreaterThan(0);
  }, 60_000);
});

describe('values reused across the steps of a warm container', () => {
  /** Records what setSecret saw; optionally fails with the pending value in its message (a careless rotator). */
  class Observing extends ApiKeyRotator {
    seenCurrent?: string;
    leak = false;
    override async setSecret(ctx: StepContext): Promise<void> {
      this.seenCurrent = await ctx.secrets.current();
      const pending = await ctx.secrets.requirePending();
      if (this.leak) throw new Error(`the service rejected ${pending}`);
      this.accepted.add(pending);
    }
  }

  it('a value changed out of band between steps is read again: the cache is keyed by the version this step\'s DescribeSecret shows', async () => {
    const { arn } = await create();
    const r = new Observing();
    const h = createHandler(r, { client, env: {}, logSink: () => undefined });
    const run = sm.beginRotation(arn);
    await h(run.event('createSecret'));
    // Someone stores a new AWSCURRENT mid-rotation (a new version: versions never change).
    await put(arn, 'Changed-Out-Of-Band-Value', ['AWSCURRENT']);
    sm.resetCalls();
    await h(run.event('setSecret'));
    expect(r.seenCurrent).toBe('Changed-Out-Of-Band-Value');
    expect(sm.calls.map((c) => c.operation)).toEqual(['DescribeSecret', 'GetSecretValue']);
  });

  it('a value served from the cache is still scrubbed from errors and logs of the step that uses it', async () => {
    const { arn } = await create();
    const r = new Observing();
    const lines: string[] = [];
    const h = createHandler(r, { client, env: {}, logSink: (l) => lines.push(l) });
    const run = sm.beginRotation(arn);
    await h(run.event('createSecret'));
    const pending = (await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: run.versionId }))).SecretString!;
    r.leak = true;
    sm.resetCalls();
    const err = await failure(h(run.event('setSecret')));
    // Served from the cache (no GetSecretValue), yet scrubbed like a value read in this invocation.
    expect(sm.calls.map((c) => c.operation)).toEqual(['DescribeSecret']);
    expect(err.message).toMatch(/the service rejected/);
    expect(err.message).not.toContain(pending);
    expect(lines.join('\n')).not.toContain(pending);
  });
});
