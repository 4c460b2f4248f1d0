/**
 * The built-in engines' preflight checks, by engine name (DatabaseEngine.name). They live beside
 * their engines and only read; an engine object may instead carry its own `preflight` member.
 */
import { mongoPreflight } from '../../rotators/mongodb/preflight';
import { oraclePreflight } from '../../rotators/oracle/preflight';
import { mysqlPreflight } from '../../rotators/mysql/preflight';
import { redshiftPreflight } from '../../rotators/redshift/preflight';
import { postgresPreflight } from '../../rotators/postgres/preflight';
import { sqlServerPreflight } from '../../rotators/sqlserver/preflight';
import type { PreflightHooks } from './hooks';

export const builtinHooks: Record<string, PreflightHooks<never>> = {
  postgres: postgresPreflight as PreflightHooks<never>,
  mysql: mysqlPreflight as PreflightHooks<never>,
  sqlserver: sqlServerPreflight as PreflightHooks<never>,
  mongodb: mongoPreflight as PreflightHooks<never>,
  oracle: oraclePreflight as PreflightHooks<never>,
  redshift: redshiftPreflight as PreflightHooks<never>,
};
