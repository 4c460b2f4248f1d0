/**
 * Deployable entry point of the Redshift rotator (Handler `index.handler`). Secret shape:
 * {"engine": "redshift", "host", "username", "password", "port"?: 5439, "dbname"?: "dev",
 *  "ssl"?, "sslCa"?, "masterarn"?} — `masterarn` selects the alternating-users strategy.
 */
import { createHandler } from '../../src/api';
import { RedshiftRotator } from './engine';

export {
  classifyConnectError,
  copyPrivileges,
  REDSHIFT_DEFAULT_DATABASE,
  REDSHIFT_DEFAULT_PORT,
  REDSHIFT_MAX_USERNAME_BYTES,
  REDSHIFT_PASSWORD_DEFAULTS,
  REDSHIFT_PASSWORD_MAX_LENGTH,
  REDSHIFT_PASSWORD_MIN_LENGTH,
  RedshiftRotator,
  redshiftEngine,
  redshiftPasswordPolicy,
  validateRedshiftPassword,
} from './engine';

export const handler = createHandler(new RedshiftRotator());
export { REDSHIFT_CLUSTER_TAG, REDSHIFT_SERVERLESS_TAG, redshiftManagedAdminLookup, type RedshiftLookupClients } from './managed-admin';
