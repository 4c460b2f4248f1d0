/**
 * Live mode: the conformance suite against real servers named by LIVE_* environment variables
 * (live-targets.ts). `npm run test:live` runs this file alone; in the ordinary `npm test` no
 * LIVE_* variable is set and the group is skipped visibly, with the reason.
 */
import { describe, it } from 'vitest';
import { LIVE_VARIABLES } from './live-targets';
import { conformanceSuite } from './suite';

const HOW = 'run npm run test:live with docker compose -f test/live/compose.yaml up';
const set = LIVE_VARIABLES.filter((v) => process.env[v.name]?.trim());
const unset = LIVE_VARIABLES.filter((v) => !process.env[v.name]?.trim());

if (set.length === 0) {
  describe.skip(`live servers: no LIVE_* server set: ${HOW}`, () => {
    for (const v of LIVE_VARIABLES) it.skip(`${v.what}: ${v.name} not set`, () => undefined);
  });
} else {
  for (const v of set) conformanceSuite(v.target(new URL(process.env[v.name]!.trim())));
  if (unset.length > 0) {
    describe.skip(`live servers not set (${HOW})`, () => {
      for (const v of unset) it.skip(`${v.what}: ${v.name} not set`, () => undefined);
    });
  }
}
