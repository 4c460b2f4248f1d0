/**
 * The sample events in events/ (for `sam local invoke -e events/<step>.json`) are real rotation
 * events: each one, unmodified, goes through the real handler (createHandler around a small
 * in-memory rotator) against the Secrets Manager double, reached with the real AWS SDK client.
 * The double is set up the way RotateSecret leaves a secret (the sample's SecretId and an
 * AWSPENDING placeholder at the sample's ClientRequestToken); the samples of the earlier steps
 * run first. The RotationToken variants must carry their token to PutSecretValue on the wire.
 */
import { CreateSecretCommand, GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createHandler, DEFAULT_PASSWORD_POLICY, type RotationEvent, Rotator, STEPS, type Step, type StepContext } from '../src';
import { type ManualRotation, SecretsManagerDouble } from '../src/testing/secrets-manager-double';

const EVENTS_DIR = join(__dirname, '..', 'events');
const VARIANTS = [
  { suffix: '', rotationToken: false },
  { suffix: '-with-rotation-token', rotationToken: true },
] as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SECRET_ARN = /^arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;

/** A hostile initial key: quotes, backslash, semicolon, percent, spaces, unicode. */
const INITIAL_KEY = `It's a "key"; 100% \\ünïcödé\\ ☃`;

function loadEvent(step: Step, suffix: string): RotationEvent {
  return JSON.parse(readFileSync(join(EVENTS_DIR, `${step}${suffix}.json`), 'utf8'));
}

const keyOf = (secretString: string): string => JSON.parse(secretString).apiKey;

/** The "target system" keeps the keys it accepts; the rotator swaps in the AWSPENDING key. */
class SampleKeyRotator extends Rotator {
  readonly name = 'sample-key';
  readonly accepted = new Set<string>([INITIAL_KEY]);
  tested = 0;

  async generatePending(current: string, ctx: StepContext): Promise<string> {
    const apiKey = await ctx.secrets.randomPassword({ ...DEFAULT_PASSWORD_POLICY, PasswordLength: 40 });
    return JSON.stringify({ ...JSON.parse(current), apiKey });
  }

  async setSecret(ctx: StepContext): Promise<void> {
    this.accepted.add(keyOf(await ctx.secrets.requirePending()));
  }

  async verify(value: string): Promise<void> {
    if (!this.accepted.has(keyOf(value))) throw new Error('the target rejects the key');
  }

  override async testSecret(ctx: StepContext): Promise<void> {
    if (!this.accepted.has(keyOf(await ctx.secrets.requirePending()))) throw new Error('the target rejects the AWSPENDING key');
    this.tested++;
  }
}

interface WireRequest {
  command: string;
  body: Record<string, unknown>;
}

interface World {
  sm: SecretsManagerDouble;
  client: SecretsManagerClient;
  rotator: SampleKeyRotator;
  handler: (event: RotationEvent) => Promise<void>;
  rotation: ManualRotation;
  /** Every request body the SDK client put on the wire, after serialization. */
  wire: WireRequest[];
  lines: string[];
  initialVersion: string;
}

/** A double holding the samples' secret, mid-rotation exactly as RotateSecret leaves it. */
async function world(sample: RotationEvent): Promise<World> {
  const sm = new SecretsManagerDouble();
  const client = sm.client();
  const wire: WireRequest[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const body = (args as { request?: { body?: unknown } }).request?.body;
      // Decode the bytes: the SDK's body is a Uint8Array subclass whose valueOf() (used by Buffer.from) is deprecated.
      const text = typeof body === 'string' ? body : body instanceof Uint8Array ? new TextDecoder().decode(body) : undefined;
      if (text !== undefined) wire.push({ command: String(context.commandName), body: JSON.parse(text) });
      return next(args);
    },
    { step: 'build', name: 'recordWireRequests' },
  );
  // The sample's full ARN names the secret `<name>-a1B2c3`; the double resolves it like a partial ARN.
  const name = sample.SecretId.split(':secret:')[1];
  const created = await client.send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify({ apiKey: INITIAL_KEY, note: 'kept' }) }));
  const rotation = sm.beginRotation(sample.SecretId, { clientRequestToken: sample.ClientRequestToken });
  const rotator = new SampleKeyRotator();
  const lines: string[] = [];
  const handler = createHandler(rotator, { client, env: {}, logSink: (l) => lines.push(l) });
  wire.length = 0;
  return { sm, client, rotator, handler, rotation, wire, lines, initialVersion: created.VersionId! };
}

