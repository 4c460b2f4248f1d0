/**
 * `npm run bench`: figures for the README (a script, not a timed test).
 *
 * 1. Bundle size per engine (built by scripts/build.ts into a temporary directory).
 * 2. Module load time of each bundle in a fresh node process: process.hrtime around require()
 *    inside the child, from a copy in an empty directory; median of LOAD_RUNS processes.
 * 3. Secrets Manager API calls per full rotation, single user and alternating users, from the
 *    double's call log (real rotations against PostgreSQL; RotateSecret itself not counted).
 * 4. Full-rotation wall time (RotateSecret until the four steps are done) against a real local
 *    PostgreSQL and MariaDB, median of ROTATION_RUNS. The function is the built bundle, loaded
 *    as Lambda would load it, whose SDK client talks to the double over HTTP
 *    (SECRETS_MANAGER_ENDPOINT), with TLS (verify-full) to the database.
 *
 * Prints a plain-text table and, last, one JSON line with every figure. Passwords are never
 * printed. Servers and temporary files are removed at the end, also on failure or Ctrl-C.
 *
 * Usage: npm run bench [-- --load-runs N --rotation-runs N]
 */
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import type { RotationHandler } from '../src/handler';
import { startSecretsManagerServer } from '../src/testing/http-server';
import { SecretsManagerDouble } from '../src/testing/secrets-manager-double';
import { startMariaDb } from '../test/support/mariadb';
import { startPostgres } from '../test/support/postgres';
import { type Bundle, buildBundles, formatBytes, isolatedEnv } from './build';
import { engineByName } from './engines';

const REGION = 'us-east-1';

function say(line = ''): void {
  process.stdout.write(line + '\n');
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** A password for the bench users: random, and with the characters SQL quoting must handle. */
const password = (): string => `Bench'"\\;% ${randomBytes(12).toString('base64url')}`;

function parseArgs(argv: string[]): { loadRuns: number; rotationRuns: number } {
  const out = { loadRuns: 7, rotationRuns: 5 };
  for (let i = 0; i < argv.length; i += 2) {
    const n = Number(argv[i + 1]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${argv[i]} needs a whole number >= 1. Usage: npm run bench -- [--load-runs N] [--rotation-runs N]`);
    if (argv[i] === '--load-runs') out.loadRuns = n;
    else if (argv[i] === '--rotation-runs') out.rotationRuns = n;
    else throw new Error(`Unknown argument ${argv[i]}. Usage: npm run bench -- [--load-runs N] [--rotation-runs N]`);
  }
  return out;
}

// ---- 2. load time ---------------------------------------------------------------------------

const LOAD_TIMER = `
const t0 = process.hrtime.bigint();
const m = require(process.argv[1]);
const t1 = process.hrtime.bigint();
if (typeof m.handler !== 'function') process.exit(1);
process.stdout.write('LOAD_MS ' + (Number(t1 - t0) / 1e6) + '\\n');
`;

/**
 * Load times of every bundle, `runs` fresh processes each. The runs are interleaved (one process
 * per bundle in turn) so a burst of load on the machine does not land on one bundle only.
 */
function loadTimes(bundles: Bundle[], runs: number): Map<Bundle, number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'rl-bench-load-'));
  try {
    const copies = new Map<Bundle, string>();
    for (const b of bundles) {
      mkdirSync(join(dir, b.engine.name));
      copies.set(b, join(dir, b.engine.name, 'index.js'));
      copyFileSync(b.file, copies.get(b)!);
    }
    const times = new Map<Bundle, number[]>(bundles.map((b) => [b, []]));
    for (let i = 0; i < runs; i++) {
      for (const b of bundles) {
        const copy = copies.get(b)!;
        const r = spawnSync(process.execPath, ['-e', LOAD_TIMER, copy], { cwd: dirname(copy), encoding: 'utf8', env: isolatedEnv(), timeout: 60_000 });
        const m = /LOAD_MS (\S+)/.exec(r.stdout ?? '');
        if (r.status !== 0 || !m) throw new Error(`${b.engine.name}: the bundle did not load: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
        times.get(b)!.push(Number(m[1]));
      }
    }
    return times;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- 3 + 4. rotations -----------------------------------------------------------------------

interface RotationFigures {
  runsMs: number[];
  medianMs: number;
  /** Secrets Manager calls the function made during one rotation, by operation (first run). */
  calls: Record<string, number>;
  callsTotal: number;
}

interface Harness {
  sm: SecretsManagerDouble;
  client: SecretsManagerClient;
  endpoint: string;
}

/** Loads a built bundle the way Lambda does (its own SDK client, configured from the environment). */
function loadHandler(bundle: Bundle): RotationHandler {
  return (require(bundle.file) as { handler: RotationHandler }).handler;
}

async function rotateRepeatedly(h: Harness, fnArn: string, secretArn: string, runs: number): Promise<RotationFigures> {
  const runsMs: number[] = [];
  let calls: Record<string, number> = {};
  for (let i = 0; i < runs; i++) {
    h.sm.resetCalls();
    const t0 = process.hrtime.bigint();
    const outcome = await h.sm.rotateAndWait(secretArn, { lambdaArn: fnArn });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!outcome.succeeded) throw new Error(`rotation ${i + 1} of ${secretArn} failed: ${outcome.error}`);
    runsMs.push(round(ms));
    if (i === 0) {
      calls = {};
      for (const c of h.sm.calls) if (c.operation !== 'RotateSecret') calls[c.operation] = (calls[c.operation] ?? 0) + 1;
    }
  }
  return { runsMs, medianMs: round(median(runsMs)), calls, callsTotal: Object.values(calls).reduce((a, b) => a + b, 0) };
}

async function createSecret(h: Harness, name: string, value: object): Promise<string> {
  const out = await h.client.send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }));
  return out.ARN!;
}

