/**
 * The Oracle rotator (node-oracledb Thin mode).
 *
 * No Oracle server can run on this machine, so the rotations run against FakeOracleServer
 * (test/fakes/oracle-fake.ts): a stateful model that logs in only with the right password, parses
 * statements the way Oracle does (quoted identifiers exact, bare words upper-cased) and records
 * each one. Everything else is real: the handler, DatabaseRotator, the engine, and the AWS SDK
 * client talking to the Secrets Manager double. The real driver is exercised where no server is
 * needed: the configuration it is given, and its failures against local sockets (refused, TLS
 * handshake, timeout), classified by the engine.
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseRotator } from '../src/db/database-rotator';
import type { ConnectOptions } from '../src/db/engine';
import type { DbSecret } from '../src/db/secret';
import type { TlsOptions } from '../src/db/tls';
import { ConnectError, RotationError, SecretFormatError } from '../src/errors';
import { createHandler } from '../src/handler';
import { Logger } from '../src/log';
import type { Env } from '../src/password';
import { LOWERCASE, UPPERCASE, DIGITS } from '../src/testing/random-password';
import {
  buildConnectConfig,
  classifyConnectError,
  createOracleEngine,
  maxUsernameLengthFromEnv,
  oracleAlternateUsername,
  oracleUserName,
  oracledbConnect,
  passwordProblem,
  quotePassword,
  rewriteGrantee,
  splitGrantStatements,
  type OracleConnectConfig,
} from '../rotators/oracle/engine';
import * as oracleIndex from '../rotators/oracle/index';
import { makeTestCerts } from './support/certs';
import { RdsDouble } from '../src/testing';
import { assertNoLeaksInAll, createRotationHarness, type DoubleOptions } from './support/rotation-harness';
import { FakeOracleError, FakeOracleServer, type FakeOracleOptions } from './fakes/oracle-fake';

/** Every fake server of the test: each session the engine opened must have been closed. */
const servers: FakeOracleServer[] = [];

afterEach(() => {
  const all = servers.splice(0);
  for (const db of all) expect(db.openConnections, 'sessions left open').toBe(0);
  assertNoLeaksInAll();
});

const PLAIN: TlsOptions = { enabled: false, verifyChain: false, verifyHostname: false };
const FULL: TlsOptions = { enabled: true, verifyChain: true, verifyHostname: true };
const ADMIN_PW = 'Admin-Pa55word;with spaces';
const APP_PW = "App'Initial;Pw]\\ü%";
const DDL_QUERY = 'SELECT DBMS_METADATA.GET_GRANTED_DDL(:t, :u) AS ddl FROM DUAL';
const LOOKUP = 'SELECT username, account_status, USER FROM dba_users WHERE username = :u';
const ROLE_LOOKUP = 'SELECT role FROM dba_roles WHERE role = :u';

function quietLog(lines: string[] = []): Logger {
  return new Logger((l) => lines.push(l), {}, undefined, 'debug');
}

/** A fake server, the engine wired to it, and a harness whose handler is the real one. */
function setup(options: { server?: FakeOracleOptions; env?: Env; sm?: DoubleOptions; maxUsernameLength?: number } = {}) {
  const db = new FakeOracleServer(options.server);
  servers.push(db);
  const engine = createOracleEngine({ connect: db.connect, maxUsernameLength: options.maxUsernameLength });
  const rds = new RdsDouble();
  const h = createRotationHarness({
    handler: (o) => createHandler(new DatabaseRotator(engine, { rdsClient: (region) => rds.client(region) }), o),
    env: options.env,
    sm: options.sm,
  });
  const base = { engine: 'oracle', host: db.host, port: db.port, dbname: db.service, ssl: false };
  /** Log in to the fake through the engine, as the secret says. */
  const login = (secret: Record<string, unknown>, tlsOptions: TlsOptions = PLAIN) =>
    engine.connect({ ...base, ...secret } as DbSecret, { tls: tlsOptions, connectTimeoutMs: 5000, statementTimeoutMs: 30_000, log: quietLog(), env: {} });
  return { db, engine, h, base, login, rds };
}

/** The admin of the alternating strategy: the RDS master user (DBA without GRANT ANY PRIVILEGE / GRANT ANY ROLE). */
function addAdmin(db: FakeOracleServer) {
  return db.addRdsMaster('ADMIN', ADMIN_PW);
}

function grantsOf(db: FakeOracleServer, name: string) {
  const u = db.user(name);
  return {
    roles: Object.fromEntries(u.roles),
    system: Object.fromEntries(u.systemPrivileges),
    objects: [...u.objectGrants].sort((a, b) => `${a.privilege}${a.object}`.localeCompare(`${b.privilege}${b.object}`)),
  };
}

// =============================================================================================
describe('user names: one rule (quoted = exact, otherwise folded to upper case)', () => {
  it('folds unquoted names and keeps quoted ones exact', () => {
    expect(oracleUserName('app')).toBe('APP');
    expect(oracleUserName('App_User$1')).toBe('APP_USER$1');
    expect(oracleUserName('"MixedCase"')).toBe('MixedCase');
    expect(oracleUserName('"lower"')).toBe('lower');
    expect(oracleUserName("o'brien; x")).toBe("O'BRIEN; X");
  });

  it('derives the alternate user with _CLONE, both ways', () => {
    expect(oracleAlternateUsername('app')).toBe('APP_CLONE');
    expect(oracleAlternateUsername('APP_CLONE')).toBe('APP');
    expect(oracleAlternateUsername('app_clone')).toBe('APP');
    expect(oracleAlternateUsername('"Mixed"')).toBe('"Mixed_CLONE"');
    expect(oracleAlternateUsername('"Mixed_CLONE"')).toBe('"Mixed"');
    // Quoted names are case-sensitive: `_clone` is not the suffix.
    expect(oracleAlternateUsername('"Mixed_clone"')).toBe('"Mixed_clone_CLONE"');
    expect(oracleAlternateUsername('_CLONE')).toBe('_CLONE_CLONE');
  });

  it('rejects names a quoted identifier cannot hold, naming the field', () => {
    for (const bad of ['a"b', '""', '"a"b"', 'a\u0000b', '"']) {
      expect(() => oracleUserName(bad, 'AWSCURRENT secret')).toThrow(SecretFormatError);
      expect(() => oracleUserName(bad, 'AWSCURRENT secret')).toThrow(/"username"/);
    }
  });
});

