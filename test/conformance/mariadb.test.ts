/** The engine conformance suite on the real MariaDB server of the global setup (RDS-like master, not root). */
import { inject } from 'vitest';
import { mysqlFamilyTarget } from './server-targets';
import { conformanceSuite } from './suite';

conformanceSuite(mysqlFamilyTarget('MariaDB 10.11 (real server, RDS-like master)', () => {
  const m = inject('mariadb');
  return { host: m.host, port: m.port, rootUser: m.rootUser, rootPassword: m.rootPassword, flavour: 'mariadb' };
}));
