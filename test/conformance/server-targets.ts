/**
 * Conformance targets on real servers: PostgreSQL (and Redshift's engine on PostgreSQL) and the
 * MySQL family (MariaDB here; MySQL 8.0/8.4 and MariaDB 11 in live mode). Each world creates its
 * own admin (the managed service's master user: not a superuser where the service has none) and
 * its own users with unique names, so tests share one server without seeing each other.
 */
import { randomUUID } from 'node:crypto';
import { type Connection, createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import { createMysqlEngine } from '../../rotators/mysql/engine';
import { createPostgresEngine } from '../../rotators/postgres/engine';
import { RedshiftRotator, redshiftEngine } from '../../rotators/redshift';
import type { ConformanceTarget, TargetWorld } from './target';

const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
const next = () => `${RUN}${++counter}`;

export interface PgServer {
  host: string;
  port: number;
  /** A user that may create roles (a superuser here; the live server's admin). */
  superuser: string;
  superPassword: string;
  database: string;
  /** When set, secrets use ssl verify-full with this CA; otherwise ssl false. */
  caPem?: string;
}

/** PostgreSQL, or (redshift: true) Redshift's engine and rotator run against PostgreSQL. */
export function postgresTarget(name: string, server: () => PgServer, options: { redshift?: boolean } = {}): ConformanceTarget {
  const redshift = options.redshift ?? false;
  let su: Client | undefined;
  const owner = async (): Promise<Client> => {
    if (!su) {
      const s = server();
      su = new Client({ host: s.host, port: s.port, user: s.superuser, password: s.superPassword, database: s.database, ssl: false });
      await su.connect();
    }
    return su;
  };
  const id = (s: string) => `"${s.split('"').join('""')}"`;
  const lit = (s: string) => `E'${s.split('\\').join('\\\\').split("'").join("''")}'`;
  return {
    name,
    engine: redshift ? redshiftEngine : createPostgresEngine(),
    rotator: redshift ? (e) => new RedshiftRotator(e) : undefined,
    async dispose() {
      await su?.end();
      su = undefined;
    },
    async open(): Promise<TargetWorld> {
      const s = server();
      const c = await owner();
      const tls = s.caPem ? { ssl: 'verify-full', sslCa: s.caPem } : { ssl: false };
      // Redshift's master user is a superuser; RDS/Aurora PostgreSQL's is not (CREATEROLE, CREATEDB).
      const adminName = `rl conf admin ${next()}`;
      const adminPw = redshift ? `Admin-${randomUUID().slice(0, 8)}-Pw9` : `Adm'n "pw" \\$$ ${next()}`;
      await c.query(`CREATE ROLE ${id(adminName)} LOGIN ${redshift ? 'SUPERUSER' : 'CREATEROLE CREATEDB'} PASSWORD ${lit(adminPw)}`);
      const created = [adminName];
      return {
        base: { engine: redshift ? 'redshift' : 'postgres', host: s.host, port: s.port, dbname: s.database, ...tls },
        admin: { username: adminName, password: adminPw, secret: { host: s.host, port: s.port, ...tls, username: adminName, password: adminPw } },
        // 63 bytes at most, `_clone` included.
        userName: (tag, hostile) => (hostile ? `q'"\\;--$$Ü ${tag} ${next()}` : `rl_${tag}_${next()}`),
        // Redshift: 8-64 characters, upper, lower and digit, none of ' " \ / @ or space.
        password: (hostile) =>
          redshift
            ? (hostile ? `Ab9;--$$Ü%[]${next()}` : `Pw9-${randomUUID()}`)
            : (hostile ? `In'it"\\$$;--%Ü ${next()}-Pw9` : `Pw-${randomUUID()}`),
        async setUser(username, password) {
          const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])).rowCount === 1;
          await c.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${id(username)} LOGIN PASSWORD ${lit(password)}`);
          if (!exists) {
            created.push(username);
            // PostgreSQL 16+: a CREATEROLE admin changes only roles it has ADMIN OPTION on.
            const v = Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0].v);
            if (v >= 160000) await c.query(`GRANT ${id(username)} TO ${id(adminName)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
          }
        },
        async tryLogin(username, password) {
          const client = new Client({ host: s.host, port: s.port, user: username, password, database: s.database, ssl: false, connectionTimeoutMillis: 5000 });
          try {
            await client.connect();
            await client.query('SELECT 1');
            return true;
          } catch (err) {
            if ((err as { code?: string }).code === '28P01' || (err as { code?: string }).code === '28000') return false;
            throw err;
          } finally {
            await client.end().catch(() => undefined);
          }
        },
        async close() {
          // Clones the rotations created are this world's too: drop them with the users.
          const { rows } = await c.query<{ r: string }>("SELECT rolname AS r FROM pg_roles WHERE rolname = ANY($1) OR rolname = ANY(SELECT unnest($1::text[]) || '_clone')", [created]);
          for (const { r } of rows) await c.query(`DROP OWNED BY ${id(r)}; DROP ROLE IF EXISTS ${id(r)}`).catch(() => undefined);
        },
      };
    },
  };
}

