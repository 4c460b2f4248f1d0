import { DatabaseRotator } from '../../src/db';
import { createHandler } from '../../src/api';
import { createOracleEngine } from './engine';

/**
 * The Oracle engine, node-oracledb Thin mode. ORACLE_MAX_USERNAME_LENGTH=30 (in the function's
 * environment, read on every rotation) for Oracle 12.1 and earlier.
 */
export const engine = createOracleEngine();

/** The Lambda entry point: `rotators/oracle/index.handler`. */
export const handler = createHandler(new DatabaseRotator(engine));

export * from './engine';
