/** The engine conformance suite on the MongoDB wire fake, with both of its personalities: MongoDB and DocumentDB. */
import { mongoFakeTarget } from './fake-targets';
import { conformanceSuite } from './suite';

conformanceSuite(mongoFakeTarget('mongodb'));
conformanceSuite(mongoFakeTarget('documentdb'));
