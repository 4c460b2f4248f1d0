/** The engine conformance suite on the SQL Server fake (test/fakes/sqlserver-fake.ts), RDS master. */
import { sqlServerFakeTarget } from './fake-targets';
import { conformanceSuite } from './suite';

conformanceSuite(sqlServerFakeTarget());