async function valueOf(w: World, sel: { VersionId?: string; VersionStage?: string }): Promise<string> {
  const out = await w.client.send(new GetSecretValueCommand({ SecretId: loadEvent('createSecret', '').SecretId, ...sel }));
  return out.SecretString!;
}

describe('events/', () => {
  it('holds one sample per step, with and without RotationToken, all for one rotation', () => {
    const expected = STEPS.flatMap((s) => VARIANTS.map((v) => `${s}${v.suffix}.json`)).sort();
    expect(readdirSync(EVENTS_DIR).filter((f) => f.endsWith('.json')).sort()).toEqual(expected);
    const first = loadEvent('createSecret', '');
    const rotationTokens = new Set<string>();
    for (const step of STEPS) {
      for (const v of VARIANTS) {
        const e = loadEvent(step, v.suffix);
        expect(Object.keys(e).sort()).toEqual(['ClientRequestToken', 'SecretId', 'Step', ...(v.rotationToken ? ['RotationToken'] : [])].sort());
        expect(e.Step).toBe(step);
        expect(e.SecretId).toMatch(SECRET_ARN);
        expect(e.ClientRequestToken).toMatch(UUID);
        expect(e.SecretId).toBe(first.SecretId);
        expect(e.ClientRequestToken).toBe(first.ClientRequestToken);
        if (v.rotationToken) {
          expect(e.RotationToken).toMatch(/^[a-zA-Z0-9-]{36,256}$/);
          rotationTokens.add(e.RotationToken!);
        }
      }
    }
    // Secrets Manager sends a fresh RotationToken with every step.
    expect(rotationTokens.size).toBe(STEPS.length);
  });

  describe.each(VARIANTS.map((v) => [v.suffix || '(no RotationToken)', v] as const))('%s', (_label, variant) => {
    /** Runs the samples of the steps before `step`, then returns the world ready for `step`. */
    async function before(step: Step): Promise<World & { event: RotationEvent }> {
      const event = loadEvent(step, variant.suffix);
      const w = await world(event);
      for (const earlier of STEPS.slice(0, STEPS.indexOf(step))) await w.handler(loadEvent(earlier, variant.suffix));
      w.wire.length = 0;
      w.sm.resetCalls();
      return { ...w, event };
    }

    function expectNoSecretInLogs(w: World & { event: RotationEvent }, secrets: string[]): void {
      expect(w.lines.length).toBeGreaterThan(0);
      const forbidden = [...secrets, ...(w.event.RotationToken ? [w.event.RotationToken] : [])];
      for (const line of w.lines) {
        JSON.parse(line);
        for (const s of forbidden) expect(line.includes(s), 'a secret value or the RotationToken reached a log line').toBe(false);
      }
    }

    it('createSecret stores a new AWSPENDING value at the sample token, once', async () => {
      const w = await before('createSecret');
      expect(w.sm.versionStages(w.event.SecretId)[w.event.ClientRequestToken]).toEqual(['AWSPENDING']);
      await w.handler(w.event);

      const pending = await valueOf(w, { VersionId: w.event.ClientRequestToken, VersionStage: 'AWSPENDING' });
      expect(keyOf(pending)).not.toBe(INITIAL_KEY);
      expect(keyOf(pending)).toHaveLength(40);
      expect(JSON.parse(pending).note).toBe('kept');
      expect(w.sm.versionStages(w.event.SecretId)[w.event.ClientRequestToken]).toEqual(['AWSPENDING']);

      const puts = w.wire.filter((r) => r.command === 'PutSecretValueCommand');
      expect(puts).toHaveLength(1);
      expect(puts[0].body).toMatchObject({ SecretId: w.event.SecretId, ClientRequestToken: w.event.ClientRequestToken, VersionStages: ['AWSPENDING'] });
      if (variant.rotationToken) expect(puts[0].body.RotationToken).toBe(w.event.RotationToken);
      else expect(puts[0].body).not.toHaveProperty('RotationToken');

      // Secrets Manager retries a failed rotation with the same events: the retry's Put (another
      // generated value, same token) is refused with ResourceExistsException and the first value kept.
      await w.handler(w.event);
      expect(w.wire.filter((r) => r.command === 'PutSecretValueCommand')).toHaveLength(2);
      expect(w.sm.calls.filter((c) => c.operation === 'PutSecretValue').map((c) => c.error)).toEqual([undefined, 'ResourceExistsException']);
      expect(await valueOf(w, { VersionId: w.event.ClientRequestToken, VersionStage: 'AWSPENDING' })).toBe(pending);
      expectNoSecretInLogs(w, [INITIAL_KEY, keyOf(pending)]);
    });

    it('setSecret makes the target accept the AWSPENDING value', async () => {
      const w = await before('setSecret');
      const pendingKey = keyOf(await valueOf(w, { VersionId: w.event.ClientRequestToken, VersionStage: 'AWSPENDING' }));
      expect(w.rotator.accepted.has(pendingKey)).toBe(false);
      await w.handler(w.event);
      expect(w.rotator.accepted.has(pendingKey)).toBe(true);
      expect(w.sm.countCalls('PutSecretValue') + w.sm.countCalls('UpdateSecretVersionStage')).toBe(0);
      expectNoSecretInLogs(w, [INITIAL_KEY, pendingKey]);
    });

    it('testSecret proves the AWSPENDING value works', async () => {
      const w = await before('testSecret');
      await w.handler(w.event);
      expect(w.rotator.tested).toBe(1);
      expect(w.sm.versionStages(w.event.SecretId)[w.event.ClientRequestToken]).toEqual(['AWSPENDING']);

      // The same sample fails when the target does not accept the key.
      w.rotator.accepted.clear();
      await expect(w.handler(w.event)).rejects.toThrow('the target rejects the AWSPENDING key');
    });

    it('finishSecret moves AWSCURRENT to the sample token and AWSPREVIOUS to the old version', async () => {
      const w = await before('finishSecret');
      const pending = await valueOf(w, { VersionId: w.event.ClientRequestToken, VersionStage: 'AWSPENDING' });
      await w.handler(w.event);
      w.rotation.complete(); // the service strips AWSPENDING after a successful rotation
      const stages = w.sm.versionStages(w.event.SecretId);
      expect(stages[w.event.ClientRequestToken]).toEqual(['AWSCURRENT']);
      expect(stages[w.initialVersion]).toEqual(['AWSPREVIOUS']);
      expect(await valueOf(w, { VersionStage: 'AWSCURRENT' })).toBe(pending);

      // A late duplicate of any step is a successful no-op once the version is AWSCURRENT.
      w.sm.resetCalls();
      for (const step of STEPS) await w.handler(loadEvent(step, variant.suffix));
      // (createSecret starts its AWSCURRENT read with its DescribeSecret; the other steps run in a
      // container that holds the version's value: DescribeSecret alone.)
      expect(w.sm.calls.map((c) => c.operation)).toEqual(['GetSecretValue', 'DescribeSecret', 'DescribeSecret', 'DescribeSecret', 'DescribeSecret']);
      expectNoSecretInLogs(w, [INITIAL_KEY, keyOf(pending)]);
    });
  });
});
