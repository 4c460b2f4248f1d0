/**
 * `rotation-lambdas preflight | status | repair --secret-id <arn>`: the operations commands, run
 * from a workstation with the caller's AWS credentials (the SDK's default chain) and the same code
 * the rotation function runs. See README "Preflight, status and repair".
 *
 * Exit codes: 0 healthy / nothing failed; 1 a problem was found (or remains); 2 the command could
 * not run (usage, credentials, secret not found...). No secret value is ever printed: every text
 * goes through the redactor that every value read from Secrets Manager is registered with.
 */
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { awsErrorName, describeError, RotationError } from '../errors';
import { Logger, parseLevel } from '../log';
import type { Env } from '../password';
import { Redactor } from '../redact';
import { AWSCURRENT, SecretStore } from '../secrets';
import { regionOfArn } from '../db/admin-endpoint';
import { parseJsonSecret } from '../db/secret';
import { rotatorForEngine } from './engines';
import { runPreflight } from './preflight';
import { failFrom, formatChecks, type PreflightReport } from './report';
import { applyRepair, gatherStatus, holders, planRepair, type RepairPlan, type StatusReport } from './status';

export const USAGE = `Usage: rotation-lambdas <command> --secret-id <id> [options]

Commands:
  preflight   check everything the secret's rotation depends on; changes nothing
  status      versions, labels, rotation configuration, and a diagnosis of a stuck rotation
  repair      fix a stuck rotation (dry run unless --yes)

Options:
  --secret-id <id>      the secret's ARN or name (required)
  --region <region>     AWS region (default: the secret ARN's, else the SDK's: AWS_REGION, profile...)
  --endpoint-url <url>  Secrets Manager endpoint (default: SECRETS_MANAGER_ENDPOINT, else AWS's)
  --yes                 repair: apply the plan (without it, only show it)
  --json                print the report as JSON
  --verbose             write the rotator's log lines to stderr
  -h, --help            this text

Exit codes: 0 healthy, 1 a problem was found or remains, 2 the command could not run.
The rotator's environment variables (SSL_CA_BUNDLE, DEFAULT_SSL_MODE, ADMIN_HOST_FROM_CHILD,
CONNECT_TIMEOUT_MS, ...) are read from this process's environment.`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: Env;
}

interface Args {
  command?: string;
  secretId?: string;
  region?: string;
  endpoint?: string;
  yes: boolean;
  json: boolean;
  verbose: boolean;
  help: boolean;
}

class UsageError extends Error {}

export function parseArgs(argv: readonly string[]): Args {
  const a: Args = { yes: false, json: false, verbose: false, help: false };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value.`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const take = () => (inline !== undefined ? inline : value(i++, flag));
    switch (flag) {
      case '--secret-id':
        a.secretId = take();
        break;
      case '--region':
        a.region = take();
        break;
      case '--endpoint-url':
        a.endpoint = take();
        break;
      case '--yes':
      case '-y':
        a.yes = true;
        break;
      case '--json':
        a.json = true;
        break;
      case '--verbose':
        a.verbose = true;
        break;
      case '-h':
      case '--help':
        a.help = true;
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`Unknown option ${flag}.`);
        if (a.command) throw new UsageError(`Unexpected argument "${arg.slice(0, 60)}".`);
        a.command = arg;
    }
  }
  return a;
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const redactor = new Redactor();
  const out = (t: string) => io.out(redactor.scrub(t) + '\n');
  let args: Args;
  try {
    args = parseArgs(argv);
    if (args.help) {
      io.out(USAGE + '\n');
      return 0;
    }
    if (!args.command || !['preflight', 'status', 'repair'].includes(args.command)) throw new UsageError(args.command ? `Unknown command "${args.command.slice(0, 40)}".` : 'No command given.');
    if (!args.secretId) throw new UsageError('--secret-id is required.');
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`rotation-lambdas: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }

  const env: Env = { ...io.env };
  const log = new Logger((line) => io.err(line + '\n'), { tool: 'rotation-lambdas', command: args.command }, redactor, args.verbose ? 'debug' : parseLevel(env.LOG_LEVEL ?? 'warn'));
  const endpoint = args.endpoint ?? env.SECRETS_MANAGER_ENDPOINT?.trim();
  // A full ARN names its region; --region, else the SDK's default, otherwise.
  const region = args.region ?? regionOfArn(args.secretId);
  const client = new SecretsManagerClient({ ...(endpoint ? { endpoint } : {}), ...(region ? { region } : {}) });
  try {
    const metadata = await client.send(new DescribeSecretCommand({ SecretId: args.secretId }));
    const { current, pending } = holders(metadata);
    // The store's token is the version a stale AWSPENDING is on, so pending() reads it.
    const token = pending && pending !== current ? pending : (current ?? '');
    const secrets = new SecretStore(client, metadata.ARN ?? args.secretId, token, redactor, log);
    const ctx = { secretId: secrets.secretId, secrets, log, env, metadata };
    // The rotator follows AWSCURRENT's engine field; without one, status still shows the labels.
    let rotator: ReturnType<typeof rotatorForEngine> | undefined;
    let rotatorError: unknown;
    try {
      rotator = rotatorForEngine(parseJsonSecret(await secrets.current(), AWSCURRENT).engine);
    } catch (err) {
      if (!(err instanceof RotationError)) throw err;
      rotatorError = err;
    }

    if (args.command === 'preflight') {
      const report: PreflightReport = rotator
        ? await runPreflight(rotator, ctx)
        : { secretId: ctx.secretId, ok: false, checks: [failFrom('secret.shape', 'AWSCURRENT is a valid secret for a built-in rotator', rotatorError, 'SECRET_FORMAT')] };
      out(args.json ? json(report, redactor) : renderPreflight(report));
      return report.ok ? 0 : 1;
    }
    const status = await gatherStatus(rotator, ctx, rotatorError);
    if (args.command === 'status') {
      out(args.json ? json(status, redactor) : renderStatus(status));
      return status.ok ? 0 : 1;
    }
    const plan = planRepair(status);
    let applied: string[] = [];
    if (args.yes && plan.action.kind !== 'none') applied = await applyRepair(secrets, plan);
    const dryRun = !args.yes && plan.action.kind !== 'none';
    if (args.json) {
      out(json({ status, plan, dryRun, applied }, redactor));
    } else {
      out(renderStatus(status));
      out(renderPlan(plan, dryRun, applied));
    }
    return plan.resolves && !dryRun ? 0 : 1;
  } catch (err) {
    const name = awsErrorName(err);
    const prefix = name && name !== 'Error' && !describeError(err).startsWith(name) ? `${name}: ` : '';
    io.err(redactor.scrub(`rotation-lambdas ${args.command}: ${prefix}${describeError(err)}`) + '\n');
    return 2;
  } finally {
    client.destroy();
  }
}

