/**
 * `npm run build`'s bundles, built into a temporary directory by the same function: each one
 * loads in a fresh node process with no node_modules in reach, exports `handler`, keeps the
 * framework's error names after minification, carries an AWS SDK that knows RotationToken, and
 * contains its own driver and no other engine's driver.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuildResult, buildBundles, verifyBundle } from '../scripts/build';
import { allDrivers, ENGINES, foreignDrivers } from '../scripts/engines';

/** A string literal each driver's code keeps through minification (checked present where the driver is bundled). */
const DRIVER_MARKERS: Record<string, string> = {
  pg: 'Client has already been connected',
  mysql2: "Can't add new command when connection is in closed state",
  tedious: 'sendLogin7Packet',
  oracledb: 'node-oracledb',
  mongodb: 'MongoServerSelectionError',
};

let outdir: string;
let result: BuildResult;
const code = new Map<string, string>();

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), 'rl-bundles-'));
  result = await buildBundles({ outdir });
  for (const b of result.bundles) code.set(b.engine.name, readFileSync(b.file, 'utf8'));
}, 120_000);

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

describe('bundles', () => {
  it('are built for every engine of scripts/engines.ts', () => {
    expect(result.missing.map((e) => e.entry)).toEqual([]);
    expect(result.bundles.map((b) => b.engine.name).sort()).toEqual(ENGINES.map((e) => e.name).sort());
    expect(Object.keys(DRIVER_MARKERS).sort()).toEqual(allDrivers());
  });

  describe.each(ENGINES.map((e) => [e.name, e] as const))('%s', (name, engine) => {
    const bundle = () => {
      const b = result.bundles.find((x) => x.engine.name === name);
      if (!b) throw new Error(`no bundle was built for ${name} (entry ${engine.entry} missing?)`);
      return b;
    };

    it('loads in a fresh node process, exports handler, and rejects a bad event with EventError', () => {
      const check = verifyBundle(bundle().file);
      expect(check.error).toBeUndefined();
      expect(check.ok).toBe(true);
    });

    it('bundles its driver and the AWS SDK (with RotationToken), and nothing marked external', () => {
      const { packages } = bundle();
      for (const d of engine.drivers) expect(packages, d).toContain(d);
      expect(packages).toContain('@aws-sdk/client-secrets-manager');
      // The control-plane clients of managed admin secrets are left to the Lambda runtime's SDK,
      // required (not imported: NODE_PATH must apply) on first use.
      for (const x of engine.external) expect(packages, x).not.toContain(x);
      // Aliased packages are replaced by their local stand-ins (scripts/shims/).
      for (const [pkg, path] of Object.entries(engine.alias)) {
        expect(packages, pkg).not.toContain(pkg);
        expect(bundle().inputs, path).toContain(path.replace(/^\.\//, ''));
      }
      const text = code.get(name)!;
      const runtimeSdk = engine.external.filter((x) => x.startsWith('@aws-sdk/'));
      expect(runtimeSdk).toContain('@aws-sdk/client-rds');
      for (const x of runtimeSdk) {
        expect(text, x).toContain(`require("${x}")`);
        expect(text, x).not.toContain(`import("${x}")`);
      }
      // The AWS SDK's ES module builds (MainFields module,main), which esbuild tree-shakes.
      expect(bundle().inputs.some((p) => p.includes('/@aws-sdk/client-secrets-manager/dist-es/')), 'dist-es').toBe(true);
      expect(bundle().inputs.some((p) => p.includes('/@aws-sdk/client-secrets-manager/dist-cjs/')), 'dist-cjs').toBe(false);
      expect(text).toContain('RotationToken');
      for (const d of engine.drivers) expect(text.includes(DRIVER_MARKERS[d]), `${d} marker`).toBe(true);
    });

    it("contains no other engine's driver", () => {
      const { packages } = bundle();
      const text = code.get(name)!;
      for (const d of foreignDrivers(engine)) {
        expect(packages, d).not.toContain(d);
        expect(text.includes(DRIVER_MARKERS[d]), `${d} code in the ${name} bundle`).toBe(false);
      }
    });
  });
});
