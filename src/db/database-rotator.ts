import { ConfigError, LoginError, type LoginFailure, RotationError, RotationStateError, SecretFormatError, VerificationError, describeError } from '../errors';
import type { Logger } from '../log';
import { envFlag, passwordPolicyFromEnv } from '../password';
import { Rotator, type StepContext } from '../rotator';
import { AWSCURRENT, AWSPENDING, AWSPREVIOUS } from '../secrets';
import { type AdminEndpoint, type ManagedAdminLookup, normaliseRdsEngine, type RdsClientFactory, rdsManagedAdminLookup } from './admin-endpoint';
import type { DatabaseEngine } from './engine';
import { preflightOrThrow } from '../ops/preflight';
import {
  type DbSecret,
  defaultAlternateUsername,
  parseAdminSecret,
  parseDbSecret,
  sameHost,
  strategyOf,
} from './secret';
import { parseTlsMode, resolveCa, tlsAttempts } from './tls';

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;

export interface DatabaseRotatorOptions {
  /** How an admin secret holding only credentials is traced to its database (default: RDS-managed secrets via the RDS API). */
  managedAdmin?: ManagedAdminLookup;
  /** With the default managedAdmin: the RDS client per region (default: the AWS SDK's, with the function's role). */
  rdsClient?: RdsClientFactory;
}

type Login<C> = { ok: true; conn: C; secret: DbSecret } | { ok: false; failure: LoginFailure };

/**
 * A rotator for any database engine. It owns both strategies; the engine only connects, changes
 * passwords, upserts the alternate user and runs a check.
 *
 * Single user (no `masterarn`): setSecret logs in with AWSPENDING (already done? stop), else
 * with AWSCURRENT, else AWSPREVIOUS, and changes the user's own password; user and host must be
 * the same in every version used.
 *
 * Alternating users (`masterarn` set): AWSPENDING names the other user of the pair (`user` <->
 * `user_clone`). setSecret first proves AWSCURRENT still logs in (so a forged secret cannot
 * borrow the admin's power: the confused-deputy guard), then logs in as the admin secret, whose
 * host must match, and creates or updates the alternate user (on every attempt: the upsert is
 * idempotent, and a retry must finish a privilege copy an earlier attempt left half done).
 *
 * Both strategies finish setSecret by logging in with the new password: a server that answers
 * OK to a password change that did nothing is caught here, not by the applications.
 */
export class DatabaseRotator<C = unknown> extends Rotator {
  readonly name: string;

  constructor(
    readonly engine: DatabaseEngine<C>,
    private readonly options: DatabaseRotatorOptions = {},
  ) {
    super();
    this.name = engine.name;
  }

  override validate(secretString: string, label: string, ctx: StepContext): void {
    this.parse(secretString, label, ctx);
  }

  /** Parse and check a secret of this engine, including its TLS settings. */
  parse(secretString: string, label: string, ctx: Pick<StepContext, 'env'>): DbSecret {
    const secret = parseDbSecret(secretString, label, this.engine.engines);
    this.engine.validateSecret?.(secret, label, ctx.env);
    parseTlsMode(secret.ssl, ctx.env, label);
    return secret;
  }

  alternateUsername(username: string): string {
    return this.engine.alternateUsername ? this.engine.alternateUsername(username) : defaultAlternateUsername(username);
  }

  async generatePending(currentString: string, ctx: StepContext): Promise<string> {
    const current = this.parse(currentString, AWSCURRENT, ctx);
    const next: DbSecret = { ...current };
    if (strategyOf(current) === 'alternating') {
      next.username = this.alternateUsername(current.username);
      const length = this.engine.usernameLength ? this.engine.usernameLength(next.username) : [...next.username].length;
      const max = this.engine.maxUsernameLengthFor ? this.engine.maxUsernameLengthFor(next, ctx.env) : this.engine.maxUsernameLength;
      if (length > max) {
        throw new SecretFormatError(
          `The alternate user "${next.username}" would be ${length} ${this.engine.usernameLength ? (this.engine.usernameLengthUnit ?? 'bytes') : 'characters'} long; ${this.engine.name} allows ${max}.`,
          'Use a shorter username for the alternating-users strategy.',
        );
      }
    }
    const policy = this.engine.passwordPolicy ? this.engine.passwordPolicy(ctx.env) : passwordPolicyFromEnv(ctx.env, this.engine.passwordDefaults);
    const password = await ctx.secrets.randomPassword(policy);
    this.engine.validatePassword?.(password);
    next.password = password;
    return JSON.stringify(next);
  }