describe('passwords', () => {
  it('rejects ", NUL and more than 1024 bytes without ever printing the password', () => {
    const cases = ['abc"def-secret', 'abc\u0000def-secret', '€'.repeat(342)];
    for (const pw of cases) {
      expect(passwordProblem(pw)).toBeDefined();
      let message = '';
      try {
        quotePassword(pw, 'AWSPENDING secret');
      } catch (err) {
        expect(err).toBeInstanceOf(SecretFormatError);
        message = (err as Error).message;
      }
      expect(message).toMatch(/AWSPENDING secret's "password" field/);
      expect(message).not.toContain(pw);
      expect(message).not.toContain('secret"def');
    }
    expect(passwordProblem('€'.repeat(341) + 'a')).toBeUndefined(); // 1024 bytes exactly
    expect(quotePassword("it's ]a; \\ pässwörd %", 'x')).toBe('"it\'s ]a; \\ pässwörd %"');
  });

  it('has Oracle password defaults: length 30, /@"\'\\ excluded', () => {
    const engine = createOracleEngine();
    expect(engine.profile.password?.defaults).toEqual({ PasswordLength: 30, ExcludeCharacters: '/@"\'\\' });
    expect(() => engine.profile.password?.validate?.('no"quote')).toThrow(SecretFormatError);
  });
});

// =============================================================================================
describe('connection configuration (what node-oracledb getConnection receives)', () => {
  const secret = (extra: Partial<DbSecret> = {}): DbSecret =>
    ({ engine: 'oracle', host: 'db.example.com', port: 2484, dbname: 'ORCLPDB1', username: 'app', password: 'Pw-Secret-123', ...extra }) as DbSecret;

  it('plaintext: a TCP descriptor, timeouts in whole seconds, no statement cache', () => {
    expect(buildConnectConfig(secret({ port: 1521 }), PLAIN, 5000)).toEqual({
      user: 'APP',
      password: 'Pw-Secret-123',
      connectString: '(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST=db.example.com)(PORT=1521))(CONNECT_DATA=(SERVICE_NAME=ORCLPDB1)))',
      connectTimeout: 5,
      transportConnectTimeout: 5,
      stmtCacheSize: 0,
    });
    expect(buildConnectConfig(secret(), PLAIN, 1500).connectTimeout).toBe(2);
    expect(buildConnectConfig(secret(), PLAIN, 100).connectTimeout).toBe(1);
    expect(buildConnectConfig(secret({ host: '[fd00::1]' }), PLAIN, 5000).connectString).toContain('(HOST=fd00::1)(PORT=2484)');
    expect(buildConnectConfig(secret({ port: undefined }), PLAIN, 5000).connectString).toContain('(HOST=db.example.com)(PORT=1521)');
    // Service names Easy Connect would reject: one character, or with "$".
    expect(buildConnectConfig(secret({ dbname: 'X' }), PLAIN, 5000).connectString).toContain('(SERVICE_NAME=X)');
    expect(buildConnectConfig(secret({ dbname: 'DB$1' }), PLAIN, 5000).connectString).toContain('(SERVICE_NAME=DB$1)');
  });

  it('TLS verify-full: a TCPS descriptor with server DN (host name) matching', () => {
    const c = buildConnectConfig(secret(), FULL, 5000);
    expect(c.connectString).toBe(
      '(DESCRIPTION=(ADDRESS=(PROTOCOL=TCPS)(HOST=db.example.com)(PORT=2484))(CONNECT_DATA=(SERVICE_NAME=ORCLPDB1))(SECURITY=(SSL_SERVER_DN_MATCH=yes)))',
    );
    expect(c.sslServerDNMatch).toBe(true);
    expect(c).not.toHaveProperty('walletContent');
  });

  it('TLS verify-ca: chain only, no DN match', () => {
    const c = buildConnectConfig(secret(), { enabled: true, verifyChain: true, verifyHostname: false }, 5000);
    expect(c.connectString).toContain('(SECURITY=(SSL_SERVER_DN_MATCH=no))');
    expect(c.sslServerDNMatch).toBe(false);
  });

  it('refuses a per-connection CA bundle (Thin mode would need a client wallet) with the remedy', () => {
    expect(() => buildConnectConfig(secret(), { ...FULL, ca: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----' }, 5000)).toThrow(
      /NODE_EXTRA_CA_CERTS/,
    );
    // Plaintext does not care.
    expect(buildConnectConfig(secret(), { ...PLAIN, ca: 'unused' }, 5000).connectString).toContain('(PROTOCOL=TCP)');
  });

  it('quotes login names that Oracle would not read back unchanged', () => {
    expect(buildConnectConfig(secret({ username: '"Mixed"' }), PLAIN, 5000).user).toBe('"Mixed"');
    expect(buildConnectConfig(secret({ username: 'app[x]' }), PLAIN, 5000).user).toBe('"APP[X]"');
    expect(buildConnectConfig(secret({ username: "o'brien; x" }), PLAIN, 5000).user).toBe('"O\'BRIEN; X"');
    expect(buildConnectConfig(secret({ username: 'APP_1' }), PLAIN, 5000).user).toBe('APP_1');
  });

  it('rejects hosts and service names that could inject descriptor parameters', () => {
    const bad: Partial<DbSecret>[] = [
      { host: 'h)(PORT=1' },
      { host: 'db.example.com (x)' },
      { dbname: 'ORCL)(SERVER=DEDICATED' },
      { dbname: 'a=b' },
      { dbname: 'svc/x' },
      { dbname: 'svc#comment' },
      { dbname: undefined },
      { dbname: '' },
    ];
    for (const b of bad) {
      let err: unknown;
      try {
        buildConnectConfig(secret(b), FULL, 5000);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe('CONFIG');
      expect((err as Error).message).toMatch(/"host"|"dbname"/);
    }
  });

  it('engine.connect hands exactly this config to the factory and logs no password', async () => {
    const seen: OracleConnectConfig[] = [];
    const engine = createOracleEngine({
      connect: async (config) => {
        seen.push(config);
        return { execute: async () => ({ rows: [[1]] }), close: async () => undefined };
      },
    });
    const lines: string[] = [];
    const s = secret({ password: 'Very-Secret-Password-42' });
    const conn = await engine.connect(s, { tls: FULL, connectTimeoutMs: 7000, statementTimeoutMs: 30_000, log: quietLog(lines), env: {} });
    await engine.check(conn, { env: {}, log: quietLog() });
    expect(seen).toEqual([buildConnectConfig(s, FULL, 7000)]);
    expect(seen[0]).toMatchObject({ connectTimeout: 7, transportConnectTimeout: 7, sslServerDNMatch: true, user: 'APP' });
    expect(lines.length).toBeGreaterThan(0);
    const logged = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(logged).toMatchObject({ message: 'connecting to Oracle', host: 'db.example.com', port: 2484, service: 'ORCLPDB1', protocol: 'TCPS', hostnameCheck: true });
    expect(lines.join('\n')).not.toContain('Very-Secret-Password-42');

    // ssl "require": Thin mode cannot skip chain verification; it says so.
    await engine.connect(s, { tls: { enabled: true, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 5000, statementTimeoutMs: 30_000, log: quietLog(lines), env: {} });
    expect(lines.some((l) => l.includes('always verifies the server certificate chain'))).toBe(true);
  });

  it('reads ORACLE_MAX_USERNAME_LENGTH (30 for Oracle 12.1 and earlier)', () => {
    expect(maxUsernameLengthFromEnv({})).toBe(128);
    expect(maxUsernameLengthFromEnv({ ORACLE_MAX_USERNAME_LENGTH: '30' })).toBe(30);
    expect(() => maxUsernameLengthFromEnv({ ORACLE_MAX_USERNAME_LENGTH: '300' })).toThrow(/ORACLE_MAX_USERNAME_LENGTH/);
    const rotator = new DatabaseRotator(oracleIndex.engine);
    const next = (username: string) => ({ engine: 'oracle', host: 'h', username, password: 'p', dbname: 'ORCL' }) as DbSecret;
    expect(rotator.checkUsernameLength(next('A'.repeat(128)), {}).max).toBe(128);
    expect(() => rotator.checkUsernameLength(next('A'.repeat(129)), {})).toThrow(SecretFormatError);
    // The quotes of an exact name do not count; ORACLE_MAX_USERNAME_LENGTH lowers the limit.
    expect(() => rotator.checkUsernameLength(next(`"${'a'.repeat(128)}"`), {})).not.toThrow();
    expect(() => rotator.checkUsernameLength(next('A'.repeat(31)), { ORACLE_MAX_USERNAME_LENGTH: '30' })).toThrow(SecretFormatError);
    expect(oracleIndex.engine.profile.engines).toEqual(['oracle', 'oracle-ee', 'oracle-ee-cdb', 'oracle-se2', 'oracle-se2-cdb', 'custom-oracle-ee']);
    expect(oracleIndex.engine.profile.defaultPort).toBe(1521);
    expect(typeof oracleIndex.handler).toBe('function');
  });
});

describe('driver errors are classified', () => {
  const err = (code: string, text = 'x') => new FakeOracleError(code, text);
  it.each([
    ['ORA-01017', 'AUTH', /user name or password/],
    ['ORA-28000', 'AUTH', /locked.*ACCOUNT UNLOCK/],
    ['ORA-28001', 'AUTH', /expired/],
    ['ORA-01045', 'PRIVILEGE', /CREATE SESSION/],
    ['NJS-518', 'CONFIG', /"dbname"/],
    ['ORA-12514', 'CONFIG', /"dbname"/],
    ['NJS-533', 'CONFIG', /Native Network Encryption/],
    ['NJS-506', 'TLS', /TCPS port/],
    ['NJS-508', 'TLS', /TLS/],
    ['NJS-503', 'NETWORK', /reach/],
    ['NJS-510', 'NETWORK', /reach/],
    ['NJS-500', 'NETWORK', /reach/],
    ['ECONNREFUSED', 'NETWORK', /reach/],
    ['ORA-28040', 'CONFIG', /refused/],
  ])('%s -> %s', (code, expected, pattern) => {
    const e = classifyConnectError(err(code), 'ORCLPDB1');
    expect(e).toBeInstanceOf(ConnectError);
    expect(e.code).toBe(expected);
    expect(e.message).toMatch(pattern);
  });

  it('a plain Error without a code is a NETWORK failure', () => {
    expect(classifyConnectError(new Error('socket hang up'), 'X').code).toBe('NETWORK');
  });
});

describe('the real node-oracledb driver (Thin mode) fails the way the engine expects', () => {
  const engine = createOracleEngine(); // default factory: the real driver
  const secretFor = (port: number, extra: Partial<DbSecret> = {}) =>
    ({ engine: 'oracle', host: '127.0.0.1', port, dbname: 'ORCLPDB1', username: 'app', password: 'Pw-Secret-123', ...extra }) as DbSecret;
  const opts = (t: TlsOptions, ms = 2000): ConnectOptions => ({ tls: t, connectTimeoutMs: ms, statementTimeoutMs: 30_000, log: quietLog(), env: {} });

  it('uses the driver in Thin mode', () => {
    expect(engine.connectFn).toBe(oracledbConnect);
    expect((require('oracledb') as { thin: boolean }).thin).toBe(true);
  });

  it('connection refused -> NETWORK (and the driver accepts every descriptor shape the engine builds)', async () => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    server.close();
    await once(server, 'close');
    for (const extra of [{}, { dbname: 'X' }, { dbname: 'DB$1.example-2_x' }, { host: '::1' }, { host: 'localhost' }]) {
      const err = await engine.connect(secretFor(port, extra), opts(PLAIN)).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/NJS-503/);
      expect(err).toMatchObject({ code: 'NETWORK' });
    }
  });

  it('TLS to a server whose certificate is not trusted -> TLS', async () => {
    const certs = makeTestCerts();
    const server = tls.createServer({ cert: readFileSync(certs.serverCertFile), key: readFileSync(certs.serverKeyFile) }, (s) => s.destroy());
    server.on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as net.AddressInfo).port;
      const err = await engine.connect(secretFor(port), opts(FULL)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe('TLS');
      expect((err as Error).message).toMatch(/NJS-506/);
    } finally {
      server.close();
    }
  });

  it('a listener that never answers -> NETWORK after the connect timeout', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as net.AddressInfo).port;
      const started = Date.now();
      const err = await engine.connect(secretFor(port), opts(PLAIN, 1000)).catch((e: unknown) => e);
      expect((err as ConnectError).code).toBe('NETWORK');
      expect((err as Error).message).toMatch(/NJS-510/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

// =============================================================================================
describe('grant DDL from DBMS_METADATA.GET_GRANTED_DDL', () => {
  it('splits Oracle-formatted output into statements', () => {
    const ddl = '\n  GRANT "CONNECT" TO "APP"\n\n  GRANT "R" TO "APP" WITH ADMIN OPTION\n';
    expect(splitGrantStatements(ddl)).toEqual(['GRANT "CONNECT" TO "APP"', 'GRANT "R" TO "APP" WITH ADMIN OPTION']);
    expect(splitGrantStatements('GRANT A TO "X";\nGRANT B TO "X";')).toEqual(['GRANT A TO "X"', 'GRANT B TO "X"']);
    expect(splitGrantStatements('')).toEqual([]);
    expect(splitGrantStatements('\n\n')).toEqual([]);
  });

  it('does not split inside quoted names or at WITH GRANT OPTION on a new line', () => {
    const ddl = '  GRANT SELECT ON "S"."ODD\n  GRANT NAME" TO "APP" WITH\nGRANT OPTION\n  GRANT "A;B" TO "APP"';
    expect(splitGrantStatements(ddl)).toEqual(['GRANT SELECT ON "S"."ODD\n  GRANT NAME" TO "APP" WITH\nGRANT OPTION', 'GRANT "A;B" TO "APP"']);
  });

  it('rewrites only the grantee after TO', () => {
    expect(rewriteGrantee('GRANT "TO" TO "APP"', 'APP', 'APP_CLONE')).toBe('GRANT "TO" TO "APP_CLONE"');
    expect(rewriteGrantee('GRANT SELECT ON "APP"."T" TO "APP" WITH GRANT OPTION', 'APP', 'APP_CLONE')).toBe(
      'GRANT SELECT ON "APP"."T" TO "APP_CLONE" WITH GRANT OPTION',
    );
    expect(rewriteGrantee(`GRANT "R'; x" TO "Ap'p ]"`, "Ap'p ]", "Ap'p ]_CLONE")).toBe(`GRANT "R'; x" TO "Ap'p ]_CLONE"`);
    // Case-sensitive: "app" is not "APP".
    expect(() => rewriteGrantee('GRANT X TO "app"', 'APP', 'APP_CLONE')).toThrow(/grantee/);
    expect(() => rewriteGrantee('REVOKE X FROM "APP"', 'APP', 'APP_CLONE')).toThrow(/not a GRANT/);
    expect(() => rewriteGrantee('GRANT X TO "APP', 'APP', 'APP_CLONE')).toThrow(RotationError);
  });
});

// =============================================================================================
describe('single-user rotation', () => {
  it('rotates with ALTER USER ... REPLACE <old>; the new password logs in, the old one does not', async () => {
    const { db, h, base, login } = setup();
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'], verifyFunction: true });
    const arn = await h.createSecret({ ...base, username: 'app', password: APP_PW, note: 'kept' });

    const r1 = await h.rotate(arn);
    expect(r1.error).toBeUndefined();
    expect(r1.succeeded).toBe(true);
    const v1 = await h.current(arn);
    expect(v1.versionId).toBe(r1.versionId);
    const pw1 = v1.json!.password as string;
    expect(v1.json).toMatchObject({ ...base, username: 'app', note: 'kept' });
    expect(pw1).toHaveLength(30);
    expect(pw1).not.toMatch(/[/@"'\\]/);
    expect(db.sqlOf('APP')).toEqual([`ALTER USER "APP" IDENTIFIED BY "${pw1}" REPLACE "${APP_PW}"`, 'SELECT 1 FROM DUAL', 'SELECT 1 FROM DUAL']);
    expect(db.user('APP').password).toBe(pw1);

    await expect(login({ username: 'app', password: APP_PW })).rejects.toMatchObject({ code: 'AUTH' });
    const conn = await login({ username: 'app', password: pw1 });
    await conn.close();

    const r2 = await h.rotate(arn);
    expect(r2.succeeded).toBe(true);
    const pw2 = (await h.current(arn)).json!.password as string;
    expect(db.sqlOf('APP').slice(3)).toEqual([`ALTER USER "APP" IDENTIFIED BY "${pw2}" REPLACE "${pw1}"`, 'SELECT 1 FROM DUAL', 'SELECT 1 FROM DUAL']);
    await expect(login({ username: 'app', password: pw1 })).rejects.toMatchObject({ code: 'AUTH' });
    expect(db.user('APP').passwordChanges).toBe(2);
    expect(db.openConnections).toBe(0);
  });

  it('survives every step being delivered twice', async () => {
    const { db, h, base } = setup();
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'], verifyFunction: true });
    const arn = await h.createSecret({ ...base, username: 'APP', password: APP_PW });
    const delivered: string[] = [];
    h.intercept = async (event, invoke) => {
      for (let i = 0; i < 2; i++) {
        delivered.push(event.Step);
        await invoke(event);
      }
    };
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(true);
    expect(delivered).toEqual([
      'createSecret', 'createSecret', 'setSecret', 'setSecret', 'testSecret', 'testSecret', 'finishSecret', 'finishSecret',
    ]);
    const pw = (await h.current(arn)).json!.password as string;
    expect(db.user('APP').password).toBe(pw);
    expect(db.user('APP').passwordChanges).toBe(1);
    expect(db.sqlOf('APP').filter((s) => s.startsWith('ALTER USER'))).toHaveLength(1);
    expect(Object.values(h.stages(arn)).flat().sort()).toEqual(['AWSCURRENT', 'AWSPREVIOUS']);
    expect(db.openConnections).toBe(0);
  });

  it('falls back to AWSPREVIOUS when AWSCURRENT no longer logs in, and REPLACEs the password that did', async () => {
    const { db, h, base } = setup();
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'], verifyFunction: true });
    const arn = await h.createSecret({ ...base, username: 'app', password: APP_PW });
    expect((await h.rotate(arn)).succeeded).toBe(true);
    // The database is restored from a backup: the previous password is the live one again.
    db.user('APP').password = APP_PW;
    db.statements.length = 0;
    db.connects.length = 0;

    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const pw = (await h.current(arn)).json!.password as string;
    expect(db.sqlOf('APP')).toEqual([`ALTER USER "APP" IDENTIFIED BY "${pw}" REPLACE "${APP_PW}"`, 'SELECT 1 FROM DUAL', 'SELECT 1 FROM DUAL']);
    expect(db.connects.filter((c) => !c.ok).map((c) => c.code)).toEqual(['ORA-01017', 'ORA-01017']); // current, pending
    expect(h.logs.some((l) => l.includes('"loggedInWith":"AWSPREVIOUS"'))).toBe(true);
  });

  it('handles hostile user names and passwords; statements are exact and the state matches', async () => {
    // Exact (quoted) user name with quotes ', brackets, backslash, spaces, semicolon, %, unicode.
    const name = "app O'Brien]; \\ ünï [x] %";
    const initial = "in'it ]ial; \\ pässwörd % -- /* x */ :u";
    // Passwords made only of punctuation (everything but "), 60 characters.
    const { db, h, base, login } = setup({ env: { EXCLUDE_CHARACTERS: `"${LOWERCASE}${UPPERCASE}${DIGITS}`, PASSWORD_LENGTH: '60' } });
    db.addUser(name, { password: initial, roles: ['CONNECT'], verifyFunction: true });
    const arn = await h.createSecret({ ...base, username: `"${name}"`, password: initial });

    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const pw = (await h.current(arn)).json!.password as string;
    expect(pw).toHaveLength(60);
    expect(pw).toMatch(/^[^A-Za-z0-9"]+$/);
    expect(db.sqlOf(name)).toEqual([`ALTER USER "${name}" IDENTIFIED BY "${pw}" REPLACE "${initial}"`, 'SELECT 1 FROM DUAL', 'SELECT 1 FROM DUAL']);
    expect(db.user(name).password).toBe(pw);
    expect(db.connects.every((c) => c.user === `"${name}"`)).toBe(true);
    await expect(login({ username: `"${name}"`, password: initial })).rejects.toMatchObject({ code: 'AUTH' });

    // An unquoted hostile name is folded to upper case, and still quoted in SQL.
    const { db: db2, h: h2, base: base2 } = setup();
    db2.addUser("O'BRIEN; X]", { password: initial, roles: ['CONNECT'] });
    const arn2 = await h2.createSecret({ ...base2, username: "o'brien; x]", password: initial });
    expect((await h2.rotate(arn2)).succeeded).toBe(true);
    const pw2 = (await h2.current(arn2)).json!.password as string;
    expect(db2.sqlOf("O'BRIEN; X]")[0]).toBe(`ALTER USER "O'BRIEN; X]" IDENTIFIED BY "${pw2}" REPLACE "${initial}"`);
  });

  it('setOwnPassword quotes a fixed hostile password exactly (engine called directly)', async () => {
    const { db, login, engine } = setup();
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'], verifyFunction: true });
    const conn = await login({ username: 'app', password: APP_PW });
    const hostile = "n'ew ]pw; \\ ünïcode % --";
    await engine.setOwnPassword(conn, { username: 'app', oldPassword: APP_PW, newPassword: hostile }, { env: {}, log: quietLog() });
    await conn.close();
    expect(db.sqlOf('APP')).toEqual([`ALTER USER "APP" IDENTIFIED BY "${hostile}" REPLACE "${APP_PW}"`]);
    expect(db.user('APP').password).toBe(hostile);
    await (await login({ username: 'app', password: hostile })).close();
  });

  it('omits REPLACE (with a warning) when the old password cannot be quoted', async () => {
    const { db, h, base } = setup();
    const old = 'old"quoted-password';
    db.addUser('APP', { password: old, roles: ['CONNECT'] });
    const arn = await h.createSecret({ ...base, username: 'app', password: old });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(true);
    const pw = (await h.current(arn)).json!.password as string;
    expect(db.sqlOf('APP')[0]).toBe(`ALTER USER "APP" IDENTIFIED BY "${pw}"`);
    expect(h.logs.some((l) => l.includes('without REPLACE'))).toBe(true);
  });

  it('reports a password verify function rejection as a CONFIG error, with no password in it', async () => {
    const { db, h, base } = setup();
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'], verifyFunction: true });
    // A careless verify function echoes the password it rejects.
    db.failWhen(/^ALTER USER/, () => {
      const sql = db.statements.at(-1)!.sql;
      const pw = /IDENTIFIED BY "([^"]*)"/.exec(sql)![1];
      return new FakeOracleError('ORA-28003', `password verification for the specified password failed\nORA-20001: password ${pw} is too simple`);
    });
    const arn = await h.createSecret({ ...base, username: 'app', password: APP_PW });
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/ORA-28003, ORA-20001/);
    expect(r.error).toMatch(/PASSWORD_LENGTH/);
    // Stripped where it arises, not only by the handler's redactor (which would leave "***").
    expect(r.error).not.toContain('***');
    expect(r.error).not.toContain('too simple');
    expect(h.records().find((l) => l.message === 'step failed')).toMatchObject({ errorCode: 'CONFIG', step: 'setSecret' });
    expect((await h.current(arn)).versionId).toBe(before.versionId);
    expect(db.user('APP').password).toBe(APP_PW);
    // afterEach: the echoed password appears in no log line and no error.
  });

  it('names the locked account and the remedy', async () => {
    const { db, h, base } = setup();
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'], locked: true });
    const arn = await h.createSecret({ ...base, username: 'app', password: APP_PW });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/ORA-28000/);
    expect(r.error).toMatch(/ACCOUNT UNLOCK/);
    expect(db.statements).toEqual([]);
  });
});

// =============================================================================================
describe('alternating users (admin secret in masterarn)', () => {
  async function alternating(opts: Parameters<typeof setup>[0] = {}, current = 'APP', secretName = 'app') {
    const s = setup(opts);
    addAdmin(s.db);
    s.db.addRole('APP_READ', 'ADMIN'); // created by the master, which therefore holds it WITH ADMIN OPTION
    s.db.addUser(current, {
      password: APP_PW,
      roles: ['CONNECT', 'APP_READ'],
      systemPrivileges: ['UNLIMITED TABLESPACE'],
      objectGrants: [
        { privilege: 'SELECT', object: '"HR"."EMPLOYEES"', grantOption: true },
        { privilege: 'UPDATE ("SALARY")', object: '"HR"."EMPLOYEES"' },
      ],
    });
    // A self-describing admin secret (the RDS-managed shape is tested on its own below).
    const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
    const arn = await s.h.createSecret({ ...s.base, username: secretName, password: APP_PW, masterarn: adminArn });
    return { ...s, adminArn, arn };
  }

  it('creates APP_CLONE with the same grants, then flips APP_CLONE -> APP -> APP_CLONE, re-syncing grants', async () => {
    const { db, h, arn, login } = await alternating();

    // Rotation 1: the clone does not exist yet.
    const r1 = await h.rotate(arn);
    expect(r1.error).toBeUndefined();
    const v1 = (await h.current(arn)).json!;
    expect(v1.username).toBe('APP_CLONE');
    const pw1 = v1.password as string;
    const admin = db.statements.filter((s) => s.session === 'ADMIN');
    expect(admin.map((s) => [s.sql, s.binds])).toEqual([
      // checkAlternateUser: no such user, and not a role either
      [LOOKUP, { u: 'APP_CLONE' }],
      [ROLE_LOOKUP, { u: 'APP_CLONE' }],
      [LOOKUP, { u: 'APP_CLONE' }],
      [`CREATE USER "APP_CLONE" IDENTIFIED BY "${pw1}"`, {}],
      [DDL_QUERY, { t: 'ROLE_GRANT', u: 'APP' }],
      ['GRANT "CONNECT" TO "APP_CLONE"', {}],
      ['GRANT "APP_READ" TO "APP_CLONE"', {}],
      [DDL_QUERY, { t: 'SYSTEM_GRANT', u: 'APP' }],
      ['GRANT UNLIMITED TABLESPACE TO "APP_CLONE"', {}],
      [DDL_QUERY, { t: 'OBJECT_GRANT', u: 'APP' }],
      ['GRANT SELECT ON "HR"."EMPLOYEES" TO "APP_CLONE" WITH GRANT OPTION', {}],
      ['GRANT UPDATE ("SALARY") ON "HR"."EMPLOYEES" TO "APP_CLONE"', {}],
    ]);
    expect(admin.every((s) => s.options?.outFormat === 4001)).toBe(true);
    expect(db.lobsDestroyed).toBe(3);
    expect(grantsOf(db, 'APP_CLONE')).toEqual(grantsOf(db, 'APP'));
    expect(db.sqlOf('APP_CLONE')).toEqual(['SELECT 1 FROM DUAL', 'SELECT 1 FROM DUAL']); // testSecret, finishSecret
    expect(db.sqlOf('APP')).toEqual([]); // the guard login runs nothing
    expect(db.user('APP').password).toBe(APP_PW); // the current user is untouched

    // A grant added to the current user later must reach the other user at the next rotation.
    db.user('APP_CLONE').systemPrivileges.set('CREATE VIEW', { admin: false });
    db.statements.length = 0;
    const r2 = await h.rotate(arn);
    expect(r2.error).toBeUndefined();
    const v2 = (await h.current(arn)).json!;
    expect(v2.username).toBe('APP');
    const pw2 = v2.password as string;
    const admin2 = db.sqlOf('ADMIN');
    expect(admin2[0]).toBe(LOOKUP);
    expect(admin2).toContain('GRANT CREATE VIEW TO "APP"');
    // Grants first, the password last.
    expect(admin2.at(-1)).toBe(`ALTER USER "APP" IDENTIFIED BY "${pw2}"`);
    expect(admin2.filter((s) => s.startsWith('CREATE USER'))).toEqual([]);
    expect(grantsOf(db, 'APP')).toEqual(grantsOf(db, 'APP_CLONE'));
    await expect(login({ username: 'APP', password: APP_PW })).rejects.toMatchObject({ code: 'AUTH' });

    const r3 = await h.rotate(arn);
    expect(r3.error).toBeUndefined();
    const v3 = (await h.current(arn)).json!;
    expect(v3.username).toBe('APP_CLONE');
    expect(db.user('APP_CLONE').password).toBe(v3.password);
    expect(db.user('APP').password).toBe(pw2); // the previous user keeps working until the next flip
    await (await login({ username: 'APP_CLONE', password: v3.password })).close();
    await (await login({ username: 'APP', password: pw2 })).close();
    expect(db.openConnections).toBe(0);
  });

  it.each(['allowed', 'forbidden'] as const)('survives every step being delivered twice (password reuse %s)', async (passwordReuse) => {
    const { db, h, arn } = await alternating({ server: { passwordReuse } });
    h.intercept = async (event, invoke) => {
      await invoke(event);
      await invoke(event);
    };
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const v = (await h.current(arn)).json!;
    expect(db.user('APP_CLONE').password).toBe(v.password);
    const admin = db.sqlOf('ADMIN');
    expect(admin.filter((s) => s.startsWith('CREATE USER'))).toHaveLength(1);
    // The replayed setSecret re-syncs the grants and sets the same password again...
    expect(admin.filter((s) => s === `ALTER USER "APP_CLONE" IDENTIFIED BY "${v.password as string}"`)).toHaveLength(1);
    // ...which a profile forbidding reuse refuses (ORA-28007): the password is already in place.
    expect(db.user('APP_CLONE').passwordChanges).toBe(passwordReuse === 'allowed' ? 1 : 0);
    expect(h.logs.some((l) => l.includes('already has this password'))).toBe(passwordReuse === 'forbidden');
    expect(grantsOf(db, 'APP_CLONE')).toEqual(grantsOf(db, 'APP'));
    expect(db.openConnections).toBe(0);
  });

  it('handles hostile user and role names; statements and binds are exact', async () => {
    const name = "Ap'p ;]\\ ü [x] %";
    const role = "R;O'LE ]\\ ü";
    const s = setup({ env: { EXCLUDE_CHARACTERS: `"${LOWERCASE}${UPPERCASE}`, PASSWORD_LENGTH: '40' } });
    addAdmin(s.db);
    s.db.addRole(role, 'ADMIN');
    s.db.addUser(name, { password: APP_PW, roles: ['CONNECT', role], objectGrants: [{ privilege: 'SELECT', object: `"H'R"."T; ]x"` }] });
    const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
    const arn = await s.h.createSecret({ ...s.base, username: `"${name}"`, password: APP_PW, masterarn: adminArn });

    const r = await s.h.rotate(arn);
    expect(r.error).toBeUndefined();
    const v = (await s.h.current(arn)).json!;
    const clone = `${name}_CLONE`;
    expect(v.username).toBe(`"${clone}"`);
    const pw = v.password as string;
    expect(s.db.statements.filter((x) => x.session === 'ADMIN').map((x) => [x.sql, x.binds])).toEqual([
      [LOOKUP, { u: clone }],
      [ROLE_LOOKUP, { u: clone }],
      [LOOKUP, { u: clone }],
      [`CREATE USER "${clone}" IDENTIFIED BY "${pw}"`, {}],
      [DDL_QUERY, { t: 'ROLE_GRANT', u: name }],
      [`GRANT "CONNECT" TO "${clone}"`, {}],
      [`GRANT "${role}" TO "${clone}"`, {}],
      [DDL_QUERY, { t: 'SYSTEM_GRANT', u: name }],
      [DDL_QUERY, { t: 'OBJECT_GRANT', u: name }],
      [`GRANT SELECT ON "H'R"."T; ]x" TO "${clone}"`, {}],
    ]);
    expect(s.db.user(clone).password).toBe(pw);
    expect(grantsOf(s.db, clone)).toEqual(grantsOf(s.db, name));
    expect(s.db.connects.filter((c) => c.ok).map((c) => c.user)).toContain(`"${clone}"`);
  });

  it('never changes the admin\'s own password, however the secret spells the name ("ADMIN" is admin)', async () => {
    const { db, h, base } = setup();
    addAdmin(db);
    const clonePw = 'Clone-Pa55word-xyz';
    db.addUser('ADMIN_CLONE', { password: clonePw, roles: ['CONNECT'] });
    const adminArn = await h.createSecret({ ...base, username: 'admin', password: ADMIN_PW });
    // The exact-name form of ADMIN_CLONE: its alternate is "ADMIN", which is the admin user.
    const arn = await h.createSecret({ ...base, username: '"ADMIN_CLONE"', password: clonePw, masterarn: adminArn });
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/alternate user "ADMIN" is the admin secret's own user; refusing/);
    expect(db.user('ADMIN').password).toBe(ADMIN_PW);
    expect(db.user('ADMIN').passwordChanges).toBe(0);
    expect(db.sqlOf('ADMIN')).toEqual([LOOKUP]);
    expect((await h.current(arn)).versionId).toBe(before.versionId);
  });

  it('refuses an admin secret for another host', async () => {
    const { db, h, base } = setup();
    addAdmin(db);
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, host: 'other.example.internal', engine: 'oracle' });
    const arn = await h.createSecret({ ...base, username: 'app', password: APP_PW, masterarn: adminArn });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/admin secret's host/);
    expect(db.connects.map((c) => c.user)).not.toContain('ADMIN');
  });

  it('finds an RDS-managed master secret (username and password only) through its RDS tag; RDS engine names accepted', async () => {
    // An RDS-managed secret has no "ssl" field: DEFAULT_SSL_MODE decides (the fake speaks plain TCP only).
    const { db, h, base, rds } = setup({ env: { DEFAULT_SSL_MODE: 'disable' } });
    addAdmin(db);
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    const dbArn = rds.addInstance({ id: 'orcl', engine: 'oracle-se2-cdb', address: db.host, port: db.port });
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW });
    h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn }]);
    const arn = await h.createSecret({ ...base, engine: 'oracle-se2-cdb', username: 'app', password: APP_PW, masterarn: adminArn });
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect((await h.current(arn)).json!.username).toBe('APP_CLONE');
    expect(rds.calls.map((c) => [c.action, c.params.DBInstanceIdentifier])).toEqual([['DescribeDBInstances', dbArn]]);
    expect(db.sqlOf('ADMIN')[0]).toBe(LOOKUP);
  });

  it('a retry finishes a grant copy an earlier attempt left half done', async () => {
    const { db, h, arn } = await alternating({ sm: { rotationMaxAttempts: 2 }, server: { passwordReuse: 'forbidden' } });
    db.failWhen(/^GRANT UNLIMITED/, () => new FakeOracleError('ORA-01031', 'insufficient privileges'));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.attempts).toBe(2);
    expect(h.errors.some((e) => e.startsWith('PrivilegeError: The admin user could not give "APP_CLONE" 1 of "APP"\'s grants') &&
      e.includes('GRANT UNLIMITED TABLESPACE TO "APP_CLONE" (ORA-01031; can be given by a user holding UNLIMITED TABLESPACE WITH ADMIN OPTION'))).toBe(true);
    const admin = db.sqlOf('ADMIN');
    expect(admin.filter((s) => s.startsWith('CREATE USER'))).toHaveLength(1);
    expect(admin.filter((s) => s === 'GRANT UNLIMITED TABLESPACE TO "APP_CLONE"')).toHaveLength(2);
    expect(grantsOf(db, 'APP_CLONE')).toEqual(grantsOf(db, 'APP'));
    expect(db.user('APP_CLONE').password).toBe((await h.current(arn)).json!.password);
  });

  it('a concurrent duplicate setSecret that creates the user first (ORA-01920) converges: the user is updated instead', async () => {
    const { db, h, arn } = await alternating();
    db.failWhen(/^CREATE USER "APP_CLONE"/, () => {
      db.addUser('APP_CLONE', { password: 'set-by-the-other-invocation-1' }); // the other invocation won the race
      return new FakeOracleError('ORA-01920', "user name 'APP_CLONE' conflicts with another user or role name");
    });
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const v = (await h.current(arn)).json!;
    expect(v.username).toBe('APP_CLONE');
    expect(db.user('APP_CLONE').password).toBe(v.password);
    expect(grantsOf(db, 'APP_CLONE')).toEqual(grantsOf(db, 'APP'));
    expect(h.logs.some((l) => l.includes('created concurrently'))).toBe(true);
  });

  it('a locked alternate user is refused (STATE) before anything changes, not silently unlocked', async () => {
    const { db, h, arn } = await alternating();
    db.addUser('APP_CLONE', { password: 'whatever-old-pw', roles: ['CONNECT'], locked: true });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/RotationStateError: The alternate user "APP_CLONE" exists but its account is LOCKED; refusing to take it over/);
    expect(db.user('APP_CLONE').locked).toBe(true);
    expect(db.user('APP_CLONE').password).toBe('whatever-old-pw');
    expect(db.sqlOf('ADMIN').filter((x) => !x.startsWith('SELECT'))).toEqual([]);
  });

  it('fails loudly when the admin cannot read other users\' grants (no SELECT_CATALOG_ROLE)', async () => {
    const s = setup();
    s.db.addUser('ADMIN', {
      password: ADMIN_PW,
      systemPrivileges: ['CREATE SESSION', 'CREATE USER', 'ALTER USER', 'DROP USER', 'GRANT ANY ROLE', 'GRANT ANY PRIVILEGE', 'GRANT ANY OBJECT PRIVILEGE'],
      objectGrants: [{ privilege: 'SELECT', object: '"SYS"."DBA_USERS"' }],
    });
    s.db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
    const arn = await s.h.createSecret({ ...s.base, username: 'app', password: APP_PW, masterarn: adminArn });
    const r = await s.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/CREATE SESSION/);
    expect(s.h.logs.some((l) => l.includes('SELECT_CATALOG_ROLE'))).toBe(true);
  });

  it('rejects an alternate name longer than the server allows, leaving AWSCURRENT untouched', async () => {
    const s = setup({ maxUsernameLength: 30 });
    addAdmin(s.db);
    const long = 'A'.repeat(25);
    s.db.addUser(long, { password: APP_PW, roles: ['CONNECT'] });
    const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
    const arn = await s.h.createSecret({ ...s.base, username: long, password: APP_PW, masterarn: adminArn });
    const before = await s.h.current(arn);
    const r = await s.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/would be 31 bytes long; oracle allows 30/);
    expect((await s.h.current(arn)).versionId).toBe(before.versionId);
    expect(s.db.statements).toEqual([]);

    // Bytes, not characters: 10 three-byte characters are 30 bytes; with _CLONE, 36.
    const s2 = setup({ maxUsernameLength: 30 });
    addAdmin(s2.db);
    const wide = '"' + '€'.repeat(10) + '"';
    s2.db.addUser('€'.repeat(10), { password: APP_PW, roles: ['CONNECT'] });
    const adminArn2 = await s2.h.createSecret({ ...s2.base, username: 'admin', password: ADMIN_PW });
    const arn2 = await s2.h.createSecret({ ...s2.base, username: wide, password: APP_PW, masterarn: adminArn2 });
    const r2 = await s2.h.rotate(arn2);
    expect(r2.succeeded).toBe(false);
    expect(r2.error).toMatch(/would be 36 bytes long; oracle allows 30/);
  });

  it('reads ORACLE_MAX_USERNAME_LENGTH from the handler\'s env on every rotation, never from process.env', async () => {
    const saved = process.env.ORACLE_MAX_USERNAME_LENGTH;
    process.env.ORACLE_MAX_USERNAME_LENGTH = '10'; // would refuse APP_CLONE-sized names if it were read
    try {
      const s = setup({ env: { ORACLE_MAX_USERNAME_LENGTH: '30' } });
      addAdmin(s.db);
      const long = 'A'.repeat(25);
      s.db.addUser(long, { password: APP_PW, roles: ['CONNECT'] });
      const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
      // A secret per rotation: a failed one leaves its AWSPENDING behind.
      const child = () => s.h.createSecret({ ...s.base, username: long, password: APP_PW, masterarn: adminArn });
      const r = await s.h.rotate(await child());
      expect(r.error).toMatch(/would be 31 bytes long; oracle allows 30/);
      expect(s.db.statements).toEqual([]);

      // The same function, its environment changed between rotations: the new limit applies.
      s.h.env = {};
      const r2 = await s.h.rotate(await child());
      expect(r2.error).toBeUndefined();
      expect(r2.succeeded).toBe(true);
      expect(s.db.user(`${long}_CLONE`)).toBeDefined();

      s.h.env = { ORACLE_MAX_USERNAME_LENGTH: '300' };
      const r3 = await s.h.rotate(await child());
      expect(r3.error).toMatch(/ConfigError: ORACLE_MAX_USERNAME_LENGTH must be a whole number from 1 to 128, got "300"/);
    } finally {
      if (saved === undefined) delete process.env.ORACLE_MAX_USERNAME_LENGTH;
      else process.env.ORACLE_MAX_USERNAME_LENGTH = saved;
    }
  });
});

