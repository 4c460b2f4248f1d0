/**
 * The package's root entry, `import ... from 'rotation-lambdas'`: what a custom rotator needs and
 * nothing that loads a database driver. Database rotation is `rotation-lambdas/db`, the built-in
 * engines `rotation-lambdas/postgres` (`/mysql`, `/redshift`, `/sqlserver`, `/oracle`,
 * `/mongodb`), the Secrets Manager double `rotation-lambdas/testing`.
 *
 * (src/index.ts is the repository's internal barrel, which also re-exports the database layer;
 * it is not a published entry point.)
 */
export { createHandler, type HandlerOptions, type RotationEvent, type RotationHandler, type LambdaContext } from './handler';
export { Rotator, currentVersionId, STEPS, type Step, type StepContext } from './rotator';
export { SecretStore, AWSCURRENT, AWSPENDING, AWSPREVIOUS, defaultSecretsManagerClient } from './secrets';
export * from './errors';
export { Logger, type LogSink, type LogFields, type LogLevel, stdoutSink, levelFromEnv } from './log';
export { Redactor } from './redact';
export { DEFAULT_PASSWORD_POLICY, passwordPolicyFromEnv, envFlag, passwordClasses, type PasswordPolicy, type Env } from './password';
export { parseJsonSecret } from './db/secret';
