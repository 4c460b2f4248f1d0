import { ConnectError, describeError } from '../errors';

/**
 * What a lazy `require` of a database driver throws: a missing package (an npm user of this
 * library who did not install the engine's driver, which is an optional peer dependency) becomes
 * a CONFIG ConnectError naming the package to install (the engines pass a ConnectError through
 * their classification unchanged); anything else is returned unchanged. The
 * `require` itself must stay a literal `require('name')` in the engine, so that esbuild bundles
 * the driver.
 */
export function driverLoadError(pkg: string, err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'MODULE_NOT_FOUND' || !describeError(err).includes(`'${pkg}'`)) return err;
  return new ConnectError(
    'CONFIG',
    `The database driver "${pkg}" is not installed (it is loaded on the first connection): install it next to rotation-lambdas ` +
      `(npm install --save-exact ${pkg}); the bundles of npm run build and sam build contain it.`,
  );
}
