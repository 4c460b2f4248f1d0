/** driverLoadError: a missing driver package (an optional peer of the npm package) is a CONFIG error naming it. */
import { describe, expect, it } from 'vitest';
import { ConnectError } from '../../src';
import { driverLoadError } from '../../src/db/driver';

function requireError(name: string): Error {
  try {
    require(name);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`${name} was found`);
}

describe('driverLoadError', () => {
  it('turns "Cannot find module" of the driver itself into a CONFIG ConnectError that names the package to install', () => {
    const out = driverLoadError('no-such-driver-xyz', requireError('no-such-driver-xyz'));
    expect(out).toBeInstanceOf(ConnectError);
    expect(out).toMatchObject({ code: 'CONFIG' });
    expect((out as Error).message).toBe(
      'The database driver "no-such-driver-xyz" is not installed (it is loaded on the first connection): install it next to rotation-lambdas (npm install --save-exact no-such-driver-xyz); the bundles of npm run build and sam build contain it.',
    );
  });

  it('passes any other failure through unchanged: another missing module, or an error the driver throws while loading', () => {
    const other = requireError('no-such-dependency-xyz');
    expect(driverLoadError('no-such-driver-xyz', other)).toBe(other);
    const broken = new Error('SyntaxError in the driver');
    expect(driverLoadError('pg', broken)).toBe(broken);
  });
});
