#!/usr/bin/env node
/** The `rotation-lambdas` command's entry point (see cli.ts). */
import { main } from './cli';

main(process.argv.slice(2), {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // main() catches and scrubs every failure; this is a bug path, printed without details.
    process.stderr.write(`rotation-lambdas: internal error (${err instanceof Error ? err.name : typeof err})\n`);
    process.exitCode = 2;
  },
);
