/**
 * Live mode: the conformance suite's targets on real servers named by environment variables
 * (see test/live/compose.yaml and README "Live mode"). Each URL carries an administrative login
 * the suite uses only to create this run's admin (modelled on the managed service's master user)
 * and its users; the rotations use that admin, never the URL's.
 *
 *   (test/live/env.sh sets all of them for the servers of test/live/compose.yaml)
 *   LIVE_POSTGRES_URL   postgres://postgres:pw@127.0.0.1:5432/postgres
 *   LIVE_MYSQL_URL      mysql://root:pw@127.0.0.1:3306          (MySQL 8.0)
 *   LIVE_MYSQL84_URL    mysql://root:pw@127.0.0.1:3307          (MySQL 8.4)
 *   LIVE_MARIADB_URL    mariadb://root:pw@127.0.0.1:3308        (MariaDB 11)
 *   LIVE_SQLSERVER_URL  sqlserver://sa:pw@127.0.0.1:1433
 *   LIVE_ORACLE_URL     oracle://system:pw@127.0.0.1:1521/FREEPDB1
 *   LIVE_MONGODB_URL    mongodb://root:pw@127.0.0.1:27017       (MongoDB 7)
 *   LIVE_MONGODB8_URL   mongodb://root:pw@127.0.0.1:27018       (MongoDB 8)
 *
 * The TLS mode of every secret is ssl: false (the compose servers have no certificates); TLS is
 * covered by the engines' own tests.
 */
import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { createMongoEngine } from '../../rotators/mongodb/engine';
import { oracledbConnect, createOracleEngine } from '../../rotators/oracle/engine';
import { buildConnectionConfig, connectTedious, createSqlServerEngine, type SqlServerConnectionLike } from '../../rotators/sqlserver/engine';
import { RDS_MASTER_SERVER_PERMISSIONS, RDS_MASTER_SERVER_ROLES } from '../fakes/sqlserver-fake';
import { mysqlFamilyTarget, postgresTarget } from './server-targets';
import type { ConformanceTarget, TargetWorld } from './target';

export interface LiveVariable {
  name: string;
  what: string;
  target: (url: URL) => ConformanceTarget;
}

const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
const next = () => `${RUN}${++counter}`;
const dec = (s: string) => decodeURIComponent(s);
const portOf = (u: URL, dflt: number) => (u.port ? Number(u.port) : dflt);

export const LIVE_VARIABLES: LiveVariable[] = [
  {
    name: 'LIVE_POSTGRES_URL', what: 'PostgreSQL',
    target: (u) => postgresTarget(`live PostgreSQL (${u.host})`, () => ({
      host: u.hostname, port: portOf(u, 5432), superuser: dec(u.username), superPassword: dec(u.password), database: dec(u.pathname.slice(1)) || 'postgres',
    })),
  },
  ...(['LIVE_MYSQL_URL', 'LIVE_MYSQL84_URL', 'LIVE_MARIADB_URL'] as const).map((name) => ({
    name, what: name === 'LIVE_MARIADB_URL' ? 'MariaDB 11' : name === 'LIVE_MYSQL84_URL' ? 'MySQL 8.4' : 'MySQL 8.0',
    target: (u: URL) => mysqlFamilyTarget(`live ${name} (${u.host})`, () => ({
      host: u.hostname, port: portOf(u, 3306), rootUser: dec(u.username), rootPassword: dec(u.password), flavour: u.protocol === 'mariadb:' ? 'mariadb' : 'mysql',
    })),
  })),
  { name: 'LIVE_SQLSERVER_URL', what: 'SQL Server 2022', target: (u) => liveSqlServer(u) },
  { name: 'LIVE_ORACLE_URL', what: 'Oracle Database Free', target: (u) => liveOracle(u) },
  { name: 'LIVE_MONGODB_URL', what: 'MongoDB 7', target: (u) => liveMongo(u, 'MongoDB 7') },
  { name: 'LIVE_MONGODB8_URL', what: 'MongoDB 8', target: (u) => liveMongo(u, 'MongoDB 8') },
];

// ---- SQL Server ------------------------------------------------------------------------------

const bracket = (s: string) => `[${s.split(']').join(']]')}]`;
const nlit = (s: string) => `N'${s.split("'").join("''")}'`;

