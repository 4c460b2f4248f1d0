/** The engine conformance suite on the real PostgreSQL server of the global setup (TLS verify-full). */
import { inject } from 'vitest';
import { postgresTarget } from './server-targets';
import { conformanceSuite } from './suite';

conformanceSuite(postgresTarget('PostgreSQL 15 (real server, CREATEROLE admin)', () => {
  const pg = inject('postgres');
  return { host: pg.host, port: pg.port, superuser: pg.superuser, superPassword: pg.superPassword, database: pg.database, caPem: pg.caPem };
}));