async function benchPostgres(h: Harness, bundle: Bundle, runs: number, cleanups: Array<() => Promise<void>>) {
  const pg = await startPostgres();
  cleanups.push(() => pg.stop());
  const { info } = pg;
  const single = { user: 'bench_single', password: password() };
  const app = { user: 'bench_app', password: password() };
  const admin = new Client({ host: info.host, port: info.port, user: info.superuser, password: info.superPassword, database: info.database, ssl: { ca: info.caPem } });
  await admin.connect();
  try {
    for (const u of [single, app]) {
      await admin.query(`CREATE ROLE ${admin.escapeIdentifier(u.user)} LOGIN PASSWORD ${admin.escapeLiteral(u.password)}`);
    }
    await admin.query(`GRANT pg_read_all_data TO ${admin.escapeIdentifier(app.user)}`);
  } finally {
    await admin.end();
  }
  const base = { engine: 'postgres', host: info.host, port: info.port, dbname: info.database, ssl: 'verify-full', sslCa: info.caPem };
  return rotateBoth(h, bundle, runs, {
    name: 'postgres', fn: 'postgres', server: `PostgreSQL ${/^[\d.]+/.exec(pg.version)?.[0] ?? pg.version}`,
    base, admin: { user: info.superuser, password: info.superPassword }, single, app,
  });
}

async function benchMariaDb(h: Harness, bundle: Bundle, runs: number, cleanups: Array<() => Promise<void>>) {
  const maria = await startMariaDb();
  cleanups.push(() => maria.stop());
  const { info } = maria;
  const single = { user: 'bench_single', password: password() };
  const app = { user: 'bench_app', password: password() };
  const admin = await createConnection({ host: info.host, port: info.port, user: info.rootUser, password: info.rootPassword, ssl: { ca: info.caPem } });
  try {
    await admin.query('CREATE DATABASE IF NOT EXISTS bench');
    for (const u of [single, app]) await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [u.user, '%', u.password]);
    for (const u of [single, app]) await admin.query('GRANT SELECT ON bench.* TO ?@?', [u.user, '%']);
  } finally {
    await admin.end();
  }
  const base = { engine: 'mariadb', host: info.host, port: info.port, dbname: 'bench', ssl: 'verify-full', sslCa: info.caPem };
  return rotateBoth(h, bundle, runs, {
    name: 'mariadb', fn: 'mysql', server: `MariaDB ${/^[\d.]+/.exec(info.version)?.[0] ?? info.version}`,
    base, admin: { user: info.rootUser, password: info.rootPassword }, single, app,
  });
}

type Login = { user: string; password: string };

/** The admin, single-user and alternating secrets for one server, and `runs` rotations of each through the bundle. */
async function rotateBoth(
  h: Harness,
  bundle: Bundle,
  runs: number,
  o: { name: string; fn: string; server: string; base: object; admin: Login; single: Login; app: Login },
) {
  const adminArn = await createSecret(h, `bench/${o.name}/admin`, { ...o.base, username: o.admin.user, password: o.admin.password });
  const singleArn = await createSecret(h, `bench/${o.name}/single`, { ...o.base, username: o.single.user, password: o.single.password });
  const multiArn = await createSecret(h, `bench/${o.name}/multi`, { ...o.base, username: o.app.user, password: o.app.password, masterarn: adminArn });
  const fnArn = `arn:aws:lambda:${REGION}:123456789012:function:rotation-lambdas-${o.fn}`;
  h.sm.registerFunction(fnArn, loadHandler(bundle));
  return {
    server: o.server,
    single: await rotateRepeatedly(h, fnArn, singleArn, runs),
    multi: await rotateRepeatedly(h, fnArn, multiArn, runs),
  };
}

// ---- main -----------------------------------------------------------------------------------

/** The SDK warns once per client copy that it will need Node 22 from 2027 (Lambda runs 22); not news here. */
function quietSdkNodeVersionWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    if (type === 'NodeVersionSupportWarning' || String(warning).includes('NodeVersionSupportWarning')) return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