export interface MysqlServer {
  host: string;
  port: number;
  /** root (or the live server's administrative user): creates this world's RDS-like master. */
  rootUser: string;
  rootPassword: string;
  flavour: 'mariadb' | 'mysql';
}

/** The RDS master's global privileges (MariaDB 10.5+ names REPLICATION CLIENT "BINLOG MONITOR"). */
function rdsMasterPrivileges(flavour: 'mariadb' | 'mysql'): string {
  return [
    'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'RELOAD', 'PROCESS', 'REFERENCES', 'INDEX', 'ALTER',
    'SHOW DATABASES', 'CREATE TEMPORARY TABLES', 'LOCK TABLES', 'EXECUTE', 'REPLICATION SLAVE',
    flavour === 'mariadb' ? 'BINLOG MONITOR' : 'REPLICATION CLIENT',
    'CREATE VIEW', 'SHOW VIEW', 'CREATE ROUTINE', 'ALTER ROUTINE', 'CREATE USER', 'EVENT', 'TRIGGER',
  ].join(', ');
}

export function mysqlFamilyTarget(name: string, server: () => MysqlServer): ConformanceTarget {
  let root: Connection | undefined;
  const rootConn = async (): Promise<Connection> => {
    if (!root) {
      const s = server();
      root = await createConnection({ host: s.host, port: s.port, user: s.rootUser, password: s.rootPassword });
    }
    return root;
  };
  return {
    name,
    engine: createMysqlEngine(),
    async dispose() {
      await root?.end();
      root = undefined;
    },
    async open(): Promise<TargetWorld> {
      const s = server();
      const r = await rootConn();
      const adminName = `rl admin ${next()}`;
      const adminPw = `Adm'in"\\%?-Pw9 ${next()}`;
      await r.query('CREATE USER ?@? IDENTIFIED BY ?', [adminName, '%', adminPw]);
      await r.query(`GRANT ${rdsMasterPrivileges(s.flavour)} ON *.* TO ?@? WITH GRANT OPTION`, [adminName, '%']);
      const created = [adminName];
      return {
        base: { engine: s.flavour, host: s.host, port: s.port, ssl: false },
        admin: { username: adminName, password: adminPw, secret: { host: s.host, port: s.port, ssl: false, username: adminName, password: adminPw } },
        // MySQL 8: 32 characters at most, `_clone` included.
        userName: (tag, hostile) => (hostile ? `q'"\\;--$$Ü ${tag}${next()}` : `rl_${tag}_${next()}`),
        password: (hostile) => (hostile ? `In'it"\\;--%?Ü $$ ${next()}-Pw9` : `Pw-${randomUUID()}`),
        async setUser(username, password) {
          const [rows] = await r.query('SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?', [username, '%']);
          if ((rows as unknown[]).length > 0) await r.query('ALTER USER ?@? IDENTIFIED BY ?', [username, '%', password]);
          else {
            await r.query('CREATE USER ?@? IDENTIFIED BY ?', [username, '%', password]);
            created.push(username);
          }
        },
        async tryLogin(username, password) {
          try {
            const c = await createConnection({ host: s.host, port: s.port, user: username, password, connectTimeout: 5000 });
            await c.query('SELECT 1');
            await c.end();
            return true;
          } catch (err) {
            if ((err as { code?: string }).code === 'ER_ACCESS_DENIED_ERROR') return false;
            throw err;
          }
        },
        async close() {
          for (const u of created) {
            for (const n of [u, `${u}_clone`]) await r.query('DROP USER IF EXISTS ?@?', [n, '%']).catch(() => undefined);
          }
        },
      };
    },
  };
}