  async setSecret(ctx: StepContext): Promise<void> {
    const current = this.parse(await ctx.secrets.current(), AWSCURRENT, ctx);
    const pending = this.parse(await ctx.secrets.requirePending(), AWSPENDING, ctx);
    if (strategyOf(current) !== strategyOf(pending)) {
      throw new RotationStateError('AWSCURRENT and AWSPENDING use different rotation strategies.', 'Cancel this rotation and start a new one.');
    }

    if (strategyOf(current) === 'alternating') {
      // No "pending already logs in" shortcut here: an earlier attempt may have set the password
      // and then failed while copying privileges, and the upsert is idempotent, so it always runs.
      await this.setAlternating(current, pending, ctx);
    } else {
      // The user and host are checked before anything logs in: a pending value naming another
      // user or server must never become AWSCURRENT, even when it happens to log in.
      if (current.username !== pending.username) {
        throw new RotationStateError(
          `AWSPENDING names user "${pending.username}" but AWSCURRENT names "${current.username}"; single-user rotation never changes the user.`,
        );
      }
      if (!sameHost(current.host, pending.host)) {
        throw new RotationStateError(`AWSPENDING's host "${pending.host}" differs from AWSCURRENT's "${current.host}".`);
      }
      // Single user: once the password is changed, AWSCURRENT no longer logs in, so a retry
      // must recognise the finished change instead of trying again.
      const already = await this.login(pending, AWSPENDING, ctx);
      if (already.ok) {
        await this.close(already.conn, ctx.log);
        ctx.log.info('AWSPENDING already logs in; password was set by an earlier attempt', { username: pending.username });
        return;
      }
      await this.setSingle(current, pending, ctx);
    }

    const verify = await this.login(pending, AWSPENDING, ctx);
    if (!verify.ok) {
      throw new VerificationError(
        `The server accepted the password change for "${pending.username}" but the new password does not log in (${verify.failure.reason}).`,
        'The change had no effect; check the server version and the account\'s authentication plugin.',
      );
    }
    await this.close(verify.conn, ctx.log);
    ctx.log.info('new password set and verified by login', { username: pending.username });
  }

  async testSecret(ctx: StepContext): Promise<void> {
    const raw = await ctx.secrets.pending();
    // RotateSecret with RotateImmediately=false runs testSecret alone on a value-less AWSPENDING
    // placeholder, to test the rotation configuration: run the whole preflight (changes nothing).
    if (raw === undefined) return this.preflight(ctx);
    const label = AWSPENDING;
    const secret = this.parse(raw, label, ctx);
    const login = await this.login(secret, label, ctx);
    if (!login.ok) throw new LoginError(`Unable to log into the database with the ${label} secret.`, [login.failure]);
    try {
      await this.engine.check(login.conn);
    } finally {
      await this.close(login.conn, ctx.log);
    }
    ctx.log.info(`${label} logs in and runs the check query`, { username: secret.username });
  }

  /**
   * Preflight (src/ops/preflight.ts): every check this secret's rotation depends on, read-only;
   * throws a PreflightError listing every failed check with its remedy.
   */
  async preflight(ctx: StepContext): Promise<void> {
    ctx.log.info('AWSPENDING has no value (a RotateImmediately=false test run); running the preflight');
    await preflightOrThrow(this, ctx);
  }

  private async setSingle(current: DbSecret, pending: DbSecret, ctx: StepContext): Promise<void> {
    const failures: LoginFailure[] = [];
    let login = await this.login(current, AWSCURRENT, ctx);
    if (!login.ok) {
      failures.push(login.failure);
      const previous = await this.previousFor(pending, current, ctx);
      if (previous) {
        login = await this.login(previous, AWSPREVIOUS, ctx);
        if (!login.ok) failures.push(login.failure);
      }
    }
    if (!login.ok) {
      throw new LoginError('Unable to log into the database with the pending, current or previous secret.', failures,
        'Check the password stored in AWSCURRENT still works, and that the function can reach the database.');
    }
    try {
      await this.engine.setOwnPassword(
        login.conn,
        { username: pending.username, oldPassword: login.secret.password, newPassword: pending.password, env: ctx.env },
        ctx.log,
      );
    } finally {
      await this.close(login.conn, ctx.log);
    }
    ctx.log.info('changed own password', { username: pending.username, loggedInWith: login.secret === current ? AWSCURRENT : AWSPREVIOUS });
  }

