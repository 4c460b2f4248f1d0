/**
 * `npx tsx scripts/compare-cold.ts [--rev REV] [--runs N]`: cold start of this tree's bundles
 * against those of another revision (default: main), measured side by side on the same machine,
 * interleaved (before, after, before, after, ...) so a load spike of a shared machine hits both.
 *
 * For every engine: bundle size; module load time and peak RSS of a fresh `node` that only
 * loads the bundle; and a fresh `node` that loads it and runs one createSecret of a real
 * rotation against the Secrets Manager double over HTTP (load, step, peak RSS). Medians of N
 * (default 7). The revision is extracted with `git archive` into a temporary directory that
 * uses this tree's node_modules, and built with its own scripts/build.ts.
 */
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Bundle, buildBundles, formatBytes, isolatedEnv } from './build';
import { startSecretsManagerServer } from '../src/testing/http-server';
import { type RotationEventPayload, SecretsManagerDouble } from '../src/testing/secrets-manager-double';

const ROOT = resolve(__dirname, '..');
const ENGINE_FIELD: Record<string, string> = { postgres: 'postgres', mysql: 'mysql', redshift: 'redshift', sqlserver: 'sqlserver', oracle: 'oracle', mongodb: 'mongo' };

function args(): { rev: string; runs: number } {
  const out = { rev: 'main', runs: 7 };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--rev') out.rev = a[++i];
    else if (a[i] === '--runs') out.runs = Number(a[++i]);
    else throw new Error('Usage: npx tsx scripts/compare-cold.ts [--rev REV] [--runs N]');
  }
  return out;
}

const LOAD_ONLY = `const t0 = process.hrtime.bigint(); require(process.argv[1]); const t1 = process.hrtime.bigint();
process.stdout.write('LOAD ' + JSON.stringify({ loadMs: Number(t1 - t0) / 1e6, maxRssKiB: process.resourceUsage().maxRSS }) + '\\n');`;

const CREATE_STEP = `let input = ''; process.stdin.on('data', (d) => (input += d)); process.stdin.on('end', () => {
  const t0 = process.hrtime.bigint(); const m = require(process.argv[1]); const t1 = process.hrtime.bigint();
  m.handler(JSON.parse(input)).then(() => { const t2 = process.hrtime.bigint();
    process.stdout.write('STEP ' + JSON.stringify({ loadMs: Number(t1 - t0) / 1e6, stepMs: Number(t2 - t1) / 1e6, maxRssKiB: process.resourceUsage().maxRSS }) + '\\n'); },
    (e) => { process.stderr.write('step failed: ' + (e && e.name) + ' ' + (e && e.code) + '\\n'); process.exit(1); }); });`;

interface Figures { loadMs: number; stepMs?: number; maxRssKiB: number }

function loadOnly(file: string): Figures {
  const r = spawnSync(process.execPath, ['-e', LOAD_ONLY, file], { cwd: tmpdir(), encoding: 'utf8', env: isolatedEnv(), timeout: 60_000 });
  const m = /LOAD (.+)/.exec(r.stdout ?? '');
  if (r.status !== 0 || !m) throw new Error(`${file}: ${(r.stderr || r.stdout).slice(0, 300)}`);
  return JSON.parse(m[1]) as Figures;
}

