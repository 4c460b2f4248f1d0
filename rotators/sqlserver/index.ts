import { DatabaseRotator } from '../../src/db';
import { createHandler } from '../../src/api';
import { createSqlServerEngine } from './engine';

/** The SQL Server engine (tedious, the driver under mssql). */
export const engine = createSqlServerEngine();

/** The Lambda entry point: `rotators/sqlserver/index.handler`. */
export const handler = createHandler(new DatabaseRotator(engine));

export * from './engine';
