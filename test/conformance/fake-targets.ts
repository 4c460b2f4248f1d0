/**
 * Conformance targets for the engines that have no server here: each world is a fresh in-process
 * fake (test/fakes/) with the managed service's master user as the admin. Logins are checked
 * against the fake's own state, not through the engine under test.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { createMongoEngine } from '../../rotators/mongodb/engine';
import { createMysqlEngine } from '../../rotators/mysql/engine';
import { createOracleEngine } from '../../rotators/oracle/engine';
import { createSqlServerEngine } from '../../rotators/sqlserver/engine';
import type { Env } from '../../src/password';
import { type FakePersonality, MongoWireFake } from '../fakes/mongo-wire-fake';
import { driverError, FakeMysql, NO_SSL } from '../fakes/mysql8-fake';
import { FakeOracleError, FakeOracleServer } from '../fakes/oracle-fake';
import { FakeSqlServer } from '../fakes/sqlserver-fake';
import type { ConformanceTarget, TargetWorld } from './target';

let counter = 0;
const next = () => `${++counter}${randomUUID().slice(0, 4)}`;

// ---- MySQL 8 (fake at the mysql2 boundary) -----------------------------------------------------

export function mysql8FakeTarget(version = '8.0.36'): ConformanceTarget {
  let fake: FakeMysql;
  const engine = createMysqlEngine({ connect: (config) => fake.connect(config), env: {} });
  const ADMIN = 'rds admin';
  const ADMIN_PW = `Adm'in"\\%?-Pw9`;
  const account = (user: string, password: string) => ({
    user, host: '%', password, plugin: 'caching_sha2_password', ssl: NO_SSL, grants: [`GRANT USAGE ON *.* TO \`${user}\`@\`%\``],
  });
  return {
    name: `MySQL ${version} (fake)`,
    statementFaults: true,
    engine,
    async open(): Promise<TargetWorld> {
      fake = new FakeMysql(version, [{ ...account(ADMIN, ADMIN_PW), admin: true }]);
      const f = fake;
      const host = 'db.example.internal';
      return {
        base: { engine: 'mysql', host, port: 3306, ssl: false },
        admin: { username: ADMIN, password: ADMIN_PW, secret: { host, port: 3306, ssl: false, username: ADMIN, password: ADMIN_PW } },
        // 32 characters at most, `_clone` included.
        userName: (tag, hostile) => (hostile ? `q'"\\;--$$Ü ${tag}${next()}` : `${tag}${next()}`),
        password: (hostile) => (hostile ? `In'it"\\;--%?Ü $$-Pw9${next()}` : `Pw-${randomUUID()}`),
        async setUser(username, password) {
          const a = fake.account(username, '%');
          if (a) a.password = password;
          else fake.accounts.push(account(username, password));
        },
        async tryLogin(username, password) {
          const a = fake.accounts.find((x) => x.user === username && !x.locked);
          return !!a && a.password === password;
        },
        statements: {
          count: () => f.calls.length,
          failAt(n) {
            let seen = 0;
            f.failWith = () => (++seen === n ? driverError('PROTOCOL_CONNECTION_LOST', 0, 'Connection lost: The server closed the connection.') : undefined);
          },
        },
      };
    },
  };
}

// ---- SQL Server (fake at the tedious boundary, RDS master) --------------------------------------

export function sqlServerFakeTarget(): ConformanceTarget {
  let fake: FakeSqlServer;
  const engine = createSqlServerEngine({ connect: (config, tls) => fake.connect(config, tls) });
  const HOST = 'sql-1.abcdefghij.us-east-1.rds.amazonaws.com';
  const ADMIN = 'rds_master';
  const ADMIN_PW = 'Adm1n-Pa55word!ForTheFake';
  return {
    name: 'SQL Server 2022 (fake, RDS master)',
    statementFaults: true,
    engine,
    async open(): Promise<TargetWorld> {
      fake = new FakeSqlServer();
      fake.addDatabase('appdb');
      fake.addRdsMaster(ADMIN, ADMIN_PW);
      const f = fake;
      return {
        base: { engine: 'sqlserver', host: HOST, port: 1433, dbname: 'appdb' },
        admin: { username: ADMIN, password: ADMIN_PW, secret: { engine: 'sqlserver', host: HOST, username: ADMIN, password: ADMIN_PW } },
        userName: (tag, hostile) => (hostile ? `O'B]r"\\;--$$Ü [x] ${tag}${next()}` : `${tag}${next()}`),
        password: (hostile) => (hostile ? `P'a]"\\;--$$Ü x-9${next()}` : `Pw-${randomUUID()}`),
        async setUser(username, password) {
          const login = f.logins.get(username);
          if (login) {
            f.setLoginPassword(login, password);
            return;
          }
          f.addLogin(username, password, { defaultDatabase: 'appdb' });
          f.addUser('appdb', username, { login: username });
        },
        async tryLogin(username, password) {
          return f.canLogin(username, password, 'appdb');
        },
        statements: {
          count: () => f.statements.length,
          failAt(n) {
            let seen = 0;
            // The fake asks `match.test(sql)` once per statement while the failure is armed.
            const nth = Object.assign(/(?:)/, { test: () => ++seen === n });
            f.failOn(nth, () => Object.assign(new Error('Connection lost - read ECONNRESET'), { code: 'ESOCKET' }));
          },
        },
        afterEach() {
          expect(f.open.size, 'sessions left open').toBe(0);
          expect(f.unrecognised.map((s) => s.sql.slice(0, 40)), 'statements the fake did not recognise').toEqual([]);
        },
      };
    },
  };
}

// ---- Oracle (fake at the node-oracledb boundary, RDS master) -------------------------------------

export function oracleFakeTarget(): ConformanceTarget {
  let db: FakeOracleServer;
  const engine = createOracleEngine({ connect: (config) => db.connect(config) });
  const ADMIN = 'ADMIN';
  const ADMIN_PW = 'Admin-Pa55word;with spaces';
  /** The exact Oracle name a secret's username designates: "quoted" exact, otherwise upper case. */
  const exact = (u: string) => (u.length >= 2 && u.startsWith('"') && u.endsWith('"') ? u.slice(1, -1) : u.toUpperCase());
  return {
    name: 'Oracle (fake, RDS master)',
    statementFaults: true,
    engine,
    async open(): Promise<TargetWorld> {
      db = new FakeOracleServer();
      db.addRdsMaster(ADMIN, ADMIN_PW);
      const d = db;
      return {
        base: { engine: 'oracle', host: d.host, port: d.port, dbname: d.service, ssl: false },
        admin: { username: ADMIN, password: ADMIN_PW, secret: { engine: 'oracle', host: d.host, port: d.port, dbname: d.service, ssl: false, username: ADMIN, password: ADMIN_PW } },
        // Quoted: exact and case-sensitive; a quoted Oracle name cannot hold a double quote.
        userName: (tag, hostile) => (hostile ? `"O'b;--$$ü \\ ${tag}${next()}"` : `APP_${tag.toUpperCase()}${next().toUpperCase()}`),
        // No double quote (Oracle passwords cannot hold one).
        password: (hostile) => (hostile ? `App'Initial;Pw]\\ü%$$--${next()}` : `Pw-${randomUUID()}`),
        async setUser(username, password) {
          const name = exact(username);
          const u = d.users.get(name);
          if (u) u.password = password;
          else d.addUser(name, { password, roles: ['CONNECT'] });
        },
        async tryLogin(username, password) {
          const u = d.users.get(exact(username));
          return !!u && !u.locked && u.password === password;
        },
        statements: {
          count: () => d.statements.length,
          failAt(n) {
            let seen = 0;
            d.failWhen(() => ++seen === n, () => new FakeOracleError('NJS-500', 'connection to the Oracle Database was broken'));
          },
        },
        afterEach() {
          expect(d.openConnections, 'sessions left open').toBe(0);
        },
      };
    },
  };
}

