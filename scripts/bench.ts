/**
 * `npm run bench`: figures for the README (a script, not a timed test).
 *
 * 1. Bundle size per engine (built by scripts/build.ts into a temporary directory).
 * 2. Module load time of each bundle in a fresh node process: process.hrtime around require()
 *    inside the child, from a copy in an empty directory; median of LOAD_RUNS processes.
 * 3. Secrets Manager API calls per full rotation and per step, single user and alternating users,
 *    from the double's call log, and database logins per rotation (failed ones apart) from the
 *    servers themselves: PostgreSQL's log (log_connections: "connection authorized" and
 *    "password authentication failed" lines), MariaDB's Connections and Aborted_connects status
 *    counters, read over a monitoring connection opened before the rotation.
 * 4. Full-rotation wall time (RotateSecret until the four steps are done) against a real local
 *    PostgreSQL and MariaDB, median of ROTATION_RUNS. The function is the built bundle, loaded
 *    as Lambda would load it, whose SDK client talks to the double over HTTP
 *    (SECRETS_MANAGER_ENDPOINT), with TLS (verify-full) to the database.
 * 5. Cold steps: a fresh node process loads the bundle and runs one createSecret, another one
 *    setSecret, of a real rotation; its load time, step time and peak RSS (getrusage maxRSS).
 * 6. A rotation storm: N secrets (default 1,000) whose rotations the service starts at once, one
 *    handler (createHandler with the default client: RotationRetryStrategy) over HTTP to a double
 *    enforcing Secrets Manager's quotas. The rotator is a cheap in-memory one, so the figure is
 *    the Secrets Manager side alone: 1,000 concurrent rotations against one PostgreSQL would
 *    measure its max_connections (100) and SCRAM hashing instead. Every rotation must succeed
 *    at its first attempt; the wall time is printed against the quota floor N x 2 / 50 s.
 *
 * Prints a plain-text table and, last, one JSON line with every figure. Passwords are never
 * printed. Servers and temporary files are removed at the end, also on failure or Ctrl-C.
 *
 * Usage: npm run bench [-- --load-runs N --rotation-runs N --cold-runs N --storm N]   (--storm 0 skips it;
 *        --only storm runs the storm alone)
 */
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { type Connection, createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import { createHandler, type RotationHandler } from '../src/handler';
import { DEFAULT_PASSWORD_POLICY } from '../src/password';
import { retryBudgetFromEnv, RotationRetryStrategy } from '../src/secrets';
import { Rotator, STEPS, type Step, type StepContext } from '../src/rotator';
import { startSecretsManagerServer } from '../src/testing/http-server';
import { type RotationEventPayload, SecretsManagerDouble } from '../src/testing/secrets-manager-double';
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

const USAGE = 'Usage: npm run bench -- [--load-runs N] [--rotation-runs N] [--cold-runs N] [--storm N (0: skip)] [--only storm]';

function parseArgs(argv: string[]): { loadRuns: number; rotationRuns: number; coldRuns: number; storm: number; stormOnly: boolean } {
  const out = { loadRuns: 7, rotationRuns: 5, coldRuns: 3, storm: 1000, stormOnly: false };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--only' && argv[i + 1] === 'storm') {
      out.stormOnly = true;
      continue;
    }
    const n = Number(argv[i + 1]);
    const min = argv[i] === '--storm' ? 0 : 1;
    if (!Number.isInteger(n) || n < min) throw new Error(`${argv[i]} needs a whole number >= ${min}. ${USAGE}`);
    if (argv[i] === '--load-runs') out.loadRuns = n;
    else if (argv[i] === '--rotation-runs') out.rotationRuns = n;
    else if (argv[i] === '--cold-runs') out.coldRuns = n;
    else if (argv[i] === '--storm') out.storm = n;
    else throw new Error(`Unknown argument ${argv[i]}. ${USAGE}`);
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
  /** The same calls by step, in order (first run). */
  callsByStep: Record<string, string[]>;
  /** Database logins during the first run: succeeded and failed. */
  logins: Logins;
}