// =============================================================================================
describe('the alternate user must be the pair (checkAlternateUser), as attacks', () => {
  const ATTACKER_PW = 'Attacker-Pa55word-1';

  /** A fake with the RDS master, a victim, and the attacker's own user with a child secret naming it. */
  async function attack(victim: string, victimSpec: Parameters<FakeOracleServer['addUser']>[1], attacker: string, attackerSpec: Partial<Parameters<FakeOracleServer['addUser']>[1]> = {}) {
    const s = setup();
    addAdmin(s.db);
    s.db.addUser(victim, victimSpec);
    s.db.addUser(attacker, { password: ATTACKER_PW, roles: ['CONNECT'], ...attackerSpec });
    const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
    const arn = await s.h.createSecret({ ...s.base, username: `"${attacker}"`, password: ATTACKER_PW, masterarn: adminArn });
    const before = await s.h.current(arn);
    const r = await s.h.rotate(arn);
    return { ...s, arn, r, before };
  }

  /** The victim keeps its password (it still logs in with it) and no ALTER USER touched it; AWSCURRENT did not move. */
  async function assertUnchanged(s: Awaited<ReturnType<typeof attack>>, victim: string, password: string) {
    expect(s.r.succeeded).toBe(false);
    expect(s.db.user(victim).password).toBe(password);
    expect(s.db.user(victim).passwordChanges).toBe(0);
    await (await s.login({ username: `"${victim}"`, password })).close();
    expect(s.db.sqlOf('ADMIN').filter((x) => !x.startsWith('SELECT'))).toEqual([]);
    expect((await s.h.current(s.arn)).versionId).toBe(s.before.versionId);
  }

  it('X_CLONE -> X where X is a DBA: PRIVILEGE, X unchanged', async () => {
    const s = await attack('BOSS', { password: 'Boss-Pa55word-1', roles: ['DBA', 'CONNECT'] }, 'BOSS_CLONE');
    expect(s.r.error).toMatch(/PrivilegeError: The alternate user "BOSS" holds 1 privilege\(s\) "BOSS_CLONE" lacks \(role "DBA"\)/);
    await assertUnchanged(s, 'BOSS', 'Boss-Pa55word-1');
  });

  it('X_CLONE -> X where X is an unrelated application user (object grant, ADMIN OPTION): PRIVILEGE, X unchanged', async () => {
    const s = await attack('BILLING', {
      password: 'Billing-Pa55word-1', roles: ['CONNECT'], systemPrivileges: ['CREATE TABLE'],
      objectGrants: [{ privilege: 'SELECT', object: '"FIN"."INVOICES"' }],
    }, 'BILLING_CLONE', { systemPrivileges: ['CREATE TABLE'] });
    s.db.user('BILLING').systemPrivileges.set('CREATE TABLE', { admin: true });
    expect(s.r.error).toMatch(/"BILLING" holds 1 privilege\(s\) "BILLING_CLONE" lacks \(SELECT on "FIN"."INVOICES"\)/);
    await assertUnchanged(s, 'BILLING', 'Billing-Pa55word-1');

    // ADMIN OPTION the current user lacks counts too.
    const t = await attack('OPS', { password: 'Ops-Pa55word-1', roles: ['CONNECT'], systemPrivileges: ['CREATE TABLE'] }, 'OPS_CLONE', { systemPrivileges: ['CREATE TABLE'] });
    expect(t.r.succeeded).toBe(true); // same privileges: indistinguishable without a marker (see README)
    const u = setup();
    addAdmin(u.db);
    u.db.addUser('OPS', { password: 'Ops-Pa55word-1', roles: ['CONNECT'], systemPrivileges: ['CREATE TABLE'] }).systemPrivileges.set('CREATE TABLE', { admin: true });
    u.db.addUser('OPS_CLONE', { password: ATTACKER_PW, roles: ['CONNECT'], systemPrivileges: ['CREATE TABLE'] });
    const adminArn = await u.h.createSecret({ ...u.base, username: 'admin', password: ADMIN_PW });
    const arn = await u.h.createSecret({ ...u.base, username: 'OPS_CLONE', password: ATTACKER_PW, masterarn: adminArn });
    const r = await u.h.rotate(arn);
    expect(r.error).toMatch(/"OPS" holds 1 privilege\(s\) "OPS_CLONE" lacks \(system privilege CREATE TABLE \(with ADMIN\/GRANT OPTION\)\)/);
    expect(u.db.user('OPS').password).toBe('Ops-Pa55word-1');
  });

  it('X -> X_CLONE where an unrelated X_CLONE holds more than X: PRIVILEGE, X_CLONE unchanged', async () => {
    const s = setup();
    addAdmin(s.db);
    s.db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    s.db.addUser('APP_CLONE', { password: 'Other-Pa55word-1', roles: ['CONNECT', 'RESOURCE'] });
    const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
    const arn = await s.h.createSecret({ ...s.base, username: 'app', password: APP_PW, masterarn: adminArn });
    const r = await s.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/"APP_CLONE" holds 1 privilege\(s\) "APP" lacks \(role "RESOURCE"\)/);
    expect(s.db.user('APP_CLONE').password).toBe('Other-Pa55word-1');
    expect(s.db.sqlOf('ADMIN').filter((x) => !x.startsWith('SELECT'))).toEqual([]);
  });

  it('a locked account or a role of that name: STATE, nothing changed', async () => {
    const s = await attack('LOCKEDAPP', { password: 'Locked-Pa55word-1', roles: ['CONNECT'], locked: true }, 'LOCKEDAPP_CLONE');
    expect(s.r.error).toMatch(/RotationStateError: The alternate user "LOCKEDAPP" exists but its account is LOCKED/);
    expect(s.db.user('LOCKEDAPP').locked).toBe(true);
    expect(s.db.user('LOCKEDAPP').passwordChanges).toBe(0);

    const t = setup();
    addAdmin(t.db);
    t.db.addUser('APP_READ_CLONE', { password: ATTACKER_PW, roles: ['CONNECT'] });
    t.db.addRole('APP_READ');
    const adminArn = await t.h.createSecret({ ...t.base, username: 'admin', password: ADMIN_PW });
    const arn = await t.h.createSecret({ ...t.base, username: 'APP_READ_CLONE', password: ATTACKER_PW, masterarn: adminArn });
    const r = await t.h.rotate(arn);
    expect(r.error).toMatch(/RotationStateError: The alternate user "APP_READ" is a role, not a user/);
    expect(t.db.sqlOf('ADMIN').filter((x) => !x.startsWith('SELECT'))).toEqual([]);
  });
});

