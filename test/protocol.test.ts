/**
 * The step protocol, independent of any database: event validation, label checks, idempotent
 * createSecret, RotationToken pass-through, finishSecret label moves, the number of Secrets
 * Manager calls, and redaction of errors and logs. The rotator here keeps its "target system" in
 * memory; the Secrets Manager side is the stateful double behind the real AWS SDK client.
 */
import {
  CancelRotateSecretCommand,
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { createHandler, EventError, RotationError, RotationStateError, Rotator, type StepContext } from '../src';
import { SecretsManagerDouble } from '../src/testing/secrets-manager-double';

/** A target system that stores one valid key; the rotator swaps it. */
class MemoryRotator extends Rotator {
  readonly name = 'memory';
  valid = new Set<string>();
  setCalls = 0;
  failSetWith?: (pending: string) => Error;

  async generatePending(current: string, ctx: StepContext): Promise<string> {
    const pw = await ctx.secrets.randomPassword({
      PasswordLength: 24, ExcludeCharacters: '', ExcludeNumbers: false, ExcludePunctuation: false,
      ExcludeUppercase: false, ExcludeLowercase: false, RequireEachIncludedType: true,
    });
    return JSON.stringify({ ...JSON.parse(current), key: pw });
  }

  async setSecret(ctx: StepContext): Promise<void> {
    this.setCalls++;
    // Like a real target: authenticate with the current key, then register the pending one.
    const current = JSON.parse(await ctx.secrets.current()).key as string;
    if (!this.valid.has(current)) throw new Error('current key is not accepted by the target');
    const pending = JSON.parse(await ctx.secrets.requirePending()).key as string;
    if (this.failSetWith) throw this.failSetWith(pending);
    this.valid.add(pending);
  }

  verifyCalls: string[] = [];

  async verify(value: string, label: string, ctx: StepContext): Promise<void> {
    this.verifyCalls.push(`${ctx.step}:${label}`);
    if (!this.valid.has(JSON.parse(value).key)) throw new RotationError('AUTH', `the target does not accept the ${label} key`);
  }
}

const INITIAL = JSON.stringify({ key: 'InitialKeyValue-123', note: 'carried forward' });
const LAMBDA = 'arn:aws:lambda:us-east-1:123456789012:function:memory-rotator';

let sm: SecretsManagerDouble;
let client: SecretsManagerClient;
let rotator: MemoryRotator;
let lines: string[];
let handler: ReturnType<typeof createHandler>;
let arn: string;

beforeEach(async () => {
  sm = new SecretsManagerDouble();
  client = sm.client();
  rotator = new MemoryRotator();
  lines = [];
  handler = createHandler(rotator, { client, env: {}, logSink: (l) => lines.push(l) });
  sm.registerFunction(LAMBDA, handler);
  const out = await client.send(new CreateSecretCommand({ Name: `proto/${randomUUID()}`, SecretString: INITIAL }));
  arn = out.ARN!;
  rotator.valid.add('InitialKeyValue-123');
});

/** Creates an AWSPENDING version the way RotateSecret does, without running the steps. */
async function pendingVersion(): Promise<string> {
  const token = randomUUID();
  await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretString: '{"key":"placeholder-for-test"}', VersionStages: ['AWSPENDING'] }));
  return token;
}

/** PutSecretValue calls that stored (or idempotently repeated) a value, not refused ones. */
function storedPuts(): number {
  return sm.calls.filter((c) => c.operation === 'PutSecretValue' && !c.error).length;
}

function stagesOf(token: string): string[] {
  return sm.versionStages(arn)[token] ?? [];
}

