/**
 * A step in a fresh container (each step in a new handler with a new client, as in a rotation
 * storm) learns the token's labels from its reads instead of DescribeSecret (testSecret,
 * finishSecret): what those reads' failures mean, and the races around finishSecret's
 * UpdateSecretVersionStage, whose RemoveFromVersionId now comes from the AWSCURRENT read.
 */
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createHandler, RotationError, Rotator, type StepContext } from '../src';
import { SecretsManagerDouble } from '../src/testing/secrets-manager-double';

class MemoryRotator extends Rotator {
  readonly name = 'memory';
  valid = new Set<string>(['InitialKeyValue-123']);
  async generatePending(current: string): Promise<string> {
    return JSON.stringify({ ...JSON.parse(current), key: `k-${randomUUID()}` });
  }
  async setSecret(ctx: StepContext): Promise<void> {
    this.valid.add(JSON.parse(await ctx.secrets.requirePending()).key);
  }
  async verify(value: string, label: string): Promise<void> {
    if (!this.valid.has(JSON.parse(value).key)) throw new RotationError('AUTH', `not accepted ${label}`);
  }
}

let sm: SecretsManagerDouble;
let rotator: MemoryRotator;
let arn: string;
let name: string;
const LAMBDA = 'arn:aws:lambda:us-east-1:123456789012:function:memory-rotator';

/** A client (fresh container) whose pending-by-token reads fail with `errName`. */
function faultyClient(errName: string | undefined, times = Infinity): SecretsManagerClient {
  const c = sm.client();
  let left = times;
  c.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { VersionId?: string; VersionStage?: string };
      if (errName && context.commandName === 'GetSecretValueCommand' && input.VersionId && input.VersionStage === 'AWSPENDING' && left-- > 0) {
        const e = new Error(`injected ${errName} (access denied)`);
        e.name = errName;
        throw e;
      }
      return next(args);
    },
    { step: 'initialize', name: 'fault' },
  );
  return c;
}

function fresh(client = sm.client()) {
  return createHandler(rotator, { client, env: {}, logSink: () => undefined });
}

beforeEach(async () => {
  sm = new SecretsManagerDouble();
  rotator = new MemoryRotator();
  name = `fresh/${randomUUID()}`;
  const out = await sm.client().send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify({ key: 'InitialKeyValue-123' }) }));
  arn = out.ARN!;
});

describe('a fresh container per step', () => {
  it.each([
    ['AccessDeniedException', 'PRIVILEGE'],
    ['DecryptionFailure', 'CONFIG'],
    ['KMSAccessDeniedException', 'CONFIG'],
  ])('pending read failing with %s is reported as %s, nothing promoted', async (errName, code) => {
    const run = sm.beginRotation(arn, { lambdaArn: LAMBDA });
    await fresh()(run.event('createSecret'));
    await fresh()(run.event('setSecret'));
    const err = await fresh(faultyClient(errName))(run.event('finishSecret')).catch((e) => e);
    expect(err).toBeInstanceOf(RotationError);
    expect(err.code).toBe(code);
    expect(sm.versionStages(arn)[run.versionId]).not.toContain('AWSCURRENT');
  });

  it('AWSCURRENT moved by someone else between the read and UpdateSecretVersionStage: refused', async () => {
    const run = sm.beginRotation(arn, { lambdaArn: LAMBDA });
    await fresh()(run.event('createSecret'));
    await fresh()(run.event('setSecret'));
    const c = sm.client();
    const other = randomUUID();
    c.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UpdateSecretVersionStageCommand') {
          await sm.client().send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: other, SecretString: JSON.stringify({ key: 'InitialKeyValue-123', x: 1 }) }));
        }
        return next(args);
      },
      { step: 'initialize', name: 'race' },
    );
    const err = await fresh(c)(run.event('finishSecret')).catch((e) => e);
    expect(err).toBeInstanceOf(RotationError);
    expect(sm.versionStages(arn)[other]).toContain('AWSCURRENT');
  });

  it('duplicate concurrent fresh finishSecret: both succeed, previous is the old current', async () => {
    const run = sm.beginRotation(arn, { lambdaArn: LAMBDA });
    const before = Object.entries(sm.versionStages(arn)).find(([, s]) => s.includes('AWSCURRENT'))![0];
    await fresh()(run.event('createSecret'));
    await fresh()(run.event('setSecret'));
    await Promise.all([fresh()(run.event('finishSecret')), fresh()(run.event('finishSecret'))]);
    expect(sm.versionStages(arn)[run.versionId]).toContain('AWSCURRENT');
    expect(sm.versionStages(arn)[before]).toContain('AWSPREVIOUS');
  });

  it('attack on the warm path: a secret named by name is deleted and re-created with the same name, and its writer stores a value the target refuses under the same token; the warm container never uses what it cached, nothing is promoted', async () => {
    const warm = fresh(sm.client());
    const run = sm.beginRotation(arn, { lambdaArn: LAMBDA });
    const byName = (step: 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret') => ({ ...run.event(step), SecretId: name });
    await warm(byName('createSecret'));
    await warm(byName('setSecret'));
    await sm.client().send(new DeleteSecretCommand({ SecretId: arn, ForceDeleteWithoutRecovery: true }));
    const again = (await sm.client().send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify({ key: 'InitialKeyValue-123' }) }))).ARN!;
    await sm.client().send(new PutSecretValueCommand({ SecretId: again, ClientRequestToken: run.versionId, SecretString: JSON.stringify({ key: 'not-accepted' }), VersionStages: ['AWSPENDING'] }));
    const err = await warm({ ...byName('finishSecret'), RotationToken: undefined }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RotationError);
    expect((err as RotationError).code).toBe('AUTH');
    expect(sm.versionStages(again)[run.versionId]).not.toContain('AWSCURRENT');
  });
});