interface Logins {
  ok: number;
  failed: number;
}

/** Counts the logins the server saw between two calls of `read` (the server's own record). */
interface LoginCounter {
  read(): Promise<Logins>;
  close(): Promise<void>;
}

interface Harness {
  sm: SecretsManagerDouble;
  client: SecretsManagerClient;
  endpoint: string;
  /** The step currently running per function invocation, for the per-step call log. */
  stepCalls: Array<{ step: Step; from: number; to: number }>;
}

/** Loads a built bundle the way Lambda does (its own SDK client, configured from the environment). */
function loadHandler(bundle: Bundle): RotationHandler {
  return (require(bundle.file) as { handler: RotationHandler }).handler;
}

/**
 * A fresh module instance of the bundle (its own SDK client and caches) for every invocation: each
 * step runs as in a new container, as in a rotation storm where any container takes any step.
 */
function freshPerStep(bundle: Bundle): RotationHandler {
  return (event, context) => {
    delete require.cache[require.resolve(bundle.file)];
    return loadHandler(bundle)(event, context);
  };
}

/** Wraps a handler so each step's Secrets Manager calls can be told apart in the double's log. */
function recordingSteps(h: Harness, handler: RotationHandler): (event: RotationEventPayload) => Promise<void> {
  return async (event) => {
    const from = h.sm.calls.length;
    try {
      await handler(event);
    } finally {
      h.stepCalls.push({ step: event.Step, from, to: h.sm.calls.length });
    }
  };
}

async function rotateRepeatedly(h: Harness, fnArn: string, secretArn: string, runs: number, logins: LoginCounter): Promise<RotationFigures> {
  const runsMs: number[] = [];
  let calls: Record<string, number> = {};
  const callsByStep: Record<string, string[]> = {};
  let loginFigures: Logins = { ok: 0, failed: 0 };
  for (let i = 0; i < runs; i++) {
    h.sm.resetCalls();
    h.stepCalls.length = 0;
    const before = i === 0 ? await logins.read() : undefined;
    const t0 = process.hrtime.bigint();
    const outcome = await h.sm.rotateAndWait(secretArn, { lambdaArn: fnArn });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!outcome.succeeded) throw new Error(`rotation ${i + 1} of ${secretArn} failed: ${outcome.error}`);
    runsMs.push(round(ms));
    if (i === 0) {
      const after = await logins.read();
      loginFigures = { ok: after.ok - before!.ok, failed: after.failed - before!.failed };
      calls = {};
      for (const c of h.sm.calls) if (c.operation !== 'RotateSecret') calls[c.operation] = (calls[c.operation] ?? 0) + 1;
      for (const s of h.stepCalls) callsByStep[s.step] = h.sm.calls.slice(s.from, s.to).map((c) => c.operation);
    }
  }
  return { runsMs, medianMs: round(median(runsMs)), calls, callsTotal: Object.values(calls).reduce((a, b) => a + b, 0), callsByStep, logins: loginFigures };
}

/** PostgreSQL: log_connections on; logins are "connection authorized" lines, failures "password authentication failed". */
async function pgLoginCounter(info: { host: string; port: number; superuser: string; superPassword: string; database: string; caPem: string }): Promise<LoginCounter> {
  const mon = new Client({ host: info.host, port: info.port, user: info.superuser, password: info.superPassword, database: info.database, ssl: { ca: info.caPem } });
  await mon.connect();
  await mon.query('ALTER SYSTEM SET log_connections = on');
  await mon.query('SELECT pg_reload_conf()');
  return {
    async read() {
      const { rows } = await mon.query<{ log: string }>('SELECT pg_read_file(pg_current_logfile()) AS log');
      const log = rows[0].log;
      return { ok: (log.match(/connection authorized: /g) ?? []).length, failed: (log.match(/password authentication failed/g) ?? []).length };
    },
    close: () => mon.end(),
  };
}