describe('event validation', () => {
  it.each([
    [{}, /SecretId, ClientRequestToken, Step/],
    [{ SecretId: 'x', Step: 'createSecret' }, /ClientRequestToken/],
    [{ SecretId: 'x', ClientRequestToken: 't', Step: '' }, /Step/],
  ])('rejects a malformed event before calling Secrets Manager (%o)', async (event, msg) => {
    sm.resetCalls();
    await expect(handler(event as never)).rejects.toThrow(msg);
    await expect(handler(event as never)).rejects.toBeInstanceOf(EventError);
    expect(sm.countCalls()).toBe(0);
  });

  it('rejects an unknown step with a clear error', async () => {
    const token = await pendingVersion();
    sm.resetCalls();
    await expect(handler({ SecretId: arn, ClientRequestToken: token, Step: 'dropSecret' })).rejects.toThrow(/Invalid step parameter "dropSecret"/);
    expect(sm.countCalls()).toBe(0);
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('rejects the inherited property name %j as a step', async (Step) => {
    const token = await pendingVersion();
    sm.resetCalls();
    await expect(handler({ SecretId: arn, ClientRequestToken: token, Step })).rejects.toBeInstanceOf(EventError);
    expect(sm.countCalls()).toBe(0);
  });

  it('accepts the snake_case step names one AWS guide uses', async () => {
    const token = randomUUID();
    await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretString: INITIAL.replace('Initial', 'Pending'), VersionStages: ['AWSPENDING'] }));
    rotator.valid.add('PendingKeyValue-123');
    await handler({ SecretId: arn, ClientRequestToken: token, Step: 'finish_secret' });
    expect(stagesOf(token)).toContain('AWSCURRENT');
  });
});

describe('label checks', () => {
  it('createSecret fails when rotation is disabled on the secret (it starts every rotation; the later steps check only the token\'s labels)', async () => {
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(r.succeeded).toBe(true);
    await client.send(new CancelRotateSecretCommand({ SecretId: arn }));
    const token = await pendingVersion();
    await expect(handler({ SecretId: arn, ClientRequestToken: token, Step: 'createSecret' })).rejects.toThrow(/not enabled for rotation/);
  });

  it('after CancelRotateSecret, an invoker cannot set the leftover AWSPENDING on the target (setSecret refuses, warm or fresh): AWSCURRENT keeps working', async () => {
    const fresh = () => createHandler(rotator, { client: sm.client(), env: {}, logSink: (l) => lines.push(l) });
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(r.succeeded).toBe(true);
    const run = sm.beginRotation(arn);
    await handler(run.event('createSecret'));
    await client.send(new CancelRotateSecretCommand({ SecretId: arn }));
    const setBefore = rotator.setCalls;
    for (const h of [handler, fresh()]) {
      await expect(h(run.event('setSecret'))).rejects.toThrow(/not enabled for rotation/);
    }
    expect(rotator.setCalls).toBe(setBefore);
  });

  it('a fresh container meets a token that holds AWSCURRENT and still AWSPENDING (the service has not stripped it yet): every step is a no-op', async () => {
    sm = new SecretsManagerDouble({ stripPendingAfterRotation: false });
    client = sm.client();
    handler = createHandler(rotator, { client, env: {}, logSink: (l) => lines.push(l) });
    sm.registerFunction(LAMBDA, handler);
    arn = (await client.send(new CreateSecretCommand({ Name: `proto/${randomUUID()}`, SecretString: INITIAL }))).ARN!;
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(stagesOf(r.versionId).sort()).toEqual(['AWSCURRENT', 'AWSPENDING']);
    const setBefore = rotator.setCalls;
    sm.resetCalls();
    for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
      await createHandler(rotator, { client: sm.client(), env: {}, logSink: (l) => lines.push(l) })({ SecretId: arn, ClientRequestToken: r.versionId, Step });
    }
    expect(rotator.setCalls).toBe(setBefore);
    expect(sm.countCalls('PutSecretValue') + sm.countCalls('UpdateSecretVersionStage')).toBe(0);
    expect(lines.filter((l) => l.includes('step is a no-op')).length).toBeGreaterThanOrEqual(4);
  });

  it('tolerates a secret whose rotation was never configured (RotationEnabled absent)', async () => {
    const token = randomUUID();
    await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretString: INITIAL, VersionStages: ['AWSPENDING'] }));
    await expect(handler({ SecretId: arn, ClientRequestToken: token, Step: 'testSecret' })).resolves.toBeUndefined();
  });

  it.each([randomUUID(), 'constructor', '__proto__'])('fails when the token is not a version of the secret (%s), in every step', async (token) => {
    for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
      const err = await handler({ SecretId: arn, ClientRequestToken: token, Step }).catch((e) => e);
      expect(err, Step).toBeInstanceOf(RotationStateError);
      expect(err.message).toMatch(/has no stage for rotation/);
    }
  });

  it('a fresh container per step learns the labels from its reads: a token that is not (or no longer) AWSPENDING is refused, a finished one is a no-op', async () => {
    const fresh = () => createHandler(rotator, { client: sm.client(), env: {}, logSink: (l) => lines.push(l) });
    const custom = randomUUID();
    await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: custom, SecretString: INITIAL, VersionStages: ['CUSTOM'] }));
    for (const Step of ['setSecret', 'testSecret', 'finishSecret']) {
      await expect(fresh()({ SecretId: arn, ClientRequestToken: custom, Step }), Step).rejects.toThrow(/not set as AWSPENDING/);
    }
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    const setBefore = rotator.setCalls;
    sm.resetCalls();
    for (const Step of ['setSecret', 'testSecret', 'finishSecret']) await fresh()({ SecretId: arn, ClientRequestToken: r.versionId, Step });
    expect(rotator.setCalls).toBe(setBefore);
    expect(stagesOf(r.versionId)).toContain('AWSCURRENT');
    expect(sm.countCalls('UpdateSecretVersionStage')).toBe(0);
  });

  it('fails when the version is not AWSPENDING', async () => {
    const token = randomUUID();
    await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: token, SecretString: INITIAL, VersionStages: ['CUSTOM'] }));
    await expect(handler({ SecretId: arn, ClientRequestToken: token, Step: 'setSecret' })).rejects.toThrow(/not set as AWSPENDING/);
  });

  it('succeeds without doing anything when the version is already AWSCURRENT, for every step', async () => {
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    sm.resetCalls();
    const setBefore = rotator.setCalls;
    for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
      await handler({ SecretId: arn, ClientRequestToken: r.versionId, Step });
    }
    // createSecret: Describe (with the AWSCURRENT read it would need in flight); the warm
    // container holds the version's value, so the others make one DescribeSecret each.
    expect(sm.countCalls('DescribeSecret')).toBe(4);
    expect(sm.countCalls()).toBe(5);
    expect(sm.countCalls('PutSecretValue') + sm.countCalls('UpdateSecretVersionStage')).toBe(0);
    expect(rotator.setCalls).toBe(setBefore);
  });
});

