/**
 * Example: a custom rotator for an HTTP service's API key. It shows the whole extension surface:
 * extend `Rotator`, say how to build the new value (generatePending), how to make the service
 * accept it (setSecret) and how to prove a value works (verify). The base class does the rest:
 * event validation, labels, idempotent createSecret, testSecret (verify AWSPENDING, or AWSCURRENT
 * on a RotateImmediately=false test run), finishSecret (verify AWSPENDING before promoting it,
 * so an out-of-order finishSecret cannot promote a key the service never registered), logging
 * and redaction.
 *
 * Secret value: {"endpoint": "https://api.example.com", "keyId": "k-1", "apiKey": "..."}
 * The service (any HTTP API shaped like this) offers:
 *   PUT  {endpoint}/keys/{keyId}  (authorised by a current key)  registers a key
 *   GET  {endpoint}/whoami        (authorised by any valid key)  answers 200
 */
import { randomUUID } from 'node:crypto';
import { createHandler, parseJsonSecret, RotationError, Rotator, SecretFormatError, type Step, type StepContext } from 'rotation-lambdas';

/** A service that does not answer fails the step instead of running into the Lambda timeout. */
const REQUEST_TIMEOUT_MS = 10_000;

interface ApiKeySecret {
  endpoint: string;
  keyId: string;
  apiKey: string;
  [k: string]: unknown;
}

function parse(raw: string, label: string): ApiKeySecret {
  const o = parseJsonSecret(raw, label);
  for (const f of ['endpoint', 'keyId', 'apiKey']) {
    if (typeof o[f] !== 'string' || !o[f]) throw new SecretFormatError(`The ${label} secret is missing the "${f}" field.`);
  }
  return o as ApiKeySecret;
}

export class ApiKeyRotator extends Rotator {
  readonly name = 'api-key';

  override validate(raw: string, label: string): void {
    parse(raw, label);
  }

  async generatePending(currentRaw: string, ctx: StepContext): Promise<string> {
    const current = parse(currentRaw, 'AWSCURRENT');
    const apiKey = await ctx.secrets.randomPassword({
      PasswordLength: 40,
      ExcludeCharacters: '',
      ExcludeNumbers: false,
      ExcludePunctuation: true,
      ExcludeUppercase: false,
      ExcludeLowercase: false,
      RequireEachIncludedType: true,
    });
    return JSON.stringify({ ...current, keyId: `k-${randomUUID()}`, apiKey });
  }

  /** setSecret (and finishSecret) read AWSCURRENT: the handler starts that read with its label check. */
  override readsCurrent(step: Step): boolean {
    return step !== 'testSecret';
  }

  async setSecret(ctx: StepContext): Promise<void> {
    const current = parse(await ctx.secrets.current(), 'AWSCURRENT');
    const pending = parse(await ctx.secrets.requirePending(), 'AWSPENDING');
    if ((await this.whoami(pending)) === 200) return; // a retry: already registered
    const res = await fetch(`${current.endpoint}/keys/${encodeURIComponent(pending.keyId)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${current.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: pending.apiKey }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (!res.ok) throw new RotationError('PRIVILEGE', `The service refused to register key ${pending.keyId}: HTTP ${res.status}.`);
    ctx.log.info('registered new API key', { keyId: pending.keyId });
  }

  /** A key works when the service authenticates it. */
  async verify(raw: string, label: string): Promise<void> {
    const secret = parse(raw, label);
    const status = await this.whoami(secret);
    if (status !== 200) throw new RotationError('AUTH', `The ${label} key ${secret.keyId} does not authenticate: HTTP ${status}.`);
  }

  private async whoami(s: ApiKeySecret): Promise<number> {
    const res = await fetch(`${s.endpoint}/whoami`, { headers: { authorization: `Bearer ${s.apiKey}` }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await res.arrayBuffer();
    return res.status;
  }
}

export const handler = createHandler(new ApiKeyRotator());
