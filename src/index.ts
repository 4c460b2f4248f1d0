export { createHandler, type HandlerOptions, type LambdaContext, type RotationEvent, type RotationHandler } from './handler';
export { Rotator, currentVersionId, STEPS, type Step, type StepContext } from './rotator';
export { SecretStore, AWSCURRENT, AWSPENDING, AWSPREVIOUS, defaultSecretsManagerClient, RotationRetryStrategy, type RotationRetryOptions } from './secrets';
export * from './errors';
export { Logger, type LogSink, type LogFields, type LogLevel, stdoutSink, levelFromEnv } from './log';
export { Redactor } from './redact';
export { DEFAULT_PASSWORD_POLICY, passwordPolicyFromEnv, envFlag, passwordClasses, generatePassword, passwordSourceFromEnv, PasswordPolicyError, type PasswordPolicy, type PasswordSource, type Env } from './password';
export { DatabaseRotator, type DatabaseRotatorOptions } from './db/database-rotator';
export {
  type AdminEndpoint,
  type ManagedAdminLookup,
  rdsManagedAdminLookup,
  type RdsClientFactory,
  RDS_CLUSTER_TAG,
  RDS_INSTANCE_TAG,
} from './db/admin-endpoint';
export type { DatabaseEngine, ConnectOptions, PasswordChange, AlternateUserChange } from './db/engine';
export {
  type DbSecret,
  type Strategy,
  parseDbSecret,
  parseJsonSecret,
  parseAdminSecret,
  strategyOf,
  defaultAlternateUsername,
  sameHost,
  portOf,
  CLONE_SUFFIX,
} from './db/secret';
export { parseTlsMode, tlsAttempts, resolveCa, nodeTlsOptions, defaultTrustedCas, trustedCaOption, type TlsMode, type TlsOptions } from './db/tls';
export { nodeErrorClass, errorChain, type NestedErrors } from './db/net-errors';
// Operations (preflight, status, repair): src/ops/.
export { runPreflight, preflightOrThrow, type PreflightContext } from './ops/preflight';
export { PreflightError, type Check, type CheckStatus, type PreflightReport } from './ops/report';
export type { PreflightHooks, WithPreflightHooks, OwnPasswordInput, AdminPrivilegesInput } from './ops/hooks';
