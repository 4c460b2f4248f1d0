/**
 * Preflight: every check a rotation of this secret depends on, run together and read-only.
 *
 * Used by DatabaseRotator.testSecret when AWSPENDING has no value (RotateSecret with
 * RotateImmediately=false runs testSecret alone to test the configuration): the step fails with
 * a PreflightError listing every failed check. The CLI (`rotation-lambdas preflight`) runs the
 * same code from a workstation.
 *
 * Nothing here changes anything: no password, user, grant or label. The admin-side checks
 * (checkAlternateUser, privilege queries) run only after AWSCURRENT has logged in, the same
 * confused-deputy rule setSecret follows: a forged child secret cannot make the admin look up
 * users of its choosing.
 */
import type { DatabaseRotator } from '../db/database-rotator';
import type { AlternateUserChange } from '../db/engine';
import { type DbSecret, parseAdminSecret, strategyOf } from '../db/secret';
import { parseTlsMode, resolveCa } from '../db/tls';
import { describeError, type LoginFailure } from '../errors';
import type { Env } from '../password';
import type { StepContext } from '../rotator';
import { AWSCURRENT } from '../secrets';
import type { PreflightHooks } from './hooks';
import { type Check, fail, failFrom, pass, PreflightError, type PreflightReport, skip, warn } from './report';

/** What a preflight needs: a StepContext without the step-specific parts. */
export type PreflightContext = Pick<StepContext, 'secretId' | 'secrets' | 'log' | 'env'>;

type LoginResult<C> = { ok: true; conn: C; secret: DbSecret } | { ok: false; failure: LoginFailure };

/** The checks' engine-specific part: the engine's `preflight` module (loaded only here), or none. */
export async function hooksFor<C>(rotator: DatabaseRotator<C>): Promise<PreflightHooks<C>> {
  return (await rotator.engine.preflight?.()) ?? {};
}

/** Run every check and return the report (never throws for a failed check). */
export async function runPreflight<C>(rotator: DatabaseRotator<C>, ctx: PreflightContext): Promise<PreflightReport> {
  const checks: Check[] = [];
  const report: PreflightReport = { secretId: ctx.secretId, engine: rotator.name, checks, ok: false };
  const done = (): PreflightReport => {
    report.ok = !checks.some((c) => c.status === 'fail');
    return report;
  };

  // 1. The secret's shape.
  let current: DbSecret;
  try {
    current = rotator.parse(await ctx.secrets.current(), AWSCURRENT, ctx);
  } catch (err) {
    checks.push(failFrom('secret.shape', 'AWSCURRENT is a valid secret for this function', err, 'SECRET_FORMAT'));
    checks.push(skip('rest', 'Remaining checks', 'Not run: every other check needs a valid AWSCURRENT.'));
    return done();
  }
  const strategy = strategyOf(current);
  report.strategy = strategy;
  report.engine = current.engine;
  const where = `${current.host}:${current.port ?? rotator.profile.defaultPort}`;
  checks.push(
    pass(
      'secret.shape',
      'AWSCURRENT is a valid secret for this function',
      `engine "${current.engine}", user "${current.username}" at ${where}${current.dbname ? `, database "${current.dbname}"` : ''}; strategy: ${strategy === 'alternating' ? 'alternating users (masterarn)' : 'single user'}.`,
    ),
  );

  // 2. TLS settings.
  checks.push(tlsCheck('secret.tls', 'TLS settings of AWSCURRENT', current, ctx.env));

  // The password policy (PASSWORD_LENGTH, EXCLUDE_*...) and GetRandomPassword, as createSecret will use them.
  checks.push(await passwordPolicyCheck(rotator, ctx));

  // 3. AWSCURRENT logs in over the TLS mode in force, and the check query runs.
  const login = await loginAndCheck(rotator, current, AWSCURRENT, ctx);
  checks.push(login.check);

  try {
    if (strategy === 'single') {
      await singleUserChecks(rotator, current, login.result, checks, ctx);
    } else {
      await alternatingChecks(rotator, current, login.result, checks, ctx);
    }
  } finally {
    if (login.result.ok) await rotator.close(login.result.conn, ctx.log);
  }
  return done();
}

