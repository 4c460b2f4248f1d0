/**
 * Bundle-only stand-in for `@azure/identity` (with @azure/msal-node and their dependencies, about
 * 450 KiB) in the SQL Server bundle (esbuild `alias`, SAM `BuildProperties.Alias`;
 * scripts/engines.ts). tedious requires it at the top of connection.js but constructs its
 * credentials only for the `azure-active-directory-*` authentication types, and in its Azure Key
 * Vault keystore provider (Always Encrypted), neither of which the SQL Server rotator uses: it
 * logs in with SQL Server authentication (`authentication.type: 'default'`) only.
 *
 * Constructing any of these classes throws an error saying so, so an accidental use fails at
 * once and clearly instead of doing something else.
 */
const MESSAGE = (name: string) =>
  `@azure/identity ${name}: Azure Active Directory (Microsoft Entra) authentication is not available in the SQL Server rotation bundle, which logs in with SQL Server authentication only.`;

class UnavailableCredential {
  constructor() {
    throw new Error(MESSAGE(new.target.name));
  }
}

export class DefaultAzureCredential extends UnavailableCredential {}
export class ClientSecretCredential extends UnavailableCredential {}
export class ManagedIdentityCredential extends UnavailableCredential {}
export class UsernamePasswordCredential extends UnavailableCredential {}