describe('a full rotation through RotateSecret', () => {
  it('moves the labels exactly as Secrets Manager expects and carries other keys forward', async () => {
    const before = sm.versionStages(arn);
    const oldVersion = Object.keys(before).find((v) => before[v].includes('AWSCURRENT'))!;
    sm.resetCalls();
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(r).toMatchObject({ succeeded: true, attempts: 1 });
    expect(r.steps).toEqual(['createSecret', 'setSecret', 'testSecret', 'finishSecret']);
    const after = sm.versionStages(arn);
    expect(after[r.versionId]).toEqual(['AWSCURRENT']);
    expect(after[oldVersion]).toEqual(['AWSPREVIOUS']);
    const cur = await client.send(new GetSecretValueCommand({ SecretId: arn }));
    const value = JSON.parse(cur.SecretString!);
    expect(value.note).toBe('carried forward');
    expect(value.key).not.toBe('InitialKeyValue-123');
    expect(rotator.valid.has(value.key)).toBe(true);
  });

  it('takes LOG_LEVEL from the handler\'s environment on every invocation', async () => {
    const env: Record<string, string> = { LOG_LEVEL: 'warn' };
    const quiet: string[] = [];
    const h = createHandler(rotator, { client, env: () => env, logSink: (l) => quiet.push(l) });
    const lambda = `${LAMBDA}-quiet`;
    sm.registerFunction(lambda, h);
    expect((await sm.rotateAndWait(arn, { lambdaArn: lambda })).succeeded).toBe(true);
    expect(quiet).toEqual([]);
    env.LOG_LEVEL = 'debug';
    expect((await sm.rotateAndWait(arn, { lambdaArn: lambda })).succeeded).toBe(true);
    expect(quiet.map((l) => JSON.parse(l).message)).toContain('step started');
  });

  it('warm: one DescribeSecret per step and no redundant calls', async () => {
    sm.resetCalls();
    await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    const ours = sm.calls.filter((c) => c.operation !== 'RotateSecret');
    expect(sm.countCalls('DescribeSecret')).toBe(4);
    // createSecret: GSV current and Describe (at once), Put (the password is generated in the
    // function; no pending read). setSecret, testSecret: Describe only (the warm container already
    // holds both versions' values: their version ids come from this step's Describe);
    // finishSecret: Describe, UpdateStage
    expect(ours.map((c) => c.operation)).toEqual([
      'GetSecretValue', 'DescribeSecret', 'PutSecretValue',
      'DescribeSecret',
      'DescribeSecret',
      'DescribeSecret', 'UpdateSecretVersionStage',
    ]);
  });

  it('retries with the same token after a failing step and then succeeds', async () => {
    sm = new SecretsManagerDouble({ rotationMaxAttempts: 2 });
    client = sm.client();
    handler = createHandler(rotator, { client, env: {}, logSink: (l) => lines.push(l) });
    sm.registerFunction(LAMBDA, handler);
    arn = (await client.send(new CreateSecretCommand({ Name: 'proto/retry', SecretString: INITIAL }))).ARN!;
    let failures = 1;
    const orig = rotator.setSecret.bind(rotator);
    rotator.setSecret = async (ctx) => {
      if (failures-- > 0) throw new Error('target briefly unavailable');
      return orig(ctx);
    };
    sm.resetCalls();
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(r.succeeded).toBe(true);
    expect(r.attempts).toBe(2);
    // The retry kept the AWSPENDING value stored by the first attempt: its Put was refused.
    expect(storedPuts()).toBe(1);
    expect(sm.calls.filter((c) => c.operation === 'PutSecretValue').map((c) => c.error)).toEqual([undefined, 'ResourceExistsException']);
    expect(sm.versionStages(arn)[r.versionId]).toEqual(['AWSCURRENT']);
  });
});

