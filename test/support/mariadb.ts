/**
 * A throwaway MariaDB server for tests and the local demo (no vitest imports here: the demo
 * script may import this file too).
 *
 * - Binaries: MARIADB_BIN_DIR if set (holding mariadbd, or with mariadb-install-db beside it),
 *   else the Debian `mariadb-server` package (mariadb-install-db on PATH, /usr/sbin/mariadbd).
 * - A fresh data directory under os.tmpdir(), removed by stop(). We are usually root: the server
 *   then runs as the `mysql` system user (`--user=mysql`).
 * - Password authentication only: `root`@`localhost` and `root`@`127.0.0.1` get a random
 *   password from an init file (executed before the server accepts connections, then deleted);
 *   every other root account and every anonymous account is dropped. The grant tables are always
 *   on (never --skip-grant-tables).
 * - Listens on 127.0.0.1 only, on a free ephemeral port, with `skip_name_resolve` (accounts match
 *   by IP: a TCP client from 127.0.0.1 matches `user`@`127.0.0.1` or `user`@`%`, never
 *   `user`@`localhost`). TLS is on with a throwaway CA (makeTestCerts); plaintext is accepted
 *   too unless an account says REQUIRE SSL.
 * - Durability is traded for speed (innodb_flush_log_at_trx_commit=0, no doublewrite, no binary
 *   log, small buffer pool, no performance schema).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { createConnection, type Connection } from 'mysql2/promise';
import { makeTestCerts } from './certs';
import type { MariaDbInfo } from './provided';
import { chownTo, ExitGuard, freePort, runFile, serverOwner, serverRoot, type StartServerOptions, tail, waitForConnections } from './server-process';

export interface MariaDbServer {
  info: MariaDbInfo;
  /** Unix socket of the server (root can log in there with the root password). */
  socketPath: string;
  stop(): Promise<void>;
}

export type StartMariaDbOptions = StartServerOptions;

/**
 * The global privileges AWS documents for the RDS for MariaDB master user ("Master user account
 * privileges", RDS/UsingWithRDS.MasterAccounts.html; see /work/shared/docs/managed-services.md
 * section 2), ON *.* WITH GRANT OPTION: no SUPER, FILE, SHUTDOWN or CREATE TABLESPACE. MariaDB
 * 10.5+ names REPLICATION CLIENT `BINLOG MONITOR`. Tests use an account with exactly these as
 * their admin (the real service's master), and root only for what only RDS itself (rdsadmin or
 * the parameter group) can do there.
 */
export const RDS_MARIADB_MASTER_PRIVILEGES = [
  'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'RELOAD', 'PROCESS', 'REFERENCES', 'INDEX', 'ALTER',
  'SHOW DATABASES', 'CREATE TEMPORARY TABLES', 'LOCK TABLES', 'EXECUTE', 'REPLICATION SLAVE', 'BINLOG MONITOR',
  'CREATE VIEW', 'SHOW VIEW', 'CREATE ROUTINE', 'ALTER ROUTINE', 'CREATE USER', 'EVENT', 'TRIGGER',
] as const;

/** Creates user@`%` with the RDS for MariaDB master's privileges, through a connection that may grant them. */
export async function createRdsLikeMaster(conn: Connection, user: string, password: string): Promise<void> {
  await conn.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', password]);
  await conn.query(`GRANT ${RDS_MARIADB_MASTER_PRIVILEGES.join(', ')} ON *.* TO ?@? WITH GRANT OPTION`, [user, '%']);
}

const ROOT = 'root';

