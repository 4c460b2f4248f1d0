/**
 * The SQL Server rotator end to end, against an in-process FAKE server: no SQL Server can run
 * on this machine. The handler, the framework, the engine and the real AWS SDK client talking
 * to the Secrets Manager double are the production code; only the connection factory is
 * replaced by the fake (test/fakes/sqlserver-fake.ts), a stateful model that logs in only with
 * the right password, parses every DDL statement with its own T-SQL lexer and applies it.
 *
 * The production connection path (tedious) is tested separately with the real driver: the
 * configuration it gets, connection errors against closed and silent ports, and the TLS policy
 * (certificate checks, and the refusal to send the login unencrypted when the server declines
 * TLS) against a minimal TDS server stub that speaks PRELOGIN and TLS-in-PRELOGIN.
 *
 * Every test ends with the no-leak assertion: no password the fake ever accepted, nor any
 * secret value, appears in any log line or error message.
 */
import { PutSecretValueCommand, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { ConnectionError, RequestError } from 'tedious';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseRotator } from '../src/db/database-rotator';
import type { DbSecret } from '../src/db/secret';
import type { TlsOptions } from '../src/db/tls';
import { createHandler } from '../src/handler';
import { Logger } from '../src/log';
import type { Env } from '../src/password';
import { PUNCTUATION } from '../src/testing/random-password';
import {
  buildConnectionConfig,
  classifyConnectError,
  createSqlServerEngine,
  nLiteral,
  quoteName,
  SQL,
  SQLSERVER_ENGINES,
} from '../rotators/sqlserver/engine';
import { engine as packagedEngine } from '../rotators/sqlserver';
import { FakeSqlServer, startTdsStub, TDS, type TdsStub, type TdsStubOptions, tokenize } from './fakes/sqlserver-fake';
import { makeTestCerts, type TestCerts } from './support/certs';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from './support/rotation-harness';
import { RdsDouble } from '../src/testing';

const HOST = 'sql-1.abcdefghij.us-east-1.rds.amazonaws.com';
const ADMIN = 'rds_master';
const ADMIN_PW = 'Adm1n-Pa55word!ForTheFake';
const P0 = 'Initial-Pa55word!0';

/** T-SQL literal body, written independently of the engine: `'` doubled. */
const lit = (s: string) => s.split("'").join("''");
/** The batch that creates a clone: its statements in one transaction, rolled back on any error. */
const atomic = (...statements: string[]) => ['SET XACT_ABORT ON', 'BEGIN TRANSACTION', ...statements, 'COMMIT TRANSACTION'].join(';\n');
/** Sets the marker (extended property) on a database user; name, value and user are bound parameters. */
const MARK = "EXEC sys.sp_addextendedproperty @name = @markerName, @value = @markerValue, @level0type = N'USER', @level0name = @markerUser";
const MARKER = 'rotation-lambdas:alternate-of';

interface World {
  fake: FakeSqlServer;
  rds: RdsDouble;
  h: RotationHarness;
}

const worlds: World[] = [];

afterEach(() => {
  const all = worlds.splice(0, worlds.length);
  for (const { fake, h } of all) {
    h.sensitive(...fake.passwordsSeen, ADMIN_PW);
    // Connection hygiene: every session the rotator opened was closed.
    expect(fake.open.size, 'sessions left open').toBe(0);
    expect(fake.unrecognised.map((s) => s.sql.slice(0, 30)), 'statements the fake did not recognise').toEqual([]);
  }
  assertNoLeaksInAll();
});

function world(env: Env = {}): World {
  const fake = new FakeSqlServer();
  const engine = createSqlServerEngine({ connect: fake.connect });
  const rds = new RdsDouble();
  const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(engine, { rdsClient: (region) => rds.client(region) }), o), env });
  const w = { fake, h, rds };
  worlds.push(w);
  return w;
}

function secret(username: string, password: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'sqlserver', host: HOST, port: 1433, dbname: 'appdb', username, password, ...extra };
}

/** After a failed rotation: remove the AWSPENDING it left, as an operator would, so the next rotation starts afresh. */
async function dropPending(h: RotationHarness, arn: string): Promise<void> {
  const pending = h.holderOf(arn, 'AWSPENDING');
  if (pending) await h.client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSPENDING', RemoveFromVersionId: pending }));
}

function errorCodes(h: RotationHarness): unknown[] {
  return h.records().filter((r) => r.message === 'step failed').map((r) => r.errorCode);
}

/** An app login with a database user in appdb, and the admin login: the RDS master (not sysadmin; db_owner in appdb). */
function appServer(fake: FakeSqlServer, user = 'app', password = P0): void {
  fake.addDatabase('appdb');
  fake.addRdsMaster(ADMIN, ADMIN_PW);
  fake.addLogin(user, password, { defaultDatabase: 'appdb' });
  fake.addUser('appdb', user, { login: user });
}

async function alternating(w: World, user: string, password = P0, extra: Record<string, unknown> = {}): Promise<{ arn: string; adminArn: string }> {
  const adminArn = await w.h.createSecret({ engine: 'sqlserver', host: HOST, username: ADMIN, password: ADMIN_PW });
  const arn = await w.h.createSecret(secret(user, password, { masterarn: adminArn, ...extra }));
  return { arn, adminArn };
}

// ---------------------------------------------------------------------------------------------

describe('quoting', () => {
  const hostile = ["plain", "O'Brien", 'a]b', ']]', '[x]', 'semi;colon -- ', 'back\\slash', 'quote"d', 'Ünïcødé 𝄞', ' spaced ', '%_%'];

  it('quoteName is QUOTENAME: brackets, every ] doubled, 128 characters at most, no NUL', () => {
    expect(quoteName('app')).toBe('[app]');
    expect(quoteName('a]b')).toBe('[a]]b]');
    expect(quoteName(']]')).toBe('[]]]]]');
    expect(quoteName("O'Brien")).toBe("[O'Brien]");
    expect(quoteName('x'.repeat(128))).toBe(`[${'x'.repeat(128)}]`);
    expect(() => quoteName('x'.repeat(129))).toThrow(/1-128 characters/);
    expect(() => quoteName('')).toThrow(/identifier/);
    expect(() => quoteName('a\u0000b')).toThrow(/NUL/);
  });

  it('nLiteral doubles quotes and refuses NUL and line breaks without echoing the value', () => {
    expect(nLiteral("it's", 'x')).toBe("N'it''s'");
    expect(nLiteral('a\\b"];', 'x')).toBe('N\'a\\b"];\'');
    for (const bad of ['a\u0000b', 'line\nbreak', 'cr\rhere', 'cont\\\nx']) {
      let message = '';
      try {
        nLiteral(bad, 'new password');
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/new password contains a NUL or line-break/);
      expect(message).not.toContain(bad);
    }
  });

  it('round-trips hostile names and passwords through an independent T-SQL lexer', () => {
    for (const v of hostile) {
      expect(tokenize(`ALTER LOGIN ${quoteName(v)} WITH PASSWORD = ${nLiteral(v, 'x')}`)).toEqual([
        { t: 'word', v: 'ALTER' }, { t: 'word', v: 'LOGIN' }, { t: 'id', v }, { t: 'word', v: 'WITH' },
        { t: 'word', v: 'PASSWORD' }, { t: 'p', v: '=' }, { t: 'str', v },
      ]);
    }
  });
});

describe('engine definition and connection configuration', () => {
  it('accepts sqlserver and the RDS engine names; port 1433, database master, 128-character names', () => {
    expect(packagedEngine.profile.engines).toEqual(['sqlserver', 'sqlserver-ee', 'sqlserver-se', 'sqlserver-ex', 'sqlserver-web']);
    expect(SQLSERVER_ENGINES).toContain('sqlserver-web');
    expect(packagedEngine.profile.defaultPort).toBe(1433);
    expect(packagedEngine.profile.defaultDatabase).toBe('master');
    expect(packagedEngine.profile.username).toMatchObject({ maxLength: 128, unit: 'UTF-16 code units' });
  });

  const base: DbSecret = { engine: 'sqlserver', host: 'db.example.com', username: 'app', password: 'Pw-123456789!' };

  it('builds the tedious configuration from the secret: host, port, database, timeouts, verify-full TLS with the CA', () => {
    const config = buildConnectionConfig({ ...base, port: '14330' as unknown as number, dbname: 'sales' }, {
      tls: { enabled: true, verifyChain: true, verifyHostname: true, ca: 'PEM' },
      connectTimeoutMs: 4321,
      statementTimeoutMs: 9876,
    });
    expect(config).toEqual({
      server: 'db.example.com',
      authentication: { type: 'default', options: { userName: 'app', password: 'Pw-123456789!' } },
      options: {
        port: 14330,
        database: 'sales',
        encrypt: true,
        trustServerCertificate: false,
        cryptoCredentialsDetails: { minVersion: 'TLSv1.2', ca: 'PEM' },
        connectTimeout: 4321,
        requestTimeout: 9876,
        cancelTimeout: 2000,
        appName: 'rotation-lambdas',
      },
    });
  });

  it('maps each TLS mode: verify-ca and require trust the chain to the guard / nobody, disable turns encryption off', () => {
    const opts = (tls: { enabled: boolean; verifyChain: boolean; verifyHostname: boolean }) => buildConnectionConfig(base, { tls, connectTimeoutMs: 5000, statementTimeoutMs: 30_000 }).options!;
    const verifyCa = opts({ enabled: true, verifyChain: true, verifyHostname: false });
    expect([verifyCa.encrypt, verifyCa.trustServerCertificate, verifyCa.port, verifyCa.database]).toEqual([true, true, 1433, 'master']);
    const require_ = opts({ enabled: true, verifyChain: false, verifyHostname: false });
    expect([require_.encrypt, require_.trustServerCertificate]).toEqual([true, true]);
    expect(require_.cryptoCredentialsDetails).toEqual({ minVersion: 'TLSv1.2' });
    const disable = opts({ enabled: false, verifyChain: false, verifyHostname: false });
    expect(disable.encrypt).toBe(false);
  });

  it('classifies tedious errors: ELOGIN -> AUTH, certificate -> TLS, EENCRYPT -> TLS, ESOCKET/ETIMEOUT -> NETWORK', () => {
    const cert = Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:1433'), { code: 'ECONNREFUSED' });
    const cases: Array<[Error, string]> = [
      [new ConnectionError("Login failed for user 'app'.", 'ELOGIN'), 'AUTH'],
      [new ConnectionError('Failed to connect to h:1433 - self-signed certificate in certificate chain', 'ESOCKET', { cause: cert }), 'TLS'],
      [new ConnectionError("Server requires encryption, set 'encrypt' config option to true.", 'EENCRYPT'), 'TLS'],
      [new ConnectionError('Failed to connect to h:1433 - connect ECONNREFUSED', 'ESOCKET', { cause: refused }), 'NETWORK'],
      [new ConnectionError('Failed to connect to h:1433 in 5000ms', 'ETIMEOUT'), 'NETWORK'],
      [new TypeError('The "config.server" property is required and must be of type string.'), 'CONFIG'],
    ];
    for (const [err, code] of cases) expect(classifyConnectError(err, 'h:1433').code, err.message).toBe(code);
  });
});