function liveSqlServer(u: URL): ConformanceTarget {
  const host = u.hostname;
  const port = portOf(u, 1433);
  const DB = 'rl_conformance';
  const NO_TLS = { enabled: false, verifyChain: false, verifyHostname: false };
  const connect = (user: string, password: string, database = 'master') =>
    connectTedious(buildConnectionConfig({ engine: 'sqlserver', host, port, dbname: database, username: user, password }, { tls: NO_TLS, connectTimeoutMs: 10_000, statementTimeoutMs: 30_000 }), NO_TLS);
  let sa: SqlServerConnectionLike | undefined;
  const owner = async () => (sa ??= await connect(dec(u.username), dec(u.password)));
  return {
    name: `live SQL Server (${u.host}), RDS-like master`,
    engine: createSqlServerEngine(),
    async prepare() {
      const c = await owner();
      await c.query(`IF DB_ID(${nlit(DB)}) IS NULL CREATE DATABASE ${bracket(DB)}`);
    },
    async dispose() {
      await sa?.close();
      sa = undefined;
    },
    async open(): Promise<TargetWorld> {
      const c = await owner();
      const admin = `rl_master_${next()}`;
      const adminPw = `Adm1n-${randomUUID()}`;
      // The RDS master: the server permissions and roles AWS documents, db_owner in the database; not sysadmin.
      await c.query(`CREATE LOGIN ${bracket(admin)} WITH PASSWORD = ${nlit(adminPw)}`);
      for (const p of RDS_MASTER_SERVER_PERMISSIONS) await c.query(`GRANT ${p} TO ${bracket(admin)} WITH GRANT OPTION`);
      for (const r of RDS_MASTER_SERVER_ROLES) await c.query(`ALTER SERVER ROLE ${r} ADD MEMBER ${bracket(admin)}`);
      await c.query(`USE ${bracket(DB)}; CREATE USER ${bracket(admin)} FOR LOGIN ${bracket(admin)}; ALTER ROLE db_owner ADD MEMBER ${bracket(admin)}`);
      const created = [admin];
      return {
        base: { engine: 'sqlserver', host, port, dbname: DB, ssl: false },
        admin: { username: admin, password: adminPw, secret: { engine: 'sqlserver', host, port, ssl: false, username: admin, password: adminPw } },
        userName: (tag, hostile) => (hostile ? `O'B]r"\\;--$$Ü [x] ${tag}${next()}` : `rl_${tag}_${next()}`),
        password: (hostile) => (hostile ? `P'a]"\\;--$$Ü x-9${next()}` : `Pw-${randomUUID()}`),
        async setUser(username, password) {
          const rows = await c.query(`SELECT 1 AS x FROM sys.server_principals WHERE name = ${nlit(username)}`);
          if (rows.length > 0) {
            await c.query(`ALTER LOGIN ${bracket(username)} WITH PASSWORD = ${nlit(password)}`);
            return;
          }
          await c.query(`CREATE LOGIN ${bracket(username)} WITH PASSWORD = ${nlit(password)}, DEFAULT_DATABASE = ${bracket(DB)}`);
          await c.query(`USE ${bracket(DB)}; CREATE USER ${bracket(username)} FOR LOGIN ${bracket(username)}`);
          created.push(username);
        },
        async tryLogin(username, password) {
          try {
            const s = await connect(username, password, DB);
            await s.query('SELECT 1 AS one');
            await s.close();
            return true;
          } catch (err) {
            if ((err as { code?: string }).code === 'ELOGIN') return false;
            throw err;
          }
        },
        async close() {
          for (const n of created.flatMap((x) => [x, `${x}_clone`])) {
            await c.query(`USE ${bracket(DB)}; IF USER_ID(${nlit(n)}) IS NOT NULL DROP USER ${bracket(n)}`).catch(() => undefined);
            await c.query(`IF SUSER_ID(${nlit(n)}) IS NOT NULL DROP LOGIN ${bracket(n)}`).catch(() => undefined);
          }
        },
      };
    },
  };
}

// ---- Oracle ----------------------------------------------------------------------------------

interface OracleConn {
  execute(sql: string, binds?: Record<string, unknown>): Promise<{ rows?: unknown[] }>;
  close(): Promise<void>;
}

function liveOracle(u: URL): ConformanceTarget {
  const host = u.hostname;
  const port = portOf(u, 1521);
  const service = dec(u.pathname.slice(1)) || 'FREEPDB1';
  const q = (s: string) => `"${s}"`;
  const exact = (name: string) => (name.length >= 2 && name.startsWith('"') && name.endsWith('"') ? name.slice(1, -1) : name.toUpperCase());
  const connect = async (user: string, password: string) =>
    (await oracledbConnect({ user: q(user), password, connectString: `${host}:${port}/${service}`, connectTimeout: 10, transportConnectTimeout: 10, stmtCacheSize: 0 })) as unknown as OracleConn;
  let sys: OracleConn | undefined;
  const owner = async () => (sys ??= await connect(dec(u.username).toUpperCase(), dec(u.password)));
  return {
    name: `live Oracle (${u.host}/${service}), DBA-role admin`,
    engine: createOracleEngine(),
    async dispose() {
      await sys?.close();
      sys = undefined;
    },
    async open(): Promise<TargetWorld> {
      const c = await owner();
      const admin = `RL_ADMIN_${next().toUpperCase()}`;
      const adminPw = `Admin-${randomUUID().slice(0, 12)}`;
      await c.execute(`CREATE USER ${q(admin)} IDENTIFIED BY ${q(adminPw)}`);
      // Self-managed Oracle: the DBA role (on RDS the master's DBA lacks GRANT ANY PRIVILEGE / ROLE; the fake models that).
      await c.execute(`GRANT DBA, CREATE SESSION, SELECT_CATALOG_ROLE TO ${q(admin)} WITH ADMIN OPTION`);
      const created = [admin];
      return {
        base: { engine: 'oracle', host, port, dbname: service, ssl: false },
        admin: { username: admin, password: adminPw, secret: { engine: 'oracle', host, port, dbname: service, ssl: false, username: admin, password: adminPw } },
        userName: (tag, hostile) => (hostile ? `"O'b;--$$ü \\ ${tag}${next()}"` : `RL_${tag.toUpperCase()}_${next().toUpperCase()}`),
        password: (hostile) => (hostile ? `App'Initial;Pw]\\ü%$$--${next()}` : `Pw-${randomUUID().slice(0, 20)}`),
        async setUser(username, password) {
          const name = exact(username);
          const { rows } = await c.execute('SELECT 1 FROM dba_users WHERE username = :u', { u: name });
          if ((rows ?? []).length > 0) {
            await c.execute(`ALTER USER ${q(name)} IDENTIFIED BY ${q(password)} ACCOUNT UNLOCK`);
            return;
          }
          await c.execute(`CREATE USER ${q(name)} IDENTIFIED BY ${q(password)}`);
          await c.execute(`GRANT CREATE SESSION TO ${q(name)}`);
          created.push(name);
        },
        async tryLogin(username, password) {
          try {
            const s = await connect(exact(username), password);
            await s.execute('SELECT 1 FROM DUAL');
            await s.close();
            return true;
          } catch (err) {
            if (/ORA-01017|ORA-28000/.test(String((err as Error).message))) return false;
            throw err;
          }
        },
        async close() {
          for (const n of created.flatMap((x) => [x, `${x}_CLONE`])) await c.execute(`DROP USER ${q(n)} CASCADE`).catch(() => undefined);
        },
      };
    },
  };
}

