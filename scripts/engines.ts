/**
 * The one list of deployable engines. The build (scripts/build.ts), the benchmark
 * (scripts/bench.ts) and the template test (test/template.test.ts) all read it, so adding an
 * engine here is what makes it built, measured and required in template.yaml.
 */
export interface EngineSpec {
  /** Short name: the function is `${FunctionNamePrefix}-${name}`, the bundle `dist/${name}/index.js`. */
  name: string;
  /** Prefix of the logical ids in template.yaml: `${id}Function`, `${id}Role`, `${id}Permission`, ... */
  id: string;
  /** The entry point exporting `handler`, relative to the repository root. */
  entry: string;
  description: string;
  /** npm packages of the driver: each must be in this engine's bundle and in no other engine's. */
  drivers: string[];
  /**
   * Packages left out of the bundle (esbuild `external`, SAM `BuildProperties.External`): the
   * driver's optional native or feature add-ons, required lazily inside try/catch and never on
   * the code paths the rotator uses; the AWS SDK's browser-only `bowser` (BROWSER_ONLY); and the
   * control-plane clients of service-managed admin secrets (RUNTIME_SDK), which the Lambda
   * runtime's own AWS SDK serves. Never `@aws-sdk/client-secrets-manager` or a dependency it runs
   * in Node: the runtime's own SDK may predate RotationToken.
   */
  external: string[];
  /**
   * Packages replaced by a small local module (esbuild `alias`, SAM `BuildProperties.Alias`,
   * which aws-lambda-builders passes on as `--alias:<package>=<path>`; paths relative to the
   * repository root, where both builds run esbuild): dead weight that a reachable module
   * requires at load time but that the rotator never uses. Each stand-in says why it is safe.
   */
  alias: Record<string, string>;
}

/** Optional add-ons of the MongoDB driver (kerberos/GSSAPI, compression, cloud credentials, SOCKS, CSFLE). */
const MONGODB_OPTIONAL = [
  'kerberos',
  '@mongodb-js/zstd',
  'snappy',
  'aws4', // used by mongodb < 6 for MONGODB-AWS; listed so an older driver never drags it in
  'mongodb-client-encryption',
  '@aws-sdk/credential-providers',
  'gcp-metadata',
  'socks',
];

/**
 * In every bundle: the AWS SDK's browser-only code. `bowser` is imported (dynamically) only by
 * @aws-sdk/core's createUserAgentStringParsingProvider, which browser clients use; the Node
 * clients build their user agent with util-user-agent-node, so the import never runs here.
 */
const BROWSER_ONLY = ['bowser'];

/**
 * tedious's `@azure/identity` (with @azure/msal-node and their dependencies, about 540 KiB):
 * constructed only for Azure AD authentication types, never used by the SQL Server rotator (SQL
 * Server logins only). The stand-in's classes throw.
 */
const NO_AZURE_IDENTITY = { '@azure/identity': './scripts/shims/azure-identity.ts' };

/**
 * `tr46` (231 KiB of IDNA tables) under the MongoDB connection-string parser (whatwg-url): called
 * only for hosts of special URLs (http:, https:, ...), never for mongodb:// hosts. The stand-in
 * answers as tr46 for plain ASCII domains and throws for anything else.
 */
const TR46_ASCII_ONLY = { tr46: './scripts/shims/tr46.ts' };

/**
 * `iconv-lite` (483 KiB of code pages) under mysql2's string parser: called only for encodings
 * Node lacks. With the rotator's utf8mb4 connections that is CESU-8 (the handshake's server
 * version, utf8mb3 text), and a server's legacy default character set for OK-packet info (ASCII).
 * The stand-in decodes Node's encodings and CESU-8 as iconv-lite does, ASCII text in the other
 * ASCII-compatible character sets, and throws for anything else, naming the setting to change.
 */
const ICONV_UTF8_ONLY = { 'iconv-lite': './scripts/shims/iconv-lite.ts' };

