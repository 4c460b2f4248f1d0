/**
 * Engine-specific, read-only preflight checks. An engine's optional `preflight()` loads them
 * (the built-in ones live beside their engines: rotators/<engine>/preflight.ts), so a step
 * that is not a preflight never loads them.
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