// ---- MongoDB ---------------------------------------------------------------------------------

function liveMongo(u: URL, what: string): ConformanceTarget {
  const host = u.hostname;
  const port = portOf(u, 27017);
  let root: MongoClient | undefined;
  const owner = async () => {
    if (!root) {
      root = new MongoClient(`mongodb://${host}:${port}/?directConnection=true`, { auth: { username: dec(u.username), password: dec(u.password) }, authSource: 'admin', serverSelectionTimeoutMS: 10_000 });
      await root.connect();
    }
    return root;
  };
  return {
    name: `live ${what} (${u.host})`,
    engine: createMongoEngine(),
    env: { MONGODB_ALTERNATE_MARKER: 'customData' },
    async prepare() {
      const admin = (await owner()).db('admin');
      const roles = (await admin.command({ rolesInfo: 'changeOwnPasswordRole' })) as { roles: unknown[] };
      if (roles.roles.length === 0) {
        await admin.command({ createRole: 'changeOwnPasswordRole', privileges: [{ resource: { db: '', collection: '' }, actions: ['changeOwnPassword'] }], roles: [] });
      }
    },
    async dispose() {
      await root?.close();
      root = undefined;
    },
    async open(): Promise<TargetWorld> {
      const client = await owner();
      const adminName = `rl-admin-${next()}`;
      const adminPw = `Adm-${randomUUID()}`;
      await client.db('admin').command({ createUser: adminName, pwd: adminPw, roles: [{ role: 'userAdminAnyDatabase', db: 'admin' }] });
      const created: Array<[string, string]> = [['admin', adminName]];
      const dbOf = (username: string) => (username === adminName || username.startsWith(`${adminName}_`) ? 'admin' : 'app');
      return {
        base: { engine: 'mongo', host, port, dbname: 'app', ssl: false },
        admin: { username: adminName, password: adminPw, secret: { engine: 'mongo', host, port, dbname: 'admin', ssl: false, username: adminName, password: adminPw } },
        adminScope: { dbname: 'admin' },
        userName: (tag, hostile) => (hostile ? `App 'o"Brien],x=y\\; %Ü$$-- ${tag}${next()}` : `rl-${tag}-${next()}`),
        password: (hostile) => (hostile ? `Init'"]\\; %pä$w0rd,=$$--${next()}` : `Pw-${randomUUID()}`),
        async setUser(username, password) {
          const db = client.db(dbOf(username));
          const info = (await db.command({ usersInfo: username })) as { users: unknown[] };
          if (info.users.length > 0) {
            await db.command({ updateUser: username, pwd: password });
            return;
          }
          await db.command({ createUser: username, pwd: password, roles: [{ role: 'readWrite', db: 'app' }, { role: 'changeOwnPasswordRole', db: 'admin' }] });
          created.push([dbOf(username), username]);
        },
        async tryLogin(username, password) {
          const c = new MongoClient(`mongodb://${host}:${port}/?directConnection=true`, { auth: { username, password }, authSource: dbOf(username), serverSelectionTimeoutMS: 10_000 });
          try {
            await c.connect();
            await c.db(dbOf(username)).command({ ping: 1 });
            return true;
          } catch (err) {
            if ((err as { code?: number }).code === 18) return false;
            throw err;
          } finally {
            await c.close().catch(() => undefined);
          }
        },
        async close() {
          for (const [db, name] of created) {
            for (const n of [name, `${name}_clone`]) await client.db(db).command({ dropUser: n }).catch(() => undefined);
          }
        },
      };
    },
  };
}
