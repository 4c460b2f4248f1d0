/**
 * Engine-specific, read-only preflight checks. An engine may carry them as its `preflight`
 * member; the built-in PostgreSQL and MySQL-family checks live beside their engines
 * (rotators/postgres/preflight.ts, rotators/mysql/preflight.ts) and are found by engine name.
 * Every check only reads (catalog queries, SHOW GRANTS, server variables): nothing is created,
 * altered or granted.
 */
import type { DbSecret } from '../db/secret';
import type { Env } from '../password';
import type { Check } from './report';

export interface OwnPasswordInput {
  /** AWSCURRENT, which the connection logged in with. */
  current: DbSecret;
  env: Env;
}

export interface AdminPrivilegesInput {
  /** AWSCURRENT: the user whose privileges the alternate user gets. */
  current: DbSecret;
  /** The user AWSPENDING will name. */
  alternateUser: string;
  /** The admin secret's username (the connection's user). */
  adminUser: string;
  env: Env;
}

export interface PreflightHooks<C = unknown> {
  /** Single user, on AWSCURRENT's connection: can this user change its own password here? */
  ownPassword?(conn: C, input: OwnPasswordInput): Promise<Check[]>;
  /**
   * Alternating users, on the admin's connection: does the admin hold what creating or updating
   * the alternate user and copying the current user's privileges needs on this server version?
   */
  adminPrivileges?(adminConn: C, input: AdminPrivilegesInput): Promise<Check[]>;
}

/** An engine object that carries its own hooks. */
export interface WithPreflightHooks<C = unknown> {
  preflight?: PreflightHooks<C>;
}
