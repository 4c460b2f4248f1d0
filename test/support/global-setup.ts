import type { TestProject } from 'vitest/node';

/**
 * Starts the real database servers once for the whole run and hands their coordinates to the
 * test files through `inject('postgres')` / `inject('mariadb')`. Each server is a throwaway
 * instance on its own port, with password authentication, stopped at the end of the run.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: Array<() => Promise<void>> = [];
  const { startPostgres } = await import('./postgres');
  const { startMariaDb } = await import('./mariadb');
  const [pg, maria] = await Promise.all([startPostgres(), startMariaDb()]);
  stops.push(() => pg.stop(), () => maria.stop());
  project.provide('postgres', pg.info);
  project.provide('mariadb', maria.info);
  return async () => {
    await Promise.allSettled(stops.map((s) => s()));
  };
}
