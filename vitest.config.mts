import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// vitest runs from the repository root (npm test); the config's own directory is that root.
const here = (p: string) => resolve(process.cwd(), p);
const ENGINES = ['postgres', 'mysql', 'redshift', 'sqlserver', 'oracle', 'mongodb'];

export default defineConfig({
  resolve: {
    // The package's own entry points, from source (as tsconfig.json "paths"): examples/ import
    // 'rotation-lambdas' like a user does, and `npm test` needs no prior build.
    alias: [
      ...ENGINES.map((e) => ({ find: new RegExp(`^rotation-lambdas/${e}$`), replacement: here(`./rotators/${e}/index.ts`) })),
      { find: /^rotation-lambdas\/db$/, replacement: here('./src/db/index.ts') },
      { find: /^rotation-lambdas\/testing$/, replacement: here('./src/testing/index.ts') },
      { find: /^rotation-lambdas$/, replacement: here('./src/api.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Real database servers are started once per run by the global setup and shared by files.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