  /** AWSPREVIOUS, if usable for the recovery path: same user and host, with current's TLS settings. */
  private async previousFor(pending: DbSecret, current: DbSecret, ctx: StepContext): Promise<DbSecret | undefined> {
    const raw = await ctx.secrets.previous();
    if (raw === undefined) return undefined;
    let previous: DbSecret;
    try {
      previous = this.parse(raw, AWSPREVIOUS, ctx);
    } catch (err) {
      ctx.log.warn('ignoring AWSPREVIOUS: it is not a usable secret', { reason: describeError(err) });
      return undefined;
    }
    if (previous.username !== pending.username || !sameHost(previous.host, pending.host)) {
      ctx.log.warn('ignoring AWSPREVIOUS: it names another user or host');
      return undefined;
    }
    // A stale TLS setting on an old version must not weaken (or break) the connection.
    const { ssl: _ssl, sslCa: _ca, ...rest } = previous;
    return { ...rest, ...(current.ssl !== undefined ? { ssl: current.ssl } : {}), ...(current.sslCa !== undefined ? { sslCa: current.sslCa } : {}) } as DbSecret;
  }

  private async setAlternating(current: DbSecret, pending: DbSecret, ctx: StepContext): Promise<void> {
    const expected = this.alternateUsername(current.username);
    if (pending.username !== expected) {
      throw new RotationStateError(
        `AWSPENDING names user "${pending.username}" but the alternate of AWSCURRENT's "${current.username}" is "${expected}".`,
      );
    }
    if (!sameHost(current.host, pending.host)) {
      throw new RotationStateError(`AWSPENDING's host "${pending.host}" differs from AWSCURRENT's "${current.host}".`);
    }

    // Confused-deputy guard: the admin's power is used only for a secret whose current credential works.
    const guard = await this.login(current, AWSCURRENT, ctx);
    if (!guard.ok) {
      throw new LoginError('Unable to log into the database with the AWSCURRENT secret; refusing to use the admin secret.', [guard.failure],
        'Fix AWSCURRENT (it must log in) before rotating.');
    }
    await this.close(guard.conn, ctx.log);

    const master = await this.adminSecret(current, ctx);
    // The admin would reset its own password to a value the child secret's readers can see. Where
    // a user is named by its authentication database too (MongoDB), the engine checks this itself.
    if (!this.engine.adminKeepsOwnDatabase && master.username.toLowerCase() === pending.username.toLowerCase()) {
      throw new RotationStateError(
        `The alternate user "${pending.username}" is the admin secret's own user; refusing to change the admin's password.`,
        'Use a child secret whose users differ from the admin user.',
      );
    }
    const admin = await this.login(master, 'admin secret', ctx);
    if (!admin.ok) {
      throw new LoginError(`Unable to log into the database with the admin secret ${current.masterarn}.`, [admin.failure]);
    }
    try {
      const change = { currentUser: current.username, alternateUser: pending.username, newPassword: pending.password, current, env: ctx.env };
      // Before anything changes: the existing alternate user must provably be this pair's.
      await this.engine.checkAlternateUser?.(admin.conn, change, ctx.log);
      await this.engine.upsertAlternateUser(admin.conn, change, ctx.log);
    } finally {
      await this.close(admin.conn, ctx.log);
    }
    ctx.log.info('alternate user created or updated by the admin user', { username: pending.username, adminUser: master.username });
  }

  /**
   * The admin secret, as a connectable DbSecret. Its host comes from the admin secret itself, or
   * for an RDS-managed master secret (only username and password) from the RDS API via the
   * secret's aws:rds tags, or, only when ADMIN_HOST_FROM_CHILD=true, from the child secret. It
   * must equal the child's host. TLS settings are the admin secret's own (absent: the default
   * mode), never the child's: a writer of the child secret must not weaken the admin's login.
   */
  private async adminSecret(current: DbSecret, ctx: StepContext): Promise<DbSecret> {
    const arn = current.masterarn;
    if (!arn) {
      throw new SecretFormatError('The AWSCURRENT secret has no "masterarn" field; the alternating-users strategy needs the admin secret\'s ARN.');
    }
    const raw = parseAdminSecret(await ctx.secrets.other(arn), 'admin');
    const endpoint = await this.adminEndpoint(arn, raw, current, ctx);
    if (!sameHost(endpoint.host, current.host)) {
      throw new RotationStateError(
        `The admin secret's host "${endpoint.host}" (from ${endpoint.source}) is not the host "${current.host}" of the secret being rotated.`,
        'Use an admin secret for the same database server, with the same endpoint name in both secrets (for a cluster, its writer endpoint).',
      );
    }
    const engine =
      typeof raw.engine === 'string' && raw.engine
        ? raw.engine
        : endpoint.engine
          ? normaliseRdsEngine(endpoint.engine, this.engine.engines)
          : current.engine;
    if (!this.engine.engines.includes(engine)) {
      throw new SecretFormatError(`The admin secret has engine "${engine.slice(0, 40)}"; expected one of ${this.engine.engines.join(', ')}.`);
    }
    const admin = {
      ...raw,
      engine,
      host: endpoint.host,
      port: raw.port ?? endpoint.port ?? current.port,
      // The admin works in the child's database (AWS's rotators do the same), unless the
      // engine's dbname is where a user authenticates (MongoDB).
      dbname: this.engine.adminKeepsOwnDatabase ? raw.dbname : current.dbname,
    } as DbSecret;
    // Its "ssl" field is checked by login(), before any connection.
    ctx.log.info('admin secret endpoint', { host: admin.host, port: admin.port, endpointFrom: endpoint.source });
    return admin;
  }

