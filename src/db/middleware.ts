/**
 * The framework's wrapper around every engine operation (HashiCorp Vault's dbplugin middleware is
 * the model): one debug line when a call starts and one when it ends, with its duration and, on
 * failure, the framework's error code — the same fields for every engine, so an engine never
 * logs its own timings. No argument or result is logged: they hold passwords.
 */
import { DatabaseError, describeError, RotationError } from '../errors';
import type { Logger } from '../log';
import type { AlternateUserChange, ConnectOptions, DatabaseEngine, EngineContext, PasswordChange } from './engine';
import type { DbSecret } from './secret';

export type EngineCall = 'connect' | 'close' | 'check' | 'setOwnPassword' | 'checkAlternateUser' | 'upsertAlternateUser' | 'setAlternatePassword';

/**
 * Runs one engine call with start/end debug lines (`engine call started` / `engine call ended`).
 * An error that is not a RotationError leaves as a DatabaseError (STATE), the same on every
 * engine, keeping the engine's message and the driver's error as its cause; a failed `connect`
 * or `close` is left as it is (the login path classifies it).
 */
export async function timed<T>(log: Logger, engine: string, call: EngineCall, fields: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  log.debug('engine call started', { engine, call, ...fields });
  try {
    const result = await fn();
    log.debug('engine call ended', { engine, call, ...fields, outcome: 'ok', durationMs: ms(started) });
    return result;
  } catch (caught) {
    const err = caught instanceof RotationError || call === 'connect' || call === 'close' ? caught : new UnclassifiedDatabaseError(describeError(caught), caught);
    log.debug('engine call ended', {
      engine,
      call,
      ...fields,
      outcome: 'error',
      durationMs: ms(started),
      errorCode: err instanceof RotationError ? err.code : null,
      errorType: err instanceof Error ? err.name : typeof err,
    });
    throw err;
  }
}

/**
 * A DatabaseError made by the framework from an error the engine left unclassified (a driver or
 * server error as it came). It may be a duplicate invocation racing this one (PostgreSQL:
 * "duplicate key" on CREATE ROLE), so DatabaseRotator runs an idempotent upsert once more on it.
 */
export class UnclassifiedDatabaseError extends DatabaseError {}

function ms(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

/** The engine's operations as the framework calls them: each one timed and logged, with the invocation's context (close: DatabaseRotator.close). */
export interface EngineCalls<C> {
  connect(target: DbSecret, options: ConnectOptions): Promise<C>;
  check(conn: C): Promise<void>;
  setOwnPassword(conn: C, change: PasswordChange): Promise<void>;
  checkAlternateUser(admin: C, change: AlternateUserChange): Promise<void>;
  upsertAlternateUser(admin: C, change: AlternateUserChange): Promise<void>;
  setAlternatePassword(admin: C, change: AlternateUserChange): Promise<void>;
}

/** Binds an engine to one invocation's context (env and logger) behind the timing middleware. */
export function engineCalls<C>(engine: DatabaseEngine<C>, ctx: EngineContext): EngineCalls<C> {
  const name = engine.profile.name;
  const { log } = ctx;
  return {
    connect: (target, options) => timed(log, name, 'connect', { username: target.username }, () => engine.connect(target, options)),
    check: (conn) => timed(log, name, 'check', {}, () => engine.check(conn, ctx)),
    setOwnPassword: (conn, change) => timed(log, name, 'setOwnPassword', { username: change.username }, () => engine.setOwnPassword(conn, change, ctx)),
    checkAlternateUser: (admin, change) =>
      timed(log, name, 'checkAlternateUser', { username: change.alternateUser }, () => engine.checkAlternateUser(admin, change, ctx)),
    upsertAlternateUser: (admin, change) =>
      timed(log, name, 'upsertAlternateUser', { username: change.alternateUser }, () => engine.upsertAlternateUser(admin, change, ctx)),
    setAlternatePassword: (admin, change) => {
      const op = engine.setAlternatePassword;
      if (!op) return Promise.reject(new TypeError(`The ${name} engine has no setAlternatePassword.`));
      return timed(log, name, 'setAlternatePassword', { username: change.alternateUser }, () => op.call(engine, admin, change, ctx));
    },
  };
}
