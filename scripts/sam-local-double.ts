/**
 * `npm run sam-local-double`: the Secrets Manager double on 127.0.0.1:4566, holding the secret
 * that the sample events in events/ name, mid-rotation at their ClientRequestToken (as
 * RotateSecret leaves it), so that `sam local invoke` works with no AWS account:
 *
 *   npm run sam-local-double                       # terminal 1 (Ctrl-C stops it)
 *   sam build
 *   AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
 *     sam local invoke PostgresFunction -e events/createSecret.json \
 *       --env-vars events/sam-local/env-vars.json --docker-network host
 *
 * `--docker-network host` lets the function's container reach 127.0.0.1:4566 (Linux; with Docker
 * Desktop, serve with `--host 0.0.0.0` and put http://host.docker.internal:4566 in the env-vars
 * file). createSecret needs no database; setSecret and testSecret log in to the secret's `host`
 * (`--db-host`, `--db-port`, `--db-user`, `--db-password` set the seeded value), and fail with
 * a NETWORK error when nothing listens there.
 *
 * Usage: tsx scripts/sam-local-double.ts [--port 4566] [--host 127.0.0.1] [--engine postgres]
 *          [--db-host 127.0.0.1] [--db-port 5432] [--db-user app] [--db-password ...]
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type SecretsManagerServer, startSecretsManagerServer } from '../src/testing/http-server';
import { SecretsManagerDouble } from '../src/testing/secrets-manager-double';

const ROOT = resolve(__dirname, '..');

export interface SamLocalDoubleOptions {
  port?: number;
  host?: string;
  /** The seeded secret's value (the database it names); default a PostgreSQL user on 127.0.0.1:5432. */
  secret?: Record<string, unknown>;
}

export interface SamLocalDouble {
  double: SecretsManagerDouble;
  server: SecretsManagerServer;
  /** The sample events' SecretId and ClientRequestToken. */
  secretId: string;
  token: string;
}

/** Starts the double with the sample events' secret, its AWSPENDING placeholder at their token. */
export async function startSamLocalDouble(options: SamLocalDoubleOptions = {}): Promise<SamLocalDouble> {
  const sample = JSON.parse(readFileSync(join(ROOT, 'events', 'createSecret.json'), 'utf8')) as { SecretId: string; ClientRequestToken: string };
  const [, region, accountId] = /^arn:[^:]+:secretsmanager:([^:]+):(\d{12}):secret:/.exec(sample.SecretId) ?? [];
  const double = new SecretsManagerDouble({ region, accountId });
  // The double resolves the sample's full ARN like a partial ARN: the secret is named after its tail.
  const name = sample.SecretId.split(':secret:')[1];
  const value = options.secret ?? { engine: 'postgres', host: '127.0.0.1', port: 5432, dbname: 'postgres', username: 'app', password: 'Initial-Password-1', ssl: false };
  double.invoke('CreateSecret', { Name: name, ClientRequestToken: '00000000-0000-4000-8000-000000000000', SecretString: JSON.stringify(value) });
  double.beginRotation(sample.SecretId, { clientRequestToken: sample.ClientRequestToken });
  const server = await startSecretsManagerServer(double, { port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  return { double, server, secretId: sample.SecretId, token: sample.ClientRequestToken };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const port = Number(arg('port') ?? '4566');
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error('--port must be a port number.');
  const secret = {
    engine: arg('engine') ?? 'postgres',
    host: arg('db-host') ?? '127.0.0.1',
    port: Number(arg('db-port') ?? '5432'),
    username: arg('db-user') ?? 'app',
    password: arg('db-password') ?? 'Initial-Password-1',
    ssl: false,
  };
  const s = await startSamLocalDouble({ port, host: arg('host'), secret });
  process.stdout.write(`Secrets Manager double on ${s.server.endpoint}: ${s.secretId}, AWSPENDING placeholder at ${s.token}\n`);
  process.stdout.write('  sam local invoke PostgresFunction -e events/createSecret.json --env-vars events/sam-local/env-vars.json --docker-network host\n');
  const stop = (): void => void s.server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`sam-local-double failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
