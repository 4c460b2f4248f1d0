/**
 * The repository's internal barrel: the package root (src/api.ts) and the database layer
 * (src/db/index.ts, published as `rotation-lambdas/db`). Not a published entry point; engines and
 * examples import the public entries, src/api.ts and src/db/index.ts.
 */
export * from './api';
export * from './db';
export { generatePassword, passwordSourceFromEnv, type PasswordSource } from './password';
export { RotationRetryStrategy, type RotationRetryOptions } from './secrets';
