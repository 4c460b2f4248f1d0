/**
 * MongoDB secret and deployment settings without the driver, shared by the engine (engine.ts) and
 * the preflight checks (preflight.ts).
 */
import { type DbSecret } from '../../src/db';
import { ConfigError, type Env } from '../../src/api';

export const DEFAULT_AUTH_DATABASE = 'admin';

export const MARKER_ENV = 'MONGODB_ALTERNATE_MARKER';

/** DocumentDB cluster endpoints (instance-based and elastic, commercial and China regions). */
const DOCDB_ENDPOINT = /\.docdb(-elastic)?\.amazonaws\.com(\.cn)?\.?$/i;

export type MarkerMode = 'customData' | 'none';

/** The user's authentication database: `authSource`, else `dbname`, else admin. */
export function authDatabaseOf(secret: DbSecret): string {
  const authSource = secret.authSource;
  if (typeof authSource === 'string' && authSource) return authSource;
  return secret.dbname || DEFAULT_AUTH_DATABASE;
}

/**
 * Where this deployment records the pair marker: MONGODB_ALTERNATE_MARKER = customData | none |
 * auto (default: none for a DocumentDB endpoint, customData otherwise). Read from the function's
 * environment and the admin's endpoint only, never from a child secret.
 */
export function markerModeFor(env: Env, host: string): MarkerMode {
  const raw = env[MARKER_ENV]?.trim() ?? '';
  if (raw === 'customData' || raw === 'none') return raw;
  if (raw === '' || raw === 'auto') return DOCDB_ENDPOINT.test(host.trim()) ? 'none' : 'customData';
  throw new ConfigError(`${MARKER_ENV} must be "customData", "none" or "auto", got "${raw.slice(0, 40)}".`,
    'Use "none" for Amazon DocumentDB (no customData), "customData" for MongoDB.');
}
