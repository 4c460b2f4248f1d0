/**
 * The MongoDB / Amazon DocumentDB rotation function (engines `mongo` and `docdb`): single user,
 * or alternating users when the secret has `masterarn`. Deploy with the handler `index.handler`.
 */
import { DatabaseRotator } from '../../src/db';
import { createHandler } from '../../src/api';
import { mongoEngine } from './engine';

export {
  authDatabaseOf,
  classifyCommandError,
  classifyConnectError,
  connectWithDriver,
  createMongoEngine,
  DEFAULT_AUTH_DATABASE,
  MARKER_ENV,
  MARKER_FIELD,
  markerModeFor,
  MAX_USERNAME_LENGTH,
  MONGO_EXCLUDE_CHARACTERS,
  mongoClientConfig,
  type MongoEngine,
  mongoEngine,
  type MongoClientLike,
  type MongoConnectConfig,
  type MongoConnectFn,
  type MongoConnection,
  type MongoEngineOptions,
  type MarkerMode,
} from './engine';

export const rotator = new DatabaseRotator(mongoEngine);

export const handler = createHandler(rotator);