describe('single user', () => {
  it('rotates: exact statements, AWSCURRENT logs in, the replaced password is rejected, AWSPREVIOUS keeps it', async () => {
    const w = world();
    appServer(w.fake);
    const arn = await w.h.createSecret(secret('app', P0));
    const mark = w.fake.statements.length;
    const r = await w.h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);

    const cur = await w.h.credentials(arn);
    expect(cur.username).toBe('app');
    expect(w.fake.canLogin('app', cur.password, 'appdb')).toBe(true);
    expect(w.fake.canLogin('app', P0, 'appdb')).toBe(false);
    const previous = await w.h.version(arn, w.h.holderOf(arn, 'AWSPREVIOUS')!);
    expect(previous.json?.password).toBe(P0);

    // The login changes its own password; OLD_PASSWORD is the one that logged in.
    expect(w.fake.statements.slice(mark).map((s) => [s.principal, s.database, s.sql, s.params])).toEqual([
      ['app', 'appdb', SQL.version, undefined],
      ['app', 'appdb', SQL.session, undefined],
      ['app', 'appdb', `ALTER LOGIN [app] WITH PASSWORD = N'${lit(cur.password)}' OLD_PASSWORD = N'${lit(P0)}'`, undefined],
      ['app', 'appdb', SQL.check, undefined],
      ['app', 'appdb', SQL.check, undefined],
    ]);
    // setSecret: current, verification with pending; testSecret: pending; finishSecret: pending. None fails.
    expect(w.fake.connects.map((c) => [c.user, c.outcome])).toEqual([['app', 'ok'], ['app', 'ok'], ['app', 'ok'], ['app', 'ok']]);
    for (const c of w.fake.connects) {
      expect(c).toMatchObject({ server: HOST, port: 1433, database: 'appdb', encrypt: true, trustServerCertificate: false, ca: true /* Node roots + Amazon RDS CAs */, connectTimeout: 5000, requestTimeout: 30000 });
    }
  });

  it('rotates three times in a row', async () => {
    const w = world();
    appServer(w.fake);
    const arn = await w.h.createSecret(secret('app', P0));
    const seen = [P0];
    for (let i = 0; i < 3; i++) {
      const r = await w.h.rotate(arn);
      expect(r.succeeded, r.error).toBe(true);
      const cur = await w.h.credentials(arn);
      expect(seen).not.toContain(cur.password);
      expect(w.fake.canLogin('app', cur.password, 'appdb')).toBe(true);
      for (const old of seen) expect(w.fake.canLogin('app', old, 'appdb')).toBe(false);
      seen.push(cur.password);
    }
    expect(w.fake.ddlSince().length).toBe(3);
  });

  it('changes a contained database user with ALTER USER ... OLD_PASSWORD', async () => {
    const w = world();
    w.fake.addDatabase('cdb', { contained: true });
    w.fake.addUser('cdb', 'capp', { password: P0 });
    const arn = await w.h.createSecret(secret('capp', P0, { dbname: 'cdb' }));
    const r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    const cur = await w.h.credentials(arn);
    expect(w.fake.ddlSince()).toEqual([`ALTER USER [capp] WITH PASSWORD = N'${lit(cur.password)}' OLD_PASSWORD = N'${lit(P0)}'`]);
    expect(w.fake.canLogin('capp', cur.password, 'cdb')).toBe(true);
    expect(w.fake.canLogin('capp', P0, 'cdb')).toBe(false);
  });

  it('uses ALTER LOGIN for a login connected to a contained database', async () => {
    const w = world();
    w.fake.addDatabase('cdb', { contained: true });
    w.fake.addLogin('app', P0, { defaultDatabase: 'cdb' });
    w.fake.addUser('cdb', 'app', { login: 'app' });
    const arn = await w.h.createSecret(secret('app', P0, { dbname: 'cdb' }));
    expect((await w.h.rotate(arn)).succeeded).toBe(true);
    expect(w.fake.ddlSince()[0]).toMatch(/^ALTER LOGIN \[app\] WITH PASSWORD = N'.*' OLD_PASSWORD = N'Initial-Pa55word!0'$/);
  });

  it('skips the containment query on SQL Server 2008 (no containment) and uses ALTER LOGIN', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.version = '10.50.6000.34';
    const arn = await w.h.createSecret(secret('app', P0));
    expect((await w.h.rotate(arn)).succeeded).toBe(true);
    expect(w.fake.statements.map((s) => s.sql).filter((s) => s === SQL.session)).toEqual([]);
    expect(w.fake.ddlSince()[0]).toMatch(/^ALTER LOGIN \[app\]/);
  });

  it('recovers through AWSPREVIOUS with AWSPREVIOUS\'s password as OLD_PASSWORD (not AWSCURRENT\'s)', async () => {
    const w = world();
    appServer(w.fake);
    const arn = await w.h.createSecret(secret('app', P0));
    expect((await w.h.rotate(arn)).succeeded).toBe(true);
    // The database went back to the previous password (e.g. restored from a backup).
    w.fake.logins.get('app')!.password = P0;
    const mark = w.fake.statements.length;
    const r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    const cur = await w.h.credentials(arn);
    expect(w.fake.ddlSince(mark)).toEqual([`ALTER LOGIN [app] WITH PASSWORD = N'${lit(cur.password)}' OLD_PASSWORD = N'${lit(P0)}'`]);
    expect(w.fake.canLogin('app', cur.password, 'appdb')).toBe(true);
    expect(w.h.records().some((l) => l.message === 'changed own password' && l.loggedInWith === 'AWSPREVIOUS')).toBe(true);
  });

  it('fails with AUTH when no version logs in, and changes nothing', async () => {
    const w = world();
    appServer(w.fake);
    const arn = await w.h.createSecret(secret('app', 'Wrong-Pa55word!xyz'));
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/Unable to log into the database/);
    expect(r.error).toMatch(/Login failed for user 'app'/);
    expect(errorCodes(w.h)).toContain('AUTH');
    expect(w.h.holderOf(arn, 'AWSCURRENT')).toBe(before);
    expect(w.fake.statements).toEqual([]);
  });

  it('maps a password policy rejection to a CONFIG error with a remedy', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.minPasswordLength = 64;
    const arn = await w.h.createSecret(secret('app', P0));
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/SQL Server refused ALTER LOGIN \[app\]: Password validation failed.*\(error 15116\).*PASSWORD_LENGTH/);
    expect(errorCodes(w.h)).toContain('CONFIG');
    expect(w.fake.canLogin('app', P0, 'appdb')).toBe(true);
  });

  it('refuses PASSWORD_LENGTH above SQL Server\'s 128-character limit before storing anything', async () => {
    const w = world({ PASSWORD_LENGTH: '200' });
    appServer(w.fake);
    const arn = await w.h.createSecret(secret('app', P0));
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/at most 128 characters/);
    expect(w.fake.connects).toEqual([]);
  });
});

