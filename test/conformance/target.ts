/**
 * What an engine target gives the conformance suite (suite.ts): an engine, and per test a small
 * "world" on a server (real, fake or live) where the suite can create users as the admin and
 * check logins independently of the rotation under test.
 */
import type { DatabaseRotator } from '../../src/db/database-rotator';
import type { DatabaseEngine } from '../../src/db/engine';
import type { Env } from '../../src/password';

export interface ConformanceTarget {
  /** Shown in the test names, e.g. "MySQL 8 (fake)". */
  name: string;
  /** The engine under test (the suite wraps it to record and fault its calls). */
  engine: DatabaseEngine<any>;
  /** The rotator around the (wrapped) engine; default `new DatabaseRotator(engine)`. */
  rotator?: (engine: DatabaseEngine<any>) => DatabaseRotator<any>;
  /** The Lambda environment for every rotation (e.g. EXCLUDE_CHARACTERS). */
  env?: Env;
  /** Why the whole target is skipped (shown in the skipped group's title), or undefined. */
  skip?: string;
  /** Its worlds offer `statements` (statement-level faults): the suite then runs that scenario too. */
  statementFaults?: boolean;
  /** Once before the target's tests (start a listener...), and once after them. */
  prepare?(): Promise<void>;
  dispose?(): Promise<void>;
  /** A fresh world for one test: its own admin and users (and its own server, for a fake). */
  open(): Promise<TargetWorld>;
}

export interface TargetWorld {
  /** The child secret's fields other than username and password (engine, host, port, dbname, ssl, ...). */
  base: Record<string, unknown>;
  /** The admin secret (the managed service's master user): its whole value, and its user and password. */
  admin: { username: string; password: string; secret: Record<string, unknown> };
  /**
   * A user name, unique in this world, as a secret names it. `hostile` asks for quotes,
   * backslashes, semicolons, `--`, `$$`, unicode and spaces, as far as the engine allows.
   */
  userName(tag: string, hostile?: boolean): string;
  /** A password the engine accepts (hostile: with everything the engine allows). */
  password(hostile?: boolean): string;
  /** As the admin (or the server's owner): create this login with this password, or reset its password. */
  setUser(username: string, password: string): Promise<void>;
  /** Does this user log in with this password? Checked without the engine under test where the target can. */
  tryLogin(username: string, password: string): Promise<boolean>;
  /** Child secret fields that make `admin.username` (or its alternate) the same user as the admin (MongoDB: the admin's database). */
  adminScope?: Record<string, unknown>;
  /**
   * Statement-level faults, where the target can inject them (the fakes' hooks): make the Nth
   * statement from now (1-based, any session) fail as a lost connection would, before it runs.
   */
  statements?: { count(): number; failAt(n: number): void };
  /** Extra checks after every test (sessions left open, statements the fake did not know...). */
  afterEach?(): void | Promise<void>;
  close?(): Promise<void>;
}
