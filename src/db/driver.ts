import { ConnectError, describeError } from '../errors';

/** The module a failed `require` could not find (Node's MODULE_NOT_FOUND), or undefined for any other error. */
export function missingModuleOf(err: unknown): string | undefined {
  if ((err as { code?: unknown } | null)?.code !== 'MODULE_NOT_FOUND') return undefined;
  return /Cannot find module '([^']+)'/.exec(describeError(err))?.[1];
}

/**
 * What a lazy `require` of a database driver throws: a missing package (an npm user of this
 * library who did not install the engine's driver, which is an optional peer dependency) becomes
 * a CONFIG ConnectError naming the package to install (the engines pass a ConnectError through
 * their classification unchanged); anything else is returned unchanged. The
 * `require` itself must stay a literal `require('name')` in the engine, so that esbuild bundles
 * the driver.
 */
export function driverLoadError(pkg: string, err: unknown): unknown {
  if (missingModuleOf(err) !== pkg) return err;
  return new ConnectError(
    'CONFIG',
    `The database driver "${pkg}" is not installed (it is loaded on the first connection): install it next to rotation-lambdas ` +
      `(npm install --save-exact ${pkg}); the bundles of npm run build and sam build contain it.`,
  );
}