export async function startMariaDb(options: StartMariaDbOptions = {}): Promise<MariaDbServer> {
  const log = options.log ?? (() => undefined);
  const bin = findBinaries();
  const owner = serverOwner('mysql', 'mariadb-server');

  const root = serverRoot('rl-maria-', owner);
  const dataDir = join(root, 'data');
  const socketPath = join(root, 'mysqld.sock');
  const pidFile = join(root, 'mysqld.pid');
  const errorLog = join(root, 'error.log');
  const initFile = join(root, 'init.sql');
  const userArgs = owner ? [`--user=${owner.name}`] : [];

  let child: ChildProcess | undefined;
  let certsDir: string | undefined;
  const cleanup = () => {
    rmSync(root, { recursive: true, force: true });
    if (certsDir) rmSync(certsDir, { recursive: true, force: true });
  };
  const guard = new ExitGuard(() => {
    killGroup(child, 'SIGKILL');
    cleanup();
  });

  try {
    log(`mariadb-install-db (${bin.installDb})`);
    await runFile(bin.installDb, [
      '--no-defaults',
      '--auth-root-authentication-method=normal',
      `--datadir=${dataDir}`,
      ...userArgs,
      '--skip-test-db',
      '--skip-name-resolve',
      `--tmpdir=${root}`,
      ...(bin.baseDir ? [`--basedir=${bin.baseDir}`] : []),
    ], { cwd: root });

    const certs = makeTestCerts(owner?.name);
    certsDir = certs.dir;
    const rootPassword = randomBytes(24).toString('base64url');
    const lit = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
    writeFileSync(
      initFile,
      [
        `ALTER USER 'root'@'localhost' IDENTIFIED BY ${lit(rootPassword)};`,
        `CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ${lit(rootPassword)};`,
        `ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY ${lit(rootPassword)};`,
        "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;",
        "GRANT PROXY ON ''@'%' TO 'root'@'127.0.0.1' WITH GRANT OPTION;",
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    chownTo(owner, initFile);

    const port = await freePort();
    const args = [
      '--no-defaults',
      ...userArgs,
      `--datadir=${dataDir}`,
      `--socket=${socketPath}`,
      `--pid-file=${pidFile}`,
      `--log-error=${errorLog}`,
      `--tmpdir=${root}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--skip-name-resolve',
      `--init-file=${initFile}`,
      `--ssl-ca=${certs.caFile}`,
      `--ssl-cert=${certs.serverCertFile}`,
      `--ssl-key=${certs.serverKeyFile}`,
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_unicode_ci',
      '--skip-log-bin',
      '--innodb-flush-log-at-trx-commit=0',
      '--innodb-doublewrite=0',
      '--innodb-buffer-pool-size=32M',
      '--performance-schema=OFF',
      '--max-connections=300',
      '--max-connect-errors=100000',
    ];
    log(`starting mariadbd on 127.0.0.1:${port}`);
    child = spawn(bin.mariadbd, args, { cwd: root, detached: true, stdio: 'ignore' });
    child.unref();
    let exited: string | undefined;
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? code}`;
    });
    child.once('error', (err) => {
      exited = `could not start (${err.message})`;
    });

    const info: MariaDbInfo = {
      host: '127.0.0.1',
      port,
      rootUser: ROOT,
      rootPassword,
      caPem: certs.caPem,
      caFile: certs.caFile,
      otherCaPem: certs.otherCaPem,
      version: '',
      errorLog,
    };
    const conn = await waitForMariaDb(info, options.startTimeoutMs ?? 60_000, () => exited, errorLog);
    try {
      rmSync(initFile, { force: true });
      // Only the two password-protected root accounts may remain; no anonymous accounts.
      const [rows] = await conn.query<Array<{ User: string; Host: string } & import('mysql2').RowDataPacket>>(
        "SELECT User, Host FROM mysql.user WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1'))",
      );
      for (const r of rows) await conn.query('DROP USER ?@?', [r.User, r.Host]);
      const [v] = await conn.query<Array<{ v: string } & import('mysql2').RowDataPacket>>('SELECT VERSION() AS v');
      info.version = v[0].v;
    } finally {
      await conn.end();
    }
    log(`mariadb ${info.version} ready`);

    return {
      info,
      socketPath,
      stop: async () => {
        if (!guard.release()) return;
        try {
          await shutdown(child!);
        } finally {
          cleanup();
        }
      },
    };
  } catch (err) {
    guard.abort();
    throw err;
  }
}

interface Binaries {
  installDb: string;
  mariadbd: string;
  baseDir?: string;
}

function findBinaries(): Binaries {
  const explicit = process.env.MARIADB_BIN_DIR?.trim();
  const dirs = [explicit, ...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']
    .filter((d): d is string => !!d);
  const find = (...names: string[]) => {
    for (const d of dirs) for (const n of names) if (existsSync(join(d, n))) return join(d, n);
    return undefined;
  };
  const installDb = find('mariadb-install-db', 'mysql_install_db');
  const mariadbd = find('mariadbd', 'mysqld');
  if (!installDb || !mariadbd) {
    throw new Error(
      'No MariaDB server binaries found: install the Debian "mariadb-server" package (scripts/setup.sh), ' +
        'or set MARIADB_BIN_DIR to a directory holding mariadbd and mariadb-install-db.',
    );
  }
  return { installDb, mariadbd, baseDir: explicit ? dirname(explicit) : undefined };
}

function waitForMariaDb(info: MariaDbInfo, timeoutMs: number, exited: () => string | undefined, errorLog: string): Promise<Connection> {
  return waitForConnections(
    'MariaDB',
    timeoutMs,
    () => createConnection({ host: info.host, port: info.port, user: info.rootUser, password: info.rootPassword, connectTimeout: 2000 }),
    {
      failed: () => {
        const why = exited();
        return why && `mariadbd ${why}.\n${tail(errorLog)}`;
      },
      diagnostics: () => tail(errorLog),
    },
  );
}

function killGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): void {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the server's own process group (spawned detached)
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM is mariadbd's clean shutdown; SIGKILL the group if it takes more than 15 s. */
async function shutdown(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 15_000);
  await done;
  clearTimeout(timer);
}
