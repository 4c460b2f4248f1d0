/** The conformance suite's no-secret-in-logs check catches every encoding it claims to (so a pass means something). */
import { describe, expect, it } from 'vitest';
import type { RotationEvent } from '../../src/handler';
import { createRotationHarness } from '../support/rotation-harness';
import { assertNoSecretsInAnyForm } from './suite';

const SECRET = `S3cret'"\\;--$$Ü pw`;

function harnessLogging(line: (event: RotationEvent) => string) {
  return createRotationHarness({
    handler: (o) => async (event: RotationEvent) => {
      o.logSink(JSON.stringify({ level: 'info', msg: line(event) }));
    },
  });
}

describe('assertNoSecretsInAnyForm', () => {
  it.each([
    ['raw', (s: string) => s],
    ['JSON-escaped', (s: string) => JSON.stringify(s).slice(1, -1)],
    ['URL-encoded', (s: string) => encodeURIComponent(s)],
    ['base64', (s: string) => Buffer.from(s).toString('base64')],
    ['base64url', (s: string) => Buffer.from(s).toString('base64url')],
  ])('finds a password logged %s', async (_form, encode) => {
    const h = harnessLogging(() => `value ${encode(SECRET)}`);
    h.sensitive(SECRET);
    await h.invoke({ Step: 'createSecret', SecretId: 'x', ClientRequestToken: 'y' } as RotationEvent);
    expect(() => assertNoSecretsInAnyForm(h)).toThrow(/appears/);
    h.logs.length = 0; // checked: do not fail the file's other checks
  });

  it('finds the RotationToken of an event in a log line, and passes clean logs', async () => {
    const token = 'f2b9c0de-1234-4cde-9abc-0123456789ab';
    const h = harnessLogging((e) => `token ${(e as { RotationToken?: string }).RotationToken}`);
    const event = { Step: 'createSecret', SecretId: 'x', ClientRequestToken: 'y', RotationToken: token } as RotationEvent;
    h.events.push(event);
    await h.invoke(event);
    expect(() => assertNoSecretsInAnyForm(h)).toThrow(/appears/);
    const clean = harnessLogging(() => 'nothing to see');
    clean.sensitive(SECRET);
    await clean.invoke(event);
    expect(() => assertNoSecretsInAnyForm(clean)).not.toThrow();
  });
});
