/**
 * `rotation-lambdas/db`: database rotation without a driver. `DatabaseRotator` runs the
 * single-user and alternating-users strategies over a `DatabaseEngine` (connect, change a
 * password, create or update the alternate user, run a check); the built-in engines are the
 * `rotation-lambdas/<engine>` entry points, each loading only its own driver.
 */
export { DatabaseRotator, type DatabaseRotatorOptions } from './database-rotator';
export {
  type AdminEndpoint,
  type ManagedAdminLookup,
  rdsManagedAdminLookup,
  type RdsClientFactory,
  RDS_CLUSTER_TAG,
  RDS_INSTANCE_TAG,
  tagValue,
  lookupFailed,
  loadSdkClient,
  perRegion,
  regionOfArn,
} from './admin-endpoint';
export {
  defineEngine,
  usernameLength,
  maxUsernameLength,
  type DatabaseEngine,
  type EngineProfile,
  type UsernameRule,
  type UsernameUnit,
  type PasswordRule,
  type EngineContext,
  type ConnectOptions,
  type PasswordChange,
  type AlternateUserChange,
} from './engine';
export { timed, engineCalls, type EngineCall, type EngineCalls } from './middleware';
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
} from './secret';
export { parseTlsMode, tlsAttempts, resolveCa, nodeTlsOptions, defaultTrustedCas, trustedCaOption, type TlsMode, type TlsOptions } from './tls';
export { nodeErrorClass, errorChain, type NestedErrors } from './net-errors';
export { driverLoadError } from './driver';
// What an engine's read-only preflight checks (its optional `preflight()`) are written with.
export { runPreflight, preflightOrThrow, type PreflightContext } from '../ops/preflight';
export { PreflightError, pass, fail, warn, skip, failFrom, type Check, type CheckStatus, type PreflightReport } from '../ops/report';
export type { PreflightHooks, OwnPasswordInput, AdminPrivilegesInput } from '../ops/hooks';
