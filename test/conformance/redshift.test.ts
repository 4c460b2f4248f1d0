/** The engine conformance suite for Redshift's engine and rotator, run against the real PostgreSQL server (Redshift speaks its protocol). */
import { inject } from 'vitest';
import { postgresTarget } from './server-targets';
import { conformanceSuite } from './suite';

conformanceSuite(postgresTarget('Redshift engine (on real PostgreSQL 15, superuser master)', () => {
  const pg = inject('postgres');
  return { host: pg.host, port: pg.port, superuser: pg.superuser, superPassword: pg.superPassword, database: pg.database, caPem: pg.caPem };
}, { redshift: true }));