/** MariaDB: the Connections (every attempt) and Aborted_connects (failed) status counters. */
async function mariaLoginCounter(mon: Connection): Promise<LoginCounter> {
  return {
    async read() {
      const [rows] = await mon.query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Connections', 'Aborted_connects')");
      const v = Object.fromEntries((rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, Number(r.Value)]));
      return { ok: v.Connections - v.Aborted_connects, failed: v.Aborted_connects };
    },
    close: () => mon.end(),
  };
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
  const logins = await pgLoginCounter(info);
  cleanups.push(() => logins.close());
  return rotateBoth(h, bundle, runs, logins, {
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
  await admin.query('CREATE DATABASE IF NOT EXISTS bench');
  for (const u of [single, app]) await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [u.user, '%', u.password]);
  for (const u of [single, app]) await admin.query('GRANT SELECT ON bench.* TO ?@?', [u.user, '%']);
  // The same connection then watches the login counters.
  const logins = await mariaLoginCounter(admin);
  cleanups.push(() => logins.close());
  const base = { engine: 'mariadb', host: info.host, port: info.port, dbname: 'bench', ssl: 'verify-full', sslCa: info.caPem };
  return rotateBoth(h, bundle, runs, logins, {
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
  logins: LoginCounter,
  o: { name: string; fn: string; server: string; base: object; admin: Login; single: Login; app: Login },
) {
  const adminArn = await createSecret(h, `bench/${o.name}/admin`, { ...o.base, username: o.admin.user, password: o.admin.password });
  const singleArn = await createSecret(h, `bench/${o.name}/single`, { ...o.base, username: o.single.user, password: o.single.password });
  const multiArn = await createSecret(h, `bench/${o.name}/multi`, { ...o.base, username: o.app.user, password: o.app.password, masterarn: adminArn });
  const fnArn = `arn:aws:lambda:${REGION}:123456789012:function:rotation-lambdas-${o.fn}`;
  const handler = loadHandler(bundle);
  h.sm.registerFunction(fnArn, recordingSteps(h, handler));
  const coldFnArn = `${fnArn}-fresh-per-step`;
  h.sm.registerFunction(coldFnArn, recordingSteps(h, freshPerStep(bundle)));
  const single = await rotateRepeatedly(h, fnArn, singleArn, runs, logins);
  const multi = await rotateRepeatedly(h, fnArn, multiArn, runs, logins);
  return {
    server: o.server,
    single,
    multi,
    singleCold: await rotateRepeatedly(h, coldFnArn, singleArn, 1, logins),
    multiCold: await rotateRepeatedly(h, coldFnArn, multiArn, 1, logins),
    singleArn,
    handler,
  };
}

// ---- 5. cold steps ----------------------------------------------------------------------------

// Reads the event from stdin (never argv: it carries a RotationToken), loads the bundle, runs the step.
const COLD_STEP = `
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const t0 = process.hrtime.bigint();
  const m = require(process.argv[1]);
  const t1 = process.hrtime.bigint();
  m.handler(JSON.parse(input)).then(
    () => {
      const t2 = process.hrtime.bigint();
      process.stdout.write('COLD ' + JSON.stringify({ loadMs: Number(t1 - t0) / 1e6, stepMs: Number(t2 - t1) / 1e6, maxRssKiB: process.resourceUsage().maxRSS }) + '\\n');
    },
    (e) => { process.stderr.write('step failed: ' + (e && e.name) + '\\n'); process.exit(1); });
});
`;

interface ColdFigures {
  loadMs: number;
  stepMs: number;
  maxRssMiB: number;
}

/** One step in a fresh node process (asynchronous: the double answering it lives in this process). */
function coldStep(bundle: Bundle, event: RotationEventPayload): Promise<ColdFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', COLD_STEP, bundle.file], { cwd: tmpdir(), env: isolatedEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const m = /COLD (.+)/.exec(out);
      if (code !== 0 || !m) return reject(new Error(`${bundle.engine.name} cold ${event.Step}: ${err.trim().slice(0, 300) || `exit ${code}`}`));
      const f = JSON.parse(m[1]) as { loadMs: number; stepMs: number; maxRssKiB: number };
      resolve({ loadMs: round(f.loadMs), stepMs: round(f.stepMs), maxRssMiB: round(f.maxRssKiB / 1024) });
    });
    child.stdin.end(JSON.stringify(event));
  });
}