/** Run the preflight and throw a PreflightError listing every failed check, if any failed. */
export async function preflightOrThrow<C>(rotator: DatabaseRotator<C>, ctx: PreflightContext): Promise<PreflightReport> {
  const report = await runPreflight(rotator, ctx);
  for (const c of report.checks) {
    const fields = { preflightCheck: c.id, status: c.status, detail: c.detail, ...(c.code ? { errorCode: c.code } : {}) };
    if (c.status === 'fail' || c.status === 'warn') ctx.log.warn(c.title, { ...fields, remedy: c.remedy });
    else ctx.log.info(c.title, fields);
  }
  if (!report.ok) throw new PreflightError(report);
  ctx.log.info('preflight passed: every check the rotation depends on succeeded; nothing was changed', { checks: report.checks.length });
  return report;
}

async function singleUserChecks<C>(rotator: DatabaseRotator<C>, current: DbSecret, login: LoginResult<C>, checks: Check[], ctx: PreflightContext): Promise<void> {
  const title = 'The user may change its own password';
  const hook = (await hooksFor(rotator)).ownPassword;
  if (!hook) {
    checks.push(skip('single.own-password', title, `The ${rotator.name} engine has no read-only check for this; setSecret will tell.`));
    return;
  }
  if (!login.ok) {
    checks.push(skip('single.own-password', title, 'Not run: AWSCURRENT does not log in.'));
    return;
  }
  try {
    checks.push(...(await hook(login.conn, { current, env: ctx.env })));
  } catch (err) {
    checks.push(failFrom('single.own-password', title, err, 'PRIVILEGE'));
  }
}