describe('idempotent steps', () => {
  /** RotateSecret creates the value-less AWSPENDING placeholder; the function fails at once so nothing else happens. */
  async function placeholder(): Promise<string> {
    const DEAD = 'arn:aws:lambda:us-east-1:123456789012:function:unavailable';
    sm.registerFunction(DEAD, async () => {
      throw new Error('function unavailable');
    });
    const r = await sm.rotateAndWait(arn, { lambdaArn: DEAD });
    expect(r.succeeded).toBe(false);
    return r.versionId;
  }

  it('createSecret fills the placeholder once; a replay leaves the value unchanged', async () => {
    const token = await placeholder();
    await expect(client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token, VersionStage: 'AWSPENDING' }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    sm.resetCalls();
    await handler({ SecretId: arn, ClientRequestToken: token, Step: 'createSecret' });
    const first = (await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token, VersionStage: 'AWSPENDING' }))).SecretString;
    await handler({ SecretId: arn, ClientRequestToken: token, Step: 'createSecret' });
    const second = (await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token, VersionStage: 'AWSPENDING' }))).SecretString;
    expect(second).toBe(first);
    // The replay's Put (another generated value) was refused; the first value stays.
    expect(storedPuts()).toBe(1);
    expect(sm.countCalls('PutSecretValue')).toBe(2);
    expect(sm.countCalls('GetRandomPassword')).toBe(0);
  });

  it('createSecret reports a malformed AWSCURRENT and creates nothing', async () => {
    const token = await placeholder();
    const strict = new (class extends MemoryRotator {
      override validate(raw: string, label: string): void {
        if (!JSON.parse(raw).key) throw new RotationStateError(`The ${label} secret has no "key" field.`);
      }
    })();
    await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: randomUUID(), SecretString: '{"nokey":"LeakCheckValue-999"}' }));
    const h = createHandler(strict, { client, env: {}, logSink: (l) => lines.push(l) });
    await expect(h({ SecretId: arn, ClientRequestToken: token, Step: 'createSecret' })).rejects.toThrow(/AWSCURRENT secret has no "key" field/);
    await expect(client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('every step can run twice with the same event', async () => {
    const token = await placeholder();
    sm.resetCalls();
    for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
      await handler({ SecretId: arn, ClientRequestToken: token, Step });
      const snapshot = JSON.stringify(sm.versionStages(arn));
      const value = (await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token }))).SecretString;
      await handler({ SecretId: arn, ClientRequestToken: token, Step });
      expect(JSON.stringify(sm.versionStages(arn))).toBe(snapshot);
      expect((await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: token }))).SecretString).toBe(value);
    }
    expect(stagesOf(token)).toContain('AWSCURRENT');
    expect(storedPuts()).toBe(1);
    expect(sm.countCalls('UpdateSecretVersionStage')).toBe(1);
  });

  it('finishSecret moves AWSCURRENT with RemoveFromVersionId; AWSPREVIOUS follows', async () => {
    const before = sm.versionStages(arn);
    const oldVersion = Object.keys(before).find((v) => before[v].includes('AWSCURRENT'))!;
    const token = await placeholder();
    for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
      await handler({ SecretId: arn, ClientRequestToken: token, Step });
    }
    const after = sm.versionStages(arn);
    expect(after[token]).toContain('AWSCURRENT');
    expect(after[oldVersion]).toEqual(['AWSPREVIOUS']);
  });
});

