/**
 * The built-in rotator for a secret's `engine` value (the CLI's choice). Every engine is imported
 * statically: one code path under vitest, tsx and esbuild alike; a rotator is only built when a
 * secret asks for it.
 */
import { DatabaseRotator } from '../db/database-rotator';
import { SecretFormatError } from '../errors';
import { rotator as mongoRotator } from '../../rotators/mongodb/index';
import { mysqlEngine } from '../../rotators/mysql/engine';
import { createOracleEngine } from '../../rotators/oracle/engine';
import { rotator as postgresRotator } from '../../rotators/postgres/index';
import { RedshiftRotator } from '../../rotators/redshift/engine';
import { createSqlServerEngine } from '../../rotators/sqlserver/engine';

type AnyRotator = DatabaseRotator<unknown>;

const FAMILIES: Array<{ match: (engine: string) => boolean; make: () => AnyRotator }> = [
  { match: (e) => e === 'postgres' || e === 'aurora-postgresql', make: () => postgresRotator as AnyRotator },
  { match: (e) => e === 'mysql' || e === 'aurora-mysql' || e === 'mariadb', make: () => new DatabaseRotator(mysqlEngine) as AnyRotator },
  { match: (e) => e === 'redshift', make: () => new RedshiftRotator() as unknown as AnyRotator },
  { match: (e) => e === 'sqlserver' || e.startsWith('sqlserver-'), make: () => new DatabaseRotator(createSqlServerEngine()) as unknown as AnyRotator },
  { match: (e) => e === 'oracle' || e.startsWith('oracle-') || e === 'custom-oracle-ee', make: () => new DatabaseRotator(createOracleEngine()) as unknown as AnyRotator },
  { match: (e) => e === 'mongo' || e === 'docdb', make: () => mongoRotator as unknown as AnyRotator },
];

/** The rotator for a secret's `engine` field; a SecretFormatError for an engine no built-in rotator serves. */
export function rotatorForEngine(engine: unknown): AnyRotator {
  const e = typeof engine === 'string' ? engine : '';
  const rotator = FAMILIES.find((f) => f.match(e))?.make();
  if (!rotator || !rotator.profile.engines.includes(e)) {
    throw new SecretFormatError(
      `The secret's "engine" field is "${e.slice(0, 40)}", which no built-in rotator serves.`,
      'Use one of postgres, aurora-postgresql, mysql, aurora-mysql, mariadb, redshift, sqlserver(-ee/-se/-ex/-web), oracle(-ee/-se2/...), mongo, docdb.',
    );
  }
  return rotator;
}