async function alternatingChecks<C>(rotator: DatabaseRotator<C>, current: DbSecret, login: LoginResult<C>, checks: Check[], ctx: PreflightContext): Promise<void> {
  const alternateUser = rotator.alternateUsername(current.username);

  // The alternate name fits the limit (the same rules as createSecret).
  checks.push(alternateNameCheck(rotator, current, alternateUser, ctx.env));

  // The admin secret is readable and has credentials.
  const arn = current.masterarn!;
  let adminRaw: Record<string, unknown>;
  try {
    adminRaw = parseAdminSecret(await ctx.secrets.other(arn), 'admin');
    checks.push(pass('admin.secret', 'The admin secret (masterarn) is readable', `${arn}: user "${String(adminRaw.username)}".`));
  } catch (err) {
    checks.push(
      failFrom('admin.secret', 'The admin secret (masterarn) is readable', err, 'CONFIG',
        'The function needs secretsmanager:GetSecretValue on the admin secret (and kms:Decrypt on its key); check the ARN in "masterarn".'),
    );
    checks.push(skip('admin.rest', 'Admin checks', 'Not run: the admin secret cannot be read.'));
    return;
  }
  const adminUser = String(adminRaw.username);
  if (adminUser === current.username || adminUser === alternateUser) {
    checks.push(
      fail('admin.distinct', 'The admin is not one of the rotated pair', `The admin secret's user "${adminUser}" is one of the pair "${current.username}" / "${alternateUser}"; rotation would reset the admin's own password.`,
        'STATE', 'Use a separate admin user in the admin secret.'),
    );
  } else {
    checks.push(pass('admin.distinct', 'The admin is not one of the rotated pair', `"${adminUser}" is neither "${current.username}" nor "${alternateUser}".`));
  }

  // Where the admin connects: the same resolution and same-host rule as setSecret.
  let admin: DbSecret;
  try {
    admin = await resolveAdmin(rotator, current, ctx);
    checks.push(
      pass('admin.endpoint', 'The admin secret resolves to this database', `${admin.host}:${admin.port ?? rotator.profile.defaultPort}, the host of the rotated secret.`),
    );
  } catch (err) {
    checks.push(failFrom('admin.endpoint', 'The admin secret resolves to this database', err, 'CONFIG'));
    checks.push(skip('admin.rest', 'Admin checks', 'Not run: the admin endpoint is not resolved.'));
    return;
  }
  checks.push(tlsCheck('admin.tls', 'TLS settings of the admin secret', admin, ctx.env));

  const adminLogin = await loginAndCheck(rotator, admin, 'admin', ctx, 'The admin logs in');
  checks.push(adminLogin.check);
  if (!adminLogin.result.ok) return;
  try {
    if (!login.ok) {
      checks.push(
        skip('admin.rest', 'Admin-side checks (alternate user, privileges)',
          'Not run: AWSCURRENT does not log in, and the admin never acts for a secret whose own credentials do not work.'),
      );
      return;
    }
    const change: AlternateUserChange = { currentUser: current.username, alternateUser, newPassword: '', current };
    const identity = 'The existing alternate user (if any) is this pair\'s';
    try {
      await rotator.calls(ctx).checkAlternateUser(adminLogin.result.conn, change);
      checks.push(pass('alternate.identity', identity, `"${alternateUser}" is absent or provably the alternate of "${current.username}".`));
    } catch (err) {
      checks.push(failFrom('alternate.identity', identity, err, 'STATE'));
    }
    const hook = (await hooksFor(rotator)).adminPrivileges;
    const privTitle = 'The admin holds what creating/updating the alternate user needs';
    if (!hook) {
      checks.push(skip('admin.privileges', privTitle, `The ${rotator.name} engine has no read-only privilege check; setSecret will tell.`));
    } else {
      try {
        checks.push(...(await hook(adminLogin.result.conn, { current, alternateUser, adminUser, env: ctx.env })));
      } catch (err) {
        checks.push(failFrom('admin.privileges', privTitle, err, 'PRIVILEGE'));
      }
    }
  } finally {
    await rotator.close(adminLogin.result.conn, ctx.log);
  }
}

/**
 * The admin secret as setSecret would connect with it (DatabaseRotator's own resolution: the
 * admin secret's host, an RDS/Redshift lookup, or ADMIN_HOST_FROM_CHILD; the same-host rule).
 */
async function resolveAdmin<C>(rotator: DatabaseRotator<C>, current: DbSecret, ctx: PreflightContext): Promise<DbSecret> {
  return rotator.adminSecret(current, ctx);
}

function alternateNameCheck<C>(rotator: DatabaseRotator<C>, current: DbSecret, alternateUser: string, env: Env): Check {
  const title = 'The alternate user name fits the limit';
  try {
    const next = { ...current, username: alternateUser };
    const { length, max, unit } = rotator.checkUsernameLength(next, env);
    rotator.engine.validateSecret?.(next, 'AWSPENDING', env);
    return pass('alternate.name', title, `"${alternateUser}": ${length} of at most ${max} ${unit}.`);
  } catch (err) {
    return failFrom('alternate.name', title, err, 'SECRET_FORMAT');
  }
}

async function passwordPolicyCheck<C>(rotator: DatabaseRotator<C>, ctx: PreflightContext): Promise<Check> {
  const title = 'The password policy works with GetRandomPassword';
  try {
    const policy = rotator.passwordPolicy(ctx.env);
    // Read-only: a password is generated (and registered for redaction), never stored.
    const sample = await ctx.secrets.randomPassword(policy);
    rotator.profile.password?.validate?.(sample);
    return pass('secret.password-policy', title, `${policy.PasswordLength} characters${policy.ExcludeCharacters ? ', with excluded characters' : ''}; GetRandomPassword answered.`);
  } catch (err) {
    return failFrom('secret.password-policy', title, err, 'CONFIG',
      'Check PASSWORD_LENGTH and the EXCLUDE_* variables, and that the function may call secretsmanager:GetRandomPassword.');
  }
}

