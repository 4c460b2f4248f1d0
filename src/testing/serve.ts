/**
 * An empty Secrets Manager double on a local port, for the aws CLI or any SDK:
 *
 *   npx tsx src/testing/serve.ts --port 4566 [--host 127.0.0.1]
 *   aws --endpoint-url http://127.0.0.1:4566 secretsmanager create-secret --name demo --secret-string hello
 *
 * State lives in memory and is gone when the process stops (Ctrl-C).
 */
import { startSecretsManagerServer } from './http-server';
import { SecretsManagerDouble } from './secrets-manager-double';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const rawPort = arg('port') ?? '4566';
  if (!/^\d+$/.test(rawPort) || Number(rawPort) > 65_535) throw new Error(`--port must be a port number, got "${rawPort}".`);
  const double = new SecretsManagerDouble({ region: arg('region') });
  const server = await startSecretsManagerServer(double, { port: Number(rawPort), host: arg('host') });
  process.stdout.write(`Secrets Manager double listening on ${server.endpoint} (region ${double.region}, account ${double.accountId})\n`);
  process.stdout.write(`  aws --endpoint-url ${server.endpoint} secretsmanager list-secrets\n`);
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`serve failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
