/** The engine conformance suite on the MySQL 8 fake (test/fakes/mysql8-fake.ts), RDS master on 8.0.36+. */
import { mysql8FakeTarget } from './fake-targets';
import { conformanceSuite } from './suite';

conformanceSuite(mysql8FakeTarget('8.0.36'));