describe('grants the RDS master can and cannot give', () => {
  const GSO = 'BEGIN rdsadmin.rdsadmin_util.grant_sys_object(p_obj_name => :obj, p_grantee => :grantee, p_privilege => :priv, p_grant_option => FALSE); END;';

  it('routes SYS-object grants through rdsadmin.rdsadmin_util.grant_sys_object (bound names), other grants as GRANT', async () => {
    const s = setup();
    addAdmin(s.db);
    s.db.addUser('APP', {
      password: APP_PW, roles: ['CONNECT'],
      objectGrants: [
        { privilege: 'SELECT', object: '"SYS"."V_$SESSION"' }, // via SELECT_CATALOG_ROLE, held WITH ADMIN OPTION
        { privilege: 'READ', object: 'DIRECTORY "DATA_PUMP_DIR"' }, // the master holds it WITH GRANT OPTION
        { privilege: 'SELECT', object: '"HR"."EMPLOYEES"' },
      ],
    });
    const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
    const arn = await s.h.createSecret({ ...s.base, username: 'app', password: APP_PW, masterarn: adminArn });
    const r = await s.h.rotate(arn);
    expect(r.error).toBeUndefined();
    const admin = s.db.statements.filter((x) => x.session === 'ADMIN' && !x.sql.startsWith('SELECT'));
    expect(admin.slice(1).map((x) => [x.sql, x.binds])).toEqual([
      ['GRANT "CONNECT" TO "APP_CLONE"', {}],
      [GSO, { obj: 'V_$SESSION', grantee: 'APP_CLONE', priv: 'SELECT' }],
      [GSO, { obj: 'DATA_PUMP_DIR', grantee: 'APP_CLONE', priv: 'READ' }],
      ['GRANT SELECT ON "HR"."EMPLOYEES" TO "APP_CLONE"', {}],
    ]);
    expect(grantsOf(s.db, 'APP_CLONE')).toEqual(grantsOf(s.db, 'APP'));
  });

  it('never passes a mixed-case grantee to grant_sys_object (its case handling is undocumented): reported instead', async () => {
    const s = setup();
    addAdmin(s.db);
    s.db.addUser('Mixed', { password: APP_PW, roles: ['CONNECT'], objectGrants: [{ privilege: 'SELECT', object: '"SYS"."V_$SESSION"' }] });
    const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
    const arn = await s.h.createSecret({ ...s.base, username: '"Mixed"', password: APP_PW, masterarn: adminArn });
    const r = await s.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/GRANT SELECT ON "SYS"."V_\$SESSION" TO "Mixed_CLONE" \(not attempted: rdsadmin.rdsadmin_util.grant_sys_object is only used for upper-case names/);
    expect(s.db.sqlOf('ADMIN').some((x) => x.includes('grant_sys_object'))).toBe(false);
  });

  it('a self-managed server (no RDSADMIN) gets plain GRANTs on SYS objects', async () => {
    const s = setup({ server: { flavour: 'self-managed' } });
    s.db.addUser('ADMIN', { password: ADMIN_PW, roles: ['DBA'] });
    s.db.addUser('APP', { password: APP_PW, roles: ['CONNECT'], objectGrants: [{ privilege: 'SELECT', object: '"SYS"."V_$SESSION"' }] });
    const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
    const arn = await s.h.createSecret({ ...s.base, username: 'app', password: APP_PW, masterarn: adminArn });
    const r = await s.h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(s.db.sqlOf('ADMIN')).toContain('GRANT SELECT ON "SYS"."V_$SESSION" TO "APP_CLONE"');
    expect(grantsOf(s.db, 'APP_CLONE')).toEqual(grantsOf(s.db, 'APP'));
  });

  it('fails before switching users, naming every grant the master may not give and who can', async () => {
    const s = setup();
    addAdmin(s.db);
    s.db.addUser('DBA2', { password: 'Other-Pa55word-1', roles: ['DBA'] });
    s.db.addRole('LEGACY_ROLE', 'DBA2'); // created by someone else: the master lacks ADMIN OPTION on it
    s.db.addUser('APP', {
      password: APP_PW, roles: ['CONNECT', 'LEGACY_ROLE'], systemPrivileges: ['ALTER SYSTEM', 'CREATE VIEW'],
      objectGrants: [{ privilege: 'EXECUTE', object: '"SYS"."UTL_FILE"' }, { privilege: 'SELECT', object: '"HR"."EMPLOYEES"' }],
    });
    const adminArn = await s.h.createSecret({ ...s.base, username: 'admin', password: ADMIN_PW });
    const arn = await s.h.createSecret({ ...s.base, username: 'app', password: APP_PW, masterarn: adminArn });
    const before = await s.h.current(arn);
    const r = await s.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/PrivilegeError: The admin user could not give "APP_CLONE" 3 of "APP"'s grants, so the alternate user would lack them; the rotation stopped before switching users/);
    expect(r.error).toMatch(/GRANT "LEGACY_ROLE" TO "APP_CLONE" \(ORA-01924; can be given by a user holding role "LEGACY_ROLE" WITH ADMIN OPTION/);
    expect(r.error).toMatch(/GRANT ALTER SYSTEM TO "APP_CLONE" \(ORA-01031; can be given by a user holding ALTER SYSTEM WITH ADMIN OPTION, or one with GRANT ANY PRIVILEGE/);
    expect(r.error).toMatch(/GRANT EXECUTE ON "SYS"."UTL_FILE" TO "APP_CLONE" \(ORA-01031; can be given by on RDS, a user holding EXECUTE on it WITH GRANT OPTION.*grant_sys_object/);
    // Everything else was given; nothing was promoted.
    expect(grantsOf(s.db, 'APP_CLONE').system).toEqual({ 'CREATE VIEW': { admin: false } });
    expect((await s.h.current(arn)).versionId).toBe(before.versionId);
  });
});

describe('STATEMENT_TIMEOUT_MS', () => {
  it.each([true, false])('a server that never answers a statement fails the step with NETWORK naming STATEMENT_TIMEOUT_MS (driver callTimeout honoured: %s)', async (honour) => {
    const s = setup({ env: { STATEMENT_TIMEOUT_MS: '300' } });
    s.db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    s.db.stallStatements = true;
    s.db.honourCallTimeout = honour;
    const arn = await s.h.createSecret({ ...s.base, username: 'app', password: APP_PW });
    const before = await s.h.current(arn);
    const started = Date.now();
    const r = await s.h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.error).toMatch(/ConnectError: Oracle did not answer a statement within 300 ms \(STATEMENT_TIMEOUT_MS\)/);
    expect(s.db.user('APP').password).toBe(APP_PW);
    expect((await s.h.current(arn)).versionId).toBe(before.versionId);
  });

  it('the driver gets STATEMENT_TIMEOUT_MS as callTimeout for every statement of a rotation', async () => {
    const { db, h, base } = setup({ env: { STATEMENT_TIMEOUT_MS: '4321' } });
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    const arn = await h.createSecret({ ...base, username: 'app', password: APP_PW });
    expect((await h.rotate(arn)).error).toBeUndefined();
    expect(db.callTimeouts.length).toBeGreaterThan(1);
    expect(new Set(db.callTimeouts)).toEqual(new Set([4321]));
  });
});

describe('secret validation: a clear error naming the field, AWSCURRENT untouched', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['missing dbname', { dbname: undefined }, /missing the "dbname" field/],
    ['descriptor injection in dbname', { dbname: 'ORCL)(SERVER=DEDICATED' }, /"dbname" field must be an Oracle service name/],
    ['descriptor injection in host', { host: 'db)(PORT=1' }, /"host" field must be a host name/],
    ['double quote in username', { username: 'ap"p' }, /"username" field is not a usable Oracle user name/],
    ['missing password', { password: undefined }, /missing the "password" field/],
    ['unknown engine', { engine: 'postgres' }, /engine "postgres"/],
    ['invalid ssl', { ssl: 'sometimes' }, /"ssl" field/],
    ['invalid port', { port: 'abc' }, /"port" field/],
  ];
  it.each(cases)('%s', async (_name, patch, pattern) => {
    const { db, h, base } = setup();
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    const secret: Record<string, unknown> = { ...base, username: 'app', password: APP_PW, ...patch };
    for (const k of Object.keys(patch)) if (patch[k] === undefined) delete secret[k];
    const arn = await h.createSecret(secret);
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(pattern);
    expect(r.steps).toEqual(['createSecret']);
    const after = await h.current(arn);
    expect(after.versionId).toBe(before.versionId);
    expect(after.value).toBe(before.value);
    expect(Object.values(h.stages(arn)).flat().filter((l) => l === 'AWSCURRENT')).toHaveLength(1);
    expect(db.connects).toEqual([]);
    expect(db.user('APP').password).toBe(APP_PW);
  });

  it('a generated password with a double quote is refused before anything is stored', async () => {
    const { db, h, base } = setup({ env: { EXCLUDE_CHARACTERS: `${LOWERCASE}${UPPERCASE}${DIGITS}!#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~`, PASSWORD_LENGTH: '8' } });
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    const arn = await h.createSecret({ ...base, username: 'app', password: APP_PW });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/"password" field contains a double quote/);
    expect(r.error).not.toContain('""""""""');
    // Nothing was stored for the new version (RotateSecret's placeholder has no value).
    await expect(h.version(arn, r.versionId)).rejects.toThrow();
    expect(db.connects).toEqual([]);
  });
});

