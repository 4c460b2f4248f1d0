import { defineConfig } from 'vitest/config';

// `npm run test:live`: the conformance suite against the servers named by LIVE_* variables only
// (no local servers are started). Run from the repository root (npm does). Real servers are slower than the fakes: longer timeouts, one file.
export default defineConfig({
  test: {
    include: ['test/conformance/live.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