describe('alternating users', () => {
  function seedPrivileges(fake: FakeSqlServer): void {
    fake.db('appdb').principals.get('app')!.defaultSchema = 'api';
    fake.addRole('appdb', 'app_role');
    fake.addRoleMember('appdb', 'db_datareader', 'app');
    fake.addRoleMember('appdb', 'app_role', 'app');
    fake.addUser('appdb', 'report_user', {});
    const g = (p: Omit<Parameters<FakeSqlServer['grant']>[1], 'grantee'>) => fake.grant('appdb', { grantee: 'app', ...p });
    g({ class: 1, state: 'G', permissionName: 'SELECT', schemaName: 'dbo', objectName: 'orders' });
    g({ class: 1, state: 'D', permissionName: 'DELETE', schemaName: 'dbo', objectName: 'orders' });
    g({ class: 1, state: 'G', permissionName: 'UPDATE', schemaName: 'dbo', objectName: 'orders', columnName: 'status' });
    g({ class: 3, state: 'W', permissionName: 'EXECUTE', objectName: 'api' });
    g({ class: 0, state: 'G', permissionName: 'VIEW DEFINITION' });
    g({ class: 4, state: 'G', permissionName: 'IMPERSONATE', objectName: 'report_user', principalType: 'S' });
    g({ class: 6, state: 'G', permissionName: 'REFERENCES', schemaName: 'dbo', objectName: 'money2' });
    g({ class: 25, state: 'G', permissionName: 'CONTROL', objectName: 'signing_cert' });
    g({ class: 10, state: 'G', permissionName: 'REFERENCES', schemaName: 'dbo', objectName: 'order_xsd' });
    g({ class: 17, state: 'G', permissionName: 'SEND', objectName: '//shop/Orders]Service' });
    g({ class: 24, state: 'W', permissionName: 'VIEW DEFINITION', objectName: "k'ey" });
  }

  it('rotates app -> app_clone -> app -> app_clone: clone login and database user, roles and permissions copied to the USER', async () => {
    const w = world();
    appServer(w.fake);
    seedPrivileges(w.fake);
    const { arn } = await alternating(w, 'app');

    // Rotation 1 creates the clone.
    let r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    let cur = await w.h.credentials(arn);
    expect(cur.username).toBe('app_clone');
    const pw1 = lit(cur.password);
    expect(w.fake.ddlSince()).toEqual([
      atomic(
        `CREATE LOGIN [app_clone] WITH PASSWORD = N'${pw1}', DEFAULT_DATABASE = [appdb]`,
        'CREATE USER [app_clone] FOR LOGIN [app_clone] WITH DEFAULT_SCHEMA = [api]',
        MARK,
      ),
      'ALTER ROLE [db_datareader] ADD MEMBER [app_clone]',
      'ALTER ROLE [app_role] ADD MEMBER [app_clone]',
      'GRANT SELECT ON OBJECT::[dbo].[orders] TO [app_clone]',
      'DENY DELETE ON OBJECT::[dbo].[orders] TO [app_clone]',
      'GRANT UPDATE ON OBJECT::[dbo].[orders] ([status]) TO [app_clone]',
      'GRANT EXECUTE ON SCHEMA::[api] TO [app_clone] WITH GRANT OPTION',
      'GRANT VIEW DEFINITION TO [app_clone]',
      'GRANT IMPERSONATE ON USER::[report_user] TO [app_clone]',
      'GRANT REFERENCES ON TYPE::[dbo].[money2] TO [app_clone]',
      'GRANT CONTROL ON CERTIFICATE::[signing_cert] TO [app_clone]',
      'GRANT REFERENCES ON XML SCHEMA COLLECTION::[dbo].[order_xsd] TO [app_clone]',
      'GRANT SEND ON SERVICE::[//shop/Orders]]Service] TO [app_clone]',
      "GRANT VIEW DEFINITION ON SYMMETRIC KEY::[k'ey] TO [app_clone] WITH GRANT OPTION",
    ]);
    // The marker: the clone's database user names the original login; name, value and user were bound, not spliced.
    expect(w.fake.db('appdb').principals.get('app_clone')?.properties?.get(MARKER)).toBe('app');
    expect(w.fake.statements.find((x) => x.sql.includes(MARK))?.params).toEqual({ markerName: MARKER, markerValue: 'app', markerUser: 'app_clone' });
    // The DDL ran as the admin, in the child's database, after AWSCURRENT proved it logs in;
    // then the new password was verified by logging in with it.
    expect(new Set(w.fake.statements.filter((s) => !s.sql.startsWith('SELECT 1')).map((s) => `${s.principal}@${s.database}`))).toEqual(new Set([`${ADMIN}@appdb`]));
    expect(w.fake.connects.map((c) => c.user).slice(0, 3)).toEqual(['app', ADMIN, 'app_clone']);
    expect(w.fake.canLogin('app_clone', cur.password, 'appdb')).toBe(true);
    expect(w.fake.canLogin('app', P0, 'appdb')).toBe(true); // the other user keeps working
    expect(w.fake.rolesOf('appdb', 'app_clone')).toEqual(w.fake.rolesOf('appdb', 'app'));
    expect(w.fake.permissionsOf('appdb', 'app_clone')).toEqual(w.fake.permissionsOf('appdb', 'app'));
    expect(w.fake.db('appdb').principals.get('app_clone')?.defaultSchema).toBe('api');

    // Rotation 2 only sets app's password: everything else is already there.
    let mark = w.fake.statements.length;
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    cur = await w.h.credentials(arn);
    expect(cur.username).toBe('app');
    expect(w.fake.ddlSince(mark)).toEqual([`ALTER LOGIN [app] WITH PASSWORD = N'${lit(cur.password)}'`]);
    expect(w.fake.canLogin('app', cur.password, 'appdb')).toBe(true);
    expect(w.fake.canLogin('app', P0, 'appdb')).toBe(false);

    // A grant added to the current user later reaches the alternate user at the next rotation.
    w.fake.grant('appdb', { grantee: 'app', class: 1, state: 'G', permissionName: 'INSERT', schemaName: 'dbo', objectName: 'audit' });
    w.fake.addRole('appdb', 'late_role');
    w.fake.addRoleMember('appdb', 'late_role', 'app');
    mark = w.fake.statements.length;
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    cur = await w.h.credentials(arn);
    expect(cur.username).toBe('app_clone');
    expect(w.fake.ddlSince(mark)).toEqual([
      `ALTER LOGIN [app_clone] WITH PASSWORD = N'${lit(cur.password)}'`,
      'ALTER ROLE [late_role] ADD MEMBER [app_clone]',
      'GRANT INSERT ON OBJECT::[dbo].[audit] TO [app_clone]',
    ]);
    expect(w.fake.canLogin('app_clone', cur.password, 'appdb')).toBe(true);
    expect(w.fake.rolesOf('appdb', 'app_clone')).toEqual(w.fake.rolesOf('appdb', 'app'));
  });

  it('names the clone\'s database user after the current DATABASE user when it differs from the login', async () => {
    const w = world();
    w.fake.addDatabase('appdb');
    w.fake.addRdsMaster(ADMIN, ADMIN_PW);
    w.fake.addLogin('svc', P0, { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', 'svc_user', { login: 'svc' });
    w.fake.addRoleMember('appdb', 'db_datawriter', 'svc_user');
    const { arn } = await alternating(w, 'svc');
    let r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    let cur = await w.h.credentials(arn);
    expect(w.fake.ddlSince()).toEqual([
      atomic(
        `CREATE LOGIN [svc_clone] WITH PASSWORD = N'${lit(cur.password)}', DEFAULT_DATABASE = [appdb]`,
        'CREATE USER [svc_user_clone] FOR LOGIN [svc_clone] WITH DEFAULT_SCHEMA = [dbo]',
        MARK,
      ),
      'ALTER ROLE [db_datawriter] ADD MEMBER [svc_user_clone]',
    ]);
    // Rotating back finds svc's user by the login's SID.
    const mark = w.fake.statements.length;
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    cur = await w.h.credentials(arn);
    expect(w.fake.ddlSince(mark)).toEqual([`ALTER LOGIN [svc] WITH PASSWORD = N'${lit(cur.password)}'`]);
  });

  it('alternates contained database users with CREATE USER / ALTER USER ... WITH PASSWORD', async () => {
    const w = world();
    w.fake.addDatabase('cdb', { contained: true });
    w.fake.addRdsMaster(ADMIN, ADMIN_PW);
    w.fake.addUser('cdb', 'capp', { password: P0, defaultSchema: 'sales' });
    w.fake.addRoleMember('cdb', 'db_datareader', 'capp');
    w.fake.grant('cdb', { grantee: 'capp', class: 3, state: 'G', permissionName: 'SELECT', objectName: 'sales' });
    const { arn } = await alternating(w, 'capp', P0, { dbname: 'cdb' });
    let r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    let cur = await w.h.credentials(arn);
    expect(cur.username).toBe('capp_clone');
    expect(w.fake.ddlSince()).toEqual([
      atomic(`CREATE USER [capp_clone] WITH PASSWORD = N'${lit(cur.password)}', DEFAULT_SCHEMA = [sales]`, MARK),
      'ALTER ROLE [db_datareader] ADD MEMBER [capp_clone]',
      'GRANT SELECT ON SCHEMA::[sales] TO [capp_clone]',
    ]);
    expect(w.fake.canLogin('capp_clone', cur.password, 'cdb')).toBe(true);
    expect(w.fake.logins.has('capp_clone')).toBe(false); // no server login for a contained user
    const mark = w.fake.statements.length;
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    cur = await w.h.credentials(arn);
    expect(w.fake.ddlSince(mark)).toEqual([`ALTER USER [capp] WITH PASSWORD = N'${lit(cur.password)}'`]);
    expect(w.fake.canLogin('capp', cur.password, 'cdb')).toBe(true);
  });

  it('in master, copies the server role memberships and server permissions the RDS master may give; a login-only pair has no marker place', async () => {
    const w = world();
    w.fake.addRdsMaster(ADMIN, ADMIN_PW);
    w.fake.addLogin('app', 'App-Pa55word!xyz');
    w.fake.addLogin('ops', P0);
    w.fake.addServerRole('monitoring');
    w.fake.serverRoleMembers.get('processadmin')!.add('ops'); // the master is a member: it may add members
    w.fake.serverRoleMembers.get('monitoring')!.add('ops'); // user-defined: ALTER ANY SERVER ROLE
    w.fake.serverPermissions.push(
      { grantee: 'ops', class: 100, state: 'G', permissionName: 'VIEW SERVER STATE' },
      { grantee: 'ops', class: 100, state: 'W', permissionName: 'ALTER TRACE' },
      { grantee: 'ops', class: 101, state: 'G', permissionName: 'ALTER', objectName: 'app', principalType: 'S' },
    );
    const { arn } = await alternating(w, 'ops', P0, { dbname: 'master' });
    let r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    let cur = await w.h.credentials(arn);
    expect(w.fake.ddlSince()).toEqual([
      `CREATE LOGIN [ops_clone] WITH PASSWORD = N'${lit(cur.password)}', DEFAULT_DATABASE = [master]`,
      'ALTER SERVER ROLE [processadmin] ADD MEMBER [ops_clone]',
      'ALTER SERVER ROLE [monitoring] ADD MEMBER [ops_clone]',
      'GRANT VIEW SERVER STATE TO [ops_clone]',
      'GRANT ALTER TRACE TO [ops_clone] WITH GRANT OPTION',
      'GRANT ALTER ON LOGIN::[app] TO [ops_clone]',
    ]);
    expect(w.fake.serverRolesOf('ops_clone')).toEqual(['monitoring', 'processadmin']);
    expect(w.fake.permissionsOf('server', 'ops_clone')).toEqual(w.fake.permissionsOf('server', 'ops'));
    expect(w.fake.canLogin('ops_clone', cur.password, 'master')).toBe(true);

    // Back to ops: neither login has a database user in master, so there is no marker to prove the pair.
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/"ops" already exists but is not marked.*"ops_clone" has no database user in master.*ADOPT_UNMARKED_ALTERNATE=true/);
    expect(w.fake.canLogin('ops', P0, 'master')).toBe(true);
    expect(w.h.holderOf(arn, 'AWSCURRENT')).toBe(before);
    // The operator vouches for the pair: the capability check still applies.
    await dropPending(w.h, arn);
    w.h.env = { ADOPT_UNMARKED_ALTERNATE: 'true' };
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    cur = await w.h.credentials(arn);
    expect(cur.username).toBe('ops');
    expect(w.fake.canLogin('ops', cur.password, 'master')).toBe(true);
  });

  it('fails, naming each one, when the RDS master may not give a membership or permission the current login holds', async () => {
    const w = world();
    w.fake.addRdsMaster(ADMIN, ADMIN_PW);
    w.fake.addLogin('app', 'App-Pa55word!xyz');
    w.fake.addLogin('ops', P0);
    w.fake.serverRoleMembers.get('securityadmin')!.add('ops'); // the master is not a member
    w.fake.serverRoleMembers.get('processadmin')!.add('ops');
    w.fake.serverPermissions.push(
      { grantee: 'ops', class: 101, state: 'G', permissionName: 'IMPERSONATE', objectName: 'app', principalType: 'S' }, // CONTROL SERVER only
      { grantee: 'ops', class: 100, state: 'G', permissionName: 'VIEW SERVER STATE' },
    );
    const { arn } = await alternating(w, 'ops', P0, { dbname: 'master' });
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w.h)).toContain('PRIVILEGE');
    expect(r.error).toMatch(/may not give \[ops_clone\] 2 of the current user's memberships\/permissions in the server/);
    expect(r.error).toMatch(/ALTER SERVER ROLE \[securityadmin\] ADD MEMBER \[ops_clone\]: Cannot alter the server role 'securityadmin'.*\(error 15151\)/);
    expect(r.error).toMatch(/GRANT IMPERSONATE ON LOGIN::\[app\] TO \[ops_clone\]: Grantor does not have GRANT permission\. \(error 4613\)/);
    // Everything it may give was given; nothing was promoted.
    expect(w.fake.serverRolesOf('ops_clone')).toEqual(['processadmin']);
    expect(w.h.holderOf(arn, 'AWSCURRENT')).toBe(before);
  });

  it('fails before granting anything when a permission is on a securable class it cannot name (availability group)', async () => {
    const w = world();
    w.fake.addLogin(ADMIN, ADMIN_PW, { admin: true }); // self-managed sysadmin: the refusal is not about privileges
    w.fake.addLogin('ops', P0);
    w.fake.serverPermissions.push(
      { grantee: 'ops', class: 100, state: 'G', permissionName: 'VIEW SERVER STATE' },
      { grantee: 'ops', class: 108, state: 'G', permissionName: 'CONTROL', objectName: 'ag1' },
    );
    const { arn } = await alternating(w, 'ops', P0, { dbname: 'master' });
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/Cannot copy 1 server permission\(s\) of "ops" to "ops_clone": GRANT CONTROL on securable class 108 \[ag1\].*Nothing was granted/);
    expect(w.fake.permissionsOf('server', 'ops_clone').some((p) => p.includes('VIEW SERVER STATE'))).toBe(false);
  });

  it('maps an orphaned database user of the clone\'s name to the clone login (ALTER USER ... WITH LOGIN)', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.addUser('appdb', 'app_clone', {}); // left behind: its login was dropped
    const { arn } = await alternating(w, 'app');
    const r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    // The orphan lacked CONNECT (its login was gone); it gets the current user's.
    const cur = await w.h.credentials(arn);
    expect(w.fake.ddlSince()).toEqual([
      atomic(`CREATE LOGIN [app_clone] WITH PASSWORD = N'${lit(cur.password)}', DEFAULT_DATABASE = [appdb]`, 'ALTER USER [app_clone] WITH LOGIN = [app_clone]', MARK),
      'GRANT CONNECT TO [app_clone]',
    ]);
    expect(w.fake.canLogin('app_clone', cur.password, 'appdb')).toBe(true);
  });

  it('refuses to take over a clone name held by a Windows login or by another login\'s user, changing nothing', async () => {
    const w1 = world();
    appServer(w1.fake);
    w1.fake.addLogin('app_clone', 'Unused-Pa55word!', { type: 'U' });
    const a = await alternating(w1, 'app');
    const before = w1.h.holderOf(a.arn, 'AWSCURRENT');
    let r = await w1.h.rotate(a.arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/"app_clone" exists but is not a SQL login; refusing to take it over/);
    expect(w1.fake.ddlSince()).toEqual([]);
    expect(w1.h.holderOf(a.arn, 'AWSCURRENT')).toBe(before);

    const w2 = world();
    appServer(w2.fake);
    w2.fake.addLogin('intruder', 'Intruder-Pa55word!');
    w2.fake.addUser('appdb', 'app_clone', { login: 'intruder' });
    const b = await alternating(w2, 'app');
    r = await w2.h.rotate(b.arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/"app_clone" in appdb exists and does not belong to login "app_clone"/);
    expect(w2.fake.db('appdb').principals.get('app_clone')?.sid).toBe(w2.fake.logins.get('intruder')!.sid);
  });

  it('refuses an admin secret for another host', async () => {
    const w = world();
    appServer(w.fake);
    const adminArn = await w.h.createSecret({ engine: 'sqlserver', host: 'other.example.com', username: ADMIN, password: ADMIN_PW });
    const arn = await w.h.createSecret(secret('app', P0, { masterarn: adminArn }));
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/admin secret's host "other.example.com" \(from the admin secret\) is not the host/);
    expect(w.fake.connects.map((c) => c.user)).not.toContain(ADMIN);
  });

  it('works with an RDS engine name and an RDS-managed admin secret (username and password only, found through its RDS tag)', async () => {
    const w = world();
    appServer(w.fake);
    const dbArn = w.rds.addInstance({ id: 'orders', engine: 'sqlserver-se', address: HOST, port: 1433 });
    const adminArn = await w.h.createSecret({ username: ADMIN, password: ADMIN_PW });
    w.h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn }]);
    const arn = await w.h.createSecret(secret('app', P0, { engine: 'sqlserver-se', masterarn: adminArn }));
    const r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    expect(w.rds.calls.map((c) => c.action)).toEqual(['DescribeDBInstances']);
    const admin = w.fake.connects.find((c) => c.user === ADMIN)!;
    // No "ssl" in an RDS-managed secret: the admin logs in with the default, verified TLS.
    expect(admin).toMatchObject({ server: HOST, port: 1433, database: 'appdb', encrypt: true });
  });

  it('reports a PRIVILEGE error with a remedy when the admin may not create logins (no ALTER ANY LOGIN)', async () => {
    const w = world();
    appServer(w.fake);
    // db_owner in appdb and VIEW ANY DEFINITION (so it sees the logins), but no ALTER ANY LOGIN: the server refuses.
    w.fake.addLogin('weak_admin', 'Weak-Admin-Pa55word!');
    w.fake.addUser('appdb', 'weak_admin', { login: 'weak_admin' });
    w.fake.addRoleMember('appdb', 'db_owner', 'weak_admin');
    w.fake.serverPermissions.push({ grantee: 'weak_admin', class: 100, state: 'G', permissionName: 'VIEW ANY DEFINITION' });
    const adminArn = await w.h.createSecret({ engine: 'sqlserver', host: HOST, username: 'weak_admin', password: 'Weak-Admin-Pa55word!' });
    const arn = await w.h.createSecret(secret('app', P0, { masterarn: adminArn }));
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/SQL Server refused CREATE LOGIN \[app_clone\]: User does not have permission.*\(error 15247\).*permissions the rotation needs/);
    expect(errorCodes(w.h)).toContain('PRIVILEGE');
    expect(w.fake.logins.has('app_clone')).toBe(false);
  });

  it('never alters the admin\'s own login, whatever name resolves to it (the server decides, not a string comparison)', async () => {
    // The framework compares names as strings; SQL Server's collation also equates names that
    // differ in case, width or trailing spaces. The engine asks the server (SUSER_SID) instead.
    const w = world();
    appServer(w.fake);
    const engine = createSqlServerEngine({ connect: w.fake.connect });
    const log = new Logger(() => undefined);
    const admin = await engine.connect({ engine: 'sqlserver', host: HOST, dbname: 'appdb', username: ADMIN, password: ADMIN_PW } as DbSecret,
      { tls: { enabled: true, verifyChain: true, verifyHostname: true }, connectTimeoutMs: 5000, statementTimeoutMs: 30_000, log, env: {} });
    try {
      const current = secret('app', P0) as DbSecret;
      const change = { currentUser: 'app', alternateUser: ADMIN, newPassword: 'Stolen-Pa55word!x', current, env: {} };
      await expect(engine.upsertAlternateUser(admin, change, { env: {}, log })).rejects.toThrow(/is the admin secret's own principal.*refusing/);
    } finally {
      await engine.close(admin);
    }
    expect(w.fake.ddlSince()).toEqual([]);
    expect(w.fake.canLogin(ADMIN, ADMIN_PW, 'appdb')).toBe(true);
  });

  it('says the admin may lack ALTER ANY LOGIN when it cannot see the current login, changing nothing', async () => {
    const w = world();
    appServer(w.fake);
    // A login with a user in appdb but no server-level rights: sys.server_principals shows it only itself.
    w.fake.addLogin('weak_admin', 'Weak-Admin-Pa55word!');
    w.fake.addUser('appdb', 'weak_admin', { login: 'weak_admin' });
    // It may see the database's metadata (the DDL trigger check passes), just not other logins.
    w.fake.grant('appdb', { grantee: 'weak_admin', class: 0, state: 'G', permissionName: 'VIEW DEFINITION' });
    const adminArn = await w.h.createSecret({ engine: 'sqlserver', host: HOST, username: 'weak_admin', password: 'Weak-Admin-Pa55word!' });
    const arn = await w.h.createSecret(secret('app', P0, { masterarn: adminArn }));
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/"app" is neither a SQL Server login.*or the admin user cannot see it.*ALTER ANY LOGIN/);
    expect(w.fake.ddlSince()).toEqual([]);
    expect(w.h.holderOf(arn, 'AWSCURRENT')).toBe(before);
  });

  it('refuses on SQL Server 2008 (no ALTER ROLE ... ADD MEMBER) with a clear error', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.version = '10.0.6000.29';
    const { arn } = await alternating(w, 'app');
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/needs SQL Server 2012 or later/);
    expect(w.fake.ddlSince()).toEqual([]);
  });
});