/** `runs` rotations of the single-user secret whose createSecret and setSecret each run in a fresh process (medians). */
async function coldSteps(h: Harness, bundle: Bundle, secretArn: string, handler: RotationHandler, runs: number) {
  const create: ColdFigures[] = [];
  const set: ColdFigures[] = [];
  for (let i = 0; i < runs; i++) {
    const run = h.sm.beginRotation(secretArn);
    create.push(await coldStep(bundle, run.event('createSecret')));
    set.push(await coldStep(bundle, run.event('setSecret')));
    await handler(run.event('testSecret'));
    await handler(run.event('finishSecret'));
    run.complete();
  }
  const med = (xs: ColdFigures[]): ColdFigures => ({
    loadMs: round(median(xs.map((x) => x.loadMs))),
    stepMs: round(median(xs.map((x) => x.stepMs))),
    maxRssMiB: round(median(xs.map((x) => x.maxRssMiB))),
  });
  return { createSecret: med(create), setSecret: med(set) };
}

/** Peak RSS of a node process that loads nothing (the floor under every figure above). */
function bareNodeRssMiB(): number {
  const r = spawnSync(process.execPath, ['-e', "process.stdout.write(String(process.resourceUsage().maxRSS))"], { encoding: 'utf8', env: isolatedEnv() });
  return round(Number(r.stdout) / 1024);
}

// ---- 6. storm -------------------------------------------------------------------------------------

/** A cheap rotator: the "target" is a map; the steps cost only their Secrets Manager calls. */
class InMemoryRotator extends Rotator {
  readonly name = 'storm';
  readonly accepted = new Map<string, string>();
  async generatePending(current: string, ctx: StepContext): Promise<string> {
    return JSON.stringify({ ...JSON.parse(current), password: await ctx.secrets.randomPassword(DEFAULT_PASSWORD_POLICY) });
  }
  async setSecret(ctx: StepContext): Promise<void> {
    this.accepted.set(ctx.secretId, await ctx.secrets.requirePending());
  }
  async verify(value: string, _label: string, ctx: StepContext): Promise<void> {
    if (this.accepted.get(ctx.secretId) !== value) throw new Error('the target does not hold this value');
  }
}

