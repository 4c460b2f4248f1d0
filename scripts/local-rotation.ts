/**
 * `npm run demo`: a real rotation on a machine with no AWS account.
 *
 * Starts a throwaway PostgreSQL (password auth, TLS), the Secrets Manager double as an HTTP
 * endpoint, creates two secrets (single-user and alternating-users), and lets the double run the
 * four steps through the real PostgreSQL Lambda handler, which talks to the double over HTTP with
 * the real AWS SDK client (SECRETS_MANAGER_ENDPOINT). Prints each step, the label moves and the
 * proof of login. Passwords are never printed.
 */
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Client } from 'pg';
import { startPostgres } from '../test/support/postgres';
import { SecretsManagerDouble } from '../src/testing/secrets-manager-double';
import { startSecretsManagerServer } from '../src/testing/http-server';
import type { RotationEvent } from '../src';

const FN = 'arn:aws:lambda:us-east-1:123456789012:function:rotation-lambdas-postgres';

function say(text = ''): void {
  process.stdout.write(text + '\n');
}

function labels(stages: Record<string, string[]>): string {
  return Object.entries(stages)
    .map(([v, s]) => `${v.slice(0, 8)}…=[${s.join(',')}]`)
    .join('  ');
}

async function main(): Promise<void> {
  say('== starting a throwaway PostgreSQL (scram-sha-256, TLS) ...');
  const pg = await startPostgres();
  const sm = new SecretsManagerDouble();
  let server: Awaited<ReturnType<typeof startSecretsManagerServer>> | undefined;
  try {
    server = await startSecretsManagerServer(sm);
    say(`   PostgreSQL on ${pg.info.host}:${pg.info.port}; Secrets Manager double on ${server.endpoint}`);
    // The handler builds its own SDK client from these, exactly as in Lambda.
    process.env.SECRETS_MANAGER_ENDPOINT = server.endpoint;
    process.env.AWS_REGION = 'us-east-1';
    process.env.AWS_ACCESS_KEY_ID = 'local-demo';
    process.env.AWS_SECRET_ACCESS_KEY = 'local-demo';
    process.env.LOG_LEVEL = process.env.LOG_LEVEL ?? 'warn';
    const { handler } = await import('../rotators/postgres');

    const admin = await connect(pg.info.superuser, pg.info.superPassword, pg.info);
    await admin.query('DROP ROLE IF EXISTS demo_app, demo_app_clone, demo_single');
    await admin.query("CREATE ROLE demo_single LOGIN PASSWORD 'demo-initial-single'");
    await admin.query("CREATE ROLE demo_app LOGIN PASSWORD 'demo-initial-app'");
    await admin.query('GRANT pg_read_all_data TO demo_app');
    await admin.end();

    const client = new SecretsManagerClient({ endpoint: server.endpoint });
    const base = { engine: 'postgres', host: 'localhost', port: pg.info.port, dbname: pg.info.database, ssl: 'verify-full', sslCa: pg.info.caPem };
    const masterArn = (await client.send(new CreateSecretCommand({
      Name: 'demo/postgres/admin',
      SecretString: JSON.stringify({ ...base, username: pg.info.superuser, password: pg.info.superPassword }),
    }))).ARN!;
    const singleArn = (await client.send(new CreateSecretCommand({
      Name: 'demo/postgres/single',
      SecretString: JSON.stringify({ ...base, username: 'demo_single', password: 'demo-initial-single' }),
    }))).ARN!;
    const multiArn = (await client.send(new CreateSecretCommand({
      Name: 'demo/postgres/alternating',
      SecretString: JSON.stringify({ ...base, username: 'demo_app', password: 'demo-initial-app', masterarn: masterArn }),
    }))).ARN!;

    sm.registerFunction(FN, async (event: RotationEvent) => {
      const t0 = Date.now();
      await handler(event);
      say(`   ${event.Step.padEnd(13)} ok in ${String(Date.now() - t0).padStart(4)} ms   labels: ${labels(sm.versionStages(event.SecretId))}`);
    });

    for (const [title, arn] of [['single user', singleArn], ['alternating users', multiArn], ['alternating users, again', multiArn]] as const) {
      say(`\n== rotating ${title}: ${arn}`);
      const before = await currentSecret(client, arn);
      say(`   before: labels ${labels(sm.versionStages(arn))}; AWSCURRENT user ${before.username}`);
      const outcome = await sm.rotateAndWait(arn, { lambdaArn: FN });
      if (!outcome.succeeded) throw new Error(`rotation failed: ${outcome.error}`);
      const after = await currentSecret(client, arn);
      say(`   after:  labels ${labels(sm.versionStages(arn))}; AWSCURRENT user ${after.username}`);
      const who = await connect(after.username, after.password, pg.info);
      const row = (await who.query('SELECT current_user AS u, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0];
      await who.end();
      say(`   proof: the new AWSCURRENT password logs in as ${row.u} over TLS=${row.ssl}`);
      if (before.username === after.username) {
        const rejected = await connect(before.username, before.password, pg.info).then(
          async (c) => (await c.end(), false),
          (err: { code?: string }) => err.code === '28P01',
        );
        say(`   proof: the old password is ${rejected ? 'rejected (28P01 password authentication failed)' : 'STILL ACCEPTED'}`);
        if (!rejected) throw new Error('old password still works');
      } else {
        say(`   the previous user ${before.username} keeps working until the next rotation (alternating strategy)`);
      }
    }
    say(`\n== Secrets Manager calls served by the double: ${sm.countCalls()} (${summary(sm)})`);
    say('== done');
  } finally {
    await server?.close();
    await pg.stop();
  }
}

function summary(sm: SecretsManagerDouble): string {
  const counts = new Map<string, number>();
  for (const c of sm.calls) counts.set(c.operation, (counts.get(c.operation) ?? 0) + 1);
  return [...counts].map(([k, v]) => `${k} ${v}`).join(', ');
}

async function currentSecret(client: SecretsManagerClient, arn: string): Promise<{ username: string; password: string }> {
  return JSON.parse((await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString!);
}

async function connect(user: string, password: string, info: { host: string; port: number; database: string; caPem: string }): Promise<Client> {
  const c = new Client({ host: 'localhost', port: info.port, user, password, database: info.database, ssl: { ca: info.caPem } });
  await c.connect();
  return c;
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
