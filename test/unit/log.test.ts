/**
 * Log lines as Lambda's JSON log format and Powertools users expect them: `timestamp` (ISO
 * 8601), `level` in upper case (what ApplicationLogLevel filters on), `message`, the request id
 * and cold start from the handler's context; the level from AWS_LAMBDA_LOG_LEVEL with LOG_LEVEL
 * as override; and no secret value in any field, key or value.
 */
import type { Handler } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createHandler, type RotationEvent, Rotator, type StepContext } from '../../src/api';
import { levelFromEnv, Logger } from '../../src/log';
import { Redactor } from '../../src/redact';
import { SecretsManagerDouble } from '../../src/testing/secrets-manager-double';

describe('Logger', () => {
  it('writes timestamp, upper-case level and message first, and context or fields cannot replace them', () => {
    const lines: string[] = [];
    new Logger((l) => lines.push(l), { level: 'x', rotator: 'r' }, new Redactor(), 'debug').warn('careful', { message: 'forged', timestamp: 'then', n: 1 });
    const rec = JSON.parse(lines[0]);
    expect(Object.keys(rec).slice(0, 3)).toEqual(['timestamp', 'level', 'message']);
    expect(rec).toMatchObject({ level: 'WARN', message: 'careful', rotator: 'r', n: 1 });
    expect(new Date(rec.timestamp).toISOString()).toBe(rec.timestamp);
  });

  it('scrubs secrets from keys as well as values', () => {
    const lines: string[] = [];
    const r = new Redactor();
    r.add('KeySecret-123');
    new Logger((l) => lines.push(l), {}, r, 'debug').info('m', { 'KeySecret-123': 'v', other: 'KeySecret-123' });
    expect(lines[0]).not.toContain('KeySecret-123');
  });

  it.each([
    [{}, 'info'],
    [{ AWS_LAMBDA_LOG_LEVEL: 'ERROR' }, 'error'],
    [{ AWS_LAMBDA_LOG_LEVEL: 'WARN' }, 'warn'],
    [{ AWS_LAMBDA_LOG_LEVEL: 'TRACE' }, 'debug'],
    [{ AWS_LAMBDA_LOG_LEVEL: 'FATAL' }, 'error'],
    [{ AWS_LAMBDA_LOG_LEVEL: 'ERROR', LOG_LEVEL: 'debug' }, 'debug'],
    [{ AWS_LAMBDA_LOG_LEVEL: 'DEBUG', LOG_LEVEL: 'nonsense' }, 'debug'],
    [{ LOG_LEVEL: 'WARN' }, 'warn'],
  ])('level from %o is %s', (env, level) => {
    expect(levelFromEnv(env)).toBe(level);
  });
});

class LeakyRotator extends Rotator {
  readonly name = 'leaky';
  async generatePending(current: string): Promise<string> {
    return `${current}-next`;
  }
  async setSecret(ctx: StepContext): Promise<void> {
    const pending = await ctx.secrets.requirePending();
    ctx.log.info('set', { [pending]: pending });
    throw new Error(`target refused ${pending}`);
  }
  async verify(): Promise<void> {}
}

describe('handler log fields', () => {
  it('carries function_request_id, function_name, cold_start and xray_trace_id from the context, and no secret', async () => {
    const sm = new SecretsManagerDouble();
    const client = sm.client();
    const lines: string[] = [];
    const env = { AWS_LAMBDA_LOG_LEVEL: 'INFO', _X_AMZN_TRACE_ID: 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1' };
    const handler = createHandler(new LeakyRotator(), { client, env, logSink: (l) => lines.push(l) });
    // What Lambda's Node.js runtime calls: a Handler of @types/aws-lambda (checked by tsc).
    const asLambdaHandler: Handler<RotationEvent, void> = handler;
    expect(typeof asLambdaHandler).toBe('function');
    const secret = 'Initial-Secret-Value-42';
    sm.invoke('CreateSecret', { Name: 'log/fields', ClientRequestToken: '11111111-1111-4111-8111-111111111111', SecretString: secret });
    const rotation = sm.beginRotation('log/fields', { clientRequestToken: '22222222-2222-4222-8222-222222222222', lambdaArn: 'arn:aws:lambda:us-east-1:123456789012:function:f' });
    const context = { awsRequestId: 'req-1', functionName: 'my-rotation' };
    await handler(rotation.event('createSecret'), context);
    const err = await handler(rotation.event('setSecret'), { ...context, awsRequestId: 'req-2' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const recs = lines.map((l) => JSON.parse(l));
    expect(recs[0]).toMatchObject({ level: 'INFO', message: 'step started', function_request_id: 'req-1', function_name: 'my-rotation', cold_start: true, xray_trace_id: '1-5759e988-bd862e3fe1be46a994272793', step: 'createSecret' });
    const second = recs.filter((r) => r.function_request_id === 'req-2');
    expect(second.length).toBeGreaterThanOrEqual(2);
    for (const r of second) expect(r.cold_start).toBe(false);
    expect(second.at(-1)).toMatchObject({ level: 'ERROR', message: 'step failed' });
    const pending = (sm.invoke('GetSecretValue', { SecretId: 'log/fields', VersionStage: 'AWSPENDING' }) as { SecretString: string }).SecretString;
    for (const l of lines) {
      expect(l).not.toContain(secret);
      expect(l).not.toContain(pending);
    }
    expect(String((err as Error).message)).not.toContain(pending);
  });
});
