/**
 * Lambda entry point for MySQL, Aurora MySQL and MariaDB secrets (`engine`: `mysql`,
 * `aurora-mysql`, `mariadb`). One bundle serves all three; the statements follow the server's
 * reported version. Single user without `masterarn`, alternating users with it.
 */
import { DatabaseRotator } from '../../src/db';
import { createHandler } from '../../src/api';
import { mysqlEngine } from './engine';

export { createMysqlEngine, mysqlEngine, MYSQL_ENGINES, USERNAME_LIMITS, type MysqlConnection, type MysqlSession, type MysqlEngineOptions } from './engine';

export const handler = createHandler(new DatabaseRotator(mysqlEngine));
