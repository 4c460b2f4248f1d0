/**
 * The SQL Server engine's catalog queries (every value is a bound NVARCHAR parameter), in a module
 * of their own without the driver, so the preflight checks (preflight.ts) can share them.
 */
export const SQL = {
  check: 'SELECT 1 AS ok',
  version: "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS productVersion, DB_NAME() AS databaseName",
  /** The session's database containment and how the session's database principal authenticates (SQL Server 2012+). */
  session:
    'SELECT d.containment AS containment, p.authentication_type AS authenticationType ' +
    'FROM sys.databases AS d LEFT JOIN sys.database_principals AS p ON p.principal_id = DATABASE_PRINCIPAL_ID() ' +
    'WHERE d.name = DB_NAME()',
  /**
   * A database principal by name, with the login it belongs to (NULL: contained, orphaned or a
   * role); isSelf = 1 when it is the session's own principal (the server resolves the name).
   */
  dbPrincipal:
    'SELECT dp.name AS name, dp.type AS type, dp.authentication_type AS authenticationType, ' +
    'dp.default_schema_name AS defaultSchema, sp.name AS loginName, ' +
    'CASE WHEN dp.principal_id = DATABASE_PRINCIPAL_ID() THEN 1 ELSE 0 END AS isSelf ' +
    'FROM sys.database_principals AS dp LEFT JOIN sys.server_principals AS sp ON sp.sid = dp.sid ' +
    'WHERE dp.name = @name',
  /**
   * A server principal (login or server role) by name; isSelf = 1 when it is the session's own
   * login. Without ALTER ANY LOGIN (or VIEW ANY DEFINITION) only one's own login is visible.
   */
  login:
    'SELECT sp.name AS name, sp.type AS type, sp.default_database_name AS defaultDatabase, sp.is_disabled AS disabled, ' +
    'CASE WHEN sp.sid = SUSER_SID() THEN 1 ELSE 0 END AS isSelf ' +
    'FROM sys.server_principals AS sp WHERE sp.name = @name',
  /** The database user a login maps to in the current database (by SID). */
  loginUser:
    'SELECT dp.name AS name, dp.default_schema_name AS defaultSchema ' +
    'FROM sys.database_principals AS dp JOIN sys.server_principals AS sp ON sp.sid = dp.sid ' +
    'WHERE sp.name = @name',
  dbRoles:
    'SELECT r.name AS roleName FROM sys.database_role_members AS m ' +
    'JOIN sys.database_principals AS r ON r.principal_id = m.role_principal_id ' +
    'JOIN sys.database_principals AS u ON u.principal_id = m.member_principal_id ' +
    'WHERE u.name = @name',
  /** The marker (MARKER_PROPERTY, bound as @property) on a database user. */
  marker:
    'SELECT CAST(ep.value AS nvarchar(4000)) AS value FROM sys.extended_properties AS ep ' +
    'JOIN sys.database_principals AS dp ON dp.principal_id = ep.major_id ' +
    'WHERE ep.class = 4 AND ep.minor_id = 0 AND dp.name = @name AND ep.name = @property',
  /**
   * A database principal's permissions, with the securable's names for every class SQL Server
   * 2012+ has in every edition (sys.database_permissions.class); classes whose catalog view is
   * newer (32 database scoped credential, 34 external language) come back without a name and
   * are refused by name rather than guessed.
   */
  dbPermissions:
    'SELECT p.class AS class, p.state AS state, p.permission_name AS permissionName, ' +
    'CASE p.class WHEN 1 THEN OBJECT_SCHEMA_NAME(p.major_id) WHEN 6 THEN SCHEMA_NAME(t.schema_id) ' +
    'WHEN 10 THEN (SELECT SCHEMA_NAME(x.schema_id) FROM sys.xml_schema_collections AS x WHERE x.xml_collection_id = p.major_id) END AS schemaName, ' +
    'CASE p.class WHEN 1 THEN OBJECT_NAME(p.major_id) WHEN 3 THEN SCHEMA_NAME(p.major_id) WHEN 4 THEN tp.name WHEN 6 THEN t.name ' +
    'WHEN 5 THEN (SELECT a.name FROM sys.assemblies AS a WHERE a.assembly_id = p.major_id) ' +
    'WHEN 10 THEN (SELECT x.name FROM sys.xml_schema_collections AS x WHERE x.xml_collection_id = p.major_id) ' +
    'WHEN 15 THEN (SELECT m.name FROM sys.service_message_types AS m WHERE m.message_type_id = p.major_id) ' +
    'WHEN 16 THEN (SELECT c.name FROM sys.service_contracts AS c WHERE c.service_contract_id = p.major_id) ' +
    'WHEN 17 THEN (SELECT s.name FROM sys.services AS s WHERE s.service_id = p.major_id) ' +
    'WHEN 18 THEN (SELECT b.name FROM sys.remote_service_bindings AS b WHERE b.remote_service_binding_id = p.major_id) ' +
    'WHEN 19 THEN (SELECT r.name FROM sys.routes AS r WHERE r.route_id = p.major_id) ' +
    'WHEN 23 THEN (SELECT f.name FROM sys.fulltext_catalogs AS f WHERE f.fulltext_catalog_id = p.major_id) ' +
    'WHEN 24 THEN (SELECT k.name FROM sys.symmetric_keys AS k WHERE k.symmetric_key_id = p.major_id) ' +
    'WHEN 25 THEN (SELECT c.name FROM sys.certificates AS c WHERE c.certificate_id = p.major_id) ' +
    'WHEN 26 THEN (SELECT k.name FROM sys.asymmetric_keys AS k WHERE k.asymmetric_key_id = p.major_id) ' +
    'WHEN 29 THEN (SELECT f.name FROM sys.fulltext_stoplists AS f WHERE f.stoplist_id = p.major_id) ' +
    'WHEN 31 THEN (SELECT l.name FROM sys.registered_search_property_lists AS l WHERE l.property_list_id = p.major_id) END AS objectName, ' +
    'CASE WHEN p.class = 1 AND p.minor_id <> 0 THEN COL_NAME(p.major_id, p.minor_id) END AS columnName, ' +
    'tp.type AS principalType ' +
    'FROM sys.database_permissions AS p ' +
    'JOIN sys.database_principals AS u ON u.principal_id = p.grantee_principal_id ' +
    'LEFT JOIN sys.database_principals AS tp ON p.class = 4 AND tp.principal_id = p.major_id ' +
    'LEFT JOIN sys.types AS t ON p.class = 6 AND t.user_type_id = p.major_id ' +
    'WHERE u.name = @name',
  serverRoles:
    'SELECT r.name AS roleName FROM sys.server_role_members AS m ' +
    'JOIN sys.server_principals AS r ON r.principal_id = m.role_principal_id ' +
    'JOIN sys.server_principals AS u ON u.principal_id = m.member_principal_id ' +
    'WHERE u.name = @name',
  serverPermissions:
    'SELECT p.class AS class, p.state AS state, p.permission_name AS permissionName, ' +
    'CASE p.class WHEN 101 THEN tp.name WHEN 105 THEN e.name END AS objectName, tp.type AS principalType ' +
    'FROM sys.server_permissions AS p ' +
    'JOIN sys.server_principals AS u ON u.principal_id = p.grantee_principal_id ' +
    'LEFT JOIN sys.server_principals AS tp ON p.class = 101 AND tp.principal_id = p.major_id ' +
    'LEFT JOIN sys.endpoints AS e ON p.class = 105 AND e.endpoint_id = p.major_id ' +
    'WHERE u.name = @name',
  /**
   * Enabled database-level DDL triggers of the session's database. They run as the caller: one
   * planted by a db_owner (often the rotated user) would run with the admin's rights when the
   * admin creates or alters users, grants or marks in that database.
   */
  databaseTriggers: 'SELECT name FROM sys.triggers WHERE parent_class = 0 AND is_disabled = 0',
  /**
   * Whether the session may see every trigger of its database (VIEW DEFINITION on it: db_owner,
   * CONTROL, or VIEW ANY DEFINITION on the server imply it); without it sys.triggers may hide one.
   */
  triggerVisibility: "SELECT HAS_PERMS_BY_NAME(DB_NAME(), N'DATABASE', N'VIEW DEFINITION') AS canSee",
  /** Enabled server-level DDL triggers (CREATE/ALTER LOGIN fire them); logon triggers are not fired by DDL. */
  serverTriggers:
    'SELECT t.name AS name FROM sys.server_triggers AS t WHERE t.is_disabled = 0 AND EXISTS (' +
    "SELECT 1 FROM sys.server_trigger_events AS e WHERE e.object_id = t.object_id AND e.type_desc <> N'LOGON')",
} as const;