/**
 * AWS SDK clients left to the Lambda runtime (nodejs22.x and later ship the whole AWS SDK for
 * JavaScript v3 in /var/runtime/node_modules, on NODE_PATH). Only the lookups of service-managed
 * admin secrets that name no host use them, each with a literal `require` on first use
 * (src/db/admin-endpoint.ts, rotators/redshift/managed-admin.ts); where the package cannot be
 * loaded, that lookup fails with a ConfigError naming it and the remedy. They use only
 * long-standing operations (DescribeDBInstances/Clusters, DescribeClusters, ListNamespaces,
 * ListWorkgroups), so any runtime's SDK version serves them.
 */
export const RUNTIME_SDK = {
  rds: ['@aws-sdk/client-rds'],
  redshift: ['@aws-sdk/client-redshift', '@aws-sdk/client-redshift-serverless'],
} as const;

export const ENGINES: readonly EngineSpec[] = [
  {
    name: 'postgres',
    id: 'Postgres',
    entry: 'rotators/postgres/index.ts',
    description: 'PostgreSQL (RDS, Aurora PostgreSQL, self-managed): single-user and alternating-users rotation',
    drivers: ['pg'],
    external: ['pg-native', ...BROWSER_ONLY, ...RUNTIME_SDK.rds],
    alias: {},
  },
  {
    name: 'mysql',
    id: 'Mysql',
    entry: 'rotators/mysql/index.ts',
    description: 'MySQL, Aurora MySQL and MariaDB: single-user and alternating-users rotation',
    drivers: ['mysql2'],
    external: [...BROWSER_ONLY, ...RUNTIME_SDK.rds],
    alias: { ...ICONV_UTF8_ONLY },
  },
  {
    name: 'redshift',
    id: 'Redshift',
    entry: 'rotators/redshift/index.ts',
    description: 'Amazon Redshift (provisioned): single-user and alternating-users rotation',
    drivers: ['pg'],
    external: ['pg-native', ...BROWSER_ONLY, ...RUNTIME_SDK.rds, ...RUNTIME_SDK.redshift],
    alias: {},
  },
  {
    name: 'sqlserver',
    id: 'Sqlserver',
    entry: 'rotators/sqlserver/index.ts',
    description: 'Microsoft SQL Server (RDS, self-managed): single-user and alternating-users rotation',
    drivers: ['tedious'],
    external: [...BROWSER_ONLY, ...RUNTIME_SDK.rds],
    alias: { ...NO_AZURE_IDENTITY },
  },
  {
    name: 'oracle',
    id: 'Oracle',
    entry: 'rotators/oracle/index.ts',
    description: 'Oracle Database (RDS, self-managed; node-oracledb thin mode): single-user and alternating-users rotation',
    drivers: ['oracledb'],
    external: [...BROWSER_ONLY, ...RUNTIME_SDK.rds],
    alias: {},
  },
  {
    name: 'mongodb',
    id: 'Mongodb',
    entry: 'rotators/mongodb/index.ts',
    description: 'MongoDB and Amazon DocumentDB: single-user and alternating-users rotation',
    drivers: ['mongodb'],
    external: [...MONGODB_OPTIONAL, ...BROWSER_ONLY, ...RUNTIME_SDK.rds],
    alias: { ...TR46_ASCII_ONLY },
  },
];

/** Every driver package of every engine. */
export function allDrivers(engines: readonly EngineSpec[] = ENGINES): string[] {
  return [...new Set(engines.flatMap((e) => e.drivers))].sort();
}

/** Driver packages that must NOT be in `engine`'s bundle. */
export function foreignDrivers(engine: EngineSpec, engines: readonly EngineSpec[] = ENGINES): string[] {
  return allDrivers(engines).filter((d) => !engine.drivers.includes(d));
}

export function engineByName(name: string): EngineSpec {
  const e = ENGINES.find((x) => x.name === name);
  if (!e) throw new Error(`Unknown engine "${name}"; known: ${ENGINES.map((x) => x.name).join(', ')}.`);
  return e;
}
