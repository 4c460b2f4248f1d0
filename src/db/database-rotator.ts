import { ConfigError, LoginError, type LoginFailure, RotationError, RotationStateError, SecretFormatError, VerificationError, describeError } from '../errors';
import type { Logger } from '../log';
import { type Env, envFlag, type PasswordPolicy, passwordPolicyFromEnv, passwordSourceFromEnv } from '../password';
import { Rotator, type StepContext } from '../rotator';
import { AWSCURRENT, AWSPENDING, AWSPREVIOUS } from '../secrets';
import { type AdminEndpoint, type ManagedAdminLookup, normaliseRdsEngine, type RdsClientFactory, rdsManagedAdminLookup } from './admin-endpoint';
import { type DatabaseEngine, type EngineContext, type EngineProfile, maxUsernameLength, usernameLength } from './engine';
import { engineCalls, type EngineCalls, timed, UnclassifiedDatabaseError } from './middleware';
import { preflightOrThrow } from '../ops/preflight';
import {
  type DbSecret,
  defaultAlternateUsername,
  parseAdminSecret,
  parseDbSecret,
  pendingDifference,
  portOf,
  sameHost,
  strategyOf,
} from './secret';
import { parseTlsMode, resolveCa, tlsAttempts } from './tls';

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
/** How many unlabelled versions (newest first) single-user setSecret tries when AWSCURRENT and AWSPREVIOUS fail. */
export const RECOVERY_VERSIONS = 5;
/** How many times setSecret runs the (idempotent) alternate-user upsert when the server fails it with an unclassified error. */
const UPSERT_ATTEMPTS = 3;

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
 * Every step first checks that AWSPENDING differs from AWSCURRENT only in the password (and, for
 * alternating users, the username): see checkPending.
 *
 * Single user (no `masterarn`): setSecret logs in with AWSCURRENT and changes the user's own
 * password, then logs in with the new one (a server that answers OK to a change that did nothing
 * is caught here). Only if AWSCURRENT is refused: AWSPENDING (already done? stop), then
 * AWSPREVIOUS and the newest unlabelled versions, with AWSCURRENT's user and endpoint.
 *
 * Alternating users (`masterarn` set): AWSPENDING names the other user of the pair (`user` <->
 * `user_clone`). setSecret first proves AWSCURRENT still logs in (so a forged secret cannot
 * borrow the admin's power: the confused-deputy guard), then logs in as the admin secret, whose
 * whole endpoint comes from the admin secret, the RDS/Redshift API or the engine's default port
 * (never from the child), and creates or updates the alternate user (on every attempt: the
 * upsert is idempotent, and a retry must finish a privilege copy an earlier attempt left half
 * done). A pre-created pair (`alternateUsername`: both users named by the secret, created by a
 * DBA) instead has the engine's setAlternatePassword prove both users exist, are logins and that
 * the alternate holds nothing the current user lacks, then set only the alternate's password;
 * AWSPENDING swaps `username` and `alternateUsername`.
 *
 * testSecret and finishSecret (the base class's) log in with AWSPENDING and run the check: a
 * clean rotation makes at most four database logins, none of them failing.
 */
export class DatabaseRotator<C = unknown> extends Rotator {
  readonly name: string;
  readonly profile: EngineProfile;

  constructor(
    readonly engine: DatabaseEngine<C>,
    private readonly options: DatabaseRotatorOptions = {},
  ) {
    super();
    this.profile = engine.profile;
    this.name = engine.profile.name;
  }

  /** The engine's operations for one invocation, behind the framework's timing middleware. */
  calls(ctx: EngineContext): EngineCalls<C> {
    return engineCalls(this.engine, { env: ctx.env, log: ctx.log });
  }

  /** The password policy under the handler's environment: the engine's own, or its defaults + the documented variables. */
  passwordPolicy(env: Env): PasswordPolicy {
    const rule = this.profile.password;
    return rule?.policy ? rule.policy(env) : passwordPolicyFromEnv(env, rule?.defaults);
  }

  /**
   * The one username-length check, for the user a rotation creates or switches to (the server
   * already accepted AWSCURRENT's): the profile's limit, in its unit.
   */
  checkUsernameLength(next: DbSecret, env: Env): { length: number; max: number; unit: string } {
    const rule = this.profile.username;
    const length = usernameLength(rule.storedAs ? rule.storedAs(next.username) : next.username, rule.unit);
    const max = maxUsernameLength(this.profile, next, env);
    const unit = rule.unit === 'UTF-8 bytes' ? 'bytes' : (rule.unit ?? 'characters');
    if (length > max) {
      throw new SecretFormatError(
        `The alternate user "${next.username}" would be ${length} ${unit} long; ${this.name} allows ${max}.`,
        `Use a shorter username for the alternating-users strategy${rule.raiseLimit ? `, or ${rule.raiseLimit}` : ''}.`,
      );
    }
    return { length, max, unit };
  }

  /**
   * A secret of this engine, and the function's configuration: createSecret calls this on
   * AWSCURRENT before anything is stored, so a bad variable fails there, not after AWSPENDING
   * exists.
   */
  override validate(secretString: string, label: string, ctx: StepContext): void {
    this.parse(secretString, label, ctx);
    this.validateEnv(ctx.env);
  }

  /** Every variable the framework reads, parsed the way the steps will parse it. */
  validateEnv(env: StepContext['env']): void {
    connectTimeout(env);
    statementTimeout(env);
    envFlag(env, 'ADMIN_HOST_FROM_CHILD', false);
    parseTlsMode(undefined, env, 'DEFAULT_SSL_MODE');
    resolveCa(undefined, env);
    this.passwordPolicy(env);
    const level = env.LOG_LEVEL?.trim();
    if (level && !['debug', 'info', 'warn', 'error'].includes(level.toLowerCase())) {
      throw new ConfigError(`LOG_LEVEL must be debug, info, warn or error, got "${level.slice(0, 40)}".`);
    }
  }

  /** Parse and check a secret of this engine, including its TLS settings. */
  parse(secretString: string, label: string, ctx: Pick<StepContext, 'env'>): DbSecret {
    const secret = parseDbSecret(secretString, label, this.profile.engines);
    this.engine.validateSecret?.(secret, label, ctx.env);
    // The password a rotation sets: the engine's password rule holds for it even when a writer of
    // the secret stored it by hand (createSecret checked the ones it generated).
    if (label === AWSPENDING) this.profile.password?.validate?.(secret.password);
    parseTlsMode(secret.ssl, ctx.env, label);
    return secret;
  }

  /**
   * AWSPENDING may differ from AWSCURRENT only where the strategy says: the password, and for
   * alternating users the username. Any other difference (host, port, ssl, sslCa, dbname,
   * masterarn, ...) would send the new password elsewhere, or promote a weaker setting.
   */
  checkPending(current: DbSecret, pending: DbSecret, env: Env): void {
    const strategy = strategyOf(current);
    if (strategy !== strategyOf(pending)) {
      throw new RotationStateError('AWSCURRENT and AWSPENDING use different rotation strategies.', 'Cancel this rotation and start a new one.');
    }
    if (strategy === 'single' && current.username !== pending.username) {
      throw new RotationStateError(
        `AWSPENDING names user "${pending.username}" but AWSCURRENT names "${current.username}"; single-user rotation never changes the user.`,
      );
    }
    if (strategy === 'alternating') {
      const expected = this.pendingUsername(current);
      if (pending.username !== expected) {
        throw new RotationStateError(
          `AWSPENDING names user "${pending.username}" but the alternate of AWSCURRENT's "${current.username}" is "${expected}".`,
        );
      }
      // A pre-created pair: AWSPENDING names the same two users, swapped. Anything else would let
      // a writer of the secret name a third user mid-rotation.
      const expectedOther = current.alternateUsername === undefined ? undefined : current.username;
      if (pending.alternateUsername !== expectedOther) {
        throw new RotationStateError(
          expectedOther === undefined
            ? `AWSPENDING has an "alternateUsername" field that AWSCURRENT does not have; a rotation cannot change the pair of users.`
            : `AWSPENDING's "alternateUsername" is not AWSCURRENT's "username" ("${current.username}"); a rotation only swaps the two users of the pair.`,
          'Someone changed the secret during the rotation: remove the AWSPENDING label from this version and start a new rotation.',
        );
      }
    }
    // A hand-written AWSPENDING skips createSecret's check: the server must not truncate the name it creates.
    if (strategy === 'alternating') this.checkUsernameLength(pending, env);
    const field = pendingDifference(current, pending, strategy);
    if (field !== undefined) {
      throw new RotationStateError(
        `AWSPENDING's "${field}" field differs from AWSCURRENT's; only the password${strategy === 'alternating' ? ' and the username' : ''} may change in a rotation.`,
        'Someone changed the secret during the rotation: remove the AWSPENDING label from this version and start a new rotation.',
      );
    }
  }

  /** The user AWSPENDING names for alternating users: the pre-created pair's other user, or the clone name. */
  pendingUsername(current: DbSecret): string {
    return current.alternateUsername ?? this.alternateUsername(current.username);
  }

  alternateUsername(username: string): string {
    const rule = this.profile.username;
    return rule.alternate ? rule.alternate(username) : defaultAlternateUsername(username);
  }

  async generatePending(currentString: string, ctx: StepContext): Promise<string> {
    const current = this.parse(currentString, AWSCURRENT, ctx);
    const next: DbSecret = { ...current };
    if (strategyOf(current) === 'alternating') {
      next.username = this.pendingUsername(current);
      // A pre-created pair: the two names swap, so AWSCURRENT always names the active user first.
      if (current.alternateUsername !== undefined) next.alternateUsername = current.username;
      this.checkUsernameLength(next, ctx.env);
      // The engine's own rules for a username (characters, case...) hold for the other user too.
      if (current.alternateUsername !== undefined) this.engine.validateSecret?.(next, `${AWSCURRENT} (its "alternateUsername")`, ctx.env);
    }
    const password = await ctx.secrets.randomPassword(this.passwordPolicy(ctx.env), passwordSourceFromEnv(ctx.env));
    this.profile.password?.validate?.(password);
    next.password = password;
    return JSON.stringify(next);
  }

  async setSecret(ctx: StepContext): Promise<void> {
    // Both reads at once: in a cold container that is one round trip instead of two.
    const [currentString, pendingString] = await Promise.all([ctx.secrets.current(), ctx.secrets.requirePending()]);
    const current = this.parse(currentString, AWSCURRENT, ctx);
    const pending = this.parse(pendingString, AWSPENDING, ctx);
    // Before anything logs in: a pending value naming another user, server or TLS setting must
    // never receive a password or become AWSCURRENT, even when it happens to log in.
    this.checkPending(current, pending, ctx.env);

    if (strategyOf(current) === 'alternating') {
      // No "pending already logs in" shortcut here: an earlier attempt may have set the password
      // and then failed while copying privileges, and the upsert is idempotent, so it always runs.
      // The new password is proven by testSecret and again by finishSecret, which log in with it.
      await this.setAlternating(current, pending, ctx);
      return;
    }
    if ((await this.setSingle(current, pending, ctx)) === 'already set') return;

    // A server that answers OK to a password change that did nothing is caught here, not by the
    // applications: the new password must log in.
    const verify = await this.login(pending, AWSPENDING, ctx);
    if (!verify.ok) {
      if (verify.failure.code === 'AUTH') {
        throw new VerificationError(
          `The server accepted the password change for "${pending.username}" but the new password does not log in (${verify.failure.reason}).`,
          'The change had no effect; check the server version and the account\'s authentication plugin.',
        );
      }
      // Refused, reset, stalled or TLS: the change may well have worked; the server did not let us check.
      throw new LoginError(
        `The password of "${pending.username}" was changed, but the login that verifies it failed.`,
        [verify.failure],
        'Check that the function can reach the database; the retry logs in with the new password.',
      );
    }
    await this.close(verify.conn, ctx.log);
    ctx.log.info('new password set and verified by login', { username: pending.username });
  }

  /** Every step compares AWSPENDING with AWSCURRENT (setSecret also logs in with it). */
  override readsCurrent(): boolean {
    return true;
  }

  /**
   * Proves a value logs in and runs the engine's check (testSecret, and finishSecret before it
   * promotes AWSPENDING). AWSPENDING must first match AWSCURRENT where the strategy says: a
   * pending value naming another endpoint or weaker TLS is never logged in with (the handler
   * has the AWSCURRENT read in flight already).
   */
  override async verify(secretString: string, label: string, ctx: StepContext): Promise<void> {
    const secret = this.parse(secretString, label, ctx);
    if (label === AWSPENDING) this.checkPending(this.parse(await ctx.secrets.current(), AWSCURRENT, ctx), secret, ctx.env);
    const login = await this.login(secret, label, ctx);
    if (!login.ok) {
      const remedy =
        label === AWSPENDING && login.failure.code === 'AUTH'
          ? 'The database does not accept the AWSPENDING password: setSecret has not run for this version, or the server accepted a change that had no effect, or the password was changed since.'
          : undefined;
      throw new LoginError(`Unable to log into the database with the ${label} secret.`, [login.failure], remedy);
    }
    try {
      await this.calls(ctx).check(login.conn);
    } finally {
      await this.close(login.conn, ctx.log);
    }
    ctx.log.info(`${label} logs in and runs the check query`, { username: secret.username, step: ctx.step });
  }

  /**
   * The RotateImmediately=false test run (value-less AWSPENDING): the whole preflight
   * (src/ops/preflight.ts), every check this secret's rotation depends on, read-only; throws a
   * PreflightError listing every failed check with its remedy.
   */
  override async preflight(ctx: StepContext): Promise<void> {
    ctx.log.info('AWSPENDING has no value (a RotateImmediately=false test run); running the preflight');
    await preflightOrThrow(this, ctx);
  }

  /**
   * Single user: log in with AWSCURRENT and change the user's own password. On a clean rotation
   * that is the only login here, and it succeeds. Only when AWSCURRENT is refused (AUTH) are
   * the other credentials tried: AWSPENDING (an earlier attempt already changed the password:
   * nothing to do), then AWSPREVIOUS and the newest unlabelled versions (a password stranded by
   * an abandoned rotation), each with AWSCURRENT's user and endpoint.
   */
  private async setSingle(current: DbSecret, pending: DbSecret, ctx: StepContext): Promise<'changed' | 'already set'> {
    const failures: LoginFailure[] = [];
    let login = await this.login(current, AWSCURRENT, ctx);
    let loggedInWith = AWSCURRENT;
    if (!login.ok) {
      failures.push(login.failure);
      if (login.failure.code !== 'AUTH') {
        throw new LoginError('Unable to log into the database with the AWSCURRENT secret.', failures,
          'Check that the function can reach the database (and its TLS settings); nothing was changed.');
      }
      const already = await this.login(pending, AWSPENDING, ctx);
      if (already.ok) {
        await this.close(already.conn, ctx.log);
        ctx.log.info('AWSPENDING already logs in; password was set by an earlier attempt', { username: pending.username });
        return 'already set';
      }
      failures.push(already.failure);
      for await (const candidate of this.recoveryCandidates(current, ctx)) {
        login = await this.login(candidate.secret, candidate.label, ctx);
        if (login.ok) {
          loggedInWith = candidate.label;
          if (candidate.versionId) ctx.log.warn('logged in with the password of an unlabelled version', { username: current.username, usedVersionId: candidate.versionId });
          break;
        }
        failures.push(login.failure);
      }
    }
    if (!login.ok) {
      throw new LoginError('Unable to log into the database with the current, pending, previous or recent unlabelled secret.', failures,
        'Check the password stored in AWSCURRENT still works, and that the function can reach the database.');
    }
    try {
      await this.calls(ctx).setOwnPassword(login.conn, { username: pending.username, oldPassword: login.secret.password, newPassword: pending.password });
    } catch (err) {
      // A duplicate invocation of this step may have changed the password at the same moment
      // (PostgreSQL: "tuple concurrently updated"): if the new password logs in, the step is done.
      await this.close(login.conn, ctx.log);
      // A stalled or unreachable server is not a race: report it now, without another login.
      if (err instanceof RotationError && (err.code === 'NETWORK' || err.code === 'TLS')) throw err;
      const done = await this.login(pending, AWSPENDING, ctx);
      if (!done.ok) throw err;
      await this.close(done.conn, ctx.log);
      ctx.log.warn('the password change failed, but AWSPENDING logs in: a concurrent invocation set it', { username: pending.username, reason: describeError(err) });
      return 'already set';
    }
    await this.close(login.conn, ctx.log);
    ctx.log.info('changed own password', { username: pending.username, loggedInWith });
    return 'changed';
  }

  /**
   * The recovery credentials, in order: AWSPREVIOUS, then the newest unlabelled versions (at most
   * RECOVERY_VERSIONS). Only a version naming AWSCURRENT's user, host and port is used, and only
   * its password: everything else (TLS settings included) is AWSCURRENT's, so an old version can
   * neither weaken nor redirect the login.
   */
  private async *recoveryCandidates(current: DbSecret, ctx: StepContext): AsyncGenerator<{ secret: DbSecret; label: string; versionId?: string }> {
    const previous = this.usableOld(await ctx.secrets.previous(), AWSPREVIOUS, current, ctx);
    if (previous) yield { secret: previous, label: AWSPREVIOUS };
    let ids: string[];
    try {
      ids = await ctx.secrets.unlabelledVersionIds(RECOVERY_VERSIONS);
    } catch (err) {
      ctx.log.warn('cannot list the secret\'s unlabelled versions (secretsmanager:ListSecretVersionIds)', { reason: describeError(err) });
      return;
    }
    for (const versionId of ids) {
      const label = `unlabelled version ${versionId}`;
      const secret = this.usableOld(await ctx.secrets.byVersionId(versionId), label, current, ctx);
      if (secret) yield { secret, label, versionId };
    }
  }

  /** An old version's password with AWSCURRENT's connection settings, if it names the same user and endpoint. */
  private usableOld(raw: string | undefined, label: string, current: DbSecret, ctx: StepContext): DbSecret | undefined {
    if (raw === undefined) return undefined;
    let old: DbSecret;
    try {
      old = parseDbSecret(raw, label, this.profile.engines);
    } catch (err) {
      ctx.log.warn(`ignoring ${label}: it is not a usable secret`, { reason: describeError(err) });
      return undefined;
    }
    const port = (s: DbSecret) => portOf(s, this.profile.defaultPort);
    if (old.username !== current.username || !sameHost(old.host, current.host) || port(old) !== port(current)) {
      ctx.log.warn(`ignoring ${label}: it names another user or endpoint`);
      return undefined;
    }
    if (old.password === current.password) return undefined;
    return { ...current, password: old.password };
  }

  private async setAlternating(current: DbSecret, pending: DbSecret, ctx: StepContext): Promise<void> {
    const precreated = current.alternateUsername !== undefined;
    if (precreated && !this.engine.setAlternatePassword) {
      throw new RotationError('UNSUPPORTED', `The ${this.name} rotator does not support pre-created user pairs ("alternateUsername"); nothing was changed.`, {
        remedy: 'Remove "alternateUsername" from the secret to use the clone strategy.',
      });
    }
    // Confused-deputy guard: the admin's power is used only for a secret whose current credential works.
    const guard = await this.login(current, AWSCURRENT, ctx);
    if (!guard.ok) {
      throw new LoginError('Unable to log into the database with the AWSCURRENT secret; refusing to use the admin secret.', [guard.failure],
        'Fix AWSCURRENT (it must log in) before rotating.');
    }
    await this.close(guard.conn, ctx.log);

    const master = await this.adminSecret(current, ctx);
    const ownDatabase = ownAdminDatabase(this.profile);
    // The admin would reset its own password to a value the child secret's readers can see. Where
    // a user is named by its authentication database too (MongoDB), the engine checks this itself.
    if (!ownDatabase && master.username.toLowerCase() === pending.username.toLowerCase()) {
      throw new RotationStateError(
        `The alternate user "${pending.username}" is the admin secret's own user; refusing to change the admin's password.`,
        'Use a child secret whose users differ from the admin user.',
      );
    }
    // A pre-created pair names both users: the admin may be neither (the next rotation would change it).
    if (precreated && !ownDatabase && master.username.toLowerCase() === current.username.toLowerCase()) {
      throw new RotationStateError(
        `The pre-created pair's user "${current.username}" is the admin secret's own user; refusing to rotate the admin's password as one of the pair.`,
        'Use an admin secret whose user is neither "username" nor "alternateUsername".',
      );
    }
    const admin = await this.login(master, 'admin secret', ctx);
    if (!admin.ok) {
      throw new LoginError(`Unable to log into the database with the admin secret ${current.masterarn}.`, [admin.failure]);
    }
    try {
      const change = { currentUser: current.username, alternateUser: pending.username, newPassword: pending.password, current, ...(precreated ? { precreated } : {}) };
      const calls = this.calls(ctx);
      for (let attempt = 1; ; attempt++) {
        try {
          if (precreated) {
            // Both users exist, are logins, and the alternate holds nothing the current user
            // lacks (proved by the engine before it changes anything); only its password changes.
            await calls.setAlternatePassword(admin.conn, change);
            break;
          }
          // Before anything changes: the existing alternate user must provably be this pair's.
          await calls.checkAlternateUser(admin.conn, change);
          await calls.upsertAlternateUser(admin.conn, change);
          break;
        } catch (err) {
          // An unclassified server error (not a RotationError: no privilege, bad state...) may be a
          // duplicate invocation of this step racing this one (PostgreSQL: "duplicate key" on
          // CREATE ROLE, "tuple concurrently updated"). The upsert is idempotent: run it again.
          if (!(err instanceof UnclassifiedDatabaseError) || attempt >= UPSERT_ATTEMPTS) throw err;
          ctx.log.warn('creating or updating the alternate user failed; trying again (a concurrent invocation?)', { username: pending.username, attempt, reason: describeError(err) });
          await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
        }
      }
    } finally {
      await this.close(admin.conn, ctx.log);
    }
    ctx.log.info(precreated ? 'password of the pre-created alternate user set by the admin user' : 'alternate user created or updated by the admin user', { username: pending.username, adminUser: master.username });
  }

  /**
   * The admin secret, as a connectable DbSecret. Its host comes from the admin secret itself, or
   * for an RDS-managed master secret (only username and password) from the RDS API via the
   * secret's aws:rds tags, or, only when ADMIN_HOST_FROM_CHILD=true, from the child secret. It
   * must equal the child's host. TLS settings are the admin secret's own (absent: the default
   * mode), never the child's: a writer of the child secret must not weaken the admin's login.
   */
  async adminSecret(current: DbSecret, ctx: Pick<StepContext, 'secrets' | 'env' | 'log'>): Promise<DbSecret> {
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
          ? normaliseRdsEngine(endpoint.engine, this.profile.engines)
          : current.engine;
    if (!this.profile.engines.includes(engine)) {
      throw new SecretFormatError(`The admin secret has engine "${engine.slice(0, 40)}"; expected one of ${this.profile.engines.join(', ')}.`);
    }
    const admin = {
      ...raw,
      engine,
      host: endpoint.host,
      // Never the child's port: its writer could point it at a listener that collects logins.
      port: raw.port ?? endpoint.port ?? this.profile.defaultPort,
      // The admin works in the child's database (AWS's rotators do the same), unless the
      // engine's dbname is where a user authenticates (MongoDB).
      dbname: ownAdminDatabase(this.profile) ? raw.dbname : current.dbname,
    } as DbSecret;
    // Its "ssl" field is checked by login(), before any connection.
    ctx.log.info('admin secret endpoint', { host: admin.host, port: admin.port, endpointFrom: endpoint.source });
    return admin;
  }

  private async adminEndpoint(arn: string, raw: Record<string, unknown>, current: DbSecret, ctx: Pick<StepContext, 'secrets' | 'env'>): Promise<AdminEndpoint> {
    if (typeof raw.host === 'string' && raw.host) return { host: raw.host, source: 'the admin secret' };
    const lookup = this.options.managedAdmin ?? rdsManagedAdminLookup(this.options.rdsClient);
    const found = await lookup.find((await ctx.secrets.describe(arn)).Tags);
    if (found) return found;
    if (envFlag(ctx.env, 'ADMIN_HOST_FROM_CHILD', false)) {
      return { host: current.host, port: portOf(current, this.profile.defaultPort), source: 'the child secret (ADMIN_HOST_FROM_CHILD)' };
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
        const conn = await this.calls(ctx).connect(this.target(secret), { tls, connectTimeoutMs: timeout, statementTimeoutMs, log: ctx.log, env: ctx.env });
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

  /** The connection target: the secret with the profile's default port and database filled in. */
  target(secret: DbSecret): DbSecret {
    const dbname = secret.dbname ?? this.profile.defaultDatabase;
    return { ...secret, port: portOf(secret, this.profile.defaultPort), ...(dbname === undefined ? {} : { dbname }) };
  }

  /** Closes a connection (timed like every engine call); a failure is logged, never thrown. */
  async close(conn: C, log: Logger): Promise<void> {
    try {
      await timed(log, this.name, 'close', {}, () => this.engine.close(conn));
    } catch (err) {
      log.warn('closing a connection failed', { reason: describeError(err) });
    }
  }
}

function ownAdminDatabase(profile: EngineProfile): boolean {
  return profile.adminDatabase === 'own';
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