// =============================================================================================
describe('TLS (TCPS)', () => {
  it('connects over TCPS with host name matching when the secret has no ssl field', async () => {
    const { db, h, base } = setup({ server: { protocol: 'TCPS', port: 2484 } });
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    const { ssl: _ssl, ...noSsl } = base;
    const arn = await h.createSecret({ ...noSsl, username: 'app', password: APP_PW });
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(db.configs.length).toBeGreaterThan(0);
    for (const c of db.configs) {
      expect(c.connectString).toBe(
        `(DESCRIPTION=(ADDRESS=(PROTOCOL=TCPS)(HOST=${db.host})(PORT=2484))(CONNECT_DATA=(SERVICE_NAME=${db.service}))(SECURITY=(SSL_SERVER_DN_MATCH=yes)))`,
      );
      expect(c.sslServerDNMatch).toBe(true);
    }
  });

  it('ssl "prefer" falls back to plaintext (with a warning) when the listener has no TLS', async () => {
    const { db, h, base } = setup();
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    const arn = await h.createSecret({ ...base, ssl: 'prefer', username: 'app', password: APP_PW });
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(db.connects.some((c) => c.code === 'NJS-506')).toBe(true);
    expect(h.logs.some((l) => l.includes('connected WITHOUT TLS'))).toBe(true);
  });

  it('a TLS failure is reported as TLS with the remedy, and never falls back without "prefer"', async () => {
    const { db, h, base } = setup();
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    const arn = await h.createSecret({ ...base, ssl: true, username: 'app', password: APP_PW });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/TLS to Oracle failed/);
    expect(db.connects.every((c) => c.connectString.startsWith('(DESCRIPTION=(ADDRESS=(PROTOCOL=TCPS)'))).toBe(true);
    expect(h.records().find((l) => l.message === 'step failed')).toMatchObject({ errorCode: 'TLS' });
  });

  it('a wrong service name is a CONFIG error naming dbname', async () => {
    const { db, h, base } = setup();
    db.addUser('APP', { password: APP_PW, roles: ['CONNECT'] });
    const arn = await h.createSecret({ ...base, dbname: 'NOPE', username: 'app', password: APP_PW });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/no service "NOPE".*"dbname"/);
  });
});