function tlsCheck(id: string, title: string, secret: DbSecret, env: Env): Check {
  try {
    const mode = parseTlsMode(secret.ssl, env, id.startsWith('admin') ? 'admin secret' : AWSCURRENT);
    const ca = resolveCa(secret.sslCa, env);
    const caText = ca ? (typeof secret.sslCa === 'string' ? 'the secret\'s sslCa' : 'SSL_CA_BUNDLE') : 'Node\'s roots and the Amazon RDS CAs';
    switch (mode) {
      case 'verify-full':
        return pass(id, title, `verify-full: certificate chain (against ${caText}) and host name verified.`);
      case 'verify-ca':
        return warn(id, title, `verify-ca: the chain is verified against ${caText}, the host name is not.`, 'Use "ssl": true (verify-full) where the certificate names the host.');
      case 'require':
        return warn(id, title, 'require: encrypted, but the server\'s certificate is not verified.', 'Use "ssl": true (verify-full), with "sslCa" or SSL_CA_BUNDLE if the server uses a private CA.');
      case 'prefer':
        return warn(id, title, 'prefer: verify-full, but a TLS or network failure falls back to plaintext.', 'Use "ssl": true (verify-full) once TLS works.');
      case 'disable':
        return warn(id, title, 'disable: the password travels in plaintext.', 'Enable TLS on the server and set "ssl": true.');
    }
  } catch (err) {
    return failFrom(id, title, err, 'SECRET_FORMAT');
  }
}

async function loginAndCheck<C>(
  rotator: DatabaseRotator<C>,
  secret: DbSecret,
  label: string,
  ctx: Pick<PreflightContext, 'env' | 'log'>,
  title = `${label} logs in and runs the check query`,
): Promise<{ check: Check; result: LoginResult<C> }> {
  const id = label === AWSCURRENT ? 'current.login' : `${label}.login`;
  let result: LoginResult<C>;
  try {
    result = await rotator.login(secret, label, ctx);
  } catch (err) {
    return { check: failFrom(id, title, err, 'CONFIG'), result: { ok: false, failure: { label, username: secret.username, host: secret.host, code: 'CONFIG', reason: describeError(err) } } };
  }
  if (!result.ok) {
    return { check: fail(id, title, `"${secret.username}" at ${secret.host}: ${result.failure.reason}`, result.failure.code, loginRemedy(result.failure.code, label)), result };
  }
  try {
    await rotator.calls(ctx).check(result.conn);
  } catch (err) {
    return { check: failFrom(id, title, err, 'PRIVILEGE'), result };
  }
  return { check: pass(id, title, `"${secret.username}" logged in over ${describeTls(secret, ctx.env)} and ran the check query.`), result };
}

function describeTls(secret: DbSecret, env: Env): string {
  try {
    const mode = parseTlsMode(secret.ssl, env);
    return mode === 'disable' ? 'plaintext (ssl disabled)' : `TLS (${mode})`;
  } catch {
    return 'the configured TLS mode';
  }
}

function loginRemedy(code: string, label: string): string {
  switch (code) {
    case 'AUTH':
      return label === AWSCURRENT
        ? 'The stored password does not work: if a rotation failed half-way, run `rotation-lambdas status` and `repair`; otherwise put the working password in AWSCURRENT.'
        : 'Put the admin user\'s working password in the admin secret.';
    case 'TLS':
      return 'Check "ssl" / "sslCa", SSL_CA_BUNDLE, and that the server offers TLS with a certificate for this host name.';
    case 'NETWORK':
      return 'Check host and port, security groups, and that the function runs in a VPC subnet that routes to the database.';
    default:
      return 'See the detail above.';
  }
}


