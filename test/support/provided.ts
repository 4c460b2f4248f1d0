/** Coordinates of the real servers started by global-setup.ts, read in tests with inject(). */
export interface PostgresInfo {
  host: string;
  port: number;
  /** A superuser with a password (scram-sha-256). */
  superuser: string;
  superPassword: string;
  database: string;
  /** The CA that signed the server's certificate (TLS is on; plaintext is also accepted). */
  caPem: string;
  /** The same CA as a PEM file (for SSL_CA_BUNDLE), removed with the server. */
  caFile: string;
  /** A CA that did not sign it: verification against it must fail. */
  otherCaPem: string;
  /**
   * The RDS-like master user, the default admin of the tests: LOGIN NOSUPERUSER INHERIT CREATEDB
   * CREATEROLE, member of the NOLOGIN role `rds_superuser` (itself a member of pg_monitor and
   * pg_signal_backend), as RDS creates it.
   */
  master: string;
  masterPassword: string;
  /** server_version_num, e.g. 150014. */
  versionNum: number;
  /** password_encryption and the pg_hba.conf method of the server. */
  passwordEncryption: 'scram-sha-256' | 'md5';
}

export interface MariaDbInfo {
  host: string;
  port: number;
  rootUser: string;
  rootPassword: string;
  caPem: string;
  /** The same CA as a PEM file, removed with the server. */
  caFile: string;
  otherCaPem: string;
  /** SELECT VERSION() */
  version: string;
  /** The server's error log (failed logins appear as "Access denied for user ..."). */
  errorLog: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: PostgresInfo;
    /** More PostgreSQL majors (13 with md5, as RDS defaults to through 13; 18), for the version matrix. */
    postgresVersions: PostgresInfo[];
    mariadb: MariaDbInfo;
  }
}
