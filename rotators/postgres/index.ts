/**
 * The PostgreSQL rotation function (engines `postgres` and `aurora-postgresql`): single user,
 * or alternating users when the secret has `masterarn`. Deploy with the handler `index.handler`.
 */
import { DatabaseRotator } from '../../src/db';
import { createHandler } from '../../src/api';
import { postgresEngine } from './engine';

export { classifyConnectError, createPostgresEngine, POSTGRES_PROFILE, type PostgresEngine, postgresEngine, scramSha256Verifier, type PostgresEngineOptions } from './engine';

export const rotator = new DatabaseRotator(postgresEngine);

export const handler = createHandler(rotator);