describe('the alternate user must be the pair (checkAlternateUser), as attacks', () => {
  /** The attacker's own login (anyone allowed to create logins can make one) and a child secret naming it. */
  async function attackerSecret(w: World, login: string, opts: { dbUser?: boolean } = {}): Promise<string> {
    const pw = 'Attacker-Pa55word!1';
    if (!w.fake.logins.has(login)) w.fake.addLogin(login, pw, { defaultDatabase: 'appdb' });
    if (opts.dbUser !== false && !w.fake.db('appdb').principals.has(login)) w.fake.addUser('appdb', login, { login });
    return (await alternating(w, login, pw)).arn;
  }

  /** The victim still logs in with its own password, and no value the rotation generated does. */
  async function assertUnchanged(w: World, arn: string, victim: string, victimPw: string, before: string | undefined): Promise<void> {
    expect(w.fake.canLogin(victim, victimPw, 'appdb')).toBe(true);
    expect(w.h.holderOf(arn, 'AWSCURRENT')).toBe(before);
    const pendingId = w.h.holderOf(arn, 'AWSPENDING');
    if (pendingId) {
      const pending = (await w.h.version(arn, pendingId)).json!;
      expect(w.fake.canLogin(victim, String(pending.password), 'appdb')).toBe(false);
    }
    expect(w.fake.ddlSince().filter((x) => x.includes(`[${victim}]`))).toEqual([]);
  }

  it('X_clone -> X where X is a privileged login (securityadmin, server permission): PRIVILEGE, X unchanged', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.addLogin('boss', 'Boss-Pa55word!1', { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', 'boss', { login: 'boss' });
    w.fake.serverRoleMembers.get('securityadmin')!.add('boss');
    w.fake.serverPermissions.push({ grantee: 'boss', class: 100, state: 'G', permissionName: 'VIEW SERVER STATE' });
    const arn = await attackerSecret(w, 'boss_clone');
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w.h)).toContain('PRIVILEGE');
    expect(r.error).toMatch(/"boss" holds 2 capabilities on the server that "boss_clone" lacks \(server role \[securityadmin\]; GRANT VIEW SERVER STATE on the server\)/);
    await assertUnchanged(w, arn, 'boss', 'Boss-Pa55word!1', before);
  });

  it('X_clone -> X where X is an unrelated application with database privileges: PRIVILEGE, X unchanged', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.addLogin('billing', 'Billing-Pa55word!1', { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', 'billing', { login: 'billing' });
    w.fake.addRoleMember('appdb', 'db_datawriter', 'billing');
    w.fake.grant('appdb', { grantee: 'billing', class: 1, state: 'W', permissionName: 'SELECT', schemaName: 'dbo', objectName: 'invoices' });
    const arn = await attackerSecret(w, 'billing_clone');
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w.h)).toContain('PRIVILEGE');
    expect(r.error).toMatch(/"billing" holds 2 capabilities in database appdb \(database user \[billing\]\) that "billing_clone" lacks \(database role \[db_datawriter\]; GRANT SELECT \(WITH GRANT OPTION\) on securable class 1 \[dbo\]\.\[invoices\]\)/);
    await assertUnchanged(w, arn, 'billing', 'Billing-Pa55word!1', before);
  });

  it('X_clone -> X where X has no more than the attacker but the pair is unmarked: PRIVILEGE naming ADOPT_UNMARKED_ALTERNATE', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.addLogin('quiet', 'Quiet-Pa55word!1', { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', 'quiet', { login: 'quiet' });
    const arn = await attackerSecret(w, 'quiet_clone');
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w.h)).toContain('PRIVILEGE');
    expect(r.error).toMatch(/"quiet" already exists but is not marked.*\[quiet_clone\] in appdb carries no extended property rotation-lambdas:alternate-of naming "quiet".*ADOPT_UNMARKED_ALTERNATE=true/);
    await assertUnchanged(w, arn, 'quiet', 'Quiet-Pa55word!1', before);
  });

  it('X -> X_clone where an unrelated, unmarked X_clone exists: refused; with ADOPT_UNMARKED_ALTERNATE=true it is adopted and marked', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.addRoleMember('appdb', 'db_datareader', 'app');
    w.fake.addLogin('app_clone', 'Other-Pa55word!1', { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', 'app_clone', { login: 'app_clone' });
    const { arn } = await alternating(w, 'app');
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    let r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/ADOPT_UNMARKED_ALTERNATE/);
    await assertUnchanged(w, arn, 'app_clone', 'Other-Pa55word!1', before);

    await dropPending(w.h, arn);
    w.h.env = { ADOPT_UNMARKED_ALTERNATE: 'yes' };
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    const cur = await w.h.credentials(arn);
    expect(cur.username).toBe('app_clone');
    expect(w.fake.db('appdb').principals.get('app_clone')?.properties?.get(MARKER)).toBe('app');
    // Marked now: the next rotations need no opt-in.
    w.h.env = {};
    for (const expected of ['app', 'app_clone']) {
      r = await w.h.rotate(arn);
      expect(r.succeeded, r.error).toBe(true);
      expect((await w.h.credentials(arn)).username).toBe(expected);
    }
  });

  it('a disabled login, a server role, a user without a login: STATE, nothing changed', async () => {
    const w1 = world();
    appServer(w1.fake);
    w1.fake.addLogin('app_clone', 'Disabled-Pa55word!1', { defaultDatabase: 'appdb' }).disabled = true;
    const a = await alternating(w1, 'app');
    let r = await w1.h.rotate(a.arn);
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w1.h)).toContain('STATE');
    expect(r.error).toMatch(/login "app_clone" exists but is disabled/);
    expect(w1.fake.logins.get('app_clone')!.password).toBe('Disabled-Pa55word!1');
    expect(w1.fake.ddlSince()).toEqual([]);

    const w2 = world();
    appServer(w2.fake);
    const b = await (async () => {
      w2.fake.addLogin('setupadmin_clone', 'Attacker-Pa55word!1', { defaultDatabase: 'appdb' });
      w2.fake.addUser('appdb', 'setupadmin_clone', { login: 'setupadmin_clone' });
      return alternating(w2, 'setupadmin_clone', 'Attacker-Pa55word!1');
    })();
    r = await w2.h.rotate(b.arn);
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w2.h)).toContain('STATE');
    expect(r.error).toMatch(/server principal "setupadmin" exists but is not a SQL login/);
    expect(w2.fake.ddlSince()).toEqual([]);

    const w3 = world();
    w3.fake.addDatabase('cdb', { contained: true });
    w3.fake.addRdsMaster(ADMIN, ADMIN_PW);
    w3.fake.addUser('cdb', 'capp', { password: P0 });
    w3.fake.addUser('cdb', 'capp_clone', {}); // WITHOUT LOGIN
    const c = await alternating(w3, 'capp', P0, { dbname: 'cdb' });
    r = await w3.h.rotate(c.arn);
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w3.h)).toContain('STATE');
    expect(r.error).toMatch(/"capp_clone" in cdb exists but is not a contained user with a password/);
    expect(w3.fake.ddlSince()).toEqual([]);
  });

  it('contained users: a privileged contained X refused for X_clone; the pair is marked on the clone and rotates both ways', async () => {
    const w = world();
    w.fake.addDatabase('cdb', { contained: true });
    w.fake.addRdsMaster(ADMIN, ADMIN_PW);
    w.fake.addUser('cdb', 'cowner', { password: 'Owner-Pa55word!1' });
    w.fake.addRoleMember('cdb', 'db_owner', 'cowner');
    w.fake.addUser('cdb', 'cowner_clone', { password: 'Attacker-Pa55word!1' });
    const a = await alternating(w, 'cowner_clone', 'Attacker-Pa55word!1', { dbname: 'cdb' });
    let r = await w.h.rotate(a.arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/"cowner" holds 1 capability in database cdb.*database role \[db_owner\]/);
    expect(w.fake.canLogin('cowner', 'Owner-Pa55word!1', 'cdb')).toBe(true);

    w.fake.addUser('cdb', 'capp', { password: P0 });
    const b = await alternating(w, 'capp', P0, { dbname: 'cdb' });
    for (const expected of ['capp_clone', 'capp', 'capp_clone']) {
      r = await w.h.rotate(b.arn);
      expect(r.succeeded, r.error).toBe(true);
      expect((await w.h.credentials(b.arn)).username).toBe(expected);
    }
    expect(w.fake.db('cdb').principals.get('capp_clone')?.properties?.get(MARKER)).toBe('capp');
  });

  it('an orphaned database user with privileges is not remapped to a new clone login: PRIVILEGE before anything changes', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.addUser('appdb', 'app_clone', {});
    w.fake.addRoleMember('appdb', 'db_owner', 'app_clone');
    const { arn } = await alternating(w, 'app');
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/"app_clone" holds 1 capability in database appdb.*database role \[db_owner\]/);
    expect(w.fake.logins.has('app_clone')).toBe(false);
    expect(w.fake.ddlSince()).toEqual([]);
  });

  it('a concurrent duplicate setSecret that creates the clone first (error 15025) converges: the clone is updated instead', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.addRoleMember('appdb', 'db_datareader', 'app');
    w.fake.failOn(/CREATE LOGIN \[app_clone\]/, () => {
      // The other invocation won the race: a marked clone with its own user.
      w.fake.addLogin('app_clone', 'Set-By-The-Other-1', { defaultDatabase: 'appdb' });
      w.fake.addUser('appdb', 'app_clone', { login: 'app_clone' }).properties = new Map([[MARKER, 'app']]);
      return Object.assign(new RequestError("The server principal 'app_clone' already exists.", 'EREQUEST'), { number: 15025 });
    });
    const { arn } = await alternating(w, 'app');
    const r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    const cur = await w.h.credentials(arn);
    expect(cur.username).toBe('app_clone');
    expect(w.fake.canLogin('app_clone', cur.password, 'appdb')).toBe(true);
    expect(w.fake.rolesOf('appdb', 'app_clone')).toEqual(w.fake.rolesOf('appdb', 'app'));
    expect(w.h.records().some((l) => String(l.message).includes('created concurrently'))).toBe(true);
  });

  it('a creation interrupted inside the transaction leaves nothing behind, and the retry converges to a marked pair', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.failOn(/sp_addextendedproperty/, () => Object.assign(new Error('Lost connection'), { code: 'ESOCKET' }));
    const { arn } = await alternating(w, 'app');
    // The fault struck the batch after CREATE LOGIN / CREATE USER were parsed: the fake rolls the transaction back.
    let r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w.h)).toContain('NETWORK');
    expect(w.fake.logins.has('app_clone')).toBe(false);
    await dropPending(w.h, arn);
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    expect(w.fake.db('appdb').principals.get('app_clone')?.properties?.get(MARKER)).toBe('app');
  });
});