  private async adminEndpoint(arn: string, raw: Record<string, unknown>, current: DbSecret, ctx: StepContext): Promise<AdminEndpoint> {
    if (typeof raw.host === 'string' && raw.host) return { host: raw.host, source: 'the admin secret' };
    const lookup = this.options.managedAdmin ?? rdsManagedAdminLookup(this.options.rdsClient);
    const found = await lookup.find((await ctx.secrets.describe(arn)).Tags);
    if (found) return found;
    if (envFlag(ctx.env, 'ADMIN_HOST_FROM_CHILD', false)) {
      return { host: current.host, port: current.port, source: 'the child secret (ADMIN_HOST_FROM_CHILD)' };
    }
    throw new ConfigError(
      `The admin secret ${arn} has no "host" field and no ${lookup.tagKeys.join(' or ')} tag to find its database by; refusing to send the admin credentials to the host the child secret names.`,
      'Add "host" (and "port") to the admin secret, or use a service-managed admin secret, or set ADMIN_HOST_FROM_CHILD=true if everyone who can change the child secret may also choose where the admin credentials go.',
    );
  }

  /** One login, with the secret's TLS mode ("prefer" may try twice). Never throws for a failed login. */
  async login(secret: DbSecret, label: string, ctx: Pick<StepContext, 'env' | 'log'>): Promise<Login<C>> {
    const mode = parseTlsMode(secret.ssl, ctx.env, label);
    const ca = resolveCa(secret.sslCa, ctx.env);
    const timeout = connectTimeout(ctx.env);
    const statementTimeoutMs = statementTimeout(ctx.env);
    const attempts = tlsAttempts(mode, ca);
    let failure: LoginFailure | undefined;
    for (let i = 0; i < attempts.length; i++) {
      const tls = attempts[i];
      try {
        const conn = await this.engine.connect(secret, { tls, connectTimeoutMs: timeout, statementTimeoutMs, log: ctx.log, env: ctx.env });
        if (i > 0) ctx.log.warn('connected WITHOUT TLS after the TLS attempt failed (ssl: "prefer")', { label, username: secret.username });
        return { ok: true, conn, secret };
      } catch (err) {
        const code = err instanceof RotationError ? err.code : 'AUTH';
        failure = { label, username: secret.username, host: secret.host, code, reason: describeError(err) };
        ctx.log.debug('login failed', { label, username: secret.username, errorCode: code });
        if (code === 'AUTH' || code === 'CONFIG') break; // a wrong password fails over plaintext too
      }
    }
    return { ok: false, failure: failure! };
  }

  private async close(conn: C, log: Logger): Promise<void> {
    try {
      await this.engine.close(conn);
    } catch (err) {
      log.warn('closing a connection failed', { reason: describeError(err) });
    }
  }
}

function connectTimeout(env: Record<string, string | undefined>): number {
  return millisecondsFromEnv(env, 'CONNECT_TIMEOUT_MS', DEFAULT_CONNECT_TIMEOUT_MS);
}

function statementTimeout(env: Record<string, string | undefined>): number {
  return millisecondsFromEnv(env, 'STATEMENT_TIMEOUT_MS', DEFAULT_STATEMENT_TIMEOUT_MS);
}

function millisecondsFromEnv(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 100 || n > 600_000) {
    throw new ConfigError(`${name} must be a whole number of milliseconds (100-600000), got "${raw.slice(0, 40)}".`);
  }
  return n;
}