// ---- MongoDB / DocumentDB (wire-level fake, real driver) ----------------------------------------

export function mongoFakeTarget(personality: FakePersonality): ConformanceTarget {
  const fake = new MongoWireFake({ personality });
  const docdb = personality === 'documentdb';
  const userDb = docdb ? 'admin' : 'app';
  const ADMIN = docdb ? 'docdbmaster' : 'user-admin';
  const ADMIN_PW = `Adm'"]\\; ïn-Pw0rd!$$--`;
  const env: Env = { CONNECT_TIMEOUT_MS: '3000', ...(docdb ? { MONGODB_ALTERNATE_MARKER: 'none' } : {}) };
  return {
    name: docdb ? 'DocumentDB (MongoDB wire fake, DocumentDB personality)' : 'MongoDB 7 (wire fake)',
    engine: createMongoEngine(),
    env,
    prepare: async () => {
      await fake.start();
    },
    dispose: () => fake.stop(),
    async open(): Promise<TargetWorld> {
      fake.reset();
      fake.addRole('admin', 'changeOwnPasswordRole', ['changeOwnPassword']);
      fake.addUser('admin', ADMIN, ADMIN_PW, [docdb ? 'root@admin' : 'userAdminAnyDatabase@admin']);
      const engineName = docdb ? 'docdb' : 'mongo';
      return {
        base: { engine: engineName, host: fake.host, port: fake.port, dbname: userDb, ssl: false },
        admin: { username: ADMIN, password: ADMIN_PW, secret: { engine: engineName, host: fake.host, port: fake.port, dbname: 'admin', ssl: false, username: ADMIN, password: ADMIN_PW } },
        adminScope: { dbname: 'admin' },
        userName: (tag, hostile) => (hostile ? `App 'o"Brien],x=y\\; %Ü$$-- ${tag}${next()}` : `${tag}${next()}`),
        password: (hostile) => (hostile ? `Init'"]\\; %pä$w0rd,=$$--${next()}` : `Pw-${randomUUID()}`),
        async setUser(username, password) {
          // The admin-self decoy lives where the admin does; everyone else in the application database.
          const db = username === ADMIN || username.startsWith(`${ADMIN}_`) ? 'admin' : userDb;
          if (fake.getUser(db, username)) fake.setPassword(db, username, password);
          else fake.addUser(db, username, password, ['readWrite@app', 'changeOwnPasswordRole@admin']);
        },
        async tryLogin(username, password) {
          const db = username === ADMIN || username.startsWith(`${ADMIN}_`) ? 'admin' : userDb;
          return fake.checkPassword(db, username, password);
        },
      };
    },
  };
}