async function storm(n: number) {
  const sm = new SecretsManagerDouble({ region: REGION, quotas: true });
  {
    const arns: string[] = [];
    for (let i = 0; i < n; i++) {
      const out = sm.unmeteredInvoke('CreateSecret', { Name: `storm/${i}`, SecretString: JSON.stringify({ username: `u${i}`, password: 'initial' }), ClientRequestToken: randomUUID() }) as { ARN: string };
      arns.push(out.ARN);
    }
    const rotator = new InMemoryRotator();
    // One handler whose client has the retry strategy defaultSecretsManagerClient gives it, on the
    // double's in-process transport: over HTTP this 2-core machine serves ~80 calls/s, which would
    // measure the HTTP stack instead of the quotas (the SDK still serialises, signs and parses).
    const client = sm.client({ retryStrategy: new RotationRetryStrategy({ throttleBudgetMs: retryBudgetFromEnv(process.env) }) });
    const handler = createHandler(rotator, { client, env: { LOG_LEVEL: 'error' }, logSink: () => undefined });
    const fnArn = `arn:aws:lambda:${REGION}:123456789012:function:rotation-lambdas-storm`;
    const stepMs: number[] = [];
    sm.registerFunction(fnArn, async (event) => {
      const t0 = Date.now();
      await handler(event);
      stepMs.push(Date.now() - t0);
    });
    sm.resetCalls();
    const t0 = process.hrtime.bigint();
    const outcomes = await Promise.all(arns.map((arn) => sm.scheduledRotation(arn, { lambdaArn: fnArn })));
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    const failed = outcomes.filter((o) => !o.succeeded);
    const retried = outcomes.filter((o) => o.attempts > 1).length;
    const throttled: Record<string, number> = {};
    for (const c of sm.calls) if (c.error === 'ThrottlingException') throttled[c.operation] = (throttled[c.operation] ?? 0) + 1;
    const floorS = (n * 2) / 50;
    const verified = arns.every((arn) => (sm.unmeteredInvoke('GetSecretValue', { SecretId: arn }) as { SecretString: string }).SecretString === rotator.accepted.get(arn));
    return {
      n,
      wallS: round(wallS, 2),
      floorS,
      ratio: round(wallS / floorS, 2),
      failedRotations: failed.length,
      firstError: failed[0]?.error,
      rotationsRetriedByService: retried,
      throttled,
      callsServed: sm.calls.filter((c) => !c.error).length,
      slowestStepS: round(Math.max(...stepMs) / 1000, 2),
      everyAwscurrentIsTheTargetsValue: verified,
    };
  }
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
  const { loadRuns, rotationRuns, coldRuns, storm: stormN, stormOnly } = parseArgs(process.argv.slice(2));
  quietSdkNodeVersionWarning();
  if (stormOnly) {
    const f = await storm(stormN);
    say(JSON.stringify({ storm: f }));
    if (f.failedRotations > 0 || !f.everyAwscurrentIsTheTargetsValue) process.exitCode = 1;
    return;
  }
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
    const h: Harness = { sm, client: new SecretsManagerClient({ endpoint: server.endpoint, region: REGION }), endpoint: server.endpoint, stepCalls: [] };

    const bundleOf = (name: string): Bundle => {
      const b = bundles.find((x) => x.engine.name === name);
      if (!b) throw new Error(`no ${name} bundle (${engineByName(name).entry} missing)`);
      return b;
    };
    say(`\nStarting PostgreSQL and MariaDB ...`);
    const pg = await benchPostgres(h, bundleOf('postgres'), rotationRuns, cleanups);
    const maria = await benchMariaDb(h, bundleOf('mysql'), rotationRuns, cleanups);

    say(`\n3. Per rotation: Secrets Manager API calls (four steps; RotateSecret not counted) and database logins (server-side count)`);
    const engines = [['postgres', pg], ['mariadb', maria]] as const;
    for (const [engine, figs] of engines) {
      for (const [label, f] of [
        ['single user', figs.single],
        ['alternating users', figs.multi],
        ['single, fresh/step', figs.singleCold],
        ['altern., fresh/step', figs.multiCold],
      ] as const) {
        const steps = STEPS.map((st) => `${st} ${f.callsByStep[st]?.length ?? 0}`).join(', ');
        say(`  ${engine.padEnd(9)} ${label.padEnd(19)} calls ${String(f.callsTotal).padStart(2)} (${steps})   logins ${f.logins.ok} ok, ${f.logins.failed} failed`);
      }
    }
    for (const [label, f] of [['single user', pg.single], ['alternating users', pg.multi], ['single user, fresh container per step', pg.singleCold], ['alternating users, fresh container per step', pg.multiCold]] as const) {
      say(`    postgres ${label}: ${STEPS.map((st) => `${st} [${(f.callsByStep[st] ?? []).join(' ')}]`).join('; ')}`);
    }

    say(`\n4. Full rotation wall time through the HTTP double, TLS verify-full (median of ${rotationRuns}, ms)`);
    say(`  ${'server'.padEnd(18)} ${'strategy'.padEnd(18)} ${'median'.padStart(8)}   runs`);
    for (const [server, figs] of [[pg.server, pg], [maria.server, maria]] as const) {
      for (const [label, f] of [['single user', figs.single], ['alternating users', figs.multi]] as const) {
        say(`  ${server.padEnd(18)} ${label.padEnd(18)} ${f.medianMs.toFixed(1).padStart(8)}   ${f.runsMs.map((x) => x.toFixed(0)).join(' ')}`);
      }
    }

    const bareRss = bareNodeRssMiB();
    say(`\n5. Cold steps: a fresh node process loads the bundle and runs one step of a real single-user rotation (median of ${coldRuns}; bare node: ${bareRss} MiB)`);
    say(`  ${'engine'.padEnd(9)} ${'step'.padEnd(13)} ${'load ms'.padStart(8)} ${'step ms'.padStart(8)} ${'peak RSS MiB'.padStart(13)}`);
    const cold = {
      postgres: await coldSteps(h, bundleOf('postgres'), pg.singleArn, pg.handler, coldRuns),
      mariadb: await coldSteps(h, bundleOf('mysql'), maria.singleArn, maria.handler, coldRuns),
    };
    for (const [engine, c] of Object.entries(cold)) {
      for (const [step, f] of Object.entries(c)) {
        say(`  ${engine.padEnd(9)} ${step.padEnd(13)} ${f.loadMs.toFixed(1).padStart(8)} ${f.stepMs.toFixed(1).padStart(8)} ${f.maxRssMiB.toFixed(1).padStart(13)}`);
      }
    }

    let stormFigures: Awaited<ReturnType<typeof storm>> | undefined;
    if (stormN > 0) {
      say(`\n6. Storm: ${stormN} rotations started at once, one handler, quotas enforced (writes 50/s), in-memory target ...`);
      stormFigures = await storm(stormN);
      const f = stormFigures;
      say(`  wall ${f.wallS} s against the quota floor ${f.floorS} s (N x 2 / 50): ${f.ratio}x; failed rotations ${f.failedRotations}${f.firstError ? ` (${f.firstError})` : ''}, retried by the service ${f.rotationsRetriedByService}`);
      say(`  ThrottlingException answers: ${Object.entries(f.throttled).map(([op, k]) => `${op} ${k}`).join(', ') || 'none'}; slowest step ${f.slowestStepS} s; every AWSCURRENT is the target's value: ${f.everyAwscurrentIsTheTargetsValue}`);
    }

    const summary = {
      machine,
      bundles: bundleFigures,
      secretsManagerCallsPerRotation: Object.fromEntries(
        engines.map(([engine, figs]) => [
          engine,
          {
            single: { total: figs.single.callsTotal, byOperation: figs.single.calls, byStep: figs.single.callsByStep },
            alternating: { total: figs.multi.callsTotal, byOperation: figs.multi.calls, byStep: figs.multi.callsByStep },
            singleFreshContainerPerStep: { total: figs.singleCold.callsTotal, byStep: figs.singleCold.callsByStep },
            alternatingFreshContainerPerStep: { total: figs.multiCold.callsTotal, byStep: figs.multiCold.callsByStep },
          },
        ]),
      ),
      databaseLoginsPerRotation: Object.fromEntries(
        engines.map(([engine, figs]) => [engine, { single: figs.single.logins, alternating: figs.multi.logins, singleFresh: figs.singleCold.logins, alternatingFresh: figs.multiCold.logins }]),
      ),
      rotationMs: {
        postgres: { server: pg.server, single: pg.single.medianMs, alternating: pg.multi.medianMs, runs: { single: pg.single.runsMs, alternating: pg.multi.runsMs } },
        mariadb: { server: maria.server, single: maria.single.medianMs, alternating: maria.multi.medianMs, runs: { single: maria.single.runsMs, alternating: maria.multi.runsMs } },
      },
      coldSteps: { bareNodeRssMiB: bareRss, ...cold },
      storm: stormFigures,
      runs: { load: loadRuns, rotation: rotationRuns, cold: coldRuns },
    };
    if (stormFigures && (stormFigures.failedRotations > 0 || !stormFigures.everyAwscurrentIsTheTargetsValue)) process.exitCode = 1;
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
