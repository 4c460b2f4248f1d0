#!/usr/bin/env node
'use strict';
// `npx rotation-lambdas preflight|status|repair --secret-id <arn>` (src/ops/cli.ts).
// Runs the built CLI (dist/cli/index.js) when present, else the TypeScript source through tsx
// (a development checkout).
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const built = join(__dirname, '..', 'dist', 'cli', 'index.js');
if (existsSync(built)) {
  require(built);
} else {
  try {
    require('tsx/cjs');
  } catch {
    process.stderr.write('rotation-lambdas: run `npm run build` first (dist/cli/index.js is missing and tsx is not installed).\n');
    process.exit(2);
  }
  require(join(__dirname, '..', 'src', 'ops', 'bin.ts'));
}
