/**
 * The npm package is this repository's package.json with one difference, applied only while
 * `npm pack` / `npm publish` runs (prepack writes it, postpack restores the original):
 *
 * - The database drivers (pg, mysql2, tedious, oracledb, mongodb) become optional
 *   peerDependencies: a custom rotator built on the root entry installs none of them; whoever
 *   imports `rotation-lambdas/postgres` installs `pg`, and so on.
 * - esbuild (a dependency here only because `sam build` resolves it from the production install
 *   of this package.json), the scripts and the devDependencies are left out.
 *
 * The repository keeps the drivers and esbuild in "dependencies" because SAM's esbuild workflow
 * copies the source, runs `npm install --omit=dev` and bundles each function from that install.
 *
 * Usage: tsx scripts/pack-manifest.ts build | prepack | postpack | print
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { allDrivers } from './engines';

const ROOT = resolve(__dirname, '..');
const MANIFEST = join(ROOT, 'package.json');
const BACKUP = join(ROOT, '.package.json.before-pack');

/** Dependencies of the repository that the published package does not carry. */
export const BUILD_ONLY_DEPENDENCIES = ['esbuild'];

type Manifest = Record<string, unknown> & {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional: boolean }>;
};

/** The package.json that goes into the tarball, from the repository's. */
export function publishManifest(repo: Manifest): Manifest {
  const { scripts: _scripts, devDependencies: _dev, ...rest } = repo;
  const deps = { ...(repo.dependencies ?? {}) };
  const peers: Record<string, string> = {};
  const meta: Record<string, { optional: boolean }> = {};
  for (const d of allDrivers()) {
    const v = deps[d];
    if (!v) throw new Error(`package.json has no dependency on the driver ${d}`);
    delete deps[d];
    // The pinned version is what we test; any later release of the same major is accepted.
    peers[d] = `^${v}`;
    meta[d] = { optional: true };
  }
  for (const d of BUILD_ONLY_DEPENDENCIES) delete deps[d];
  return { ...rest, dependencies: deps, peerDependencies: peers, peerDependenciesMeta: meta };
}

function buildLib(): void {
  rmSync(join(ROOT, 'lib'), { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${r.status ?? r.signal})`);
}

function main(cmd: string | undefined): void {
  switch (cmd) {
    case 'build':
      buildLib();
      return;
    case 'print':
      process.stdout.write(JSON.stringify(publishManifest(JSON.parse(readFileSync(MANIFEST, 'utf8'))), null, 2) + '\n');
      return;
    case 'prepack': {
      if (existsSync(BACKUP)) throw new Error(`${BACKUP} exists: an earlier pack did not finish. Restore it with "tsx scripts/pack-manifest.ts postpack" first.`);
      buildLib();
      const original = readFileSync(MANIFEST, 'utf8');
      writeFileSync(BACKUP, original);
      writeFileSync(MANIFEST, JSON.stringify(publishManifest(JSON.parse(original)), null, 2) + '\n');
      return;
    }
    case 'postpack':
      if (existsSync(BACKUP)) renameSync(BACKUP, MANIFEST);
      return;
    default:
      throw new Error('Usage: tsx scripts/pack-manifest.ts build | prepack | postpack | print');
  }
}

if (require.main === module) {
  try {
    main(process.argv[2]);
  } catch (err) {
    process.stderr.write(`pack-manifest: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