describe('STATEMENT_TIMEOUT_MS and ADOPT_UNMARKED_ALTERNATE', () => {
  it('a server that accepts logins and never answers a statement fails setSecret with NETWORK naming STATEMENT_TIMEOUT_MS', async () => {
    const w = world({ STATEMENT_TIMEOUT_MS: '300' });
    appServer(w.fake);
    w.fake.stallStatements = true;
    const arn = await w.h.createSecret(secret('app', P0));
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    const started = Date.now();
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(errorCodes(w.h)).toContain('NETWORK');
    expect(r.error).toMatch(/did not answer a statement within 300 ms \(STATEMENT_TIMEOUT_MS\)/);
    expect(w.fake.connects.every((c) => c.requestTimeout === 300)).toBe(true);
    expect(w.h.holderOf(arn, 'AWSCURRENT')).toBe(before);
    expect(w.fake.canLogin('app', P0, 'appdb')).toBe(true);
  });

  it('an invalid ADOPT_UNMARKED_ALTERNATE fails createSecret before AWSPENDING is written', async () => {
    for (const env of [{ ADOPT_UNMARKED_ALTERNATE: 'maybe' }, { ADOPT_UNMARKED_ALTERNATE: 'ture' }]) {
      const w = world(env);
      appServer(w.fake);
      const arn = await w.h.createSecret(secret('app', P0));
      const r = await w.h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(new RegExp(`${Object.keys(env)[0]} must be`));
      expect(errorCodes(w.h)).toContain('CONFIG');
      // RotateSecret's own placeholder carries no value: createSecret wrote none.
      const pending = w.h.holderOf(arn, 'AWSPENDING');
      if (pending) await expect(w.h.version(arn, pending)).rejects.toThrow(/can't find/);
      expect(w.fake.statements).toEqual([]);
    }
  });
});

describe('hostile usernames and passwords', () => {
  const USER = `O'Brien] "adm"; \\ 100% Ünï 𝄞`;
  const OLD = `p'a"s]s\\w;o %rd Ü'--`;
  // Every generated password contains a quote: punctuation limited to ' (GetRandomPassword requires each type).
  const QUOTES_ONLY = { EXCLUDE_CHARACTERS: PUNCTUATION.replace("'", '') };

  it('single user: exact ALTER LOGIN with ] doubled in the name and \' doubled in both passwords', async () => {
    const w = world(QUOTES_ONLY);
    w.fake.addDatabase('appdb');
    w.fake.addLogin(USER, OLD, { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', USER, { login: USER });
    const arn = await w.h.createSecret(secret(USER, OLD));
    const r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    const cur = await w.h.credentials(arn);
    expect(cur.password).toContain("'");
    expect(w.fake.ddlSince()).toEqual([
      `ALTER LOGIN [O'Brien]] "adm"; \\ 100% Ünï 𝄞] WITH PASSWORD = N'${cur.password.split("'").join("''")}' OLD_PASSWORD = N'p''a"s]s\\w;o %rd Ü''--'`,
    ]);
    expect(w.fake.canLogin(USER, cur.password, 'appdb')).toBe(true);
    expect(w.fake.canLogin(USER, OLD, 'appdb')).toBe(false);
  });

  it('single user: an exact hostile AWSPENDING password reaches the server unchanged', async () => {
    const w = world();
    w.fake.addDatabase('appdb');
    w.fake.addLogin(USER, OLD, { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', USER, { login: USER });
    const arn = await w.h.createSecret(secret(USER, OLD));
    const NEW = `N'ew"];\\--ü'' OR 1=1; -- ]]`;
    const run = w.h.begin(arn);
    await w.h.client.send(new PutSecretValueCommand({
      SecretId: arn, ClientRequestToken: run.versionId, SecretString: JSON.stringify(secret(USER, NEW)), VersionStages: ['AWSPENDING'],
    }));
    w.h.sensitive(NEW);
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) await w.h.invoke(run.event(step));
    run.complete();
    expect(w.fake.ddlSince()).toEqual([
      `ALTER LOGIN [O'Brien]] "adm"; \\ 100% Ünï 𝄞] WITH PASSWORD = N'N''ew"];\\--ü'''' OR 1=1; -- ]]' OLD_PASSWORD = N'p''a"s]s\\w;o %rd Ü''--'`,
    ]);
    expect(w.fake.canLogin(USER, NEW, 'appdb')).toBe(true);
    expect((await w.h.credentials(arn)).password).toBe(NEW);
  });

  it('alternating users: exact CREATE LOGIN / CREATE USER / ALTER ROLE with hostile user, role and schema names', async () => {
    const w = world(QUOTES_ONLY);
    const user = `Ap'p] "x";\\`;
    const role = `ro]le'; DROP`;
    w.fake.addDatabase('appdb');
    w.fake.addRdsMaster(ADMIN, ADMIN_PW);
    w.fake.addLogin(user, OLD, { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', user, { login: user, defaultSchema: `sch]'ema` });
    w.fake.addRole('appdb', role);
    w.fake.addRoleMember('appdb', role, user);
    w.fake.grant('appdb', { grantee: user, class: 1, state: 'G', permissionName: 'SELECT', schemaName: `sch]'ema`, objectName: `t]b"l`, columnName: `c]ol` });
    const { arn } = await alternating(w, user, OLD);
    let r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    let cur = await w.h.credentials(arn);
    expect(cur.username).toBe(`${user}_clone`);
    expect(w.fake.ddlSince()).toEqual([
      atomic(
        `CREATE LOGIN [Ap'p]] "x";\\_clone] WITH PASSWORD = N'${cur.password.split("'").join("''")}', DEFAULT_DATABASE = [appdb]`,
        `CREATE USER [Ap'p]] "x";\\_clone] FOR LOGIN [Ap'p]] "x";\\_clone] WITH DEFAULT_SCHEMA = [sch]]'ema]`,
        MARK,
      ),
      `ALTER ROLE [ro]]le'; DROP] ADD MEMBER [Ap'p]] "x";\\_clone]`,
      `GRANT SELECT ON OBJECT::[sch]]'ema].[t]]b"l] ([c]]ol]) TO [Ap'p]] "x";\\_clone]`,
    ]);
    expect(w.fake.canLogin(`${user}_clone`, cur.password, 'appdb')).toBe(true);
    const mark = w.fake.statements.length;
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    cur = await w.h.credentials(arn);
    expect(w.fake.ddlSince(mark)).toEqual([`ALTER LOGIN [Ap'p]] "x";\\] WITH PASSWORD = N'${cur.password.split("'").join("''")}'`]);
    expect(w.fake.canLogin(user, cur.password, 'appdb')).toBe(true);
  });

  it('refuses a current password with a line break (T-SQL line continuation) without sending or logging it', async () => {
    const w = world();
    const bad = 'Bad\\\nPa55word!';
    w.fake.addDatabase('appdb');
    w.fake.addLogin('app', bad, { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', 'app', { login: 'app' });
    const arn = await w.h.createSecret(secret('app', bad));
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/current password contains a NUL or line-break character/);
    expect(w.fake.ddlSince()).toEqual([]);
    expect(w.fake.canLogin('app', bad, 'appdb')).toBe(true);
  });
});

describe('replaying steps', () => {
  const twice: NonNullable<RotationHarness['intercept']> = async (e, invoke) => {
    await invoke(e);
    await invoke(e);
  };

  it('single user: every step runs twice; the password is changed once', async () => {
    const w = world();
    appServer(w.fake);
    const arn = await w.h.createSecret(secret('app', P0));
    const steps: string[] = [];
    w.h.intercept = (e, invoke) => twice(e, (x) => {
      steps.push(x.Step);
      return invoke(x);
    });
    const r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    expect(steps).toEqual(['createSecret', 'createSecret', 'setSecret', 'setSecret', 'testSecret', 'testSecret', 'finishSecret', 'finishSecret']);
    expect(w.fake.ddlSince().filter((s) => s.startsWith('ALTER LOGIN'))).toHaveLength(1);
    const cur = await w.h.credentials(arn);
    expect(w.fake.canLogin('app', cur.password, 'appdb')).toBe(true);
    expect(w.h.records().some((l) => String(l.message).startsWith('AWSPENDING already logs in'))).toBe(true);
  });

  it('alternating users: three rotations with every step run twice; a replayed setSecret re-applies the same state', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.addRoleMember('appdb', 'db_datareader', 'app');
    const { arn } = await alternating(w, 'app');
    w.h.intercept = twice;
    for (const expected of ['app_clone', 'app', 'app_clone']) {
      const mark = w.fake.statements.length;
      const r = await w.h.rotate(arn);
      expect(r.succeeded, r.error).toBe(true);
      const cur = await w.h.credentials(arn);
      expect(cur.username).toBe(expected);
      expect(w.fake.canLogin(expected, cur.password, 'appdb')).toBe(true);
      // The framework always re-runs the (idempotent) upsert: same password, nothing else twice.
      const set = `LOGIN [${expected}] WITH PASSWORD = N'${lit(cur.password)}'`;
      expect(w.fake.ddlSince(mark).filter((s) => !s.startsWith('ALTER ROLE'))).toEqual(
        expected === 'app_clone' && mark === 0
          ? [atomic(`CREATE ${set}, DEFAULT_DATABASE = [appdb]`, 'CREATE USER [app_clone] FOR LOGIN [app_clone] WITH DEFAULT_SCHEMA = [dbo]', MARK), `ALTER ${set}`]
          : [`ALTER ${set}`, `ALTER ${set}`],
      );
    }
    expect(w.fake.ddlSince().filter((s) => s.startsWith('ALTER ROLE'))).toEqual(['ALTER ROLE [db_datareader] ADD MEMBER [app_clone]']);
  });
});

describe('invalid secrets', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['missing host', { host: undefined }, /missing the "host" field/],
    ['missing username', { username: undefined }, /missing the "username" field/],
    ['missing password', { password: undefined }, /missing the "password" field/],
    ['port not a number', { port: 'fourteen' }, /"port" field must be a port number/],
    ['unknown ssl mode', { ssl: 'sometimes' }, /"ssl" field must be/],
    ['another engine', { engine: 'mysql' }, /engine "mysql".*expected one of sqlserver, sqlserver-ee/],
    ['dbname not a string', { dbname: 5 }, /"dbname" field must be a string/],
  ];
  for (const [name, change, message] of cases) {
    it(`${name}: a clear error naming the field; AWSCURRENT untouched; the server never contacted`, async () => {
      const w = world();
      appServer(w.fake);
      const value = JSON.parse(JSON.stringify({ ...secret('app', P0), ...change }));
      const arn = await w.h.createSecret(value);
      const before = await w.h.current(arn);
      const r = await w.h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(message);
      expect(errorCodes(w.h)).toContain('SECRET_FORMAT');
      const after = await w.h.current(arn);
      expect([after.versionId, after.value]).toEqual([before.versionId, before.value]);
      expect(w.fake.connects).toEqual([]);
    });
  }
});

describe('TLS settings reach the driver', () => {
  it('"require" encrypts without verification; sslCa is passed as the CA; "verify-ca" leaves the chain to the guard', async () => {
    for (const [ssl, trust] of [['require', true], ['verify-ca', true], [true, false]] as const) {
      const w = world();
      appServer(w.fake);
      const arn = await w.h.createSecret(secret('app', P0, { ssl, sslCa: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' }));
      expect((await w.h.rotate(arn)).succeeded).toBe(true);
      for (const c of w.fake.connects) expect([c.encrypt, c.trustServerCertificate, c.ca]).toEqual([true, trust, true]);
    }
  });

  it('fails with TLS when "ssl": false meets a server that forces encryption, and changes nothing', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.forceEncryption = true;
    const arn = await w.h.createSecret(secret('app', P0, { ssl: false }));
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/server requires encryption/);
    expect(errorCodes(w.h)).toContain('TLS');
    expect(w.fake.statements).toEqual([]);
  });

  it('"prefer" falls back to plaintext with a warning when certificate verification fails', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.rejectTls = true;
    const arn = await w.h.createSecret(secret('app', P0, { ssl: 'prefer' }));
    const r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    expect(w.fake.connects.filter((c) => c.outcome === 'ok').every((c) => c.encrypt === false)).toBe(true);
    expect(w.h.records().some((l) => l.level === 'WARN' && String(l.message).includes('WITHOUT TLS'))).toBe(true);
  });

  it('the default TLS mode fails with TLS (no plaintext retry) when certificate verification fails', async () => {
    const w = world();
    appServer(w.fake);
    w.fake.rejectTls = true;
    const arn = await w.h.createSecret(secret('app', P0));
    const r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w.h)).toContain('TLS');
    expect(w.fake.connects.every((c) => c.encrypt === true)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// The real driver (tedious) on the production connection path

describe('the production connection path (real tedious)', () => {
  function captured(): { log: Logger; lines: string[] } {
    const lines: string[] = [];
    return { log: new Logger((l) => lines.push(l), {}, undefined, 'debug'), lines };
  }

  async function listen(server: Server): Promise<number> {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  }

  const PW = 'Never-Logged-Pa55word!';

  it('a closed port fails with NETWORK; the debug line describes the attempt without the password', async () => {
    const probe = createServer();
    const port = await listen(probe);
    await new Promise((r) => probe.close(r));
    const { log, lines } = captured();
    const err = await packagedEngine.connect(
      { engine: 'sqlserver', host: '127.0.0.1', port, username: 'app', password: PW },
      { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 3000, statementTimeoutMs: 30_000, log, env: {} },
    ).then(() => undefined, (e: unknown) => e as Error & { code?: string });
    expect(err?.code).toBe('NETWORK');
    expect(err?.message).toMatch(/127\.0\.0\.1/);
    expect(err?.message).not.toContain(PW);
    expect(lines.join('\n')).not.toContain(PW);
    expect(JSON.parse(lines[0])).toMatchObject({ message: 'connecting to SQL Server', host: '127.0.0.1', port, database: 'master', username: 'app', encrypt: false });
  });

  it('a server that accepts the login and then never answers fails the statement with NETWORK naming STATEMENT_TIMEOUT_MS', async () => {
    const stub = await startTdsStub({ encryption: 'not-supported', login: 'accept-then-stall' });
    const { log } = captured();
    try {
      const conn = await packagedEngine.connect(
        { engine: 'sqlserver', host: '127.0.0.1', port: stub.port, username: 'app', password: PW },
        { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 3000, statementTimeoutMs: 400, log, env: {} },
      );
      const started = Date.now();
      const err = await packagedEngine.check(conn, { env: {}, log: new Logger(() => undefined) }).then(() => undefined, (e: unknown) => e as Error & { code?: string });
      await packagedEngine.close(conn);
      expect(err?.code).toBe('NETWORK');
      expect(err?.message).toMatch(/did not answer a statement within 400 ms \(STATEMENT_TIMEOUT_MS\)/);
      expect(Date.now() - started).toBeLessThan(4000);
      expect(stub.unanswered).toBe(1); // the login worked; the check was sent and never answered
    } finally {
      await stub.close();
    }
  });

  it('a server that never answers fails with NETWORK after the connect timeout', async () => {
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    const port = await listen(silent);
    try {
      const started = Date.now();
      const err = await packagedEngine.connect(
        { engine: 'sqlserver', host: '127.0.0.1', port, username: 'app', password: PW },
        { tls: { enabled: true, verifyChain: true, verifyHostname: true }, connectTimeoutMs: 400, statementTimeoutMs: 30_000, log: captured().log, env: {} },
      ).then(() => undefined, (e: unknown) => e as Error & { code?: string });
      expect(err?.code).toBe('NETWORK');
      expect(err?.message).toMatch(/in 400ms/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});

describe('the TLS policy on the wire (real tedious against a TDS server stub)', () => {
  let certs: TestCerts;
  /** Signed by the test CA, for db.internal only: the chain verifies, the host name 127.0.0.1 does not. */
  let wrongNameCert: string;
  let wrongNameKey: string;
  const PW = 'Wire-Pa55word!never-logged';

  beforeAll(() => {
    certs = makeTestCerts();
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: certs.dir, stdio: 'pipe' });
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=db.internal', '-keyout', 'other.key', '-out', 'other.csr']);
    writeFileSync(join(certs.dir, 'other.ext'), 'subjectAltName=DNS:db.internal\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    run(['x509', '-req', '-in', 'other.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'other.ext', '-out', 'other.pem']);
    wrongNameCert = readFileSync(join(certs.dir, 'other.pem'), 'utf8');
    wrongNameKey = readFileSync(join(certs.dir, 'other.key'), 'utf8');
  });

  const stubs: TdsStub[] = [];
  afterEach(async () => {
    for (const s of stubs.splice(0)) await s.close();
  });

  async function stub(options: TdsStubOptions): Promise<TdsStub> {
    const s = await startTdsStub(options);
    stubs.push(s);
    return s;
  }

  const goodCert = (): TdsStubOptions => ({ encryption: 'on', cert: readFileSync(certs.serverCertFile, 'utf8'), key: readFileSync(certs.serverKeyFile, 'utf8') });

  /** engine.connect through the production factory; the error code and message (never the password). */
  async function attempt(s: TdsStub, tls: TlsOptions): Promise<{ code?: string; message: string }> {
    const lines: string[] = [];
    const err = await packagedEngine.connect(
      { engine: 'sqlserver', host: '127.0.0.1', port: s.port, username: 'app', password: PW },
      { tls, connectTimeoutMs: 5000, statementTimeoutMs: 30_000, log: new Logger((l) => lines.push(l), {}, undefined, 'debug'), env: {} },
    ).then(() => undefined, (e: unknown) => e as Error & { code?: string });
    expect(err, 'the stub never accepts a login').toBeDefined();
    expect(`${err!.message}\n${lines.join('\n')}`).not.toContain(PW);
    return { code: err!.code, message: err!.message };
  }

  const full = (ca?: string): TlsOptions => ({ enabled: true, verifyChain: true, verifyHostname: true, ca });
  const verifyCa = (ca?: string): TlsOptions => ({ enabled: true, verifyChain: true, verifyHostname: false, ca });
  const requireTls = (ca?: string): TlsOptions => ({ enabled: true, verifyChain: false, verifyHostname: false, ca });
  const overTls = [{ type: TDS.LOGIN7, overTls: true }];

  it('verify-full with the right CA: TLS is negotiated, the login travels encrypted, the server\'s "Login failed" is AUTH', async () => {
    const s = await stub(goodCert());
    const r = await attempt(s, full(certs.caPem));
    expect(r.code).toBe('AUTH');
    expect(r.message).toMatch(/Login failed for user 'stub'/);
    expect(s.received).toEqual(overTls);
  });

  it('verify-full against an unknown CA or the wrong host name: TLS error, the login is never sent', async () => {
    let s = await stub(goodCert());
    let r = await attempt(s, full(certs.otherCaPem));
    expect(r.code).toBe('TLS');
    expect(s.received).toEqual([]);

    s = await stub({ encryption: 'on', cert: wrongNameCert, key: wrongNameKey });
    r = await attempt(s, full(certs.caPem));
    expect(r.code).toBe('TLS');
    expect(r.message).toMatch(/db\.internal|altnames/i);
    expect(s.received).toEqual([]);
  });

  it('verify-ca accepts a wrong host name with a trusted chain, and rejects an untrusted chain before the login', async () => {
    let s = await stub({ encryption: 'on', cert: wrongNameCert, key: wrongNameKey });
    let r = await attempt(s, verifyCa(certs.caPem));
    expect(r.code).toBe('AUTH');
    expect(s.received).toEqual(overTls);

    s = await stub(goodCert());
    r = await attempt(s, verifyCa(certs.otherCaPem));
    expect(r.code).toBe('TLS');
    expect(r.message).toMatch(/server certificate was rejected/);
    expect(s.handshakes).toBe(1);
    expect(s.received).toEqual([]);
  });

  it('require encrypts without verifying', async () => {
    const s = await stub(goodCert());
    const r = await attempt(s, requireTls(certs.otherCaPem));
    expect(r.code).toBe('AUTH');
    expect(s.received).toEqual(overTls);
  });

  it('a server that declines encryption gets no login at all when TLS is required (tedious alone would send it in clear)', async () => {
    for (const tls of [full(certs.caPem), requireTls()]) {
      const s = await stub({ encryption: 'not-supported' });
      const r = await attempt(s, tls);
      expect(r.code).toBe('TLS');
      expect(r.message).toMatch(/did not negotiate TLS/);
      expect(s.received).toEqual([]);
    }
    // Control: with TLS disabled the same server receives the LOGIN7 packet in plaintext.
    const s = await stub({ encryption: 'not-supported' });
    const r = await attempt(s, { enabled: false, verifyChain: false, verifyHostname: false });
    expect(r.code).toBe('AUTH');
    expect(s.received).toEqual([{ type: TDS.LOGIN7, overTls: false }]);
  });
});

describe('DDL triggers would run as the admin (database DDL trigger planted by the app user), as attacks', () => {
  /** CREATE TRIGGER ... ON DATABASE FOR <the events the admin's statements fire>, by the app user (db_owner of its database). */
  const EVENTS = ['CREATE_USER', 'ALTER_USER', 'GRANT_DATABASE', 'ADD_ROLE_MEMBER', 'CREATE_EXTENDED_PROPERTY'];
  const TRIGGER = "steal]'; --pw";
  const QUOTED = "[steal]]'; --pw]";

  function plantedWorld(): World {
    const w = world();
    appServer(w.fake);
    w.fake.addRoleMember('appdb', 'db_owner', 'app');
    w.fake.addRoleMember('appdb', 'db_datareader', 'app');
    return w;
  }

  /** Nothing but catalog reads reached the server (no CREATE/ALTER/GRANT/EXEC), AWSCURRENT unchanged and still logs in. */
  async function assertRefused(w: World, arn: string, before: string | undefined, user: string, pw: string, r: { succeeded: boolean; error?: string }, names: string[]): Promise<void> {
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w.h)).toContain('PRIVILEGE');
    for (const n of names) expect(r.error).toContain(n);
    expect(r.error).toContain('Nothing was changed');
    expect(w.fake.statements.filter((s) => !/^\s*SELECT\b/i.test(s.sql)).map((s) => s.sql.slice(0, 40))).toEqual([]);
    // The trigger query ran as the admin, in the child's database.
    expect(w.fake.statements.some((s) => s.sql === SQL.databaseTriggers && s.principal === ADMIN && s.database === 'appdb')).toBe(true);
    expect(w.h.holderOf(arn, 'AWSCURRENT')).toBe(before);
    const cur = await w.h.credentials(arn);
    expect(cur.username).toBe(user);
    expect(cur.password).toBe(pw);
    expect(w.fake.canLogin(user, pw, 'appdb')).toBe(true);
  }

  it('clone strategy, first rotation: PRIVILEGE naming the trigger, no login or user created, AWSCURRENT still logs in', async () => {
    const w = plantedWorld();
    w.fake.addDatabaseTrigger('appdb', TRIGGER, EVENTS);
    const { arn } = await alternating(w, 'app');
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    const r = await w.h.rotate(arn);
    await assertRefused(w, arn, before, 'app', P0, r, [`database DDL trigger ${QUOTED} in [appdb]`, 'DROP TRIGGER', 'DISABLE TRIGGER']);
    expect(w.fake.logins.has('app_clone')).toBe(false);
    expect(w.fake.db('appdb').principals.has('app_clone')).toBe(false);
  });

  it('clone strategy, a later rotation (the clone exists): refused before ALTER LOGIN or any GRANT; disabling the trigger lets it rotate', async () => {
    const w = plantedWorld();
    const { arn } = await alternating(w, 'app');
    let r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    const cur = await w.h.credentials(arn);
    expect(cur.username).toBe('app_clone');
    // The app user (clone, same db_owner membership) now plants the trigger.
    expect(w.fake.rolesOf('appdb', 'app_clone')).toContain('db_owner');
    const t = w.fake.addDatabaseTrigger('appdb', TRIGGER, EVENTS);
    w.fake.statements.splice(0);
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    r = await w.h.rotate(arn);
    await assertRefused(w, arn, before, 'app_clone', cur.password, r, [QUOTED]);
    expect(w.fake.canLogin('app', P0, 'appdb')).toBe(true); // app's password was not touched either

    // A disabled trigger does not fire, and does not block.
    t.disabled = true;
    await dropPending(w.h, arn);
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    expect((await w.h.credentials(arn)).username).toBe('app');
  });

  it('pre-created pair (alternateUsername): PRIVILEGE naming the trigger, no ALTER LOGIN sent', async () => {
    const w = plantedWorld();
    w.fake.addLogin('app2', 'Other-Pa55word!2', { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', 'app2', { login: 'app2' });
    w.fake.addRoleMember('appdb', 'db_owner', 'app2');
    w.fake.addRoleMember('appdb', 'db_datareader', 'app2');
    w.fake.addDatabaseTrigger('appdb', TRIGGER, ['ALTER_USER']);
    w.fake.addDatabaseTrigger('appdb', 'off', EVENTS, { disabled: true });
    const { arn } = await alternating(w, 'app', P0, { alternateUsername: 'app2' });
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    const r = await w.h.rotate(arn);
    await assertRefused(w, arn, before, 'app', P0, r, [QUOTED]);
    expect(r.error).not.toContain('[off]');
    expect(w.fake.canLogin('app2', 'Other-Pa55word!2', 'appdb')).toBe(true);
  });

  it('a contained database: the trigger blocks CREATE USER ... WITH PASSWORD too', async () => {
    const w = world();
    w.fake.addDatabase('appdb', { contained: true });
    w.fake.addRdsMaster(ADMIN, ADMIN_PW);
    w.fake.addUser('appdb', 'capp', { password: P0 });
    w.fake.addRoleMember('appdb', 'db_owner', 'capp');
    w.fake.addDatabaseTrigger('appdb', TRIGGER, EVENTS);
    const { arn } = await alternating(w, 'capp');
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    const r = await w.h.rotate(arn);
    await assertRefused(w, arn, before, 'capp', P0, r, [QUOTED]);
    expect(w.fake.db('appdb').principals.has('capp_clone')).toBe(false);
  });

  it('a server DDL trigger (CREATE_LOGIN/ALTER_LOGIN) blocks too; a logon trigger and a disabled one do not', async () => {
    const w = plantedWorld();
    w.fake.addServerTrigger('audit_logons', ['LOGON']);
    w.fake.addServerTrigger('old_ddl', ['DDL_LOGIN_EVENTS'], { disabled: true });
    const t = w.fake.addServerTrigger('login_ddl', ['CREATE_LOGIN', 'ALTER_LOGIN']);
    const { arn } = await alternating(w, 'app');
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    let r = await w.h.rotate(arn);
    await assertRefused(w, arn, before, 'app', P0, r, ['server DDL trigger [login_ddl]', 'ON ALL SERVER']);
    expect(r.error).not.toContain('audit_logons');
    expect(r.error).not.toContain('old_ddl');

    t.disabled = true;
    await dropPending(w.h, arn);
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    expect((await w.h.credentials(arn)).username).toBe('app_clone');
  });

  it('the single-user strategy (no masterarn) is not affected: its statements run with the user\'s own rights', async () => {
    const w = plantedWorld();
    w.fake.addDatabaseTrigger('appdb', TRIGGER, EVENTS);
    const arn = await w.h.createSecret(secret('app', P0));
    const r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
  });
});

describe('an admin that cannot see the database\'s triggers', () => {
  it('is refused with PRIVILEGE naming VIEW DEFINITION before anything changes (fail closed); granting it lets the rotation run', async () => {
    const w = world();
    w.fake.addDatabase('appdb');
    w.fake.addLogin('lim_admin', ADMIN_PW);
    w.fake.serverPermissions.push({ grantee: 'lim_admin', class: 100, state: 'G', permissionName: 'ALTER ANY LOGIN' });
    w.fake.addUser('appdb', 'lim_admin', { login: 'lim_admin' });
    w.fake.grant('appdb', { grantee: 'lim_admin', class: 0, state: 'G', permissionName: 'ALTER ANY USER' });
    w.fake.addLogin('app', P0, { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', 'app', { login: 'app' });
    w.fake.addLogin('app2', 'Other-Pa55word!2', { defaultDatabase: 'appdb' });
    w.fake.addUser('appdb', 'app2', { login: 'app2' });
    const adminArn = await w.h.createSecret({ engine: 'sqlserver', host: HOST, username: 'lim_admin', password: ADMIN_PW });
    const arn = await w.h.createSecret(secret('app', P0, { masterarn: adminArn, alternateUsername: 'app2' }));
    const before = w.h.holderOf(arn, 'AWSCURRENT');
    let r = await w.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(errorCodes(w.h)).toContain('PRIVILEGE');
    expect(r.error).toContain('VIEW DEFINITION');
    expect(w.fake.statements.filter((s) => !/^\s*SELECT\b/i.test(s.sql))).toEqual([]);
    expect(w.h.holderOf(arn, 'AWSCURRENT')).toBe(before);
    expect(w.fake.canLogin('app2', 'Other-Pa55word!2', 'appdb')).toBe(true);

    w.fake.grant('appdb', { grantee: 'lim_admin', class: 0, state: 'G', permissionName: 'VIEW DEFINITION' });
    await dropPending(w.h, arn);
    r = await w.h.rotate(arn);
    expect(r.succeeded, r.error).toBe(true);
    expect((await w.h.credentials(arn)).username).toBe('app2');
  });
});
