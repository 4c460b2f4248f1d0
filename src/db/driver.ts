import { ConfigError } from '../errors';

/**
 * Loads an engine's database driver on first use (not with the bundle), so steps that never log
 * in (createSecret) do not pay for loading it, and so an installed copy of this package can be
 * used without the drivers of engines it does not use (they are optional peer dependencies).
 *
 * `load` must be a literal `() => require('<driver>')`, so that bundlers still see and bundle it.
 * A missing driver is a ConfigError naming the package to install.
 */
export function loadDriver<T>(pkg: string, engine: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : '';
    if (code === 'MODULE_NOT_FOUND' && message.includes(`'${pkg}'`)) {
      throw new ConfigError(
        `The ${engine} engine needs the npm package "${pkg}", which is not installed.`,
        `Install it next to rotation-lambdas (npm install ${pkg}); it is an optional peer dependency.`,
      );
    }
    throw err;
  }
}
