/**
 * Wraps a DatabaseEngine to record what the rotator asks of it (every connect: user, host, port,
 * password fingerprint and TLS options) and to inject a fault at the Nth database call: before it
 * (the request is lost) or after it (the server did it, the answer is lost). The fault is a
 * NETWORK ConnectError, as a connection reset is classified on every engine.
 */
import { createHash } from 'node:crypto';
import type { DatabaseEngine } from '../../src/db/engine';
import type { TlsOptions } from '../../src/db/tls';
import { ConnectError } from '../../src/errors';

export const DB_CALLS = ['connect', 'setOwnPassword', 'checkAlternateUser', 'upsertAlternateUser', 'check'] as const;
export type DbCall = (typeof DB_CALLS)[number];

export interface ConnectRecord {
  username: string;
  host: string;
  port: unknown;
  /** sha256 of the password, so that tests can ask "was this password sent" without storing it. */
  passwordHash: string;
  tls: TlsOptions;
  ok: boolean;
}

export interface DbFault {
  /** 1-based index among the recorded database calls (connect, setOwnPassword, checkAlternateUser, upsertAlternateUser, check). */
  at: number;
  when: 'before' | 'after';
}

export const fingerprint = (password: string) => createHash('sha256').update(password).digest('hex');

export class EngineRecorder {
  readonly connects: ConnectRecord[] = [];
  readonly calls: DbCall[] = [];
  fault?: DbFault;
  readonly engine: DatabaseEngine<any>;

  constructor(private readonly inner: DatabaseEngine<any>) {
    const wrapped = new Map<PropertyKey, unknown>();
    for (const name of DB_CALLS) {
      const original = (inner as unknown as Record<string, unknown>)[name];
      if (typeof original !== 'function') continue;
      wrapped.set(name, (...args: unknown[]) => this.call(name, () => (original as (...a: unknown[]) => Promise<unknown>).apply(inner, args), args));
    }
    this.engine = new Proxy(inner, {
      get: (target, prop) => {
        if (wrapped.has(prop)) return wrapped.get(prop);
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }

  /** Was a login attempted with this password (as anyone, anywhere)? */
  sent(password: string): ConnectRecord[] {
    const h = fingerprint(password);
    return this.connects.filter((c) => c.passwordHash === h);
  }

  private async call(name: DbCall, run: () => Promise<unknown>, args: unknown[]): Promise<unknown> {
    this.calls.push(name);
    const n = this.calls.length;
    const fault = this.fault && this.fault.at === n ? this.fault : undefined;
    if (fault) this.fault = undefined;
    const injected = () => new ConnectError('NETWORK', `injected fault ${fault!.when} database call #${n} (${name}): connection reset by peer`);
    let record: ConnectRecord | undefined;
    if (name === 'connect') {
      const [secret, options] = args as [Record<string, unknown>, { tls: TlsOptions }];
      record = { username: String(secret.username), host: String(secret.host), port: secret.port, passwordHash: fingerprint(String(secret.password)), tls: { ...options.tls }, ok: false };
      this.connects.push(record);
    }
    if (fault?.when === 'before') throw injected();
    const out = await run();
    if (record) record.ok = true;
    if (fault?.when === 'after') {
      if (name === 'connect') await this.inner.close(out).catch(() => undefined);
      throw injected();
    }
    return out;
  }
}
