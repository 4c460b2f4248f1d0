/** The engine conformance suite on the Oracle fake (test/fakes/oracle-fake.ts), RDS master. */
import { oracleFakeTarget } from './fake-targets';
import { conformanceSuite } from './suite';

conformanceSuite(oracleFakeTarget());
