/** The test kit: a stateful Secrets Manager double for testing rotation functions, in-process or over HTTP. */
export {
  SecretsManagerDouble,
  SecretsManagerError,
  type SecretsManagerDoubleOptions,
  type CallRecord,
  type RotationEventPayload,
  type RotationFunction,
  type RotationOutcome,
  type RotateOptions,
  type ManualRotation,
  type JsonResponse,
} from './secrets-manager-double';
export { startSecretsManagerServer, type SecretsManagerServer, type SecretsManagerServerOptions } from './http-server';
export { randomPassword, type RandomPasswordRequest, LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION } from './random-password';
export { RdsDouble, type RdsInstance, type RdsCluster, type RdsCall } from './rds-double';
export { RedshiftDouble, type RedshiftCall } from './redshift-double';