describe('the base class owns the protocol rules for every rotator (verify hook)', () => {
  it('a clean rotation verifies AWSPENDING in testSecret and again in finishSecret, before the label moves', async () => {
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(r.succeeded).toBe(true);
    expect(rotator.verifyCalls).toEqual(['testSecret:AWSPENDING', 'finishSecret:AWSPENDING']);
  });

  it('RotateImmediately=false (testSecret alone, value-less AWSPENDING): verifies AWSCURRENT, changes nothing', async () => {
    const before = sm.versionStages(arn);
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA, rotateImmediately: false });
    expect(r).toMatchObject({ succeeded: true, steps: ['testSecret'] });
    expect(rotator.verifyCalls).toEqual(['testSecret:AWSCURRENT']);
    expect(rotator.setCalls).toBe(0);
    expect(sm.versionStages(arn)).toEqual(before);
  });

  it('finishSecret right after createSecret (setSecret never ran) is refused by verify; AWSCURRENT does not move', async () => {
    const run = sm.beginRotation(arn, { lambdaArn: LAMBDA });
    const before = sm.versionStages(arn);
    await handler(run.event('createSecret'));
    const err = await handler(run.event('finishSecret')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AUTH', message: 'the target does not accept the AWSPENDING key' });
    expect(Object.entries(sm.versionStages(arn)).find(([, s]) => s.includes('AWSCURRENT'))?.[0]).toBe(Object.entries(before).find(([, s]) => s.includes('AWSCURRENT'))?.[0]);
  });

  it('finishSecret on the value-less placeholder is refused with STATE before verify runs', async () => {
    const run = sm.beginRotation(arn, { lambdaArn: LAMBDA });
    const err = await handler(run.event('finishSecret')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RotationStateError);
    expect((err as Error).message).toMatch(/has no value; refusing to move AWSCURRENT to it/);
    expect(rotator.verifyCalls).toEqual([]);
    expect(stagesOf(run.versionId)).toEqual(['AWSPENDING']);
  });

  it('finishSecret on an AWSPENDING value the rotator\'s validate rejects is refused before verify runs', async () => {
    const strict = new (class extends MemoryRotator {
      override validate(raw: string, label: string): void {
        if (!JSON.parse(raw).key) throw new RotationError('SECRET_FORMAT', `The ${label} secret has no "key" field.`);
      }
    })();
    const h = createHandler(strict, { client, env: {}, logSink: (l) => lines.push(l) });
    const run = sm.beginRotation(arn, { lambdaArn: LAMBDA });
    await client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: run.versionId, SecretString: '{"nokey":1}', VersionStages: ['AWSPENDING'] }));
    await expect(h(run.event('finishSecret'))).rejects.toMatchObject({ code: 'SECRET_FORMAT' });
    expect(strict.verifyCalls).toEqual([]);
    expect(stagesOf(run.versionId)).toEqual(['AWSPENDING']);
  });
});

describe('RotationToken', () => {
  it('is passed to PutSecretValue when the event carries one', async () => {
    sm = new SecretsManagerDouble({ requireRotationToken: true });
    client = sm.client();
    handler = createHandler(rotator, { client, env: {}, logSink: (l) => lines.push(l) });
    sm.registerFunction(LAMBDA, handler);
    arn = (await client.send(new CreateSecretCommand({ Name: 'proto/rt', SecretString: INITIAL }))).ARN!;
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(r.succeeded).toBe(true);
  });

  it('a double that requires it rejects a put without it (so the test above proves pass-through)', async () => {
    sm = new SecretsManagerDouble({ requireRotationToken: true });
    client = sm.client();
    const events: Array<Record<string, string>> = [];
    sm.registerFunction(LAMBDA, async (e: Record<string, string>) => {
      events.push(e);
      const { RotationToken: _dropped, ...withoutToken } = e;
      return createHandler(rotator, { client, env: {}, logSink: () => undefined })(withoutToken as never);
    });
    arn = (await client.send(new CreateSecretCommand({ Name: 'proto/rt2', SecretString: INITIAL }))).ARN!;
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(r.succeeded).toBe(false);
    expect(events[0].RotationToken).toMatch(/^[a-zA-Z0-9-]{36,}$/);
  });
});

