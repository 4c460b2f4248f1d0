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
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: PostgresInfo;
    mariadb: MariaDbInfo;
  }
}
