import type { TestProject } from 'vitest/node';

/**
 * Starts the real database servers once for the whole run and hands their coordinates to the
 * test files through `inject('postgres')` / `inject('mariadb')`. Each server is a throwaway
 * instance on its own port, with password authentication, stopped at the end of the run.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: Array<() => Promise<void>> = [];
  const { startPostgres, embeddedBinDir } = await import('./postgres');
  const { startMariaDb } = await import('./mariadb');
  // PostgreSQL: Debian's 15 for the full suites, plus the oldest and newest majors RDS supports
  // (real binaries from npm), 13 with md5 as RDS defaults to through 13, for the version matrix.
  const [pg, maria, pg13, pg18] = await Promise.all([
    startPostgres(),
    startMariaDb(),
    startPostgres({ binDir: embeddedBinDir('pg13'), passwordEncryption: 'md5' }),
    startPostgres({ binDir: embeddedBinDir('pg18') }),
  ]);
  stops.push(() => pg.stop(), () => maria.stop(), () => pg13.stop(), () => pg18.stop());
  project.provide('postgres', pg.info);
  project.provide('postgresVersions', [pg13.info, pg18.info]);
  project.provide('mariadb', maria.info);
  return async () => {
    await Promise.allSettled(stops.map((s) => s()));
  };
}