describe('no secret value leaves the function', () => {
  it('scrubs secret values from the error and from every log line', async () => {
    rotator.failSetWith = (pending) => new Error(`target rejected key ${pending} (old InitialKeyValue-123)`);
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(r.succeeded).toBe(false);
    const pending = JSON.parse((await client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: r.versionId }))).SecretString!).key;
    expect(r.error).toBeDefined();
    expect(r.error).toContain('target rejected key ***');
    for (const text of [r.error!, ...lines]) {
      expect(text).not.toContain(pending);
      expect(text).not.toContain('InitialKeyValue-123');
    }
    const failed = lines.map((l) => JSON.parse(l)).find((l) => l.outcome === 'failed');
    expect(failed).toMatchObject({ level: 'ERROR', step: 'setSecret', secretId: arn, versionId: r.versionId });
  });

  it('a JSON.parse error on a non-JSON secret does not quote the secret', async () => {
    const plain = 'PlainTextSecretValue-42';
    const id = (await client.send(new CreateSecretCommand({ Name: `proto/${randomUUID()}`, SecretString: plain }))).ARN!;
    const r = await sm.rotateAndWait(id, { lambdaArn: LAMBDA });
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/SyntaxError: Unexpected token, "\*\*\*"\.\.\. is not valid JSON/);
    for (const text of [r.error!, ...lines]) {
      expect(text).not.toContain(plain.slice(0, 10));
      expect(text).not.toContain("'P'");
    }
  });

  it('scrubs the causes and the stack of the thrown error, keeping the original frames', async () => {
    let caught: unknown;
    sm.registerFunction(LAMBDA, async (e: Parameters<typeof handler>[0]) => handler(e).catch((err: unknown) => {
      caught = err;
      throw err;
    }));
    let secretValue = '';
    rotator.failSetWith = (pending) => {
      secretValue = pending;
      return new RotationError('PRIVILEGE', 'the target refused the change', {
        cause: new Error(`ALTER KEY SET VALUE '${pending}'`, { cause: new TypeError(`inner ${pending}`) }),
      });
    };
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(r.succeeded).toBe(false);
    expect(caught).toBeInstanceOf(RotationError);
    const err = caught as RotationError & { cause: Error & { cause: Error } };
    expect(err.code).toBe('PRIVILEGE');
    expect(err.cause.message).toBe("ALTER KEY SET VALUE '***'");
    expect(err.cause.cause).toMatchObject({ name: 'TypeError', message: 'inner ***' });
    expect(inspect(err, { depth: 10 })).not.toContain(secretValue);

    rotator.failSetWith = (pending) => new Error(`plain failure ${pending}`);
    const plain = (await handler({ SecretId: arn, ClientRequestToken: r.versionId, Step: 'setSecret' }).catch((e: unknown) => e)) as Error;
    expect(plain.message).toBe('plain failure ***');
    expect(plain.stack).toContain('protocol.test.ts');
    expect(inspect(plain)).not.toContain(secretValue);
  });

  it('describes an AggregateError without a message by the errors inside it', async () => {
    const refused = (address: string) => Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: 'ECONNREFUSED' });
    rotator.failSetWith = () => new AggregateError([refused('10.0.0.1:443'), refused('[fd00::1]:443')], '');
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    expect(r.error).toBe('AggregateError: connect ECONNREFUSED 10.0.0.1:443; connect ECONNREFUSED [fd00::1]:443');
  });

  it('writes structured JSON logs with step, version and outcome', async () => {
    const r = await sm.rotateAndWait(arn, { lambdaArn: LAMBDA });
    const recs = lines.map((l) => JSON.parse(l));
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
      expect(recs.find((x) => x.step === step && x.outcome === 'succeeded')).toMatchObject({ versionId: r.versionId, rotator: 'memory' });
    }
  });
});
