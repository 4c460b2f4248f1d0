/**
 * The built-in rotator for a secret's `engine` value, loaded on demand so that the CLI only loads
 * the driver the secret needs. `require`, not `import()`: it also works when the CLI runs from the
 * TypeScript sources through tsx's CommonJS hook, and esbuild bundles it the same.
 */
import type { DatabaseRotator } from '../db/database-rotator';
import { SecretFormatError } from '../errors';

type AnyRotator = DatabaseRotator<unknown>;

const FAMILIES: Array<{ match: (engine: string) => boolean; load: () => Promise<AnyRotator> }> = [
  {
    match: (e) => e === 'postgres' || e === 'aurora-postgresql',
    load: async () => (require('../../rotators/postgres/index') as typeof import('../../rotators/postgres/index')).rotator as AnyRotator,
  },
  {
    match: (e) => e === 'mysql' || e === 'aurora-mysql' || e === 'mariadb',
    load: async () => new (require('../db/database-rotator') as typeof import('../db/database-rotator')).DatabaseRotator((require('../../rotators/mysql/engine') as typeof import('../../rotators/mysql/engine')).mysqlEngine) as AnyRotator,
  },
  {
    match: (e) => e === 'redshift',
    load: async () => new (require('../../rotators/redshift/engine') as typeof import('../../rotators/redshift/engine')).RedshiftRotator() as unknown as AnyRotator,
  },
  {
    match: (e) => e === 'sqlserver' || e.startsWith('sqlserver-'),
    load: async () =>
      new (require('../db/database-rotator') as typeof import('../db/database-rotator')).DatabaseRotator((require('../../rotators/sqlserver/engine') as typeof import('../../rotators/sqlserver/engine')).createSqlServerEngine()) as unknown as AnyRotator,
  },
  {
    match: (e) => e === 'oracle' || e.startsWith('oracle-') || e === 'custom-oracle-ee',
    load: async () =>
      new (require('../db/database-rotator') as typeof import('../db/database-rotator')).DatabaseRotator((require('../../rotators/oracle/engine') as typeof import('../../rotators/oracle/engine')).createOracleEngine()) as unknown as AnyRotator,
  },
  {
    match: (e) => e === 'mongo' || e === 'docdb',
    load: async () => (require('../../rotators/mongodb/index') as typeof import('../../rotators/mongodb/index')).rotator as unknown as AnyRotator,
  },
];

/** The rotator for a secret's `engine` field; a SecretFormatError for an engine no built-in rotator serves. */
export async function rotatorForEngine(engine: unknown): Promise<AnyRotator> {
  const e = typeof engine === 'string' ? engine : '';
  const family = FAMILIES.find((f) => f.match(e));
  const rotator = family ? await family.load() : undefined;
  if (!rotator || !rotator.engine.engines.includes(e)) {
    throw new SecretFormatError(
      `The secret's "engine" field is "${e.slice(0, 40)}", which no built-in rotator serves.`,
      'Use one of postgres, aurora-postgresql, mysql, aurora-mysql, mariadb, redshift, sqlserver(-ee/-se/-ex/-web), oracle(-ee/-se2/...), mongo, docdb.',
    );
  }
  return rotator;
}