function json(value: unknown, redactor: Redactor): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' ? redactor.scrub(v) : v), 2);
}

export function renderPreflight(r: PreflightReport): string {
  const failed = r.checks.filter((c) => c.status === 'fail').length;
  const warned = r.checks.filter((c) => c.status === 'warn').length;
  return [
    `Preflight of ${r.secretId}${r.engine ? ` (${r.engine}${r.strategy ? `, ${r.strategy === 'single' ? 'single user' : 'alternating users'}` : ''})` : ''}; nothing was changed.`,
    formatChecks(r.checks),
    failed ? `Result: ${failed} check(s) FAILED${warned ? `, ${warned} warning(s)` : ''}. The rotation would fail; fix the items marked FAIL.` : `Result: OK${warned ? ` with ${warned} warning(s)` : ''}.`,
  ].join('\n');
}

export function renderStatus(s: StatusReport): string {
  const rules = s.rotation.rules;
  const schedule = rules
    ? [rules.scheduleExpression, rules.automaticallyAfterDays !== undefined ? `every ${rules.automaticallyAfterDays} days` : undefined, rules.duration ? `window ${rules.duration}` : undefined]
        .filter(Boolean)
        .join(', ')
    : 'none';
  const lines = [
    `Secret     ${s.arn ?? s.secretId}${s.name ? ` (${s.name})` : ''}`,
    `Engine     ${s.engine ?? 'unknown'}${s.strategy ? `, ${s.strategy === 'single' ? 'single user' : 'alternating users'}` : ''}`,
    'Rotation',
    `  enabled:        ${s.rotation.rotationEnabled ? 'yes' : 'no'}`,
    `  function:       ${s.rotation.lambdaArn ?? 'none'}`,
    `  schedule:       ${schedule}`,
    `  last rotated:   ${s.rotation.lastRotatedDate ?? 'never'}`,
    `  next rotation:  ${s.rotation.nextRotationDate ?? 'none scheduled'}`,
    'Versions (labelled)',
    ...s.versions.map((v) => `  ${v.versionId}  ${v.stages.join(', ').padEnd(24)}  created ${v.createdDate ?? 'unknown'}`),
    'Diagnosis',
    ...s.diagnosis.map((d) => `  - ${d}`),
    `Result: ${s.ok ? 'OK' : 'PROBLEM'}`,
  ];
  return lines.join('\n');
}

export function renderPlan(plan: RepairPlan, dryRun: boolean, applied: string[]): string {
  const lines = ['Repair', ...plan.reasons.map((r) => `  - ${r}`)];
  if (plan.action.kind === 'none') lines.push(plan.resolves ? 'Nothing to do.' : 'Nothing was changed.');
  else if (dryRun) lines.push('Dry run: nothing was changed. Run again with --yes to apply.');
  else lines.push(...applied.map((a) => `  done: ${a}`), 'Repaired.');
  return lines.join('\n');
}