function createStep(file: string, event: RotationEventPayload, endpoint: string): Promise<Figures> {
  return new Promise((res, rej) => {
    const env = { ...isolatedEnv(), SECRETS_MANAGER_ENDPOINT: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example', LOG_LEVEL: 'error' };
    const child = spawn(process.execPath, ['-e', CREATE_STEP, file], { cwd: tmpdir(), env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', rej);
    child.on('exit', (code) => {
      const m = /STEP (.+)/.exec(out);
      if (code !== 0 || !m) rej(new Error(`${file}: ${err.slice(0, 300)}`));
      else res(JSON.parse(m[1]) as Figures);
    });
    child.stdin.end(JSON.stringify(event));
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r1 = (n: number) => Math.round(n * 10) / 10;

async function main(): Promise<void> {
  const { rev, runs } = args();
  const work = mkdtempSync(join(tmpdir(), 'rl-compare-'));
  const sm = new SecretsManagerDouble();
  const server = await startSecretsManagerServer(sm);
  try {
    const src = join(work, 'src');
    const sha = spawnSync('git', ['rev-parse', '--short', rev], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
    const tar = spawnSync('sh', ['-c', `mkdir -p "${src}" && git archive "${rev}" | tar -x -C "${src}"`], { cwd: ROOT, encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`git archive ${rev}: ${tar.stderr}`);
    symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
    const built = spawnSync(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'scripts/build.ts', '--outdir', join(work, 'before')], { cwd: src, encoding: 'utf8', env: isolatedEnv() });
    if (built.status !== 0) throw new Error(`building ${rev}: ${(built.stderr || built.stdout).slice(0, 500)}`);
    const after = (await buildBundles({ outdir: join(work, 'after') })).bundles;
    const client = sm.client();
    console.log(`before = ${rev} (${sha}), after = this tree; medians of ${runs}, interleaved; node ${process.version}`);
    console.log('engine     | size before -> after | load-only ms | load-only peak RSS MiB | createSecret: load ms | step ms | peak RSS MiB');
    const json: Record<string, unknown> = {};
    for (const a of after) {
      const beforeFile = join(work, 'before', a.engine.name, 'index.js');
      const fig = { before: { load: [] as Figures[], create: [] as Figures[] }, after: { load: [] as Figures[], create: [] as Figures[] } };
      for (let i = 0; i < runs; i++) {
        for (const [side, file] of [['before', beforeFile], ['after', a.file]] as const) {
          fig[side].load.push(loadOnly(file));
          const created = await client.send(new CreateSecretCommand({
            Name: `compare-${a.engine.name}-${side}-${i}`,
            SecretString: JSON.stringify({ engine: ENGINE_FIELD[a.engine.name], host: '127.0.0.1', port: 1, username: 'app_user', password: 'Compare-Password-1', dbname: 'appdb' }),
          }));
          const run = sm.beginRotation(created.ARN!);
          fig[side].create.push(await createStep(file, run.event('createSecret'), server.endpoint));
        }
      }
      const m = (xs: Figures[], k: keyof Figures) => r1(median(xs.map((x) => (k === 'maxRssKiB' ? x.maxRssKiB / 1024 : (x[k] as number)))));
      const row = (side: 'before' | 'after') => ({
        loadOnlyMs: m(fig[side].load, 'loadMs'), loadOnlyRssMiB: m(fig[side].load, 'maxRssKiB'),
        createLoadMs: m(fig[side].create, 'loadMs'), createStepMs: m(fig[side].create, 'stepMs'), createRssMiB: m(fig[side].create, 'maxRssKiB'),
      });
      const b = row('before');
      const x = row('after');
      const { statSync } = await import('node:fs');
      const sizes = { before: statSync(beforeFile).size, after: (a as Bundle).bytes };
      json[a.engine.name] = { sizes, before: b, after: x };
      console.log(`${a.engine.name.padEnd(10)} | ${formatBytes(sizes.before)} -> ${formatBytes(sizes.after)} | ${b.loadOnlyMs} -> ${x.loadOnlyMs} (${Math.round((100 * x.loadOnlyMs) / b.loadOnlyMs)} %) | ${b.loadOnlyRssMiB} -> ${x.loadOnlyRssMiB} | ${b.createLoadMs} -> ${x.createLoadMs} | ${b.createStepMs} -> ${x.createStepMs} | ${b.createRssMiB} -> ${x.createRssMiB}`);
    }
    const bare = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.resourceUsage().maxRSS))'], { encoding: 'utf8', env: isolatedEnv() });
    console.log(`bare node peak RSS: ${r1(Number(bare.stdout) / 1024)} MiB`);
    console.log(JSON.stringify({ rev, sha, runs, node: process.version, engines: json }));
  } finally {
    await server.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