async function main(): Promise<void> {
  const { loadRuns, rotationRuns } = parseArgs(process.argv.slice(2));
  quietSdkNodeVersionWarning();
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  };
  process.once('SIGINT', () => {
    void cleanup().finally(() => process.exit(130));
  });

  try {
    const machine = {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      memoryGiB: round(totalmem() / 1024 ** 3, 1),
      node: process.version,
      os: `${process.platform} ${release()}`,
    };
    say(`rotation-lambdas benchmark — ${machine.cpus} CPU(s) ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.os}`);

    const outdir = mkdtempSync(join(tmpdir(), 'rl-bench-dist-'));
    cleanups.push(async () => rmSync(outdir, { recursive: true, force: true }));
    const { bundles, missing } = await buildBundles({ outdir });
    for (const m of missing) say(`(skipped ${m.name}: ${m.entry} not found)`);

    say(`\n1-2. Bundles (esbuild, minified, cjs, node22) and module load time in a fresh node process (median of ${loadRuns})`);
    say(`  ${'engine'.padEnd(10)} ${'bytes'.padStart(10)} ${'size'.padStart(10)} ${'load ms'.padStart(9)}   (min-max)`);
    const bundleFigures = [];
    const allTimes = loadTimes(bundles, loadRuns);
    for (const b of bundles) {
      const times = allTimes.get(b)!;
      const fig = { engine: b.engine.name, bytes: b.bytes, loadMsMedian: round(median(times)), loadMs: times.map((t) => round(t)) };
      bundleFigures.push(fig);
      say(`  ${fig.engine.padEnd(10)} ${String(fig.bytes).padStart(10)} ${formatBytes(fig.bytes).padStart(10)} ${fig.loadMsMedian.toFixed(1).padStart(9)}   (${Math.min(...fig.loadMs).toFixed(1)}-${Math.max(...fig.loadMs).toFixed(1)})`);
    }

    // The bundles' own SDK clients reach the double over HTTP, as a Lambda reaches the endpoint.
    const sm = new SecretsManagerDouble({ region: REGION });
    const server = await startSecretsManagerServer(sm);
    cleanups.push(() => server.close());
    Object.assign(process.env, {
      SECRETS_MANAGER_ENDPOINT: server.endpoint,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
    });
    const h: Harness = { sm, client: new SecretsManagerClient({ endpoint: server.endpoint, region: REGION }), endpoint: server.endpoint };

    const bundleOf = (name: string): Bundle => {
      const b = bundles.find((x) => x.engine.name === name);
      if (!b) throw new Error(`no ${name} bundle (${engineByName(name).entry} missing)`);
      return b;
    };
    say(`\nStarting PostgreSQL and MariaDB ...`);
    const pg = await benchPostgres(h, bundleOf('postgres'), rotationRuns, cleanups);
    const maria = await benchMariaDb(h, bundleOf('mysql'), rotationRuns, cleanups);

    say(`\n3. Secrets Manager API calls per full rotation (four steps; RotateSecret not counted)`);
    for (const [label, f] of [['single user', pg.single], ['alternating users', pg.multi]] as const) {
      const ops = Object.entries(f.calls).map(([op, n]) => `${op} ${n}`).join(', ');
      say(`  ${label.padEnd(18)} ${String(f.callsTotal).padStart(3)}   (${ops})`);
    }

    say(`\n4. Full rotation wall time through the HTTP double, TLS verify-full (median of ${rotationRuns}, ms)`);
    say(`  ${'server'.padEnd(18)} ${'strategy'.padEnd(18)} ${'median'.padStart(8)}   runs`);
    for (const [server, figs] of [[pg.server, pg], [maria.server, maria]] as const) {
      for (const [label, f] of [['single user', figs.single], ['alternating users', figs.multi]] as const) {
        say(`  ${server.padEnd(18)} ${label.padEnd(18)} ${f.medianMs.toFixed(1).padStart(8)}   ${f.runsMs.map((x) => x.toFixed(0)).join(' ')}`);
      }
    }

    const summary = {
      machine,
      bundles: bundleFigures,
      secretsManagerCallsPerRotation: {
        single: { total: pg.single.callsTotal, byOperation: pg.single.calls },
        alternating: { total: pg.multi.callsTotal, byOperation: pg.multi.calls },
      },
      rotationMs: {
        postgres: { server: pg.server, single: pg.single.medianMs, alternating: pg.multi.medianMs, runs: { single: pg.single.runsMs, alternating: pg.multi.runsMs } },
        mariadb: { server: maria.server, single: maria.single.medianMs, alternating: maria.multi.medianMs, runs: { single: maria.single.runsMs, alternating: maria.multi.runsMs } },
      },
      runs: { load: loadRuns, rotation: rotationRuns },
    };
    say('');
    say(JSON.stringify(summary));
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
